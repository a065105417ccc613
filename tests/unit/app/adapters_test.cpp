// The configuration's settings reach the session engine (AUDIO_* -> EngineOptions).
#include "app/adapters.hpp"

#include "config/config.hpp"

#include <gtest/gtest.h>

namespace callgate::app {
namespace {

config::Config Load(std::map<std::string, std::string> environment) {
  config::Inputs inputs;
  for (auto& [name, value] : environment)
    inputs.environment.emplace(name, value);
  auto loaded = config::Load(inputs);
  EXPECT_TRUE(loaded.has_value()) << loaded.error().message;
  return loaded.has_value() ? *loaded : config::Config{};
}

TEST(EngineOptionsFrom, CarriesTheAudioSettings) {
  const auto options = EngineOptionsFrom(Load({{"AUDIO_CHUNK_MS", "40"},
                                               {"AUDIO_JITTER_PREBUFFER_MS", "120"},
                                               {"AUDIO_JITTER_MAX_MS", "900"},
                                               {"AUDIO_ECHO_CANCELLATION", "off"},
                                               {"MAX_LIVE_SESSIONS", "7"}}));
  EXPECT_EQ(options.session.audio.chunk, std::chrono::milliseconds(40));
  EXPECT_EQ(options.session.audio.prebuffer, std::chrono::milliseconds(120));
  EXPECT_EQ(options.session.audio.max_buffer, std::chrono::milliseconds(900));
  EXPECT_EQ(options.echo, audio::backends::EchoCancellationMode::kOff);
  EXPECT_EQ(options.max_sessions, 7u);
}

TEST(EngineOptionsFrom, DefaultsAreThePipelines) {
  const auto options = EngineOptionsFrom(Load({}));
  const conversation::EngineOptions engine_defaults;
  EXPECT_EQ(options.session.audio.chunk, engine_defaults.session.audio.chunk);
  EXPECT_EQ(options.session.audio.prebuffer, engine_defaults.session.audio.prebuffer);
  EXPECT_EQ(options.session.audio.max_buffer, engine_defaults.session.audio.max_buffer);
  EXPECT_EQ(options.echo, audio::backends::EchoCancellationMode::kAuto);
}

}  // namespace
}  // namespace callgate::app
