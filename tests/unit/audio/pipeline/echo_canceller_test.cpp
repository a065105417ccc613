#include "audio/pipeline/echo_canceller.hpp"

#include "audio/speech.hpp"  // Tone
#include "unit/audio/pipeline/measure.hpp"

#include <gtest/gtest.h>

#include <random>
#include <stdexcept>

namespace callgate::audio::pipeline {
namespace {

using testing::EnergyDb;

constexpr int kRate = 16000;
constexpr std::size_t kTick = 160;  // 10 ms

// A speech-like far end: noise, low-passed, with a syllable-rate envelope. Deterministic.
std::vector<std::int16_t> FarEnd(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::vector<std::int16_t> x(n);
  double lp = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    lp = 0.7 * lp + 0.3 * noise(rng);
    const double t = static_cast<double>(i) / kRate;
    const double envelope = 0.55 + 0.45 * std::sin(2.0 * std::numbers::pi * 3.0 * t);
    x[i] = static_cast<std::int16_t>(std::clamp(lp * envelope * 9000.0, -32767.0, 32767.0));
  }
  return x;
}

// What the microphone hears of the loudspeaker: a direct path 30 ms late and two reflections.
std::vector<std::int16_t> Echo(const std::vector<std::int16_t>& far) {
  std::vector<std::int16_t> y(far.size());
  const auto at = [&](std::size_t i, std::size_t delay) {
    return i >= delay ? static_cast<double>(far[i - delay]) : 0.0;
  };
  for (std::size_t i = 0; i < far.size(); ++i) {
    y[i] = static_cast<std::int16_t>(0.6 * at(i, 480) + 0.25 * at(i, 800) - 0.12 * at(i, 1300));
  }
  return y;
}

std::vector<std::int16_t> Cancel(EchoCanceller& aec, const std::vector<std::int16_t>& far,
                                 const std::vector<std::int16_t>& near) {
  std::vector<std::int16_t> out;
  for (std::size_t i = 0; i + kTick <= far.size(); i += kTick) {
    aec.Playback(std::span(far).subspan(i, kTick));
    aec.Capture(std::span(near).subspan(i, kTick), out);
  }
  return out;
}

std::span<const std::int16_t> LastSeconds(const std::vector<std::int16_t>& x, double seconds) {
  const auto n = static_cast<std::size_t>(seconds * kRate);
  return std::span(x).last(std::min(n, x.size()));
}

TEST(EchoCanceller, RemovesMostOfTheLoudspeakerFromTheMicrophone) {
  const std::vector<std::int16_t> far = FarEnd(8 * kRate, 1);
  const std::vector<std::int16_t> near = Echo(far);
  EchoCanceller aec({.sample_rate = kRate});
  const std::vector<std::int16_t> out = Cancel(aec, far, near);
  ASSERT_EQ(out.size(), near.size());
  const double erle = EnergyDb(LastSeconds(near, 3.0)) - EnergyDb(LastSeconds(out, 3.0));
  EXPECT_GT(erle, 20.0) << "echo return loss enhancement, dB (measured: 26)";
  EXPECT_EQ(aec.stats().reference_missing_frames, 0u);
}

TEST(EchoCanceller, TheAdaptiveFilterAloneCancelsTooWithoutSuppression) {
  const std::vector<std::int16_t> far = FarEnd(8 * kRate, 2);
  const std::vector<std::int16_t> near = Echo(far);
  EchoCanceller aec({.sample_rate = kRate, .residual_suppression = false});
  const std::vector<std::int16_t> out = Cancel(aec, far, near);
  const double erle = EnergyDb(LastSeconds(near, 3.0)) - EnergyDb(LastSeconds(out, 3.0));
  EXPECT_GT(erle, 15.0) << "measured: 21 dB";
}

TEST(EchoCanceller, KeepsTheUsersVoiceWhileCancellingTheEcho) {
  // Far end quiet in the last 2 s so the near-end talker is alone after the filter converged.
  std::vector<std::int16_t> far = FarEnd(8 * kRate, 3);
  std::fill(far.begin() + 6 * kRate, far.end(), std::int16_t{0});
  std::vector<std::int16_t> near = Echo(far);
  const std::vector<std::int16_t> voice = Tone(700.0, 2.0, kRate, 0.2);
  for (std::size_t i = 0; i < voice.size(); ++i)
    near[6 * kRate + i] = static_cast<std::int16_t>(near[6 * kRate + i] + voice[i]);
  EchoCanceller aec({.sample_rate = kRate});
  const std::vector<std::int16_t> out = Cancel(aec, far, near);
  const auto tail = LastSeconds(out, 1.5);
  const double kept = testing::DftMagnitude(tail, kRate, 700.0) /
                      testing::DftMagnitude(LastSeconds(voice, 1.5), kRate, 700.0);
  EXPECT_GT(kept, 0.7) << "the user's voice is not suppressed";
}

TEST(EchoCanceller, WithoutAReferenceTheCaptureGoesThrough) {
  const std::vector<std::int16_t> voice = Tone(500.0, 2.0, kRate, 0.3);
  EchoCanceller aec({.sample_rate = kRate});
  std::vector<std::int16_t> out;
  for (std::size_t i = 0; i < voice.size(); i += kTick)
    aec.Capture(std::span(voice).subspan(i, kTick), out);
  EXPECT_NEAR(testing::Rms(LastSeconds(out, 1.0)), testing::Rms(LastSeconds(voice, 1.0)),
              0.1 * testing::Rms(voice));
  EXPECT_EQ(aec.stats().reference_missing_frames, voice.size() / kTick);
}

TEST(EchoCanceller, WorksAtEveryFormatRate) {
  for (int rate : {8000, 16000, 22050, 24000, 44100, 48000}) {
    EchoCanceller aec({.sample_rate = rate});
    std::vector<std::int16_t> far = Tone(300.0, 3.0, rate, 0.3);
    std::vector<std::int16_t> near(far.size());
    const auto delay = static_cast<std::size_t>(rate / 50);  // 20 ms
    for (std::size_t i = delay; i < far.size(); ++i)
      near[i] = static_cast<std::int16_t>(far[i - delay] / 2);
    std::vector<std::int16_t> out;
    const std::size_t tick = aec.frame_samples();
    for (std::size_t i = 0; i + tick <= far.size(); i += tick) {
      aec.Playback(std::span(far).subspan(i, tick));
      aec.Capture(std::span(near).subspan(i, tick), out);
    }
    const auto n = static_cast<std::size_t>(rate);
    EXPECT_GT(EnergyDb(std::span(near).last(n)) - EnergyDb(std::span(out).last(n)), 20.0)
        << rate << " Hz";
  }
}

TEST(EchoCanceller, PartialFramesAreKeptUntilFlushed) {
  EchoCanceller aec({.sample_rate = kRate});
  std::vector<std::int16_t> out;
  const std::vector<std::int16_t> x(250, 100);
  aec.Capture(x, out);
  EXPECT_EQ(out.size(), 160u);
  aec.Flush(out);
  EXPECT_EQ(out.size(), 250u);
}

TEST(EchoCanceller, ReferenceQueueIsBounded) {
  EchoCanceller aec({.sample_rate = kRate, .max_reference = std::chrono::milliseconds(100)});
  const std::vector<std::int16_t> x(kRate, 1000);  // 1 s of reference, no capture
  aec.Playback(x);
  EXPECT_EQ(aec.stats().reference_dropped_samples, static_cast<std::uint64_t>(kRate - 1600));
}

TEST(EchoCanceller, RejectsInvalidOptions) {
  EXPECT_THROW(EchoCanceller({.sample_rate = 4000}), std::invalid_argument);
  EXPECT_THROW(EchoCanceller({.sample_rate = 16000, .tail = std::chrono::milliseconds(0)}),
               std::invalid_argument);
}

}  // namespace
}  // namespace callgate::audio::pipeline
