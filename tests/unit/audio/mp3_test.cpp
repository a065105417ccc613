#include "audio/mp3.hpp"
#include "audio/codec.hpp"
#include "audio/speech.hpp"
#include "audio/vad.hpp"
#include "audio/wav.hpp"
#include "unit/audio/signal.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace callgate::audio {
namespace {

bool StartsLikeMp3(const std::string& bytes) {
  if (bytes.size() < 4) return false;
  if (bytes.compare(0, 3, "ID3") == 0) return true;
  const auto b0 = static_cast<unsigned char>(bytes[0]);
  const auto b1 = static_cast<unsigned char>(bytes[1]);
  const bool sync = b0 == 0xFF && (b1 & 0xE0) == 0xE0;
  const bool layer3 = ((b1 >> 1) & 0x3) == 0x1;
  return sync && layer3;
}

TEST(Mp3, ToneRoundTrip) {
  const std::vector<std::int16_t> tone = Tone(440.0, 2.0, 16000, 0.5);
  const std::string mp3 = EncodeMp3(tone, 16000);
  ASSERT_TRUE(StartsLikeMp3(mp3));
  std::printf("[ info     ] 2 s at 16 kHz, 64 kbps: %zu bytes of MP3\n", mp3.size());

  int rate = 0;
  const std::vector<std::int16_t> back = DecodeMp3(mp3, &rate);
  EXPECT_EQ(rate, 16000);
  EXPECT_NEAR(static_cast<double>(back.size()), 32000.0, 0.1 * 16000);

  const auto middle = std::span(back).subspan(4000, 24000);
  EXPECT_NEAR(testing::DftPeakHz(middle.first(4096), 16000, 200.0, 2000.0), 440.0, 4.4);
  EXPECT_NEAR(testing::ZeroCrossingHz(middle, 16000), 440.0, 4.4);
  EXPECT_NEAR(testing::Rms(middle), testing::Rms(tone), 0.1 * testing::Rms(tone));
}

TEST(Mp3, SpeechSurvives) {
  SpeechSynthesizer tts;
  std::vector<std::int16_t> speech =
      tts.Synthesize("Hello! I'm calling about a parking ticket.", 16000);
  const std::string mp3 = EncodeMp3(speech, 16000);
  ASSERT_TRUE(StartsLikeMp3(mp3));
  int rate = 0;
  const std::vector<std::int16_t> back = DecodeMp3(mp3, &rate);
  EXPECT_EQ(rate, 16000);
  EXPECT_NEAR(static_cast<double>(back.size()), static_cast<double>(speech.size()), 1600.0);
  EnergyVad vad(16000);
  const auto events = vad.Feed(back);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].type, VadEvent::Type::kSpeechStart);
}

TEST(Mp3, BitrateSetsTheSize) {
  const std::vector<std::int16_t> tone = Tone(440.0, 4.0, 16000, 0.5);
  for (int kbps : {32, 64, 128}) {
    const std::string mp3 = EncodeMp3(tone, 16000, kbps);
    const double expected = kbps * 1000.0 / 8.0 * 4.0;
    EXPECT_NEAR(static_cast<double>(mp3.size()), expected, 0.1 * expected) << kbps << " kbps";
  }
  // 44.1 kHz is MPEG-1: 128 kbps there too.
  const std::string cd = EncodeMp3(Tone(440.0, 4.0, 44100, 0.5), 44100, 128);
  EXPECT_NEAR(static_cast<double>(cd.size()), 64000.0, 6400.0);
  // Above MPEG-2's ceiling, clamped to 160 kbps.
  const std::string clamped = EncodeMp3(tone, 16000, 320);
  EXPECT_NEAR(static_cast<double>(clamped.size()), 80000.0, 8000.0);
}

TEST(Mp3, EveryWireRateRoundTrips) {
  for (const AudioFormat& format : AllFormats()) {
    const int rate = format.sample_rate;
    SCOPED_TRACE(format.Name());
    const std::vector<std::int16_t> tone = Tone(440.0, 1.0, rate, 0.5);
    int decoded_rate = 0;
    const std::vector<std::int16_t> back = DecodeMp3(EncodeMp3(tone, rate), &decoded_rate);
    EXPECT_EQ(decoded_rate, rate);
    EXPECT_NEAR(static_cast<double>(back.size()), rate, 0.1 * rate);
    EXPECT_NEAR(
        testing::ZeroCrossingHz(std::span(back).subspan(back.size() / 4, back.size() / 2), rate),
        440.0, 4.4);
  }
}

TEST(Mp3, OtherRatesAreResampledToAnMpegRate) {
  EXPECT_EQ(Mp3SampleRate(8000), 8000);
  EXPECT_EQ(Mp3SampleRate(11000), 11025);
  EXPECT_EQ(Mp3SampleRate(44100), 44100);
  EXPECT_EQ(Mp3SampleRate(96000), 48000);
  const std::vector<std::int16_t> tone = Tone(440.0, 1.0, 11000, 0.5);
  int rate = 0;
  const std::vector<std::int16_t> back = DecodeMp3(EncodeMp3(tone, 11000), &rate);
  EXPECT_EQ(rate, 11025);
  EXPECT_NEAR(static_cast<double>(back.size()), 11025.0, 1102.0);
  EXPECT_NEAR(testing::ZeroCrossingHz(std::span(back).subspan(2000, 6000), 11025), 440.0, 4.4);
}

TEST(Mp3, EmptyInputIsStillAPlayableStream) {
  const std::string mp3 = EncodeMp3({}, 16000);
  ASSERT_TRUE(StartsLikeMp3(mp3));
  int rate = 0;
  const std::vector<std::int16_t> back = DecodeMp3(mp3, &rate);
  EXPECT_EQ(rate, 16000);
  EXPECT_LE(back.size(), 1u);
}

TEST(Mp3, DecodeRejectsWhatIsNotMp3) {
  EXPECT_THROW(DecodeMp3("", nullptr), std::runtime_error);
  EXPECT_THROW(DecodeMp3("this is not audio at all, just some text....", nullptr),
               std::runtime_error);
  // A valid WAV file is audio, but not MPEG.
  const auto path = std::filesystem::temp_directory_path() /
                    ("callgate-mp3-test-" +
                     std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + ".wav");
  WriteWav(path, Tone(440.0, 0.1, 8000, 0.5), 8000);
  std::ifstream in(path, std::ios::binary);
  const std::string wav((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(path);
  ASSERT_GT(wav.size(), 44u);
  EXPECT_THROW(DecodeMp3(wav, nullptr), std::runtime_error);
}

TEST(Mp3, DecodeHonoursTheSampleLimit) {
  const std::string mp3 = EncodeMp3(Tone(440.0, 1.0, 16000, 0.5), 16000);
  EXPECT_THROW(DecodeMp3(mp3, nullptr, 8000), std::runtime_error);
  EXPECT_NO_THROW(DecodeMp3(mp3, nullptr, 20000));
}

TEST(Mp3, RejectsBadArguments) {
  const std::vector<std::int16_t> x(100, 0);
  EXPECT_THROW(EncodeMp3(x, 0), std::invalid_argument);
  EXPECT_THROW(EncodeMp3(x, 16000, 0), std::invalid_argument);
}

}  // namespace
}  // namespace callgate::audio
