// Load(): precedence, validation of every setting, secrets, Describe() and the serve check.
#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "config/config.hpp"

namespace callgate::config {
namespace {

using StringMap = std::map<std::string, std::string, std::less<>>;

Inputs FromEnvironment(StringMap environment) {
  Inputs inputs;
  inputs.environment = std::move(environment);
  return inputs;
}

Config LoadOk(const Inputs& inputs) {
  auto result = Load(inputs);
  EXPECT_TRUE(result.has_value()) << (result.has_error() ? result.error().ToString() : "");
  return result.has_value() ? *result : Config{};
}

Config LoadOk(std::string name, std::string value) {
  return LoadOk(FromEnvironment({{std::move(name), std::move(value)}}));
}

ConfigError LoadError(const Inputs& inputs) {
  auto result = Load(inputs);
  EXPECT_TRUE(result.has_error()) << "expected an error, got a valid configuration";
  return result.has_error() ? result.error() : ConfigError{};
}

ConfigError LoadError(std::string name, std::string value) {
  return LoadError(FromEnvironment({{std::move(name), std::move(value)}}));
}

bool Contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// Distinctive so that a leak anywhere in rendered text is unmistakable ("SEKRIT", not "SECRET",
// which is part of the name ELEVENLABS_WEBHOOK_SECRET).
constexpr std::string_view kApiKeySecret = "sk_SEKRIT_apikey_7f3a9c";
constexpr std::string_view kWebhookSecret = "wsec_SEKRIT_webhook_51bd";
constexpr std::string_view kClientKey1 = "ck_SEKRIT_client_one_e2a1";
constexpr std::string_view kClientKey2 = "ck_SEKRIT_client_two_90cc";
constexpr std::string_view kForwardSecret = "fwd_SEKRIT_forward_3d0e";

void ExpectNoSecrets(std::string_view text) {
  for (const std::string_view secret :
       {kApiKeySecret, kWebhookSecret, kClientKey1, kClientKey2, kForwardSecret}) {
    EXPECT_FALSE(Contains(text, secret)) << "secret leaked into: " << text;
  }
  EXPECT_FALSE(Contains(text, "SEKRIT")) << "secret leaked into: " << text;
}

std::string DescribeText(const Config& config) {
  std::string text;
  for (const DescribedSetting& setting : Describe(config)) {
    text += setting.name + "=" + setting.value + "\n";
  }
  return text;
}

std::string ValueOf(const Config& config, std::string_view name) {
  for (const DescribedSetting& setting : Describe(config)) {
    if (setting.name == name) {
      return setting.value;
    }
  }
  ADD_FAILURE() << "Describe() has no " << name;
  return {};
}

// ---------------------------------------------------------------------------------------------
// Defaults

TEST(ConfigLoad, NoInputsYieldsTheDocumentedDefaults) {
  const Config config = LoadOk(Inputs{});
  EXPECT_EQ(config.elevenlabs_api_key, "");
  EXPECT_EQ(config.elevenlabs_agent_id, "");
  EXPECT_EQ(config.elevenlabs_agent_phone_number_id, "");
  EXPECT_EQ(config.elevenlabs_from_number, "");
  EXPECT_EQ(config.elevenlabs_webhook_secret, "");
  EXPECT_EQ(config.elevenlabs_base_url, "https://api.elevenlabs.io");
  EXPECT_TRUE(config.api_keys.empty());
  EXPECT_EQ(config.environment, Environment::kDevelopment);
  EXPECT_EQ(config.log_level, LogLevel::kInfo);
  EXPECT_EQ(config.host, "0.0.0.0");
  EXPECT_EQ(config.port, 8000);
  EXPECT_EQ(config.database_url, "sqlite:data/callgate.db");
  EXPECT_EQ(config.database_path, "data/callgate.db");
  EXPECT_EQ(config.data_dir, "data");
  EXPECT_EQ(config.audio_input, (AudioEndpoint{AudioEndpoint::Kind::kDevice, ""}));
  EXPECT_EQ(config.audio_output, (AudioEndpoint{AudioEndpoint::Kind::kDevice, ""}));
  EXPECT_EQ(config.io_threads, std::max(1U, std::thread::hardware_concurrency()));
  EXPECT_EQ(config.max_body_bytes, 1048576U);
  EXPECT_EQ(config.max_header_bytes, 16384U);
  EXPECT_EQ(config.header_timeout, std::chrono::milliseconds(10000));
  EXPECT_EQ(config.idle_timeout, std::chrono::milliseconds(60000));
  EXPECT_EQ(config.body_timeout, std::chrono::milliseconds(60000));
  EXPECT_EQ(config.shutdown_grace, std::chrono::milliseconds(10000));
  EXPECT_FALSE(config.insecure_no_auth);
  EXPECT_EQ(config.dotenv_path, "");
  ASSERT_EQ(config.sources.size(), AllSettings().size());
  for (const SettingInfo& setting : AllSettings()) {
    const auto it = config.sources.find(setting.name);
    ASSERT_NE(it, config.sources.end()) << setting.name;
    EXPECT_EQ(it->second, Source::kDefault) << setting.name;
  }
}

TEST(ConfigLoad, LoadedDefaultsAgreeWithTheStructsInitializers) {
  const Config loaded = LoadOk(Inputs{});
  const Config plain;
  EXPECT_EQ(loaded.elevenlabs_base_url, plain.elevenlabs_base_url);
  EXPECT_EQ(loaded.environment, plain.environment);
  EXPECT_EQ(loaded.log_level, plain.log_level);
  EXPECT_EQ(loaded.host, plain.host);
  EXPECT_EQ(loaded.port, plain.port);
  EXPECT_EQ(loaded.audio_input, plain.audio_input);
  EXPECT_EQ(loaded.max_body_bytes, plain.max_body_bytes);
  EXPECT_EQ(loaded.max_header_bytes, plain.max_header_bytes);
  EXPECT_EQ(loaded.header_timeout, plain.header_timeout);
  EXPECT_EQ(loaded.idle_timeout, plain.idle_timeout);
  EXPECT_EQ(loaded.body_timeout, plain.body_timeout);
  EXPECT_EQ(loaded.shutdown_grace, plain.shutdown_grace);
  EXPECT_EQ(loaded.insecure_no_auth, plain.insecure_no_auth);
}

TEST(ConfigLoad, DotenvPathIsCopied) {
  Inputs inputs;
  inputs.dotenv_path = "/etc/callgate/.env";
  EXPECT_EQ(LoadOk(inputs).dotenv_path, "/etc/callgate/.env");
}

TEST(ConfigLoad, ValueThrowsConfigErrorTextOnError) {
  const Inputs inputs = FromEnvironment({{"PORT", "70000"}});
  try {
    (void)Load(inputs).value();
    FAIL() << "value() did not throw";
  } catch (const std::runtime_error& error) {
    EXPECT_STREQ(error.what(), "PORT: must be a whole number from 0 to 65535, got '70000'");
  }
  EXPECT_EQ(Load(Inputs{}).value().port, 8000);
}

// ---------------------------------------------------------------------------------------------
// Precedence

TEST(ConfigPrecedence, FlagBeatsEnvironmentBeatsDotenvBeatsDefault) {
  Inputs inputs;
  inputs.flags = {{"PORT", "1001"}};
  inputs.environment = {{"PORT", "1002"}, {"HOST", "127.0.0.1"}};
  inputs.dotenv = {{"PORT", "1003"}, {"HOST", "::1"}, {"LOG_LEVEL", "debug"}};
  const Config config = LoadOk(inputs);
  EXPECT_EQ(config.port, 1001);
  EXPECT_EQ(config.host, "127.0.0.1");
  EXPECT_EQ(config.log_level, LogLevel::kDebug);
  EXPECT_EQ(config.environment, Environment::kDevelopment);
  EXPECT_EQ(config.sources.at("PORT"), Source::kFlag);
  EXPECT_EQ(config.sources.at("HOST"), Source::kEnvironment);
  EXPECT_EQ(config.sources.at("LOG_LEVEL"), Source::kDotenv);
  EXPECT_EQ(config.sources.at("ENVIRONMENT"), Source::kDefault);
}

TEST(ConfigPrecedence, EachSourceAloneIsUsedAndRecorded) {
  Inputs inputs;
  inputs.dotenv = {{"IO_THREADS", "3"}};
  EXPECT_EQ(LoadOk(inputs).io_threads, 3U);
  EXPECT_EQ(LoadOk(inputs).sources.at("IO_THREADS"), Source::kDotenv);
  inputs.environment = {{"IO_THREADS", "4"}};
  EXPECT_EQ(LoadOk(inputs).io_threads, 4U);
  EXPECT_EQ(LoadOk(inputs).sources.at("IO_THREADS"), Source::kEnvironment);
  inputs.flags = {{"IO_THREADS", "5"}};
  EXPECT_EQ(LoadOk(inputs).io_threads, 5U);
  EXPECT_EQ(LoadOk(inputs).sources.at("IO_THREADS"), Source::kFlag);
}

TEST(ConfigPrecedence, EmptyEnvironmentValueOverridesDotenv) {
  Inputs inputs;
  inputs.environment = {{"API_KEYS", ""}};
  inputs.dotenv = {{"API_KEYS", "from-dotenv"}};
  const Config config = LoadOk(inputs);
  EXPECT_TRUE(config.api_keys.empty());
  EXPECT_EQ(config.sources.at("API_KEYS"), Source::kEnvironment);
}

TEST(ConfigPrecedence, EmptyFlagOverridesEnvironment) {
  Inputs inputs;
  inputs.flags = {{"ELEVENLABS_AGENT_ID", ""}};
  inputs.environment = {{"ELEVENLABS_AGENT_ID", "agent_env"}};
  const Config config = LoadOk(inputs);
  EXPECT_EQ(config.elevenlabs_agent_id, "");
  EXPECT_EQ(config.sources.at("ELEVENLABS_AGENT_ID"), Source::kFlag);
}

TEST(ConfigPrecedence, EmptyValueIsValidatedRatherThanReplacedByTheDefault) {
  Inputs inputs;
  inputs.environment = {{"PORT", ""}};
  inputs.dotenv = {{"PORT", "9000"}};
  const ConfigError error = LoadError(inputs);
  EXPECT_EQ(error.variable, "PORT");
  EXPECT_EQ(error.message, "must be a whole number from 0 to 65535, got ''");
}

TEST(ConfigPrecedence, UnknownFlagIsAnError) {
  Inputs inputs;
  inputs.flags = {{"PROT", "8080"}};
  const ConfigError error = LoadError(inputs);
  EXPECT_EQ(error.variable, "PROT");
  EXPECT_EQ(error.message, "unknown setting; see `callgate config` for the list");
}

TEST(ConfigPrecedence, UnknownEnvironmentAndDotenvNamesAreIgnored) {
  Inputs inputs;
  inputs.environment = {{"PATH", "/usr/bin"}, {"PROT", "x"}};
  inputs.dotenv = {{"OTHER_TOOL_TOKEN", "abc"}, {"port", "1"}};
  const Config config = LoadOk(inputs);
  EXPECT_EQ(config.port, 8000);
  EXPECT_EQ(config.sources.count("PATH"), 0U);
  EXPECT_EQ(config.sources.count("OTHER_TOOL_TOKEN"), 0U);
}

TEST(ConfigPrecedence, FirstErrorInSettingOrderIsReported) {
  // HOST precedes PORT, LOG_LEVEL precedes both.
  EXPECT_EQ(LoadError(FromEnvironment({{"PORT", "x"}, {"HOST", "y"}})).variable, "HOST");
  EXPECT_EQ(LoadError(FromEnvironment({{"PORT", "x"}, {"HOST", "y"}, {"LOG_LEVEL", "z"}})).variable,
            "LOG_LEVEL");
  EXPECT_EQ(LoadError(FromEnvironment({{"INSECURE_NO_AUTH", "x"}, {"IO_THREADS", "x"}})).variable,
            "IO_THREADS");
}

// ---------------------------------------------------------------------------------------------
// ElevenLabs settings

TEST(ConfigElevenLabs, StringsAreTrimmed) {
  Inputs inputs;
  inputs.environment = {{"ELEVENLABS_API_KEY", "  key-with-newline\n"},
                        {"ELEVENLABS_AGENT_ID", " agent_1 "},
                        {"ELEVENLABS_AGENT_PHONE_NUMBER_ID", "\tphnum_2 "},
                        {"ELEVENLABS_WEBHOOK_SECRET", "whsec\r\n"}};
  const Config config = LoadOk(inputs);
  EXPECT_EQ(config.elevenlabs_api_key, "key-with-newline");
  EXPECT_EQ(config.elevenlabs_agent_id, "agent_1");
  EXPECT_EQ(config.elevenlabs_agent_phone_number_id, "phnum_2");
  EXPECT_EQ(config.elevenlabs_webhook_secret, "whsec");
}

TEST(ConfigElevenLabs, FromNumberAcceptsE164OrEmpty) {
  EXPECT_EQ(LoadOk("ELEVENLABS_FROM_NUMBER", "+15551234567").elevenlabs_from_number,
            "+15551234567");
  EXPECT_EQ(LoadOk("ELEVENLABS_FROM_NUMBER", "+44").elevenlabs_from_number, "+44");
  EXPECT_EQ(LoadOk("ELEVENLABS_FROM_NUMBER", "+123456789012345").elevenlabs_from_number,
            "+123456789012345");
  EXPECT_EQ(LoadOk("ELEVENLABS_FROM_NUMBER", "").elevenlabs_from_number, "");
}

TEST(ConfigElevenLabs, FromNumberRejectsAnythingElse) {
  for (const std::string bad : {"15551234567", "+1 555 123 4567", "+1-555-123-4567", "+05551234567",
                                "+1", "+1234567890123456", "+1555abc", "++1555"}) {
    SCOPED_TRACE(bad);
    const ConfigError error = LoadError("ELEVENLABS_FROM_NUMBER", bad);
    EXPECT_EQ(error.variable, "ELEVENLABS_FROM_NUMBER");
    EXPECT_TRUE(Contains(error.message, "E.164")) << error.message;
    EXPECT_TRUE(Contains(error.message, "+15551234567")) << error.message;
    EXPECT_TRUE(Contains(error.message, "got '" + bad + "'")) << error.message;
  }
}

TEST(ConfigElevenLabs, BaseUrlAcceptsHttpAndHttpsRoots) {
  EXPECT_EQ(LoadOk("ELEVENLABS_BASE_URL", "https://api.elevenlabs.io").elevenlabs_base_url,
            "https://api.elevenlabs.io");
  EXPECT_EQ(
      LoadOk("ELEVENLABS_BASE_URL", "https://api.eu.residency.elevenlabs.io/").elevenlabs_base_url,
      "https://api.eu.residency.elevenlabs.io");
  EXPECT_EQ(LoadOk("ELEVENLABS_BASE_URL", "http://127.0.0.1:9000/").elevenlabs_base_url,
            "http://127.0.0.1:9000");
  EXPECT_EQ(LoadOk("ELEVENLABS_BASE_URL", "http://[::1]:9000").elevenlabs_base_url,
            "http://[::1]:9000");
  EXPECT_EQ(LoadOk("ELEVENLABS_BASE_URL", "HTTPS://api.elevenlabs.io").elevenlabs_base_url,
            "HTTPS://api.elevenlabs.io");
  EXPECT_EQ(LoadOk("ELEVENLABS_BASE_URL", " https://api.elevenlabs.io:443/\n").elevenlabs_base_url,
            "https://api.elevenlabs.io:443");
}

TEST(ConfigElevenLabs, CaFileMustExistAndTimeoutHasAFloor) {
  EXPECT_EQ(LoadOk("ELEVENLABS_CA_FILE", "").elevenlabs_ca_file, "");
  EXPECT_EQ(LoadOk("ELEVENLABS_CA_FILE", "/etc/hostname").elevenlabs_ca_file, "/etc/hostname");
  const ConfigError missing = LoadError("ELEVENLABS_CA_FILE", "/nonexistent/ca.pem");
  EXPECT_EQ(missing.variable, "ELEVENLABS_CA_FILE");
  EXPECT_TRUE(Contains(missing.message, "/nonexistent/ca.pem")) << missing.message;
  EXPECT_EQ(LoadOk("UPSTREAM_TIMEOUT_MS", "2500").upstream_timeout,
            std::chrono::milliseconds(2500));
  EXPECT_EQ(LoadError("UPSTREAM_TIMEOUT_MS", "5").variable, "UPSTREAM_TIMEOUT_MS");
}

TEST(ConfigGateway, PublicBaseUrlAllowsAPathAndDropsTrailingSlashes) {
  EXPECT_EQ(LoadOk("PUBLIC_BASE_URL", "").public_base_url, "");
  EXPECT_EQ(LoadOk("PUBLIC_BASE_URL", "https://abc.ngrok.app/").public_base_url,
            "https://abc.ngrok.app");
  EXPECT_EQ(LoadOk("PUBLIC_BASE_URL", "https://example.com/callgate//").public_base_url,
            "https://example.com/callgate");
  for (const std::string bad :
       {"example.com", "ftp://x", "https://x/?a=1", "https://x/#f", "https://user:pw@x"}) {
    SCOPED_TRACE(bad);
    const ConfigError error = LoadError("PUBLIC_BASE_URL", bad);
    EXPECT_EQ(error.variable, "PUBLIC_BASE_URL");
    EXPECT_FALSE(Contains(error.message, "pw@")) << error.message;
  }
}

TEST(ConfigWebhooks, TolerancesBannerAndForwardingTargets) {
  EXPECT_EQ(LoadOk("WEBHOOK_MAX_AGE_SECONDS", "600").webhook_max_age, std::chrono::seconds(600));
  EXPECT_EQ(LoadError("WEBHOOK_MAX_AGE_SECONDS", "0").variable, "WEBHOOK_MAX_AGE_SECONDS");
  EXPECT_EQ(LoadOk("WEBHOOK_MAX_FUTURE_SECONDS", "0").webhook_max_future, std::chrono::seconds(0));
  EXPECT_EQ(LoadOk("WEBHOOK_BANNER", "JSON").webhook_banner, "json");
  EXPECT_EQ(LoadError("WEBHOOK_BANNER", "loud").variable, "WEBHOOK_BANNER");
  const auto urls =
      LoadOk("FORWARD_WEBHOOK_URLS", " https://n8n.example/webhook/a ,,http://127.0.0.1:5678/b")
          .forward_webhook_urls;
  EXPECT_EQ(urls,
            (std::vector<std::string>{"https://n8n.example/webhook/a", "http://127.0.0.1:5678/b"}));
  const ConfigError bad = LoadError("FORWARD_WEBHOOK_URLS", "https://ok.example,ftp://x");
  EXPECT_EQ(bad.variable, "FORWARD_WEBHOOK_URLS");
  EXPECT_TRUE(Contains(bad.message, "item 2")) << bad.message;
  EXPECT_EQ(LoadOk("FORWARD_WEBHOOK_MAX_ATTEMPTS", "3").forward_webhook_max_attempts, 3);
}

TEST(ConfigAudio, ChunkEchoCancellationAndSessionLimit) {
  EXPECT_EQ(LoadOk("AUDIO_CHUNK_MS", "20").audio_chunk, std::chrono::milliseconds(20));
  EXPECT_EQ(LoadError("AUDIO_CHUNK_MS", "5").variable, "AUDIO_CHUNK_MS");
  EXPECT_EQ(LoadError("AUDIO_CHUNK_MS", "2000").variable, "AUDIO_CHUNK_MS");
  EXPECT_EQ(LoadOk("AUDIO_ECHO_CANCELLATION", "OFF").audio_echo_cancellation, "off");
  EXPECT_EQ(LoadError("AUDIO_ECHO_CANCELLATION", "maybe").variable, "AUDIO_ECHO_CANCELLATION");
  EXPECT_EQ(LoadOk("MAX_LIVE_SESSIONS", "8").max_live_sessions, 8u);
  EXPECT_EQ(LoadError("MAX_LIVE_SESSIONS", "0").variable, "MAX_LIVE_SESSIONS");
}

TEST(ConfigAudio, JitterBuffer) {
  const Config defaults = LoadOk(Inputs{});
  EXPECT_EQ(defaults.audio_jitter_prebuffer, std::chrono::milliseconds(80));
  EXPECT_EQ(defaults.audio_jitter_max, std::chrono::milliseconds(3000));
  EXPECT_EQ(LoadOk("AUDIO_JITTER_PREBUFFER_MS", "0").audio_jitter_prebuffer,
            std::chrono::milliseconds(0));
  EXPECT_EQ(LoadOk("AUDIO_JITTER_PREBUFFER_MS", "200").audio_jitter_prebuffer,
            std::chrono::milliseconds(200));
  EXPECT_EQ(LoadError("AUDIO_JITTER_PREBUFFER_MS", "1001").variable, "AUDIO_JITTER_PREBUFFER_MS");
  EXPECT_EQ(LoadError("AUDIO_JITTER_PREBUFFER_MS", "-5").variable, "AUDIO_JITTER_PREBUFFER_MS");
  EXPECT_EQ(LoadOk("AUDIO_JITTER_MAX_MS", "500").audio_jitter_max, std::chrono::milliseconds(500));
  EXPECT_EQ(LoadError("AUDIO_JITTER_MAX_MS", "60001").variable, "AUDIO_JITTER_MAX_MS");
  // The most held must leave room above the prebuffer.
  const auto tight = LoadError(
      FromEnvironment({{"AUDIO_JITTER_PREBUFFER_MS", "500"}, {"AUDIO_JITTER_MAX_MS", "550"}}));
  EXPECT_EQ(tight.variable, "AUDIO_JITTER_MAX_MS");
  EXPECT_TRUE(Contains(tight.message, "from 600")) << tight.message;
  const Config both = LoadOk(
      FromEnvironment({{"AUDIO_JITTER_PREBUFFER_MS", "500"}, {"AUDIO_JITTER_MAX_MS", "600"}}));
  EXPECT_EQ(both.audio_jitter_max, std::chrono::milliseconds(600));
}

TEST(ConfigElevenLabs, BaseUrlRejectsNonRootOrNonHttpUrls) {
  for (const std::string bad :
       {"", "api.elevenlabs.io", "ftp://api.elevenlabs.io", "https://", "https:///v1",
        "https://api.elevenlabs.io/v1", "https://api.elevenlabs.io//", "https://x?region=eu",
        "https://x/#top", "https://x:99999", "https://x:65536", "https://x:0", "not a url"}) {
    SCOPED_TRACE(bad);
    const ConfigError error = LoadError("ELEVENLABS_BASE_URL", bad);
    EXPECT_EQ(error.variable, "ELEVENLABS_BASE_URL");
    EXPECT_TRUE(Contains(error.message, "must be an http(s) URL such as https://api.elevenlabs.io"))
        << error.message;
    EXPECT_TRUE(Contains(error.message, "got '" + bad + "'")) << error.message;
  }
}

TEST(ConfigElevenLabs, BaseUrlWithCredentialsIsRejectedWithoutEchoingThePassword) {
  const ConfigError error =
      LoadError("ELEVENLABS_BASE_URL", "https://me:SECRET_pw_88@api.elevenlabs.io");
  EXPECT_EQ(error.variable, "ELEVENLABS_BASE_URL");
  EXPECT_TRUE(Contains(error.message, "me:***@api.elevenlabs.io")) << error.message;
  EXPECT_FALSE(Contains(error.message, "SECRET_pw_88")) << error.message;
}

// ---------------------------------------------------------------------------------------------
// Gateway settings

TEST(ConfigApiKeys, SplitsTrimsAndDropsEmptyItems) {
  EXPECT_EQ(LoadOk("API_KEYS", " one , two,,three ,").api_keys,
            (std::vector<std::string>{"one", "two", "three"}));
  EXPECT_EQ(LoadOk("API_KEYS", "solo").api_keys, (std::vector<std::string>{"solo"}));
  EXPECT_TRUE(LoadOk("API_KEYS", " , ,").api_keys.empty());
  EXPECT_TRUE(LoadOk("API_KEYS", "").api_keys.empty());
}

TEST(ConfigApiKeys, KeyWithWhitespaceNamesItsPositionNotItsValue) {
  const std::string keys = std::string(kClientKey1) + ",," + std::string(kClientKey2) + " tail";
  const ConfigError error = LoadError("API_KEYS", keys);
  EXPECT_EQ(error.variable, "API_KEYS");
  EXPECT_TRUE(error.message.starts_with("key #2 contains whitespace")) << error.message;
  ExpectNoSecrets(error.ToString());
  EXPECT_FALSE(Contains(error.message, "tail"));
}

TEST(ConfigApiKeys, KeyWithControlCharacterIsAnError) {
  const ConfigError error = LoadError("API_KEYS", std::string(kClientKey1) + "\x01");
  EXPECT_EQ(error.variable, "API_KEYS");
  EXPECT_TRUE(error.message.starts_with("key #1 contains a control character")) << error.message;
  ExpectNoSecrets(error.ToString());
  EXPECT_EQ(LoadError("API_KEYS", "a,b\x7f").message.substr(0, 6), "key #2");
}

TEST(ConfigEnvironment, AcceptsExactlyTwoNamesInAnyCase) {
  EXPECT_EQ(LoadOk("ENVIRONMENT", "development").environment, Environment::kDevelopment);
  EXPECT_EQ(LoadOk("ENVIRONMENT", "Production").environment, Environment::kProduction);
  EXPECT_EQ(LoadOk("ENVIRONMENT", "PRODUCTION").environment, Environment::kProduction);
  for (const std::string bad : {"prod", "dev", "staging", ""}) {
    SCOPED_TRACE(bad);
    const ConfigError error = LoadError("ENVIRONMENT", bad);
    EXPECT_EQ(error.variable, "ENVIRONMENT");
    EXPECT_EQ(error.message, "must be development or production, got '" + bad + "'");
  }
}

TEST(ConfigLogLevel, AcceptsEveryLevelAndWarnCaseInsensitively) {
  const std::vector<std::pair<std::string, LogLevel>> cases = {
      {"trace", LogLevel::kTrace}, {"DEBUG", LogLevel::kDebug},      {"INFO", LogLevel::kInfo},
      {"info", LogLevel::kInfo},   {"warning", LogLevel::kWarning},  {"Warn", LogLevel::kWarning},
      {"error", LogLevel::kError}, {"CRITICAL", LogLevel::kCritical}};
  for (const auto& [text, level] : cases) {
    SCOPED_TRACE(text);
    EXPECT_EQ(LoadOk("LOG_LEVEL", text).log_level, level);
  }
}

TEST(ConfigLogLevel, RejectsUnknownLevels) {
  for (const std::string bad : {"verbose", "fatal", "off", "err", ""}) {
    SCOPED_TRACE(bad);
    const ConfigError error = LoadError("LOG_LEVEL", bad);
    EXPECT_EQ(error.variable, "LOG_LEVEL");
    EXPECT_TRUE(Contains(error.message, "trace, debug, info, warning")) << error.message;
    EXPECT_TRUE(Contains(error.message, "got '" + bad + "'")) << error.message;
  }
}

TEST(ConfigHost, AcceptsAddressLiteralsAndLocalhost) {
  const std::vector<std::pair<std::string, std::string>> cases = {{"0.0.0.0", "0.0.0.0"},
                                                                  {"127.0.0.1", "127.0.0.1"},
                                                                  {"192.168.1.20", "192.168.1.20"},
                                                                  {"::", "::"},
                                                                  {"::1", "::1"},
                                                                  {"[::1]", "::1"},
                                                                  {"[fe80::1]", "fe80::1"},
                                                                  {"localhost", "localhost"},
                                                                  {"LocalHost", "localhost"},
                                                                  {" 10.0.0.1 ", "10.0.0.1"}};
  for (const auto& [text, host] : cases) {
    SCOPED_TRACE(text);
    EXPECT_EQ(LoadOk("HOST", text).host, host);
  }
}

TEST(ConfigHost, RejectsHostNamesAndMalformedAddresses) {
  for (const std::string bad : {"example.com", "", "256.1.1.1", "127.1", "[127.0.0.1]", "[::1",
                                "::1]", "[]", "1.2.3.4:80", "::g"}) {
    SCOPED_TRACE(bad);
    const ConfigError error = LoadError("HOST", bad);
    EXPECT_EQ(error.variable, "HOST");
    EXPECT_TRUE(Contains(error.message, "must be an IPv4 or IPv6 address")) << error.message;
    EXPECT_TRUE(Contains(error.message, "localhost")) << error.message;
    EXPECT_TRUE(Contains(error.message, "got '" + bad + "'")) << error.message;
  }
}

TEST(ConfigPort, AcceptsTheFullRange) {
  EXPECT_EQ(LoadOk("PORT", "0").port, 0);
  EXPECT_EQ(LoadOk("PORT", "1").port, 1);
  EXPECT_EQ(LoadOk("PORT", "65535").port, 65535);
  EXPECT_EQ(LoadOk("PORT", "08080").port, 8080);
  EXPECT_EQ(LoadOk("PORT", " 8080\n").port, 8080);
}

TEST(ConfigPort, RejectsOutOfRangeAndJunk) {
  const ConfigError error = LoadError("PORT", "70000");
  EXPECT_EQ(error.variable, "PORT");
  EXPECT_EQ(error.message, "must be a whole number from 0 to 65535, got '70000'");
  EXPECT_EQ(error.ToString(), "PORT: must be a whole number from 0 to 65535, got '70000'");
  for (const std::string bad :
       {"65536", "-1", "+80", "80x", "8 0", "abc", "0x50", "80.0", "99999999999999999999999999"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(LoadError("PORT", bad).message,
              "must be a whole number from 0 to 65535, got '" + bad + "'");
  }
}

TEST(ConfigMessages, ControlCharactersInQuotedValuesAreEscaped) {
  const ConfigError error = LoadError("PORT", "80\n\x01");
  EXPECT_EQ(error.message, "must be a whole number from 0 to 65535, got '80\\n\\x01'");
}

// ---------------------------------------------------------------------------------------------
// Storage

TEST(ConfigDatabase, AcceptsEverySqliteForm) {
  struct Case {
    std::string url, path, data_dir;
  };
  const std::vector<Case> cases = {
      {"sqlite:data/callgate.db", "data/callgate.db", "data"},
      {"sqlite://data/callgate.db", "data/callgate.db", "data"},
      {"sqlite:///var/lib/callgate/calls.db", "/var/lib/callgate/calls.db", "/var/lib/callgate"},
      {"sqlite:/abs/calls.db", "/abs/calls.db", "/abs"},
      {"SQLite:calls.db", "calls.db", "."},
      {"calls.db", "calls.db", "."},
      {"./db/calls.db", "./db/calls.db", "./db"},
      {"/srv/calls.db", "/srv/calls.db", "/srv"},
      {"sqlite:///calls.db", "/calls.db", "/"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.url);
    const Config config = LoadOk("DATABASE_URL", c.url);
    EXPECT_EQ(config.database_url, c.url);
    EXPECT_EQ(config.database_path, c.path);
    EXPECT_EQ(config.data_dir, c.data_dir);
  }
}

TEST(ConfigDatabase, RejectsOtherSchemes) {
  for (const std::string bad : {"postgres://db/calls", "mysql://db/calls", "file:calls.db"}) {
    SCOPED_TRACE(bad);
    const ConfigError error = LoadError("DATABASE_URL", bad);
    EXPECT_EQ(error.variable, "DATABASE_URL");
    EXPECT_TRUE(error.message.starts_with("only SQLite is supported: use sqlite:PATH"))
        << error.message;
    EXPECT_TRUE(Contains(error.message, "got '" + bad + "'")) << error.message;
  }
}

TEST(ConfigDatabase, OtherSchemeErrorHidesThePassword) {
  const ConfigError error = LoadError("DATABASE_URL", "postgres://admin:SECRET_dbpw@db:5432/x");
  EXPECT_TRUE(Contains(error.message, "postgres://admin:***@db:5432/x")) << error.message;
  EXPECT_FALSE(Contains(error.message, "SECRET_dbpw")) << error.message;
}

TEST(ConfigDatabase, RejectsEmptyAndInMemory) {
  for (const std::string bad : {"", "sqlite:", "sqlite://", "sqlite::memory:", ":memory:"}) {
    SCOPED_TRACE(bad);
    const ConfigError error = LoadError("DATABASE_URL", bad);
    EXPECT_EQ(error.variable, "DATABASE_URL");
    EXPECT_TRUE(Contains(error.message, "sqlite:data/callgate.db")) << error.message;
    EXPECT_TRUE(Contains(error.message, "got '" + bad + "'")) << error.message;
  }
}

TEST(ConfigDatabase, DescribeRedactsAPasswordInTheUrl) {
  const Config config = LoadOk("DATABASE_URL", "sqlite://user:SECRET_pass@host/calls.db");
  EXPECT_EQ(config.database_url, "sqlite://user:SECRET_pass@host/calls.db");
  EXPECT_EQ(ValueOf(config, "DATABASE_URL"), "sqlite://user:***@host/calls.db");
}

TEST(ConfigDataDir, ExplicitValueWinsOverTheDatabaseDirectory) {
  Inputs inputs;
  inputs.environment = {{"DATABASE_URL", "sqlite:///var/lib/c/calls.db"},
                        {"DATA_DIR", "/srv/recordings"}};
  const Config config = LoadOk(inputs);
  EXPECT_EQ(config.data_dir, "/srv/recordings");
  EXPECT_EQ(config.sources.at("DATA_DIR"), Source::kEnvironment);
}

TEST(ConfigDataDir, EmptyValueMeansTheDatabaseDirectory) {
  Inputs inputs;
  inputs.dotenv = {{"DATABASE_URL", "sqlite:///var/lib/c/calls.db"}, {"DATA_DIR", ""}};
  EXPECT_EQ(LoadOk(inputs).data_dir, "/var/lib/c");
}

// ---------------------------------------------------------------------------------------------
// Audio

TEST(ConfigAudio, AcceptsEveryForm) {
  using Kind = AudioEndpoint::Kind;
  const std::vector<std::pair<std::string, AudioEndpoint>> cases = {
      {"device", {Kind::kDevice, ""}},
      {"DEVICE", {Kind::kDevice, ""}},
      {"device:USB Headset", {Kind::kDevice, "USB Headset"}},
      {"file:/tmp/in.wav", {Kind::kFile, "/tmp/in.wav"}},
      {"file:rel/out.raw", {Kind::kFile, "rel/out.raw"}},
      {"null", {Kind::kNull, ""}},
  };
  for (const auto& [text, endpoint] : cases) {
    SCOPED_TRACE(text);
    EXPECT_EQ(LoadOk("AUDIO_INPUT", text).audio_input, endpoint);
    EXPECT_EQ(LoadOk("AUDIO_OUTPUT", text).audio_output, endpoint);
  }
}

TEST(ConfigAudio, RejectsUnknownFormsAndEmptyTargets) {
  for (const std::string name : {"AUDIO_INPUT", "AUDIO_OUTPUT"}) {
    for (const std::string bad : {"speaker", "", "pulse:default", "devices", "nul"}) {
      SCOPED_TRACE(name);
      SCOPED_TRACE(bad);
      const ConfigError error = LoadError(name, bad);
      EXPECT_EQ(error.variable, name);
      EXPECT_EQ(error.message,
                "must be one of device, device:NAME, file:PATH or null, got '" + bad + "'");
    }
    const ConfigError no_name = LoadError(name, "device:");
    EXPECT_EQ(no_name.variable, name);
    EXPECT_TRUE(Contains(no_name.message, "device:NAME")) << no_name.message;
    const ConfigError no_path = LoadError(name, "file:");
    EXPECT_EQ(no_path.variable, name);
    EXPECT_TRUE(Contains(no_path.message, "file:PATH")) << no_path.message;
  }
}

// ---------------------------------------------------------------------------------------------
// Server limits

TEST(ConfigIoThreads, ZeroResolvesToTheCoreCount) {
  const unsigned cores = std::max(1U, std::thread::hardware_concurrency());
  EXPECT_EQ(LoadOk("IO_THREADS", "0").io_threads, cores);
  EXPECT_EQ(LoadOk("IO_THREADS", "1").io_threads, 1U);
  EXPECT_EQ(LoadOk("IO_THREADS", "256").io_threads, 256U);
  EXPECT_EQ(ValueOf(LoadOk("IO_THREADS", "0"), "IO_THREADS"), std::to_string(cores));
}

TEST(ConfigIoThreads, RejectsOutOfRange) {
  const ConfigError error = LoadError("IO_THREADS", "257");
  EXPECT_EQ(error.variable, "IO_THREADS");
  EXPECT_EQ(error.message, "must be a whole number from 0 to 256, got '257'");
  EXPECT_EQ(LoadError("IO_THREADS", "four").variable, "IO_THREADS");
}

TEST(ConfigLimits, ByteLimitsEnforceTheirRanges) {
  EXPECT_EQ(LoadOk("MAX_BODY_BYTES", "1024").max_body_bytes, 1024U);
  EXPECT_EQ(LoadOk("MAX_BODY_BYTES", "1073741824").max_body_bytes, 1073741824U);
  EXPECT_EQ(LoadOk("MAX_HEADER_BYTES", "1024").max_header_bytes, 1024U);
  EXPECT_EQ(LoadOk("MAX_HEADER_BYTES", "1048576").max_header_bytes, 1048576U);
  EXPECT_EQ(LoadError("MAX_BODY_BYTES", "1023").message,
            "must be a whole number of bytes from 1024 to 1073741824, got '1023'");
  EXPECT_EQ(LoadError("MAX_BODY_BYTES", "1073741825").variable, "MAX_BODY_BYTES");
  EXPECT_EQ(LoadError("MAX_BODY_BYTES", "1MB").variable, "MAX_BODY_BYTES");
  EXPECT_EQ(LoadError("MAX_HEADER_BYTES", "1048577").message,
            "must be a whole number of bytes from 1024 to 1048576, got '1048577'");
  EXPECT_EQ(LoadError("MAX_HEADER_BYTES", "1023").variable, "MAX_HEADER_BYTES");
}

TEST(ConfigLimits, TimeoutsEnforceTheirRanges) {
  for (const std::string name : {"HEADER_TIMEOUT_MS", "IDLE_TIMEOUT_MS", "BODY_TIMEOUT_MS"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(ValueOf(LoadOk(name, "50"), name), "50");
    EXPECT_EQ(ValueOf(LoadOk(name, "3600000"), name), "3600000");
    const ConfigError error = LoadError(name, "49");
    EXPECT_EQ(error.variable, name);
    EXPECT_EQ(error.message, "must be a whole number of milliseconds from 50 to 3600000, got '49'");
    EXPECT_EQ(LoadError(name, "3600001").variable, name);
    EXPECT_EQ(LoadError(name, "10s").variable, name);
  }
  EXPECT_EQ(LoadOk("HEADER_TIMEOUT_MS", "1234").header_timeout, std::chrono::milliseconds(1234));
  EXPECT_EQ(LoadOk("IDLE_TIMEOUT_MS", "2345").idle_timeout, std::chrono::milliseconds(2345));
  EXPECT_EQ(LoadOk("BODY_TIMEOUT_MS", "3456").body_timeout, std::chrono::milliseconds(3456));
}

TEST(ConfigLimits, ShutdownGraceMayBeZero) {
  EXPECT_EQ(LoadOk("SHUTDOWN_GRACE_MS", "0").shutdown_grace, std::chrono::milliseconds(0));
  EXPECT_EQ(LoadOk("SHUTDOWN_GRACE_MS", "3600000").shutdown_grace,
            std::chrono::milliseconds(3600000));
  EXPECT_EQ(LoadError("SHUTDOWN_GRACE_MS", "3600001").message,
            "must be a whole number of milliseconds from 0 to 3600000, got '3600001'");
}

TEST(ConfigInsecureNoAuth, AcceptsTheUsualBooleanSpellings) {
  for (const std::string yes : {"true", "TRUE", "1", "yes", "Yes", "on", "ON"}) {
    SCOPED_TRACE(yes);
    EXPECT_TRUE(LoadOk("INSECURE_NO_AUTH", yes).insecure_no_auth);
  }
  for (const std::string no : {"false", "False", "0", "no", "NO", "off", "Off"}) {
    SCOPED_TRACE(no);
    EXPECT_FALSE(LoadOk("INSECURE_NO_AUTH", no).insecure_no_auth);
  }
  for (const std::string bad : {"", "y", "2", "enabled", "truee"}) {
    SCOPED_TRACE(bad);
    const ConfigError error = LoadError("INSECURE_NO_AUTH", bad);
    EXPECT_EQ(error.variable, "INSECURE_NO_AUTH");
    EXPECT_TRUE(Contains(error.message, "must be true or false")) << error.message;
    EXPECT_TRUE(Contains(error.message, "got '" + bad + "'")) << error.message;
  }
}

// ---------------------------------------------------------------------------------------------
// Secrets and Describe()

Inputs WithAllSecrets() {
  Inputs inputs;
  inputs.environment = {
      {"ELEVENLABS_API_KEY", std::string(kApiKeySecret)},
      {"ELEVENLABS_WEBHOOK_SECRET", std::string(kWebhookSecret)},
      {"FORWARD_WEBHOOK_SECRET", std::string(kForwardSecret)},
  };
  inputs.dotenv = {{"API_KEYS", std::string(kClientKey1) + "," + std::string(kClientKey2)}};
  return inputs;
}

TEST(ConfigSecrets, DescribeShowsOnlyWhetherSecretsAreSet) {
  const Config config = LoadOk(WithAllSecrets());
  EXPECT_EQ(config.elevenlabs_api_key, kApiKeySecret);
  EXPECT_EQ(config.elevenlabs_webhook_secret, kWebhookSecret);
  EXPECT_EQ(config.api_keys.size(), 2U);
  ExpectNoSecrets(DescribeText(config));
  EXPECT_EQ(ValueOf(config, "ELEVENLABS_API_KEY"), "<set>");
  EXPECT_EQ(ValueOf(config, "ELEVENLABS_WEBHOOK_SECRET"), "<set>");
  EXPECT_EQ(ValueOf(config, "API_KEYS"), "<2 keys>");

  const Config empty = LoadOk(Inputs{});
  EXPECT_EQ(ValueOf(empty, "ELEVENLABS_API_KEY"), "<not set>");
  EXPECT_EQ(ValueOf(empty, "ELEVENLABS_WEBHOOK_SECRET"), "<not set>");
  EXPECT_EQ(ValueOf(empty, "API_KEYS"), "<not set>");
  EXPECT_EQ(ValueOf(LoadOk("API_KEYS", "a"), "API_KEYS"), "<1 key>");
}

TEST(ConfigSecrets, DescribeMarksExactlyTheSecretSettings) {
  for (const DescribedSetting& setting : Describe(LoadOk(Inputs{}))) {
    const bool expected = setting.name == "ELEVENLABS_API_KEY" ||
                          setting.name == "ELEVENLABS_WEBHOOK_SECRET" ||
                          setting.name == "API_KEYS" || setting.name == "FORWARD_WEBHOOK_SECRET";
    EXPECT_EQ(setting.secret, expected) << setting.name;
  }
}

TEST(ConfigSecrets, ErrorsOfOtherSettingsDoNotLeakSecrets) {
  for (const auto& [name, bad] : std::vector<std::pair<std::string, std::string>>{
           {"PORT", "x"}, {"HOST", "x"}, {"ELEVENLABS_BASE_URL", "x"}, {"INSECURE_NO_AUTH", "x"}}) {
    SCOPED_TRACE(name);
    Inputs inputs = WithAllSecrets();
    inputs.flags = {{name, bad}};
    const ConfigError error = LoadError(inputs);
    EXPECT_EQ(error.variable, name);
    ExpectNoSecrets(error.ToString());
  }
}

TEST(ConfigSecrets, SecurityCheckMessageDoesNotLeakSecrets) {
  Inputs inputs = WithAllSecrets();
  inputs.dotenv.clear();
  const auto error = CheckServeSecurity(LoadOk(inputs));
  ASSERT_TRUE(error.has_value());
  ExpectNoSecrets(error->ToString());
}

TEST(ConfigDescribe, ListsEverySettingInOrderWithValueAndSource) {
  Inputs inputs;
  inputs.flags = {{"AUDIO_INPUT", "file:/tmp/mic.wav"}, {"INSECURE_NO_AUTH", "yes"}};
  inputs.environment = {{"PORT", "9001"}, {"LOG_LEVEL", "WARN"}, {"IDLE_TIMEOUT_MS", "1500"}};
  inputs.dotenv = {{"ENVIRONMENT", "Production"}, {"DATABASE_URL", "sqlite:///d/c.db"}};
  const Config config = LoadOk(inputs);
  const std::vector<DescribedSetting> described = Describe(config);
  ASSERT_EQ(described.size(), AllSettings().size());
  for (std::size_t i = 0; i < described.size(); ++i) {
    EXPECT_EQ(described[i].name, AllSettings()[i].name);
    EXPECT_EQ(described[i].secret, AllSettings()[i].secret);
  }
  const auto find = [&](std::string_view name) {
    return *std::find_if(described.begin(), described.end(),
                         [&](const DescribedSetting& s) { return s.name == name; });
  };
  EXPECT_EQ(find("AUDIO_INPUT").value, "file:/tmp/mic.wav");
  EXPECT_EQ(find("AUDIO_INPUT").source, Source::kFlag);
  EXPECT_EQ(find("AUDIO_OUTPUT").value, "device");
  EXPECT_EQ(find("AUDIO_OUTPUT").source, Source::kDefault);
  EXPECT_EQ(find("INSECURE_NO_AUTH").value, "true");
  EXPECT_EQ(find("PORT").value, "9001");
  EXPECT_EQ(find("PORT").source, Source::kEnvironment);
  EXPECT_EQ(find("LOG_LEVEL").value, "warning");
  EXPECT_EQ(find("IDLE_TIMEOUT_MS").value, "1500");
  EXPECT_EQ(find("ENVIRONMENT").value, "production");
  EXPECT_EQ(find("ENVIRONMENT").source, Source::kDotenv);
  EXPECT_EQ(find("DATABASE_URL").value, "sqlite:///d/c.db");
  EXPECT_EQ(find("DATA_DIR").value, "/d");
  EXPECT_EQ(find("HOST").value, "0.0.0.0");
  EXPECT_EQ(find("ELEVENLABS_BASE_URL").value, "https://api.elevenlabs.io");
  EXPECT_EQ(find("MAX_BODY_BYTES").value, "1048576");
  EXPECT_EQ(find("HEADER_TIMEOUT_MS").value, "10000");
  EXPECT_EQ(find("SHUTDOWN_GRACE_MS").value, "10000");
}

TEST(ConfigDescribe, ValuesOfADefaultConfigMatchTheCatalogueDefaults) {
  // Except the two that Load() resolves (IO_THREADS, DATA_DIR), Describe() of the defaults
  // renders exactly the catalogue's default text, so `callgate config` and env.example agree.
  for (const DescribedSetting& setting : Describe(LoadOk(Inputs{}))) {
    if (setting.name == "IO_THREADS" || setting.name == "DATA_DIR" || setting.secret) {
      continue;
    }
    const auto it =
        std::find_if(AllSettings().begin(), AllSettings().end(),
                     [&](const SettingInfo& info) { return info.name == setting.name; });
    ASSERT_NE(it, AllSettings().end());
    EXPECT_EQ(setting.value, it->default_value) << setting.name;
  }
}

TEST(ConfigDescribe, MissingSourceEntryMeansDefault) {
  Config config;
  config.sources.clear();
  for (const DescribedSetting& setting : Describe(config)) {
    EXPECT_EQ(setting.source, Source::kDefault) << setting.name;
  }
}

// ---------------------------------------------------------------------------------------------
// HostIsLoopback and CheckServeSecurity

TEST(ConfigHostIsLoopback, RecognisesLoopbackAddresses) {
  Config config;
  for (const std::string host :
       {"127.0.0.1", "127.1.2.3", "127.255.255.255", "::1", "[::1]", "0:0:0:0:0:0:0:1", "localhost",
        "LOCALHOST", "::ffff:127.0.0.1", "::ffff:127.9.9.9"}) {
    config.host = host;
    EXPECT_TRUE(config.HostIsLoopback()) << host;
  }
  for (const std::string host :
       {"0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "126.255.255.255", "192.168.1.1",
        "::ffff:10.0.0.1", "::2", "fe80::1", "localhost.example.com", "", "::127.0.0.1"}) {
    config.host = host;
    EXPECT_FALSE(config.HostIsLoopback()) << host;
  }
}

TEST(ConfigServeSecurity, RefusesNoKeysOnAPublicAddress) {
  Inputs inputs;
  inputs.environment = {{"HOST", "0.0.0.0"}, {"PORT", "8123"}};
  const auto error = CheckServeSecurity(LoadOk(inputs));
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->variable, "API_KEYS");
  EXPECT_EQ(error->message,
            "is empty and HOST=0.0.0.0 is not a loopback address, so anyone who can reach port "
            "8123 could place calls at your expense. Fix it with one of: set API_KEYS=<a long "
            "random key> (clients send it as X-API-Key), bind to HOST=127.0.0.1, or pass "
            "--insecure-no-auth (INSECURE_NO_AUTH=true) to accept the risk.");
  EXPECT_TRUE(CheckServeSecurity(LoadOk("HOST", "::")).has_value());
  EXPECT_TRUE(CheckServeSecurity(LoadOk("HOST", "192.168.0.10")).has_value());
}

TEST(ConfigServeSecurity, AllowsKeysLoopbackOrExplicitOptOut) {
  EXPECT_FALSE(CheckServeSecurity(LoadOk("API_KEYS", "k")).has_value());
  EXPECT_FALSE(CheckServeSecurity(LoadOk("HOST", "127.0.0.1")).has_value());
  EXPECT_FALSE(CheckServeSecurity(LoadOk("HOST", "[::1]")).has_value());
  EXPECT_FALSE(CheckServeSecurity(LoadOk("HOST", "localhost")).has_value());
  EXPECT_FALSE(CheckServeSecurity(LoadOk("INSECURE_NO_AUTH", "true")).has_value());
  // An API_KEYS made only of separators is no keys at all.
  EXPECT_TRUE(CheckServeSecurity(LoadOk("API_KEYS", ",,")).has_value());
}

}  // namespace
}  // namespace callgate::config
