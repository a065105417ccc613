#include "audio/vad.hpp"
#include "audio/speech.hpp"  // Tone
#include "unit/audio/signal.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>

namespace callgate::audio {
namespace {

using Type = VadEvent::Type;
using testing::Append;
using testing::Silence;

constexpr int kRate = 16000;

// A sine whose RMS is `dbfs` relative to 32768 (the VAD's reference).
std::vector<std::int16_t> ToneAtDbfs(double seconds, double dbfs) {
  const double rms = 32768.0 * std::pow(10.0, dbfs / 20.0);
  return Tone(440.0, seconds, kRate, rms * std::sqrt(2.0) / 32767.0);
}

std::vector<std::int16_t> NoiseAtDbfs(double seconds, double dbfs, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> dist(0.0, 32768.0 * std::pow(10.0, dbfs / 20.0));
  std::vector<std::int16_t> out(static_cast<std::size_t>(seconds * kRate));
  for (auto& s : out)
    s = static_cast<std::int16_t>(std::lround(dist(rng)));
  return out;
}

TEST(RmsDbfs, Reference) {
  EXPECT_DOUBLE_EQ(RmsDbfs(std::vector<std::int16_t>(100, 0)), -120.0);
  EXPECT_DOUBLE_EQ(RmsDbfs({}), -120.0);
  EXPECT_NEAR(RmsDbfs(std::vector<std::int16_t>(100, -32768)), 0.0, 1e-9);
  EXPECT_NEAR(RmsDbfs(std::vector<std::int16_t>(100, 3277)), -20.0, 0.01);
  EXPECT_NEAR(RmsDbfs(Tone(440.0, 1.0, kRate, 1.0)), -3.01, 0.02);
  EXPECT_NEAR(RmsDbfs(ToneAtDbfs(1.0, -20.0)), -20.0, 0.02);
}

TEST(EnergyVad, SilenceHasNoEvents) {
  EnergyVad vad(kRate);
  EXPECT_TRUE(vad.Feed(Silence(kRate * 3)).empty());
  EXPECT_FALSE(vad.speaking());
  EXPECT_EQ(vad.samples_fed(), kRate * 3);
  EXPECT_DOUBLE_EQ(vad.last_frame_dbfs(), -120.0);
}

TEST(EnergyVad, OneToneBetweenSilencesIsOneUtterance) {
  std::vector<std::int16_t> signal = Silence(kRate / 2);  // 0.5 s
  Append(signal, ToneAtDbfs(1.0, -20.0));                 // 0.5 .. 1.5 s
  Append(signal, Silence(kRate));                         // 1.5 .. 2.5 s

  EnergyVad vad(kRate);
  const std::vector<VadEvent> events = vad.Feed(signal);
  ASSERT_EQ(events.size(), 2u);
  const int frame = vad.frame_samples();
  EXPECT_EQ(frame, 160);

  EXPECT_EQ(events[0].type, Type::kSpeechStart);
  EXPECT_NEAR(static_cast<double>(events[0].sample_offset), 8000.0, frame);
  // Decided after 60 ms of loud frames.
  EXPECT_NEAR(static_cast<double>(events[0].decided_at), 8000.0 + 0.060 * kRate, frame);

  EXPECT_EQ(events[1].type, Type::kSpeechEnd);
  EXPECT_NEAR(static_cast<double>(events[1].sample_offset), 24000.0, frame);
  // Decided after 500 ms of quiet frames.
  EXPECT_NEAR(static_cast<double>(events[1].decided_at), 24000.0 + 0.500 * kRate, frame);
  EXPECT_FALSE(vad.speaking());
}

TEST(EnergyVad, NoiseBelowThresholdStaysSilent) {
  EnergyVad vad(kRate);  // -45 dBFS
  EXPECT_TRUE(vad.Feed(NoiseAtDbfs(3.0, -55.0, 1)).empty());
  EXPECT_FALSE(vad.speaking());
  EXPECT_LT(vad.last_frame_dbfs(), -50.0);
  EXPECT_GT(vad.last_frame_dbfs(), -60.0);
  // The same noise 15 dB louder is above the threshold and is (noise-)speech.
  EnergyVad loud(kRate);
  const auto events = loud.Feed(NoiseAtDbfs(3.0, -40.0, 1));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, Type::kSpeechStart);
  EXPECT_EQ(events[0].sample_offset, 0);
}

TEST(EnergyVad, HangoverIgnoresClicksAndShortPauses) {
  // 40 ms clicks: each shorter than 60 ms, so none starts speech, however many there are.
  std::vector<std::int16_t> signal = Silence(kRate / 2);
  for (int i = 0; i < 5; ++i) {
    Append(signal, ToneAtDbfs(0.040, -20.0));
    Append(signal, Silence(kRate / 10));
  }
  EnergyVad vad(kRate);
  EXPECT_TRUE(vad.Feed(signal).empty());

  // 300 ms pauses: each shorter than 500 ms, so none ends speech, however many there are.
  signal = ToneAtDbfs(0.5, -20.0);
  for (int i = 0; i < 4; ++i) {
    Append(signal, Silence(kRate * 3 / 10));
    Append(signal, ToneAtDbfs(0.1, -20.0));
  }
  EnergyVad vad2(kRate);
  const auto events = vad2.Feed(signal);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, Type::kSpeechStart);
  EXPECT_TRUE(vad2.speaking());
}

