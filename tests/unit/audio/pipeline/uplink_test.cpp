#include "audio/pipeline/uplink.hpp"

#include "audio/codec.hpp"
#include "audio/resampler.hpp"
#include "audio/speech.hpp"  // Tone
#include "unit/audio/pipeline/measure.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
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

// Irregular block sizes, as a device callback would deliver them.
std::vector<std::size_t> Blocks(int rate) {
  const std::size_t ms = static_cast<std::size_t>(rate) / 1000;
  return {7 * ms, 10 * ms, 13 * ms + 1, 3, 20 * ms, 11 * ms - 1};
}

struct Chunks {
  std::vector<std::size_t> sizes;
  std::vector<std::uint8_t> bytes;
};

Chunks RunUplink(Uplink& uplink, std::span<const std::int16_t> capture, int capture_rate,
                 bool finish = true) {
  Chunks out;
  const auto take = [&] {
    for (auto chunk = uplink.NextChunk(); !chunk.empty(); chunk = uplink.NextChunk()) {
      out.sizes.push_back(chunk.size());
      out.bytes.insert(out.bytes.end(), chunk.begin(), chunk.end());
    }
  };
  const auto blocks = Blocks(capture_rate);
  std::size_t pos = 0;
  for (std::size_t i = 0; pos < capture.size(); ++i) {
    const std::size_t n = std::min(blocks[i % blocks.size()], capture.size() - pos);
    uplink.Write(capture.subspan(pos, n));
    pos += n;
    take();
  }
  if (finish) {
    uplink.Finish();
    take();
  }
  return out;
}

class UplinkFormats : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(UplinkFormats, AToneKeepsItsFrequencyWithoutClicksInExactChunks) {
  const AudioFormat format = *ParseFormat(std::get<0>(GetParam()));
  const int capture_rate = std::get<1>(GetParam());
  const std::vector<std::int16_t> tone = Tone(kToneHz, 1.0, capture_rate, kAmplitude);

  Uplink uplink({.capture_rate = capture_rate, .format = format});
  const Chunks chunks = RunUplink(uplink, tone, capture_rate);

  // Chunks: 50 ms each, the remainder last.
  const std::size_t chunk_samples = static_cast<std::size_t>(format.sample_rate) * 50 / 1000;
  EXPECT_EQ(uplink.chunk_bytes(), chunk_samples * format.BytesPerSample());
  ASSERT_GE(chunks.sizes.size(), 19u);
  for (std::size_t i = 0; i + 1 < chunks.sizes.size(); ++i) {
    EXPECT_EQ(chunks.sizes[i], uplink.chunk_bytes()) << "chunk " << i;
  }
  EXPECT_LE(chunks.sizes.back(), uplink.chunk_bytes());

  // Length: one second at the format's rate.
  const std::vector<std::int16_t> decoded = Decode(format, chunks.bytes);
  EXPECT_NEAR(static_cast<double>(decoded.size()), format.sample_rate, 2.0);

  // Frequency, by zero crossings and by the DFT peak.
  const auto middle = Middle(decoded);
  EXPECT_NEAR(ZeroCrossingHz(middle, format.sample_rate), kToneHz, kToneHz * 0.005);
  EXPECT_NEAR(testing::DftPeakHz(middle.first(std::min<std::size_t>(middle.size(), 8000)),
                                 format.sample_rate, 300.0, 600.0),
              kToneHz, 2.0);

  // Continuity: no step larger than the sine's own (plus the codec's quantisation), no gap.
  const double amplitude = kAmplitude * 32767;
  const double quantisation = format.encoding == AudioFormat::Encoding::kMulaw ? 600.0 : 4.0;
  EXPECT_LE(MaxStep(middle),
            SineMaxStep(kToneHz, amplitude, format.sample_rate) * 1.02 + quantisation);
  EXPECT_LE(LongestZeroRun(middle), 2u);
  EXPECT_NEAR(testing::Rms(middle), amplitude / std::sqrt(2.0), 0.05 * amplitude);

