// The catalogue (AllSettings), the small renderers, CaptureEnvironment() and env.example.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace callgate::config {
namespace {

// The names are a compatibility contract with the older Python services.
constexpr std::array<std::string_view, 41> kExpectedNames = {
    "ELEVENLABS_API_KEY",
    "ELEVENLABS_AGENT_ID",
    "ELEVENLABS_AGENT_PHONE_NUMBER_ID",
    "ELEVENLABS_FROM_NUMBER",
    "ELEVENLABS_WEBHOOK_SECRET",
    "ELEVENLABS_BASE_URL",
    "ELEVENLABS_CA_FILE",
    "UPSTREAM_TIMEOUT_MS",
    "API_KEYS",
    "ENVIRONMENT",
    "LOG_LEVEL",
    "HOST",
    "PORT",
    "PUBLIC_BASE_URL",
    "DATABASE_URL",
    "DATA_DIR",
    "AUDIO_INPUT",
    "AUDIO_OUTPUT",
    "AUDIO_CHUNK_MS",
    "AUDIO_JITTER_PREBUFFER_MS",
    "AUDIO_JITTER_MAX_MS",
    "AUDIO_ECHO_CANCELLATION",
    "MAX_LIVE_SESSIONS",
    "IO_THREADS",
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "HEADER_TIMEOUT_MS",
    "IDLE_TIMEOUT_MS",
    "BODY_TIMEOUT_MS",
    "SHUTDOWN_GRACE_MS",
    "INSECURE_NO_AUTH",
    "WEBHOOK_MAX_AGE_SECONDS",
    "WEBHOOK_MAX_FUTURE_SECONDS",
    "WEBHOOK_ALLOW_BODY_ONLY_SIGNATURE",
    "WEBHOOK_ALLOW_UNSIGNED",
    "WEBHOOK_MAX_BODY_BYTES",
    "WEBHOOK_BANNER",
    "FORWARD_WEBHOOK_URLS",
    "FORWARD_WEBHOOK_SECRET",
    "FORWARD_WEBHOOK_MAX_ATTEMPTS",
    "RECONCILE_AFTER_SECONDS",
};

TEST(Settings, NamesAndOrderAreTheContract) {
  std::vector<std::string_view> names;
  for (const SettingInfo& setting : AllSettings()) {
    names.push_back(setting.name);
  }
  EXPECT_EQ(names, std::vector<std::string_view>(kExpectedNames.begin(), kExpectedNames.end()));
}

TEST(Settings, ExactlyTheFourSecretsAreMarkedSecret) {
  std::vector<std::string_view> secrets;
  for (const SettingInfo& setting : AllSettings()) {
    if (setting.secret) {
      secrets.push_back(setting.name);
    }
  }
  EXPECT_EQ(secrets,
            (std::vector<std::string_view>{"ELEVENLABS_API_KEY", "ELEVENLABS_WEBHOOK_SECRET",
                                           "API_KEYS", "FORWARD_WEBHOOK_SECRET"}));
}

TEST(Settings, EverySettingHasAOneLineDescription) {
  for (const SettingInfo& setting : AllSettings()) {
    EXPECT_FALSE(setting.description.empty()) << setting.name;
    EXPECT_EQ(setting.description.find('\n'), std::string_view::npos) << setting.name;
  }
}

TEST(Settings, DocumentedDefaults) {
  const std::map<std::string_view, std::string_view> expected = {
      {"ELEVENLABS_BASE_URL", "https://api.elevenlabs.io"},
      {"ENVIRONMENT", "development"},
      {"LOG_LEVEL", "info"},
      {"HOST", "0.0.0.0"},
      {"PORT", "8000"},
      {"UPSTREAM_TIMEOUT_MS", "10000"},
      {"DATABASE_URL", "sqlite:data/callgate.db"},
      {"DATA_DIR", ""},
      {"AUDIO_INPUT", "device"},
      {"AUDIO_OUTPUT", "device"},
      {"AUDIO_CHUNK_MS", "50"},
      {"AUDIO_JITTER_PREBUFFER_MS", "80"},
      {"AUDIO_JITTER_MAX_MS", "3000"},
      {"AUDIO_ECHO_CANCELLATION", "auto"},
      {"MAX_LIVE_SESSIONS", "1000"},
      {"IO_THREADS", "0"},
      {"MAX_BODY_BYTES", "1048576"},
      {"MAX_HEADER_BYTES", "16384"},
      {"HEADER_TIMEOUT_MS", "10000"},
      {"IDLE_TIMEOUT_MS", "60000"},
      {"BODY_TIMEOUT_MS", "60000"},
      {"SHUTDOWN_GRACE_MS", "10000"},
      {"INSECURE_NO_AUTH", "false"},
      {"WEBHOOK_MAX_AGE_SECONDS", "1800"},
      {"WEBHOOK_MAX_FUTURE_SECONDS", "300"},
      {"WEBHOOK_ALLOW_BODY_ONLY_SIGNATURE", "false"},
      {"WEBHOOK_ALLOW_UNSIGNED", "false"},
      {"WEBHOOK_MAX_BODY_BYTES", "67108864"},
      {"WEBHOOK_BANNER", "auto"},
      {"FORWARD_WEBHOOK_MAX_ATTEMPTS", "8"},
      {"RECONCILE_AFTER_SECONDS", "300"},
  };
  for (const SettingInfo& setting : AllSettings()) {
    const auto it = expected.find(setting.name);
    EXPECT_EQ(setting.default_value, it == expected.end() ? "" : it->second) << setting.name;
  }
}

TEST(Settings, EveryDefaultIsValidWhenGivenExplicitly) {
  for (const SettingInfo& setting : AllSettings()) {
    Inputs inputs;
    inputs.flags = {{std::string(setting.name), std::string(setting.default_value)}};
    const auto result = Load(inputs);
    EXPECT_TRUE(result.has_value())
        << setting.name << ": " << (result.has_error() ? result.error().ToString() : "");
  }
}

TEST(Settings, EnumNames) {
  EXPECT_EQ(ToString(Environment::kDevelopment), "development");
  EXPECT_EQ(ToString(Environment::kProduction), "production");
  EXPECT_EQ(ToString(LogLevel::kTrace), "trace");
  EXPECT_EQ(ToString(LogLevel::kDebug), "debug");
  EXPECT_EQ(ToString(LogLevel::kInfo), "info");
  EXPECT_EQ(ToString(LogLevel::kWarning), "warning");
  EXPECT_EQ(ToString(LogLevel::kError), "error");
  EXPECT_EQ(ToString(LogLevel::kCritical), "critical");
  EXPECT_EQ(ToString(Source::kDefault), "default");
  EXPECT_EQ(ToString(Source::kDotenv), ".env");
  EXPECT_EQ(ToString(Source::kEnvironment), "environment");
  EXPECT_EQ(ToString(Source::kFlag), "flag");
}

TEST(Settings, AudioEndpointRoundTripsThroughItsText) {
  using Kind = AudioEndpoint::Kind;
  EXPECT_EQ((AudioEndpoint{Kind::kDevice, ""}).ToString(), "device");
  EXPECT_EQ((AudioEndpoint{Kind::kDevice, "USB Mic"}).ToString(), "device:USB Mic");
  EXPECT_EQ((AudioEndpoint{Kind::kFile, "/tmp/a.wav"}).ToString(), "file:/tmp/a.wav");
  EXPECT_EQ((AudioEndpoint{Kind::kNull, ""}).ToString(), "null");
  for (const std::string text : {"device", "device:USB Mic", "file:/tmp/a.wav", "null"}) {
    Inputs inputs;
    inputs.flags = {{"AUDIO_OUTPUT", text}};
    const auto result = Load(inputs);
    ASSERT_TRUE(result.has_value()) << text;
    EXPECT_EQ(result->audio_output.ToString(), text);
  }
}

TEST(Settings, ConfigErrorToString) {
  EXPECT_EQ((ConfigError{"PORT", "must be x"}).ToString(), "PORT: must be x");
}

// ---------------------------------------------------------------------------------------------
// CaptureEnvironment

// Tests run on one thread, so touching the environment here is safe.
// NOLINTBEGIN(concurrency-mt-unsafe)
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) {
      old_ = old;
    }
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};
// NOLINTEND(concurrency-mt-unsafe)