TEST(EnergyVad, ChunkingDoesNotChangeTheEvents) {
  std::vector<std::int16_t> signal = Silence(kRate / 3);
  Append(signal, ToneAtDbfs(0.7, -30.0));
  Append(signal, Silence(kRate));
  Append(signal, ToneAtDbfs(0.3, -30.0));
  Append(signal, Silence(kRate));

  EnergyVad whole(kRate);
  const std::vector<VadEvent> expected = whole.Feed(signal);
  ASSERT_EQ(expected.size(), 4u);

  EnergyVad chunked(kRate);
  std::vector<VadEvent> got;
  for (std::size_t i = 0; i < signal.size(); i += 333) {
    const auto part = std::span(signal).subspan(i, std::min<std::size_t>(333, signal.size() - i));
    for (const VadEvent& e : chunked.Feed(part))
      got.push_back(e);
  }
  EXPECT_EQ(got, expected);
}

TEST(EnergyVad, FrameLevelIsExactWhateverTheSplit) {
  // Full-scale noise (the largest sums of squares), fed in pieces that straddle the frames:
  // each frame's level equals RmsDbfs over the frame's samples, summed sample by sample.
  std::mt19937 random(3);
  std::uniform_int_distribution<int> sample(-32768, 32767);
  std::vector<std::int16_t> signal(kRate);
  for (auto& s : signal)
    s = static_cast<std::int16_t>(sample(random));
  EnergyVad vad(kRate);
  const auto frame = static_cast<std::size_t>(vad.frame_samples());
  std::size_t fed = 0;
  for (std::size_t piece : {7u, 1000u, 13u, 2u * 480u + 5u, 333u}) {
    piece = std::min(piece, signal.size() - fed);
    vad.Feed(std::span(signal).subspan(fed, piece));
    fed += piece;
    const std::size_t frames = fed / frame;
    if (frames == 0) continue;
    const auto last = std::span(signal).subspan((frames - 1) * frame, frame);
    EXPECT_EQ(vad.last_frame_dbfs(), RmsDbfs(last)) << "after " << fed << " samples";
  }
  EXPECT_EQ(vad.samples_fed(), static_cast<std::int64_t>(fed));
}

TEST(EnergyVad, OptionsAreHonoured) {
  std::vector<std::int16_t> signal = ToneAtDbfs(0.2, -50.0);  // below -45, above -55
  Append(signal, Silence(kRate / 2));
  EnergyVad strict(kRate);
  EXPECT_TRUE(strict.Feed(signal).empty());

  EnergyVad sensitive(kRate,
                      {.threshold_dbfs = -55.0, .frame_ms = 20, .start_ms = 100, .end_ms = 200});
  EXPECT_EQ(sensitive.frame_samples(), 320);
  const auto events = sensitive.Feed(signal);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].sample_offset, 0);
  EXPECT_EQ(events[0].decided_at, 5 * 320);  // 100 ms = 5 frames of 20 ms
  EXPECT_EQ(events[1].sample_offset, 3200);  // 0.2 s
  EXPECT_EQ(events[1].decided_at, 3200 + 10 * 320);
}

TEST(EnergyVad, ResetForgetsTheStream) {
  EnergyVad vad(kRate);
  ASSERT_EQ(vad.Feed(ToneAtDbfs(0.5, -20.0)).size(), 1u);
  EXPECT_TRUE(vad.speaking());
  vad.Reset();
  EXPECT_FALSE(vad.speaking());
  EXPECT_EQ(vad.samples_fed(), 0);
  const auto events = vad.Feed(ToneAtDbfs(0.5, -20.0));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].sample_offset, 0);
}

TEST(EnergyVad, RejectsBadArguments) {
  EXPECT_THROW(EnergyVad(0), std::invalid_argument);
  EXPECT_THROW(EnergyVad(kRate, {.frame_ms = 0}), std::invalid_argument);
  EXPECT_THROW(EnergyVad(kRate, {.end_ms = -1}), std::invalid_argument);
}

}  // namespace
}  // namespace callgate::audio
