// The one typed configuration of callgate, and the one place that knows every setting.
//
// Values come from, highest precedence first: command-line flags, the process environment,
// a .env file (./.env by default, --env-file PATH to choose), then built-in defaults.
// Load() is pure: the caller captures the three sources (see Inputs) and gets back either a
// fully validated Config or one ConfigError naming the variable, what was wrong and what is
// expected. Nothing here logs, exits or touches sockets. Secret values (API keys, webhook
// secrets) are never part of any text this module renders.
#pragma once

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace callgate::config {

enum class Environment { kDevelopment, kProduction };
enum class LogLevel { kTrace, kDebug, kInfo, kWarning, kError, kCritical };

std::string_view ToString(Environment env);
std::string_view ToString(LogLevel level);

// Where audio comes from or goes to: AUDIO_INPUT / AUDIO_OUTPUT.
//   "device" (default device), "device:NAME", "file:PATH", "null".
struct AudioEndpoint {
  enum class Kind { kDevice, kFile, kNull };
  Kind kind = Kind::kDevice;
  std::string target;  // device name (may be empty = default device) or file path
  std::string ToString() const;
  bool operator==(const AudioEndpoint&) const = default;
};

// Which source a setting's effective value came from.
enum class Source { kDefault, kDotenv, kEnvironment, kFlag };
std::string_view ToString(Source source);

struct Config {
  // ElevenLabs (names and meanings kept from the original services).
  std::string elevenlabs_api_key;  // secret; empty = not configured
  std::string elevenlabs_agent_id;
  std::string elevenlabs_agent_phone_number_id;
  std::string elevenlabs_from_number;                             // E.164 or empty
  std::string elevenlabs_webhook_secret;                          // secret
  std::string elevenlabs_base_url = "https://api.elevenlabs.io";  // no trailing slash
  std::string elevenlabs_ca_file;  // PEM bundle trusted besides the system store; empty = none
  std::chrono::milliseconds upstream_timeout{10'000};  // per ElevenLabs REST call, retries included

  // The gateway.
  std::vector<std::string> api_keys;  // secret; API_KEYS, comma-separated
  Environment environment = Environment::kDevelopment;
  LogLevel log_level = LogLevel::kInfo;
  std::string host = "0.0.0.0";
  std::uint16_t port = 8000;  // 0 = any free port (the bound port is reported)
  // How clients reach this gateway (a tunnel or proxy), for URLs it hands out such as
  // recording_url; empty = derived from each request's Host. No trailing slash.
  std::string public_base_url;
  std::string database_url;   // as configured, e.g. "sqlite:data/callgate.db"
  std::string database_path;  // the SQLite file it resolves to
  std::string data_dir;       // DATA_DIR, default: the database file's directory
  AudioEndpoint audio_input;
  AudioEndpoint audio_output;
  std::chrono::milliseconds audio_chunk{50};             // user audio per user_audio_chunk message
  std::chrono::milliseconds audio_jitter_prebuffer{80};  // agent audio buffered before playing
  std::chrono::milliseconds audio_jitter_max{3000};      // agent audio held for playback, at most
  std::string audio_echo_cancellation = "auto";          // auto|on|off
  std::size_t max_live_sessions = 1000;                  // concurrent dialer/talk conversations

  // Server limits and timing.
  unsigned io_threads = 0;  // resolved by Load(): 0 becomes the number of cores
  std::size_t max_body_bytes = 1024U * 1024U;
  std::size_t max_header_bytes = 16U * 1024U;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds body_timeout{60'000};
  std::chrono::milliseconds shutdown_grace{10'000};
  bool insecure_no_auth = false;

  // Post-call webhooks (ELEVENLABS_WEBHOOK_SECRET may list several secrets, comma-separated,
  // while one is being rotated).
  std::chrono::seconds webhook_max_age{1800};
  std::chrono::seconds webhook_max_future{300};
  bool webhook_allow_body_only_signature = false;
  bool webhook_allow_unsigned = false;  // needed in production when no secret is set
  std::size_t webhook_max_body_bytes = 64U * 1024U * 1024U;
  std::string webhook_banner = "auto";  // auto|text|json|off
  std::vector<std::string> forward_webhook_urls;
  std::string forward_webhook_secret;  // secret
  int forward_webhook_max_attempts = 8;
  // A call that ended upstream with no post_call_transcription after this long is completed
  // from the API (reconciliation); 0 = off.
  std::chrono::seconds reconcile_after{300};

  // Bookkeeping for `callgate config`.
  std::map<std::string, Source, std::less<>> sources;  // variable name -> source of its value
  std::string dotenv_path;                             // the .env file that was read, empty if none

  bool HostIsLoopback() const;
};

// A configuration problem. `variable` is the setting's name (e.g. "PORT") or, for a .env syntax
// error, "<path>:<line>". `message` says what was wrong and what is expected; it never contains a
// secret value.
struct ConfigError {
  std::string variable;
  std::string message;
  std::string ToString() const;  // "PORT: must be ..., got '70000'"-style single line
};

// Lets Result<T>::value() compile: with a custom error type, boost::system::result finds this by
// argument-dependent lookup. It throws std::runtime_error(error.ToString()).
[[noreturn]] void throw_exception_from_error(  // NOLINT(readability-identifier-naming)
    const ConfigError& error, const boost::source_location& location);

template <class T>
using Result = boost::system::result<T, ConfigError>;

// The three raw sources. Keys are variable names ("PORT"), values are raw strings.
struct Inputs {
  std::map<std::string, std::string, std::less<>> flags;
  std::map<std::string, std::string, std::less<>> environment;
  std::map<std::string, std::string, std::less<>> dotenv;
  std::string dotenv_path;  // for messages and `callgate config`
};

// .env syntax: blank lines, '#' comments (whole-line, or after whitespace in an unquoted value),
// an optional `export ` prefix, KEY=VALUE split at the first '=', single quotes (literal),
// double quotes (\n \t \" \\ escapes; may span lines), whitespace trimmed around unquoted values.
// A line that is not KEY=VALUE or an unterminated quote is an error naming the line.
Result<std::map<std::string, std::string, std::less<>>> ParseDotenv(std::string_view text,
                                                                    std::string_view path);

// Reads and parses a .env file. A missing file is an error only when `required` (an explicit
// --env-file); otherwise it yields an empty map.
Result<std::map<std::string, std::string, std::less<>>> ReadDotenvFile(const std::string& path,
                                                                       bool required);

// The process environment (only the variables this module knows).
std::map<std::string, std::string, std::less<>> CaptureEnvironment();

// Merges the sources by precedence, applies defaults and validates every value.
Result<Config> Load(const Inputs& inputs);

// Secure by default: refuses to serve with no API_KEYS on a non-loopback HOST unless
// insecure_no_auth is set. Returns the error to print, or nothing when it is safe to start.
std::optional<ConfigError> CheckServeSecurity(const Config& config);

// Static description of every setting, for env.example, `callgate config` and --help.
struct SettingInfo {
  std::string_view name;           // "PORT"
  std::string_view default_value;  // as text; "" when empty by default
  std::string_view description;    // one line
  bool secret = false;
};
const std::vector<SettingInfo>& AllSettings();

// The effective configuration for display: every setting, its value (secrets shown only as
// "<set>" / "<not set>"), and where it came from.
struct DescribedSetting {
  std::string name;
  std::string value;
  Source source = Source::kDefault;
  bool secret = false;
};
std::vector<DescribedSetting> Describe(const Config& config);

}  // namespace callgate::config