TEST(CaptureEnvironment, TakesOnlyKnownVariablesThatAreSetEvenIfEmpty) {
  const ScopedEnv port("PORT", "4321");
  const ScopedEnv keys("API_KEYS", "");
  const ScopedEnv host("HOST", nullptr);
  const ScopedEnv other("CALLGATE_NOT_A_SETTING", "x");
  const auto captured = CaptureEnvironment();
  EXPECT_EQ(captured.at("PORT"), "4321");
  ASSERT_EQ(captured.count("API_KEYS"), 1U);
  EXPECT_EQ(captured.at("API_KEYS"), "");
  EXPECT_EQ(captured.count("HOST"), 0U);
  EXPECT_EQ(captured.count("CALLGATE_NOT_A_SETTING"), 0U);
  for (const auto& [name, value] : captured) {
    EXPECT_NE(std::find(kExpectedNames.begin(), kExpectedNames.end(), name), kExpectedNames.end())
        << name;
  }
}

// ---------------------------------------------------------------------------------------------
// env.example

std::string SourceDir() {
  const char* dir = std::getenv("CALLGATE_SOURCE_DIR");  // NOLINT(concurrency-mt-unsafe)
  if (dir != nullptr && *dir != '\0') {
    return dir;
  }
  return CALLGATE_SOURCE_DIR_FALLBACK;  // running the binary directly, outside ctest
}

