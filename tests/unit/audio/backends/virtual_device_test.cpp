// The PortAudio device endpoints end to end, without a sound card: ALSA's own virtual devices
// stand in for hardware. This binary points ALSA at a generated configuration
// (ALSA_CONFIG_PATH, before PortAudio is first initialised; it is a separate binary because
// ALSA reads its configuration once per process) that adds two PCMs:
//   callgate_null  the `null` plugin: playback discarded, capture silent
//   callgate_tone  the `file` plugin: capture reads a raw 440 Hz tone written by the test
// Both run without a clock, so PortAudio's callbacks come back to back: the rings fill (input)
// and empty (output) at once, which is exactly what these tests observe. Waiting for the
// callback thread is done by polling with a generous deadline; nothing asserts on time.
#include "audio/backends/device_backend.hpp"

#include "audio/backends/factory.hpp"
#include "audio/backends/monotonic_clock.hpp"
#include "audio/speech.hpp"  // Tone

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <thread>

namespace callgate::audio::backends {
namespace {

constexpr int kRate = 44100;  // what PortAudio reports for ALSA plugin devices

std::filesystem::path& ConfigDir() {
  static std::filesystem::path dir;
  return dir;
}

std::vector<std::int16_t> TheTone() {
  return Tone(440.0, 2.0, kRate, 0.3);
}

class AlsaVirtualDevices : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!std::filesystem::exists("/usr/share/alsa/alsa.conf")) return;
    ConfigDir() = std::filesystem::temp_directory_path() /
                  ("callgate-alsa-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(ConfigDir());
    const std::vector<std::int16_t> tone = TheTone();
    std::ofstream raw(ConfigDir() / "tone.raw", std::ios::binary);
    for (std::int16_t s : tone) {
      const auto u = static_cast<std::uint16_t>(s);
      raw.put(static_cast<char>(u & 0xFF)).put(static_cast<char>(u >> 8));
    }
    raw.close();
    std::ofstream conf(ConfigDir() / "asound.conf");
    conf << "</usr/share/alsa/alsa.conf>\n"
         << "pcm.callgate_null { type null hint { show on description \"test\" } }\n"
         << "pcm.callgate_tone { type file slave.pcm \"null\" file \"/dev/null\" infile \""
         << (ConfigDir() / "tone.raw").string()
         << "\" format \"raw\" hint { show on description \"test\" } }\n";
    conf.close();
    setenv("ALSA_CONFIG_PATH", (ConfigDir() / "asound.conf").c_str(), 1);
  }
  void TearDown() override {
    if (!ConfigDir().empty()) std::filesystem::remove_all(ConfigDir());
  }
};

const ::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new AlsaVirtualDevices);

// Skips unless PortAudio sees the virtual devices (no ALSA host API, or no alsa.conf to extend).
void RequireVirtualDevices() {
  if (ConfigDir().empty()) GTEST_SKIP() << "no /usr/share/alsa/alsa.conf to extend";
  auto devices = ListDevices();
  ASSERT_TRUE(devices.has_value()) << devices.error().ToString();
  for (const DeviceInfo& d : *devices) {
    if (d.name == "callgate_tone") return;
  }
  GTEST_SKIP() << "PortAudio does not list the ALSA virtual devices (no ALSA host API?)";
}

