#include "audio/backends/file_backend.hpp"

#include "audio/backends/factory.hpp"
#include "audio/speech.hpp"  // Tone
#include "audio/wav.hpp"
#include "core/clock.hpp"

#include <gtest/gtest.h>
#include <sndfile.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <random>

namespace callgate::audio::backends {
namespace {

using std::chrono::milliseconds;

class FileBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           (std::string("callgate-file-backend-") + info->name() + "-" +
            std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::vector<std::int16_t> Ramp(std::size_t n) {
    std::vector<std::int16_t> x(n);
    for (std::size_t i = 0; i < n; ++i)
      x[i] = static_cast<std::int16_t>(static_cast<int>(i % 60000) - 30000);
    return x;
  }

  std::filesystem::path dir_;
  core::ManualClock clock_;
};

TEST_F(FileBackendTest, InputPlaysTheFileInRealTimeThenSilence) {
  const auto path = dir_ / "in.wav";
  const std::vector<std::int16_t> samples = Ramp(22050 / 2 + 7);  // 0.5 s and a bit
  WriteWav(path, samples, 22050);
  auto opened = FileInput::Open(path, clock_);
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  FileInput& input = **opened;
  EXPECT_EQ(input.sample_rate(), 22050);
  EXPECT_EQ(input.file_frames(), static_cast<std::int64_t>(samples.size()));
  EXPECT_EQ(input.kind(), "file");

  std::vector<std::int16_t> buf(30000, 99);
  input.Start();
  EXPECT_EQ(input.Read(buf), 0u);
  clock_.Advance(milliseconds(100));
  ASSERT_EQ(input.Read(buf), 2205u);
  EXPECT_TRUE(std::equal(buf.begin(), buf.begin() + 2205, samples.begin()));
  clock_.Advance(milliseconds(900));
  ASSERT_EQ(input.Read(buf), 22050u - 2205u);
  // The rest of the file, then silence up to 1 s.
  const std::size_t rest = samples.size() - 2205;
  EXPECT_TRUE(std::equal(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(rest),
                         samples.begin() + 2205));
  EXPECT_TRUE(std::all_of(buf.begin() + static_cast<std::ptrdiff_t>(rest),
                          buf.begin() + static_cast<std::ptrdiff_t>(22050 - 2205),
                          [](auto s) { return s == 0; }));
  EXPECT_TRUE(input.exhausted());
  clock_.Advance(milliseconds(10));
  EXPECT_EQ(input.Read(buf), 220u);
  EXPECT_FALSE(input.error().has_value());
}

TEST_F(FileBackendTest, StereoInputIsMixedDownToMono) {
  const auto path = dir_ / "stereo.wav";
  SF_INFO info{};
  info.samplerate = 8000;
  info.channels = 2;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
  ASSERT_NE(file, nullptr);
  std::vector<std::int16_t> frames;
  for (int i = 0; i < 3000; ++i) {
    frames.push_back(static_cast<std::int16_t>(1000 + i));
    frames.push_back(static_cast<std::int16_t>(3000 - i));
  }
  sf_writef_short(file, frames.data(), 3000);
  sf_close(file);

  auto input = FileInput::Open(path, clock_);
  ASSERT_TRUE(input.has_value());
  (*input)->Start();
  clock_.Advance(milliseconds(500));
  std::vector<std::int16_t> buf(4000);
  ASSERT_EQ((*input)->Read(buf), 4000u);
  EXPECT_TRUE(std::all_of(buf.begin(), buf.begin() + 3000, [](auto s) { return s == 2000; }));
  EXPECT_TRUE(std::all_of(buf.begin() + 3000, buf.end(), [](auto s) { return s == 0; }));
}

TEST_F(FileBackendTest, FlacInputIsRead) {
  const auto path = dir_ / "in.flac";
  const std::vector<std::int16_t> tone = Tone(440.0, 0.25, 16000, 0.5);
  SF_INFO info{};
  info.samplerate = 16000;
  info.channels = 1;
  info.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
  SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
  ASSERT_NE(file, nullptr) << sf_strerror(nullptr);
  sf_writef_short(file, tone.data(), static_cast<sf_count_t>(tone.size()));
  sf_close(file);

  auto input = OpenInput({BackendSpec::Kind::kFile, path.string()}, {}, clock_);
  ASSERT_TRUE(input.has_value());
  EXPECT_EQ((*input)->sample_rate(), 16000);
  (*input)->Start();
  clock_.Advance(milliseconds(250));
  std::vector<std::int16_t> buf(4000);
  ASSERT_EQ((*input)->Read(buf), 4000u);
  EXPECT_EQ(buf, tone) << "FLAC is lossless";
}

TEST_F(FileBackendTest, AMissingInputFileIsAClearError) {
  const auto path = dir_ / "missing.wav";
  auto input = OpenInput({BackendSpec::Kind::kFile, path.string()}, {}, clock_);
  ASSERT_FALSE(input.has_value());
  EXPECT_EQ(input.error().code, BackendError::Code::kFileError);
  EXPECT_EQ(input.error().CodeName(), "audio_file_error");
  EXPECT_NE(input.error().detail.find(path.string()), std::string::npos) << input.error().detail;
}

TEST_F(FileBackendTest, ATextFileIsNotAudio) {
  const auto path = dir_ / "notes.wav";
  std::FILE* f = std::fopen(path.c_str(), "w");
  std::fputs("not audio at all", f);
  std::fclose(f);
  auto input = FileInput::Open(path, clock_);
  ASSERT_FALSE(input.has_value());
  EXPECT_NE(input.error().detail.find("cannot open audio input file"), std::string::npos);
}

TEST_F(FileBackendTest, OutputIsPacedLikeASpeakerAndReadableWhileWritten) {
  const auto path = dir_ / "out.wav";
  auto opened = FileOutput::Open(path, 16000, clock_, milliseconds(100));
  ASSERT_TRUE(opened.has_value());
  FileOutput& output = **opened;
  // A valid, empty WAV from the start.
  int rate = 0;
  EXPECT_TRUE(ReadAudioFile(path, &rate).empty());
  EXPECT_EQ(rate, 16000);

  const std::vector<std::int16_t> ramp = Ramp(16000);
  output.Start();
  EXPECT_EQ(output.WritableFrames(), 0u);
  std::size_t pos = 0;
  for (int tick = 0; tick < 50; ++tick) {  // 20 ms ticks: 1 s
    clock_.Advance(milliseconds(20));
    const std::size_t n = output.WritableFrames();
    EXPECT_EQ(n, 320u);
    EXPECT_EQ(output.Write(std::span(ramp).subspan(pos, n)), n);
    pos += n;
  }
  EXPECT_EQ(output.WritableFrames(), 0u);
  // Still open: everything flushed so far is on disk behind an up-to-date header.
  EXPECT_EQ(output.flushed_frames(), 16000u);
  EXPECT_EQ(ReadAudioFile(path, nullptr), ramp);

  output.Write(std::span(ramp).first(123));
  EXPECT_EQ(output.flushed_frames(), 16000u) << "less than a flush interval waits";
  output.Stop();
  std::vector<std::int16_t> all = ramp;
  all.insert(all.end(), ramp.begin(), ramp.begin() + 123);
  EXPECT_EQ(ReadAudioFile(path, nullptr), all);
  EXPECT_EQ(output.Write(ramp), 0u) << "stopped";
  EXPECT_TRUE(output.Start().has_value()) << "a closed file cannot restart";
}

TEST_F(FileBackendTest, OutputIsAValidWavEvenIfTheProcessIsKilled) {
  const auto path = dir_ / "killed.wav";
  const std::vector<std::int16_t> ramp = Ramp(8000);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    core::ManualClock clock;
    auto output = FileOutput::Open(path, 8000, clock, milliseconds(200));
    if (!output) _exit(2);
    (*output)->Start();
    for (std::size_t pos = 0; pos < ramp.size(); pos += 80) {
      clock.Advance(milliseconds(10));
      (*output)->Write(std::span(ramp).subspan(pos, 80));
    }
    std::raise(SIGKILL);  // no destructor, no close: as abrupt as it gets
    _exit(3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit status " << WEXITSTATUS(status);
  int rate = 0;
  const std::vector<std::int16_t> read = ReadAudioFile(path, &rate);
  EXPECT_EQ(rate, 8000);
  // 1 s written with 200 ms flushes: all of it reached the disk with the header updated.
  EXPECT_EQ(read, ramp);
}

TEST_F(FileBackendTest, AnOutputFileThatCannotBeCreatedIsAClearError) {
  const auto path = dir_ / "no-such-dir" / "out.wav";
  auto output = OpenOutput({BackendSpec::Kind::kFile, path.string()}, {}, clock_);
  ASSERT_FALSE(output.has_value());
  EXPECT_EQ(output.error().CodeName(), "audio_file_error");
  EXPECT_NE(output.error().detail.find(path.string()), std::string::npos);
}

TEST_F(FileBackendTest, FactoryOpensTheFileOutputAtTheRequestedRate) {
  const auto path = dir_ / "o.wav";
  {
    auto output =
        OpenOutput({BackendSpec::Kind::kFile, path.string()},
                   {.sample_rate = 44100, .file_flush_interval = milliseconds(50)}, clock_);
    ASSERT_TRUE(output.has_value());
    EXPECT_EQ((*output)->sample_rate(), 44100);
    (*output)->Start();
    const std::vector<std::int16_t> x(1000, 5);
    (*output)->Write(x);
  }  // destroyed without Stop(): still flushed and closed
  int rate = 0;
  EXPECT_EQ(ReadAudioFile(path, &rate), std::vector<std::int16_t>(1000, 5));
  EXPECT_EQ(rate, 44100);
}

}  // namespace
}  // namespace callgate::audio::backends
