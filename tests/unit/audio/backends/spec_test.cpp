#include "audio/backends/spec.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace callgate::audio::backends {
namespace {

using Kind = BackendSpec::Kind;

BackendSpec Parse(std::string_view text) {
  auto spec = ParseBackendSpec(text);
  EXPECT_TRUE(spec.has_value()) << text << ": " << (spec ? "" : spec.error().message);
  return spec ? *spec : BackendSpec{};
}

std::string ErrorOf(std::string_view text) {
  auto spec = ParseBackendSpec(text);
  EXPECT_FALSE(spec.has_value()) << text;
  return spec ? "" : spec.error().message;
}

TEST(BackendSpec, ParsesEveryForm) {
  EXPECT_EQ(Parse("device"), (BackendSpec{Kind::kDevice, ""}));
  EXPECT_EQ(Parse("device:USB Audio: Mic (hw:1,0)"),
            (BackendSpec{Kind::kDevice, "USB Audio: Mic (hw:1,0)"}));
  EXPECT_EQ(Parse("file:/tmp/in.wav"), (BackendSpec{Kind::kFile, "/tmp/in.wav"}));
  EXPECT_EQ(Parse("file:C:/odd:name with spaces.flac"),
            (BackendSpec{Kind::kFile, "C:/odd:name with spaces.flac"}));
  EXPECT_EQ(Parse("null"), (BackendSpec{Kind::kNull, ""}));
}

TEST(BackendSpec, KeywordsAreCaseInsensitiveAndTrimmed) {
  EXPECT_EQ(Parse("  DEVICE \n"), (BackendSpec{Kind::kDevice, ""}));
  EXPECT_EQ(Parse("Null"), (BackendSpec{Kind::kNull, ""}));
  EXPECT_EQ(Parse("File:Out.WAV"), (BackendSpec{Kind::kFile, "Out.WAV"}));
  EXPECT_EQ(Parse("Device:Mic"), (BackendSpec{Kind::kDevice, "Mic"}));
}

TEST(BackendSpec, RejectsEverythingElseWithAPreciseMessage) {
  EXPECT_EQ(ErrorOf(""), "empty audio endpoint: expected device, device:NAME, file:PATH or null");
  EXPECT_EQ(ErrorOf("   "),
            "empty audio endpoint: expected device, device:NAME, file:PATH or null");
  EXPECT_EQ(ErrorOf("pulse"),
            "unknown audio endpoint 'pulse': expected device, device:NAME, file:PATH or null");
  EXPECT_EQ(ErrorOf("mic:1"),
            "unknown audio endpoint 'mic:1': expected device, device:NAME, file:PATH or null");
  EXPECT_EQ(ErrorOf("device:"),
            "device: needs a device name (device:NAME); use device for the default device, got "
            "'device:'");
  EXPECT_EQ(ErrorOf("device:   "),
            "device: needs a device name (device:NAME); use device for the default device, got "
            "'device:   '");
  EXPECT_EQ(ErrorOf("file"), "file needs a path (file:PATH), got 'file'");
  EXPECT_EQ(ErrorOf("file:"), "file needs a path (file:PATH), got 'file:'");
  EXPECT_EQ(ErrorOf("null:x"), "null takes no argument, got 'null:x'");
  EXPECT_EQ(ErrorOf("devices"),
            "unknown audio endpoint 'devices': expected device, device:NAME, file:PATH or null");
}

TEST(BackendSpec, ToStringParsesBackToTheSameSpec) {
  for (const char* text : {"device", "device:Mic 2", "file:/a b/c.wav", "null"}) {
    const BackendSpec spec = Parse(text);
    EXPECT_EQ(spec.ToString(), text);
    EXPECT_EQ(Parse(spec.ToString()), spec);
  }
}

TEST(BackendSpec, ValueThrowsTheMessage) {
  EXPECT_THROW(ParseBackendSpec("nope").value(), std::invalid_argument);
}

TEST(BackendSpec, EchoCancellationIsOnByDefaultOnlyBetweenDevices) {
  const BackendSpec device{Kind::kDevice, ""};
  const BackendSpec named{Kind::kDevice, "Speakers"};
  const BackendSpec file{Kind::kFile, "x.wav"};
  const BackendSpec null{Kind::kNull, ""};
  using Mode = EchoCancellationMode;
  EXPECT_TRUE(UseEchoCancellation(Mode::kAuto, device, named));
  EXPECT_FALSE(UseEchoCancellation(Mode::kAuto, device, file));
  EXPECT_FALSE(UseEchoCancellation(Mode::kAuto, file, device));
  EXPECT_FALSE(UseEchoCancellation(Mode::kAuto, null, null));
  EXPECT_FALSE(UseEchoCancellation(Mode::kOff, device, device));
  EXPECT_TRUE(UseEchoCancellation(Mode::kOn, file, null));
}

}  // namespace
}  // namespace callgate::audio::backends
