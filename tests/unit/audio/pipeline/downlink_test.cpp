#include "audio/pipeline/downlink.hpp"

#include "audio/codec.hpp"
#include "audio/resampler.hpp"
#include "audio/speech.hpp"  // Tone
#include "unit/audio/pipeline/measure.hpp"

#include <gtest/gtest.h>

#include <string>
#include <tuple>

namespace callgate::audio::pipeline {
namespace {

using testing::LongestZeroRun;
using testing::MaxStep;
using testing::Middle;
using testing::SineMaxStep;
using testing::ZeroCrossingHz;

constexpr double kToneHz = 440.0;
constexpr double kAmplitude = 0.5;

// Splits wire bytes into events of about 100 ms, at odd byte offsets for PCM (the SDKs never
// promise whole samples per event).
std::vector<std::span<const std::uint8_t>> Events(std::span<const std::uint8_t> bytes,
                                                  const AudioFormat& format) {
  std::vector<std::span<const std::uint8_t>> events;
  std::size_t size = format.BytesPerSecond() / 10;
  for (std::size_t pos = 0, i = 0; pos < bytes.size(); ++i) {
    const std::size_t n =
        std::min(size + (i % 2 == 0 ? 1 : 0) - (i % 2 == 1 ? 1 : 0), bytes.size() - pos);
    events.push_back(bytes.subspan(pos, n));
    pos += n;
  }
  return events;
}

// Reads 10 ms blocks until `stop` says so or `max_blocks` have been read.
std::vector<std::int16_t> ReadAll(Downlink& downlink, int rate, std::size_t max_blocks) {
  std::vector<std::int16_t> out;
  std::vector<std::int16_t> block(static_cast<std::size_t>(rate) / 100);
  for (std::size_t i = 0; i < max_blocks; ++i) {
    downlink.Read(block);
    out.insert(out.end(), block.begin(), block.end());
  }
  return out;
}

// The stretch between the first and last non-zero samples.
std::span<const std::int16_t> Audible(std::span<const std::int16_t> x) {
  std::size_t first = 0;
  while (first < x.size() && x[first] == 0)
    ++first;
  std::size_t last = x.size();
  while (last > first && x[last - 1] == 0)
    --last;
  return x.subspan(first, last - first);
}

class DownlinkFormats : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(DownlinkFormats, AToneKeepsItsFrequencyWithoutClicksOrGaps) {
  const AudioFormat format = *ParseFormat(std::get<0>(GetParam()));
  const int playback_rate = std::get<1>(GetParam());
  const std::vector<std::int16_t> tone = Tone(kToneHz, 1.0, format.sample_rate, kAmplitude);
  const std::vector<std::uint8_t> wire = Encode(format, tone);

  Downlink downlink({.format = format, .playback_rate = playback_rate});
  for (const auto event : Events(wire, format)) {
    EXPECT_TRUE(downlink.Push(event, 1));
  }
  bool drained = false;
  downlink.DrainThen([&] { drained = true; });
  const std::vector<std::int16_t> played = ReadAll(downlink, playback_rate, 120);
  EXPECT_TRUE(drained);

  // Every sample of the second is played: its length at the playback rate.
  const auto audible = Audible(played);
  EXPECT_NEAR(static_cast<double>(audible.size()), playback_rate, playback_rate * 0.002 + 2);
  EXPECT_EQ(downlink.stats().played_samples, downlink.stats().pushed_samples);
  EXPECT_EQ(downlink.received_bytes(), wire.size());

