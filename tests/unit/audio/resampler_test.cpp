#include "audio/resampler.hpp"
#include "audio/speech.hpp"  // Tone
#include "unit/audio/signal.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

namespace callgate::audio {
namespace {

using testing::ZeroCrossingHz;

// Skip the edges, where a filter ramps in and out.
std::span<const std::int16_t> Middle(const std::vector<std::int16_t>& x) {
  const std::size_t edge = x.size() / 10;
  return std::span<const std::int16_t>(x).subspan(edge, x.size() - 2 * edge);
}

void ExpectTone(const std::vector<std::int16_t>& x, int rate, double hz) {
  const double measured = ZeroCrossingHz(Middle(x), rate);
  EXPECT_NEAR(measured, hz, hz * 0.01) << "at " << rate << " Hz";
  EXPECT_NEAR(testing::Rms(Middle(x)), 0.5 * 32767 / std::sqrt(2.0), 0.05 * 0.5 * 32767)
      << "amplitude changed at " << rate << " Hz";
}

TEST(Resampler, ToneKeepsItsFrequency16kTo44k1AndBack) {
  const std::vector<std::int16_t> tone = Tone(440.0, 1.0, 16000, 0.5);
  const std::vector<std::int16_t> up = Resample(tone, 16000, 44100);
  EXPECT_NEAR(static_cast<double>(up.size()), 44100.0, 2.0);
  ExpectTone(up, 44100, 440.0);

  const std::vector<std::int16_t> back = Resample(up, 44100, 16000);
  EXPECT_NEAR(static_cast<double>(back.size()), 16000.0, 2.0);
  ExpectTone(back, 16000, 440.0);

  // Time-aligned: away from the edges the round trip is close to the original, sample by
  // sample (a delay of even one sample at 440 Hz would leave an error of ~17% of amplitude).
  double worst = 0.0;
  for (std::size_t i = 1600; i < 14400; ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(back[i]) - tone[i]));
  }
  EXPECT_LT(worst, 0.02 * 16384) << "round trip drifted from the original";
}

TEST(Resampler, ToneKeepsItsFrequency8kTo48k) {
  const std::vector<std::int16_t> tone = Tone(440.0, 1.0, 8000, 0.5);
  const std::vector<std::int16_t> up = Resample(tone, 8000, 48000);
  EXPECT_NEAR(static_cast<double>(up.size()), 48000.0, 2.0);
  ExpectTone(up, 48000, 440.0);
}

TEST(Resampler, OutputLengthFollowsTheRatio) {
  const std::vector<std::int16_t> x = Tone(300.0, 0.37, 22050, 0.3);  // 8159 samples
  for (int to : {8000, 16000, 24000, 44100, 48000}) {
    const double expected = static_cast<double>(x.size()) * to / 22050.0;
    EXPECT_NEAR(static_cast<double>(Resample(x, 22050, to).size()), expected, 1.0) << to;
  }
}

TEST(Resampler, StreamingInChunksMatchesOneShot) {
  const std::vector<std::int16_t> tone = Tone(440.0, 1.0, 16000, 0.5);
  const std::vector<std::int16_t> whole = Resample(tone, 16000, 44100);

  Resampler resampler(16000, 44100);
  std::vector<std::int16_t> streamed;
  const std::size_t chunk = 800;  // 50 ms at 16 kHz
  for (std::size_t i = 0; i < tone.size(); i += chunk) {
    const std::size_t n = std::min(chunk, tone.size() - i);
    testing::Append(streamed, resampler.Process(std::span(tone).subspan(i, n)));
  }
  testing::Append(streamed, resampler.Flush());

  ASSERT_EQ(streamed.size(), whole.size());
  int worst = 0;
  for (std::size_t i = 0; i < whole.size(); ++i) {
    worst = std::max(worst, std::abs(streamed[i] - whole[i]));
  }
  EXPECT_LE(worst, 1);
}

TEST(Resampler, FlushStartsANewStream) {
  const std::vector<std::int16_t> tone = Tone(440.0, 0.2, 8000, 0.5);
  Resampler resampler(8000, 16000);
  std::vector<std::int16_t> first = resampler.Process(tone);
  testing::Append(first, resampler.Flush());
  std::vector<std::int16_t> second = resampler.Process(tone);
  testing::Append(second, resampler.Flush());
  EXPECT_EQ(first, second);
  EXPECT_TRUE(resampler.Flush().empty());  // nothing fed since
}