std::string ReadEnvExample() {
  const std::string path = SourceDir() + "/env.example";
  std::ifstream file(path, std::ios::binary);
  EXPECT_TRUE(file.good()) << "cannot open " << path;
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

TEST(EnvExample, ParsesAndListsEverySettingWithItsDefault) {
  const std::string text = ReadEnvExample();
  const auto parsed = ParseDotenv(text, "env.example");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().ToString();
  ASSERT_EQ(parsed->size(), AllSettings().size());
  for (const SettingInfo& setting : AllSettings()) {
    const auto it = parsed->find(setting.name);
    ASSERT_NE(it, parsed->end()) << setting.name << " is missing from env.example";
    EXPECT_EQ(it->second, setting.default_value) << setting.name;
    if (setting.secret) {
      EXPECT_EQ(it->second, "") << setting.name;
    }
  }
}

TEST(EnvExample, ListsSettingsInOrderEachAfterAComment) {
  const std::string text = ReadEnvExample();
  EXPECT_NE(text.find(".env"), std::string::npos);
  EXPECT_LT(text.find(".env"), text.find('\n')) << "the first line should say to copy it to .env";
  std::istringstream lines(text);
  std::string line;
  std::string previous;
  std::size_t next = 0;
  while (std::getline(lines, line)) {
    if (!line.empty() && line[0] != '#') {
      ASSERT_LT(next, AllSettings().size()) << line;
      EXPECT_EQ(line.substr(0, line.find('=')), AllSettings()[next].name);
      EXPECT_TRUE(previous.starts_with("# ")) << line << " has no explanation above it";
      ++next;
    }
    previous = line;
  }
  EXPECT_EQ(next, AllSettings().size());
}

TEST(EnvExample, LoadsCleanlyAsADotenvFile) {
  const auto parsed = ParseDotenv(ReadEnvExample(), "env.example");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().ToString();
  Inputs inputs;
  inputs.dotenv = *parsed;
  inputs.dotenv_path = "env.example";
  const auto result = Load(inputs);
  ASSERT_TRUE(result.has_value()) << result.error().ToString();
  for (const SettingInfo& setting : AllSettings()) {
    EXPECT_EQ(result->sources.at(std::string(setting.name)), Source::kDotenv) << setting.name;
  }
  EXPECT_EQ(result->data_dir, "data");
  EXPECT_EQ(result->port, 8000);
}

}  // namespace
}  // namespace callgate::config