  const auto middle = Middle(audible);
  EXPECT_NEAR(ZeroCrossingHz(middle, playback_rate), kToneHz, kToneHz * 0.005);
  EXPECT_NEAR(testing::DftPeakHz(middle.first(std::min<std::size_t>(middle.size(), 8000)),
                                 playback_rate, 300.0, 600.0),
              kToneHz, 2.0);
  const double amplitude = kAmplitude * 32767;
  const double quantisation = format.encoding == AudioFormat::Encoding::kMulaw ? 600.0 : 4.0;
  EXPECT_LE(MaxStep(middle), SineMaxStep(kToneHz, amplitude, playback_rate) * 1.02 + quantisation);
  EXPECT_LE(LongestZeroRun(audible), 2u);
  EXPECT_NEAR(testing::Rms(middle), amplitude / std::sqrt(2.0), 0.05 * amplitude);
  EXPECT_EQ(downlink.stats().underruns, 0u);
  EXPECT_EQ(downlink.stats().overflow_samples, 0u);
}

std::string FormatName(const ::testing::TestParamInfo<std::tuple<std::string, int>>& info) {
  return std::get<0>(info.param) + "_to_" + std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(AllFormats, DownlinkFormats,
                         ::testing::Combine(::testing::Values("pcm_8000", "pcm_16000", "pcm_22050",
                                                              "pcm_24000", "pcm_44100", "pcm_48000",
                                                              "ulaw_8000"),
                                            ::testing::Values(48000, 44100, 16000)),
                         FormatName);

TEST(Downlink, SameRatePlaysTheExactSamplesAfterThePrebuffer) {
  const AudioFormat format = *ParseFormat("pcm_16000");
  const std::vector<std::int16_t> tone = Tone(440.0, 0.5, 16000, 0.5);
  const std::vector<std::uint8_t> wire = EncodePcm16Le(tone);
  Downlink downlink({.format = format, .playback_rate = 16000});
  for (const auto event : Events(wire, format))
    downlink.Push(event, 1);
  const std::vector<std::int16_t> played = ReadAll(downlink, 16000, 60);
  // After the 80 ms playout delay (1280 samples), the exact samples.
  ASSERT_GE(played.size(), 1280 + tone.size());
  EXPECT_TRUE(std::all_of(played.begin(), played.begin() + 1280, [](auto s) { return s == 0; }));
  EXPECT_EQ(std::vector<std::int16_t>(played.begin() + 1280, played.begin() + 1280 + tone.size()),
            tone);
}

TEST(Downlink, AnOddByteIsKeptForTheNextEvent) {
  const AudioFormat format = *ParseFormat("pcm_16000");
  const std::vector<std::int16_t> samples = {0x1234, -2, 0x7FFF, -32768, 5};
  const std::vector<std::uint8_t> wire = EncodePcm16Le(samples);
  Downlink downlink(
      {.format = format, .playback_rate = 16000, .prebuffer = std::chrono::milliseconds(0)});
  downlink.Push(std::span(wire).first(3), 1);
  downlink.Push(std::span(wire).subspan(3, 4), 1);
  downlink.Push(std::span(wire).subspan(7), 1);
  std::vector<std::int16_t> out(5);
  downlink.Read(out);
  EXPECT_EQ(out, samples);
}

TEST(Downlink, StaleEventsAreDroppedBeforeDecoding) {
  const AudioFormat format = *ParseFormat("ulaw_8000");
  const std::vector<std::uint8_t> wire(800, 0x10);  // 100 ms
  Downlink downlink({.format = format, .playback_rate = 48000});
  EXPECT_TRUE(downlink.Push(wire, 4));
  downlink.Interrupt(4);
  EXPECT_FALSE(downlink.Push(wire, 4));
  EXPECT_FALSE(downlink.Push(wire, 3));
  EXPECT_EQ(downlink.jitter().buffered_samples(), 0u);
  EXPECT_EQ(downlink.stats().stale_events, 2u);
  EXPECT_EQ(downlink.stats().stale_samples, 2u * 4800u) << "counted at the playback rate";
  EXPECT_TRUE(downlink.Push(wire, 5));
  // 100 ms at 48 kHz, less what the resampler holds back until more input (or a drain) comes.
  EXPECT_LE(downlink.jitter().buffered_samples(), 4800u);
  EXPECT_GE(downlink.jitter().buffered_samples(), 4500u);
}

TEST(Downlink, InterruptSilencesPlaybackAtOnce) {
  const AudioFormat format = *ParseFormat("pcm_24000");
  const std::vector<std::uint8_t> wire = EncodePcm16Le(Tone(440.0, 2.0, 24000, 0.5));
  Downlink downlink({.format = format, .playback_rate = 48000});
  for (const auto event : Events(wire, format))
    downlink.Push(event, 9);
  ReadAll(downlink, 48000, 20);  // 200 ms played
  downlink.Interrupt(9);
  const std::vector<std::int16_t> after = ReadAll(downlink, 48000, 20);
  // At most the 5 ms fade (240 samples at 48 kHz) is heard after the interruption.
  std::size_t last_audible = 0;
  for (std::size_t i = 0; i < after.size(); ++i) {
    if (after[i] != 0) last_audible = i + 1;
  }
  EXPECT_LE(last_audible, 240u);
  EXPECT_GT(downlink.stats().flushed_samples, 48000u * 17 / 10);

  // The next reply starts clean: no leftover of the interrupted one in the resampler.
  const std::vector<std::uint8_t> next = EncodePcm16Le(Tone(660.0, 0.5, 24000, 0.5));
  for (const auto event : Events(next, format))
    EXPECT_TRUE(downlink.Push(event, 10));
  downlink.DrainThen([] {});
  const std::vector<std::int16_t> reply = ReadAll(downlink, 48000, 60);
  const auto audible = Audible(reply);
  EXPECT_NEAR(static_cast<double>(audible.size()), 24000.0, 4.0);
  EXPECT_NEAR(ZeroCrossingHz(Middle(audible), 48000), 660.0, 660.0 * 0.005);
}

TEST(Downlink, DrainPlaysTheResamplersTailAndCallsBackOnce) {
  const AudioFormat format = *ParseFormat("pcm_22050");
  const std::vector<std::int16_t> tone = Tone(440.0, 0.03, 22050, 0.5);  // shorter than 80 ms
  Downlink downlink({.format = format, .playback_rate = 44100});
  downlink.Push(EncodePcm16Le(tone), 2);
  int calls = 0;
  downlink.DrainThen([&] { ++calls; });
  const std::vector<std::int16_t> played = ReadAll(downlink, 44100, 10);
  EXPECT_EQ(calls, 1);
  // All of it, tail included: round(661 * 2) samples.
  EXPECT_EQ(downlink.stats().played_samples, 2 * tone.size());
  EXPECT_EQ(downlink.jitter().buffered_samples(), 0u);
}

}  // namespace
}  // namespace callgate::audio::pipeline