  // Chunked streaming equals converting the whole signal at once (nothing lost or repeated at
  // a boundary).
  const std::vector<std::int16_t> whole = Decode(
      format,
      Encode(format, Resample(tone, capture_rate, format.sample_rate, kDefaultResamplerQuality)));
  ASSERT_EQ(decoded.size(), whole.size());
  int worst = 0;
  for (std::size_t i = 0; i < whole.size(); ++i)
    worst = std::max(worst, std::abs(decoded[i] - whole[i]));
  EXPECT_LE(worst, format.encoding == AudioFormat::Encoding::kMulaw ? 1024 : 1);
}

std::string FormatName(const ::testing::TestParamInfo<std::tuple<std::string, int>>& info) {
  return std::get<0>(info.param) + "_from_" + std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(AllFormats, UplinkFormats,
                         ::testing::Combine(::testing::Values("pcm_8000", "pcm_16000", "pcm_22050",
                                                              "pcm_24000", "pcm_44100", "pcm_48000",
                                                              "ulaw_8000"),
                                            ::testing::Values(48000, 44100, 16000)),
                         FormatName);

TEST(Uplink, SameRateWithoutEchoCancellationIsByteExact) {
  const std::vector<std::int16_t> tone = Tone(523.0, 0.777, 16000, 0.7);
  Uplink uplink({.capture_rate = 16000, .format = *ParseFormat("pcm_16000")});
  const Chunks chunks = RunUplink(uplink, tone, 16000);
  EXPECT_EQ(chunks.bytes, EncodePcm16Le(tone));
  // 12432 samples = 15 chunks of 800 and a final 432.
  ASSERT_EQ(chunks.sizes.size(), 16u);
  EXPECT_EQ(chunks.sizes.back(), 2u * (tone.size() - 15 * 800));
}

TEST(Uplink, MulawAtTheSameRateIsTheG711Encoding) {
  const std::vector<std::int16_t> tone = Tone(300.0, 0.5, 8000, 0.9);
  Uplink uplink({.capture_rate = 8000, .format = *ParseFormat("ulaw_8000")});
  EXPECT_EQ(RunUplink(uplink, tone, 8000).bytes, EncodeMulaw(tone));
}

TEST(Uplink, ChunkDurationIsConfigurable) {
  Uplink uplink({.capture_rate = 48000,
                 .format = *ParseFormat("pcm_16000"),
                 .chunk = std::chrono::milliseconds(20)});
  EXPECT_EQ(uplink.chunk_samples(), 320u);
  EXPECT_EQ(uplink.chunk_bytes(), 640u);
  const Chunks chunks = RunUplink(uplink, Tone(440.0, 0.2, 48000, 0.5), 48000, false);
  EXPECT_EQ(chunks.sizes, std::vector<std::size_t>(9, 640u))
      << "200 ms minus the last partial chunk, which waits for Finish()";
}

TEST(Uplink, NoChunkUntilAChunkIsComplete) {
  Uplink uplink({.capture_rate = 16000, .format = *ParseFormat("pcm_16000")});
  const std::vector<std::int16_t> half(400, 1);
  uplink.Write(half);
  EXPECT_TRUE(uplink.NextChunk().empty());
  uplink.Write(half);
  EXPECT_EQ(uplink.NextChunk().size(), 1600u);
  EXPECT_TRUE(uplink.NextChunk().empty());
  uplink.Finish();
  EXPECT_TRUE(uplink.NextChunk().empty()) << "nothing left, no empty final chunk";
}

TEST(Uplink, WithEarlyANearlyCompleteChunkGoesOutAtOnce) {
  // 50 ms chunks at 16 kHz (1600 bytes), early 12 ms (384 bytes): the rest goes out as a short
  // chunk once it is at least 38 ms, after the full chunks; a smaller rest waits.
  Uplink uplink({.capture_rate = 16000,
                 .format = *ParseFormat("pcm_16000"),
                 .early = std::chrono::milliseconds(12)});
  std::vector<std::int16_t> capture(16000);
  for (std::size_t i = 0; i < capture.size(); ++i)
    capture[i] = static_cast<std::int16_t>(i % 30000 + 1);
  std::vector<std::size_t> sizes;
  std::vector<std::uint8_t> bytes;
  std::size_t pos = 0;
  // What a tick reads, in samples: 25 ms, 25 ms, 37 ms, 38 ms, 60 ms (a late tick), 10 ms.
  for (const std::size_t n : {400u, 400u, 592u, 608u, 960u, 160u}) {
    uplink.Write(std::span(capture).subspan(pos, n));
    pos += n;
    std::vector<std::size_t> tick;
    for (auto chunk = uplink.NextChunk(); !chunk.empty(); chunk = uplink.NextChunk()) {
      tick.push_back(chunk.size());
      bytes.insert(bytes.end(), chunk.begin(), chunk.end());
    }
    sizes.push_back(tick.empty()       ? 0
                    : tick.size() == 1 ? tick[0]
                                       : tick.size() * 100000 + tick.back());
  }
  // 25 ms: nothing; 50 ms: one chunk; 37 ms: waits (one sample short of 38); 75 ms: a full
  // chunk, the 25 ms rest waits; 85 ms: a full chunk, then 35 ms waits; 45 ms: a short chunk.
  EXPECT_EQ(sizes, (std::vector<std::size_t>{0, 1600, 0, 1600, 1600, 1440}))
      << "(several chunks in one tick would show as count * 100000 + the last size)";
  EXPECT_EQ(bytes, EncodePcm16Le(std::span(capture).first(pos)));
}

TEST(Uplink, TakeRestReturnsEverythingPendingOnce) {
  Uplink uplink({.capture_rate = 16000, .format = *ParseFormat("pcm_16000")});
  EXPECT_TRUE(uplink.TakeRest().empty());
  const std::vector<std::int16_t> samples(1000, 7);  // 62.5 ms: a chunk and 200 samples
  uplink.Write(samples);
  EXPECT_EQ(uplink.NextChunk().size(), 1600u);
  EXPECT_EQ(uplink.TakeRest().size(), 400u);
  EXPECT_TRUE(uplink.TakeRest().empty());
  EXPECT_EQ(uplink.stats().chunks, 2u);
}

TEST(Uplink, UnreadChunksAreBoundedAndTheOldestDropped) {
  Uplink uplink({.capture_rate = 8000,
                 .format = *ParseFormat("pcm_8000"),
                 .max_pending = std::chrono::milliseconds(200)});
  std::vector<std::int16_t> ramp(8000);  // 1 s, 20 chunks of 400 samples
  for (std::size_t i = 0; i < ramp.size(); ++i)
    ramp[i] = static_cast<std::int16_t>(i);
  for (std::size_t i = 0; i < ramp.size(); i += 800)
    uplink.Write(std::span(ramp).subspan(i, 800));
  std::vector<std::int16_t> firsts;
  for (auto chunk = uplink.NextChunk(); !chunk.empty(); chunk = uplink.NextChunk())
    firsts.push_back(DecodePcm16Le(chunk.first(2))[0]);
  EXPECT_EQ(firsts, (std::vector<std::int16_t>{6400, 6800, 7200, 7600}));
  EXPECT_EQ(uplink.stats().dropped_chunks, 16u);
}

TEST(Uplink, RejectsInvalidOptions) {
  EXPECT_THROW(Uplink({.capture_rate = 100, .format = *ParseFormat("pcm_16000")}),
               std::invalid_argument);
  EXPECT_THROW(Uplink({.capture_rate = 16000,
                       .format = *ParseFormat("pcm_16000"),
                       .chunk = std::chrono::milliseconds(0)}),
               std::invalid_argument);
  EXPECT_THROW(Uplink({.capture_rate = 16000,
                       .format = *ParseFormat("pcm_16000"),
                       .echo = EchoCancellerOptions{}}),
               std::invalid_argument)
      << "echo cancellation needs the playback rate";
}

}  // namespace
}  // namespace callgate::audio::pipeline
