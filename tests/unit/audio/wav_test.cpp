#include "audio/wav.hpp"
#include "audio/speech.hpp"

#include <gtest/gtest.h>
#include <sndfile.h>

#include <filesystem>
#include <random>
#include <stdexcept>

namespace callgate::audio {
namespace {

class WavTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() / (std::string("callgate-wav-") + info->name() +
                                                     "-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
};

TEST_F(WavTest, RoundTripIsExact) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> dist(-32768, 32767);
  std::vector<std::int16_t> samples(22050);
  for (auto& s : samples)
    s = static_cast<std::int16_t>(dist(rng));
  samples[0] = -32768;
  samples[1] = 32767;
  const auto path = dir_ / "a.wav";
  WriteWav(path, samples, 22050);
  int rate = 0;
  EXPECT_EQ(ReadAudioFile(path, &rate), samples);
  EXPECT_EQ(rate, 22050);
  EXPECT_EQ(std::filesystem::file_size(path), 44u + 2u * samples.size());
}

TEST_F(WavTest, EmptyFile) {
  const auto path = dir_ / "empty.wav";
  WriteWav(path, {}, 8000);
  int rate = 0;
  EXPECT_TRUE(ReadAudioFile(path, &rate).empty());
  EXPECT_EQ(rate, 8000);
}

TEST_F(WavTest, StereoFloatIsScaledAndDownmixed) {
  // Written here with libsndfile directly: a 32-bit float stereo WAV, L = 0.5, R = -0.25.
  const auto path = dir_ / "stereo.wav";
  SF_INFO info{};
  info.samplerate = 48000;
  info.channels = 2;
  info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
  ASSERT_NE(file, nullptr) << sf_strerror(nullptr);
  std::vector<float> frames;
  for (int i = 0; i < 100; ++i) {
    frames.push_back(0.5F);
    frames.push_back(-0.25F);
  }
  ASSERT_EQ(sf_writef_float(file, frames.data(), 100), 100);
  sf_close(file);

  int rate = 0;
  const std::vector<std::int16_t> mono = ReadAudioFile(path, &rate);
  EXPECT_EQ(rate, 48000);
  ASSERT_EQ(mono.size(), 100u);
  for (std::int16_t s : mono)
    ASSERT_EQ(s, 4096);  // (0.5 - 0.25) / 2 * 32768
}

TEST_F(WavTest, FlacIsReadToo) {
  const auto path = dir_ / "tone.flac";
  const std::vector<std::int16_t> tone = Tone(440.0, 0.25, 16000, 0.5);
  SF_INFO info{};
  info.samplerate = 16000;
  info.channels = 1;
  info.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
  SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
  ASSERT_NE(file, nullptr) << sf_strerror(nullptr);
  ASSERT_EQ(sf_writef_short(file, tone.data(), static_cast<sf_count_t>(tone.size())),
            static_cast<sf_count_t>(tone.size()));
  sf_close(file);
  int rate = 0;
  EXPECT_EQ(ReadAudioFile(path, &rate), tone);  // FLAC is lossless
  EXPECT_EQ(rate, 16000);
}

TEST_F(WavTest, LimitAndErrors) {
  const auto path = dir_ / "long.wav";
  WriteWav(path, std::vector<std::int16_t>(10000, 1), 8000);
  EXPECT_THROW(ReadAudioFile(path, nullptr, 9999), std::runtime_error);
  EXPECT_EQ(ReadAudioFile(path, nullptr, 10000).size(), 10000u);

  try {
    ReadAudioFile(dir_ / "missing.wav", nullptr);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.wav"), std::string::npos) << e.what();
  }
  EXPECT_THROW(WriteWav(dir_ / "no" / "such" / "dir.wav", std::vector<std::int16_t>(10, 0), 8000),
               std::runtime_error);
  EXPECT_THROW(WriteWav(dir_ / "x.wav", {}, 0), std::invalid_argument);
}

}  // namespace
}  // namespace callgate::audio