bool WaitFor(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST(VirtualDevice, CaptureDeliversTheDevicesSamplesThroughTheRing) {
  RequireVirtualDevices();
  if (::testing::Test::IsSkipped()) return;
  MonotonicClock clock;
  auto opened = OpenInput(*ParseBackendSpec("device:callgate_tone"), {}, clock);
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  AudioInput& input = **opened;
  EXPECT_EQ(input.sample_rate(), kRate);
  EXPECT_EQ(input.kind(), "device");
  EXPECT_NE(input.Describe().find("callgate_tone"), std::string::npos);

  ASSERT_FALSE(input.Start().has_value());
  // The ring holds 500 ms (rounded up to 32768 samples); the device fills it at once and the
  // callback then drops (and counts) what does not fit: the ring keeps the first samples.
  std::vector<std::int16_t> captured;
  std::vector<std::int16_t> buf(4096);
  ASSERT_TRUE(WaitFor([&] {
    const std::size_t n = input.Read(buf);
    captured.insert(captured.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    return captured.size() >= 20000;
  }));
  input.Stop();
  const std::vector<std::int16_t> tone = TheTone();
  EXPECT_EQ(std::vector<std::int16_t>(captured.begin(), captured.begin() + 20000),
            std::vector<std::int16_t>(tone.begin(), tone.begin() + 20000));
  EXPECT_GT(input.stats().overflow_frames, 0u) << "a full ring drops and counts";
  EXPECT_GE(input.stats().frames, 20000u);
  EXPECT_FALSE(input.error().has_value());
  EXPECT_EQ(input.Read(buf), 0u) << "stopped";
}

TEST(VirtualDevice, PlaybackTakesWhatIsWrittenAndCountsUnderruns) {
  RequireVirtualDevices();
  if (::testing::Test::IsSkipped()) return;
  MonotonicClock clock;
  auto opened = OpenOutput(*ParseBackendSpec("device:callgate_null"),
                           {.device = {.output_buffer = std::chrono::milliseconds(60)}}, clock);
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  AudioOutput& output = **opened;
  EXPECT_EQ(output.sample_rate(), kRate);
  EXPECT_EQ(output.WritableFrames(), 0u) << "not started";
  ASSERT_FALSE(output.Start().has_value());
  EXPECT_EQ(output.WritableFrames(), static_cast<std::size_t>(kRate * 60 / 1000))
      << "the ring is empty: the whole target";
  const std::vector<std::int16_t> tone = TheTone();
  EXPECT_EQ(output.Write(std::span(tone).first(2000)), 2000u);
  ASSERT_TRUE(WaitFor([&] { return output.QueuedFrames() == 0; })) << "the callback consumes";
  ASSERT_TRUE(WaitFor([&] { return output.stats().underrun_frames > 0; }))
      << "and then plays silence for lack of samples";
  // More than the ring holds: the excess is dropped and counted.
  const std::vector<std::int16_t> big(100000, 1);
  const std::size_t accepted = output.Write(big);
  EXPECT_LT(accepted, big.size());
  EXPECT_EQ(output.stats().dropped_frames, big.size() - accepted);
  EXPECT_EQ(output.stats().frames, 2000u + accepted);
  output.Stop();
  EXPECT_EQ(output.WritableFrames(), 0u);
  EXPECT_FALSE(output.error().has_value());
}

TEST(VirtualDevice, NamesMatchExactlyOrByAUniqueSubstring) {
  RequireVirtualDevices();
  if (::testing::Test::IsSkipped()) return;
  MonotonicClock clock;
  auto by_part = OpenInputDevice("CALLGATE_T", {}, clock);
  ASSERT_TRUE(by_part.has_value()) << by_part.error().ToString();
  EXPECT_NE((*by_part)->Describe().find("'callgate_tone'"), std::string::npos);

  auto ambiguous = OpenInputDevice("callgate_", {}, clock);
  ASSERT_FALSE(ambiguous.has_value());
  EXPECT_EQ(ambiguous.error().CodeName(), "audio_device_unavailable");
  EXPECT_NE(ambiguous.error().detail.find("is ambiguous"), std::string::npos)
      << ambiguous.error().detail;
  EXPECT_NE(ambiguous.error().detail.find("'callgate_null'"), std::string::npos);
  EXPECT_NE(ambiguous.error().detail.find("'callgate_tone'"), std::string::npos);
}

TEST(VirtualDevice, TwoStreamsRunAtOnceAndStopCleanly) {
  RequireVirtualDevices();
  if (::testing::Test::IsSkipped()) return;
  MonotonicClock clock;
  auto input = OpenInput(*ParseBackendSpec("device:callgate_tone"), {}, clock);
  auto output = OpenOutput(*ParseBackendSpec("device:callgate_null"), {}, clock);
  ASSERT_TRUE(input.has_value() && output.has_value());
  ASSERT_FALSE((*input)->Start().has_value());
  ASSERT_FALSE((*output)->Start().has_value());
  std::vector<std::int16_t> buf(1024);
  std::size_t moved = 0;
  ASSERT_TRUE(WaitFor([&] {
    const std::size_t n = (*input)->Read(buf);
    const std::size_t w = std::min(n, (*output)->WritableFrames());
    moved += (*output)->Write(std::span(buf).first(w));
    return moved >= 10000;
  }));
  EXPECT_FALSE((*input)->CheckHealth().has_value());
  EXPECT_FALSE((*output)->CheckHealth().has_value());
  (*input)->Stop();
  (*output)->Stop();
  (*input)->Stop();  // idempotent
}

}  // namespace
}  // namespace callgate::audio::backends