TEST(Resampler, EqualRatesAreIdentity) {
  const std::vector<std::int16_t> x = {1, -2, 3, 32767, -32768, 0};
  Resampler resampler(16000, 16000);
  EXPECT_EQ(resampler.Process(x), x);
  EXPECT_TRUE(resampler.Flush().empty());
  EXPECT_EQ(Resample(x, 44100, 44100), x);
}

TEST(Resampler, EmptyInput) {
  Resampler resampler(16000, 48000);
  EXPECT_TRUE(resampler.Process({}).empty());
  EXPECT_TRUE(resampler.Flush().empty());
}

TEST(Resampler, MoveKeepsTheStream) {
  const std::vector<std::int16_t> tone = Tone(440.0, 0.5, 16000, 0.5);
  const std::vector<std::int16_t> whole = Resample(tone, 16000, 48000);
  Resampler a(16000, 48000);
  std::vector<std::int16_t> out = a.Process(std::span(tone).first(4000));
  Resampler b(std::move(a));
  testing::Append(out, b.Process(std::span(tone).subspan(4000)));
  testing::Append(out, b.Flush());
  EXPECT_EQ(b.from_rate(), 16000);
  EXPECT_EQ(b.to_rate(), 48000);
  ASSERT_EQ(out.size(), whole.size());
  for (std::size_t i = 0; i < out.size(); ++i)
    ASSERT_LE(std::abs(out[i] - whole[i]), 1) << i;
}

TEST(Resampler, QualityIsConfigurable) {
  const std::vector<std::int16_t> tone = Tone(440.0, 0.5, 16000, 0.5);
  for (int q : {0, 10}) {
    Resampler resampler(16000, 24000, q);
    EXPECT_EQ(resampler.quality(), q);
    std::vector<std::int16_t> out = resampler.Process(tone);
    testing::Append(out, resampler.Flush());
    EXPECT_NEAR(static_cast<double>(out.size()), 12000.0, 1.0);
    EXPECT_NEAR(ZeroCrossingHz(Middle(out), 24000), 440.0, 4.4) << "quality " << q;
  }
}

TEST(Resampler, RejectsBadArguments) {
  EXPECT_THROW(Resampler(0, 16000), std::invalid_argument);
  EXPECT_THROW(Resampler(16000, -1), std::invalid_argument);
  EXPECT_THROW(Resampler(16000, 400000), std::invalid_argument);
  EXPECT_THROW(Resampler(16000, 16000, 11), std::invalid_argument);
  EXPECT_THROW(Resampler(16000, 8000, -1), std::invalid_argument);
  EXPECT_THROW(Resample(std::vector<std::int16_t>{1}, 999, 8000), std::invalid_argument);
}

TEST(Resampler, ProcessAppendAddsToTheVectorWithoutReplacingIt) {
  const std::vector<std::int16_t> tone = Tone(440.0, 0.5, 16000, 0.5);
  Resampler a(16000, 48000);
  Resampler b(16000, 48000);
  std::vector<std::int16_t> appended = {7, 7, 7};
  std::vector<std::int16_t> returned;
  for (std::size_t i = 0; i < tone.size(); i += 320) {
    const auto part = std::span(tone).subspan(i, std::min<std::size_t>(320, tone.size() - i));
    a.ProcessAppend(part, appended);
    testing::Append(returned, b.Process(part));
  }
  ASSERT_EQ(appended.size(), 3 + returned.size());
  EXPECT_TRUE(std::equal(returned.begin(), returned.end(), appended.begin() + 3));
  EXPECT_EQ(a.Flush(), b.Flush());

  Resampler same(8000, 8000);
  std::vector<std::int16_t> copy = {1};
  same.ProcessAppend(std::vector<std::int16_t>{2, 3}, copy);
  EXPECT_EQ(copy, (std::vector<std::int16_t>{1, 2, 3}));
}

TEST(Resampler, ResetStartsAFreshStreamWithoutTheOldTail) {
  const std::vector<std::int16_t> loud(1600, 20000);
  const std::vector<std::int16_t> tone = Tone(440.0, 0.5, 16000, 0.5);
  Resampler fresh(16000, 44100);
  std::vector<std::int16_t> expected = fresh.Process(tone);
  Resampler reused(16000, 44100);
  reused.Process(loud);
  reused.Reset();
  EXPECT_EQ(reused.Process(tone), expected) << "nothing of the loud stream leaks in";
}

}  // namespace
}  // namespace callgate::audio
