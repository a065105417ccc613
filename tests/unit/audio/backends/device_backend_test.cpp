// The PortAudio device endpoints against this host's real audio system, whatever it has. On a
// machine without a sound card PortAudio finds no devices: the listing and the error paths are
// still tested for real; only opening a real device needs one.
#include "audio/backends/device_backend.hpp"

#include "audio/backends/factory.hpp"
#include "core/clock.hpp"

#include <gtest/gtest.h>

namespace callgate::audio::backends {
namespace {

TEST(DeviceBackend, ListsTheDevicesPortAudioSees) {
  auto devices = ListDevices();
  ASSERT_TRUE(devices.has_value()) << devices.error().ToString();
  int default_inputs = 0;
  int default_outputs = 0;
  for (const DeviceInfo& d : *devices) {
    EXPECT_FALSE(d.name.empty());
    EXPECT_GT(d.max_input_channels + d.max_output_channels, 0) << d.name;
    EXPECT_GE(d.index, 0);
    if (d.default_input) {
      ++default_inputs;
      EXPECT_GT(d.max_input_channels, 0) << d.name;
    }
    if (d.default_output) ++default_outputs;
  }
  EXPECT_LE(default_inputs, 1);
  EXPECT_LE(default_outputs, 1);
  // Listing twice gives the same answer (PortAudio is initialised and released each time).
  auto again = ListDevices();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, *devices);

  const std::string text = FormatDeviceList(*devices);
  if (devices->empty()) {
    EXPECT_EQ(text, "no audio devices found\n");
  } else {
    EXPECT_EQ(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')),
              devices->size());
    EXPECT_NE(text.find(devices->front().name), std::string::npos);
  }
}

TEST(DeviceBackend, FormatsADeviceListForTheCli) {
  const std::vector<DeviceInfo> devices = {{.index = 0,
                                            .name = "USB Mic",
                                            .host_api = "ALSA",
                                            .max_input_channels = 1,
                                            .default_sample_rate = 48000,
                                            .default_input = true},
                                           {.index = 3,
                                            .name = "Speakers",
                                            .host_api = "ALSA",
                                            .max_output_channels = 2,
                                            .default_sample_rate = 44100,
                                            .default_output = true},
                                           {.index = 4,
                                            .name = "Headset",
                                            .max_input_channels = 1,
                                            .max_output_channels = 2,
                                            .default_sample_rate = 16000}};
  EXPECT_EQ(FormatDeviceList(devices),
            "  0  USB Mic (ALSA)  in 1  out 0  48000 Hz  [default input]\n"
            "  3  Speakers (ALSA)  in 0  out 2  44100 Hz  [default output]\n"
            "  4  Headset  in 1  out 2  16000 Hz\n");
}

TEST(DeviceBackend, ANamedDeviceThatDoesNotExistIsAClearError) {
  core::ManualClock clock;
  const std::string name = "callgate-no-such-device-4242";
  auto input = OpenInputDevice(name, {}, clock);
  ASSERT_FALSE(input.has_value());
  EXPECT_EQ(input.error().code, BackendError::Code::kDeviceUnavailable);
  EXPECT_EQ(input.error().CodeName(), "audio_device_unavailable");
  EXPECT_NE(input.error().detail.find("no audio input device named '" + name + "'"),
            std::string::npos)
      << input.error().detail;
  EXPECT_NE(input.error().detail.find("PortAudio found"), std::string::npos);

  auto output = OpenOutput(*ParseBackendSpec("device:" + name), {}, clock);
  ASSERT_FALSE(output.has_value());
  EXPECT_NE(output.error().detail.find("no audio output device named '" + name + "'"),
            std::string::npos)
      << output.error().detail;
}

TEST(DeviceBackend, TheDefaultDeviceOpensAtItsNativeRateOrIsAClearError) {
  auto devices = ListDevices();
  ASSERT_TRUE(devices.has_value());
  const DeviceInfo* default_input = nullptr;
  for (const DeviceInfo& d : *devices) {
    if (d.default_input) default_input = &d;
  }
  core::ManualClock clock;
  auto input = OpenInput(*ParseBackendSpec("device"), {}, clock);
  if (default_input == nullptr) {
    ASSERT_FALSE(input.has_value());
    EXPECT_EQ(input.error().CodeName(), "audio_device_unavailable");
    EXPECT_NE(input.error().detail.find("no default audio input device"), std::string::npos)
        << input.error().detail;
  } else if (input.has_value()) {
    EXPECT_EQ((*input)->sample_rate(), default_input->default_sample_rate);
    EXPECT_EQ((*input)->kind(), "device");
  } else {
    // A default device that PortAudio lists but cannot open (busy, unplugged): still an error
    // value with PortAudio's reason, never a crash.
    EXPECT_EQ(input.error().CodeName(), "audio_device_unavailable");
    EXPECT_FALSE(input.error().detail.empty());
  }
}

}  // namespace
}  // namespace callgate::audio::backends
