// The catalogue of settings and the small renderers that go with it.
#include <cstdlib>
#include <stdexcept>

#include "config/config.hpp"

namespace callgate::config {

std::string_view ToString(Environment env) {
  switch (env) {
    case Environment::kDevelopment:
      return "development";
    case Environment::kProduction:
      return "production";
  }
  return "unknown";
}

std::string_view ToString(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return "trace";
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
    case LogLevel::kCritical:
      return "critical";
  }
  return "unknown";
}

std::string_view ToString(Source source) {
  switch (source) {
    case Source::kDefault:
      return "default";
    case Source::kDotenv:
      return ".env";
    case Source::kEnvironment:
      return "environment";
    case Source::kFlag:
      return "flag";
  }
  return "unknown";
}

std::string AudioEndpoint::ToString() const {
  switch (kind) {
    case Kind::kDevice:
      return target.empty() ? std::string("device") : "device:" + target;
    case Kind::kFile:
      return "file:" + target;
    case Kind::kNull:
      return "null";
  }
  return "unknown";
}

std::string ConfigError::ToString() const {
  return variable + ": " + message;
}

void throw_exception_from_error(const ConfigError& error,
                                const boost::source_location& /*location*/) {
  throw std::runtime_error(error.ToString());
}

const std::vector<SettingInfo>& AllSettings() {
  // The order here is the order of validation (the first error wins), of `callgate config`
  // and of env.example. The names are shared with the older Python services: never rename one.
  static const std::vector<SettingInfo> settings = {
      // ElevenLabs
      {"ELEVENLABS_API_KEY", "", "ElevenLabs API key sent upstream as xi-api-key", true},
      {"ELEVENLABS_AGENT_ID", "", "Agent used when a request does not name one", false},
      {"ELEVENLABS_AGENT_PHONE_NUMBER_ID", "",
       "ElevenLabs phone number id that places outbound calls (preferred over "
       "ELEVENLABS_FROM_NUMBER)",
       false},
      {"ELEVENLABS_FROM_NUMBER", "",
       "Caller number in E.164 form such as +15551234567, resolved to a phone number id when "
       "ELEVENLABS_AGENT_PHONE_NUMBER_ID is empty",
       false},
      {"ELEVENLABS_WEBHOOK_SECRET", "", "HMAC secret that signs ElevenLabs post-call webhooks",
       true},
      {"ELEVENLABS_BASE_URL", "https://api.elevenlabs.io",
       "ElevenLabs API base URL: a regional host, or a local simulator", false},
      {"ELEVENLABS_CA_FILE", "",
       "PEM CA bundle trusted for ELEVENLABS_BASE_URL besides the system store (empty = none)",
       false},
      {"UPSTREAM_TIMEOUT_MS", "10000",
       "Milliseconds an ElevenLabs REST call may take, retries included, before a 504", false},
      // Gateway
      {"API_KEYS", "",
       "Comma-separated keys clients must send as X-API-Key or Authorization: Bearer", true},
      {"ENVIRONMENT", "development", "development or production", false},
      {"LOG_LEVEL", "info", "trace, debug, info, warning (or warn), error or critical", false},
      {"HOST", "0.0.0.0", "Address to listen on: an IPv4 or IPv6 address, or localhost", false},
      {"PORT", "8000", "TCP port to listen on (0 = any free port)", false},
      {"PUBLIC_BASE_URL", "",
       "URL clients reach this gateway at (tunnel or proxy), for recording_url; empty = the "
       "request's Host",
       false},
      // Storage
      {"DATABASE_URL", "sqlite:data/callgate.db",
       "Call ledger database: sqlite:RELATIVE/PATH or sqlite:///ABSOLUTE/PATH", false},
      {"DATA_DIR", "",
       "Directory for other files such as recordings (empty = the database file's directory)",
       false},
      // Audio
      {"AUDIO_INPUT", "device", "Microphone: device, device:NAME, file:PATH or null", false},
      {"AUDIO_OUTPUT", "device", "Speakers: device, device:NAME, file:PATH or null", false},
      {"AUDIO_CHUNK_MS", "50", "Milliseconds of user audio per user_audio_chunk message (10-1000)",
       false},
      {"AUDIO_JITTER_PREBUFFER_MS", "80",
       "Milliseconds of agent audio buffered before it plays: slack against network jitter, paid "
       "in latency (0-1000)",
       false},
      {"AUDIO_JITTER_MAX_MS", "3000",
       "Most agent audio held for playback, in milliseconds; the oldest is dropped beyond it "
       "(the prebuffer + 100 to 60000)",
       false},
      {"AUDIO_ECHO_CANCELLATION", "auto",
       "auto (on when both ends are devices), on or off: keeps the agent from hearing itself",
       false},
      {"MAX_LIVE_SESSIONS", "1000", "Live conversations (dialer and talk) at once", false},
      // Server limits
      {"IO_THREADS", "0", "I/O threads (0 = one per CPU core), at most 256", false},
      {"MAX_BODY_BYTES", "1048576", "Default limit on a request body, in bytes (413 beyond)",
       false},
      {"MAX_HEADER_BYTES", "16384", "Limit on a request's headers, in bytes (431 beyond)", false},
      {"HEADER_TIMEOUT_MS", "10000",
       "Milliseconds a client has to send its request headers (408 beyond)", false},
      {"IDLE_TIMEOUT_MS", "60000",
       "Milliseconds a keep-alive connection may stay idle before it is closed", false},
      {"BODY_TIMEOUT_MS", "60000", "Milliseconds a client has to send a request body", false},
      {"SHUTDOWN_GRACE_MS", "10000",
       "Milliseconds SIGTERM waits for in-flight requests before closing them", false},
      {"INSECURE_NO_AUTH", "false",
       "true to allow serving with no API_KEYS on a non-loopback HOST (anyone could place calls)",
       false},
      // Post-call webhooks
      {"WEBHOOK_MAX_AGE_SECONDS", "1800",
       "Oldest accepted ElevenLabs-Signature timestamp, in seconds (replays beyond are refused)",
       false},
      {"WEBHOOK_MAX_FUTURE_SECONDS", "300",
       "Furthest-ahead accepted signature timestamp, in seconds (clock skew)", false},
      {"WEBHOOK_ALLOW_BODY_ONLY_SIGNATURE", "false",
       "true to also accept the older HMAC of the body alone (cannot stop replays)", false},
      {"WEBHOOK_ALLOW_UNSIGNED", "false",
       "true to accept unsigned webhooks in production when ELEVENLABS_WEBHOOK_SECRET is empty",
       false},
      {"WEBHOOK_MAX_BODY_BYTES", "67108864",
       "Largest webhook body, in bytes (post_call_audio carries the recording in base64)", false},
      {"WEBHOOK_BANNER", "auto",
       "Terminal output per webhook: auto (text in development, JSON in production), text, json "
       "or off",
       false},
      {"FORWARD_WEBHOOK_URLS", "",
       "Comma-separated URLs each stored webhook event is forwarded to (n8n and the like)", false},
      {"FORWARD_WEBHOOK_SECRET", "",
       "HMAC secret that signs forwarded events (ElevenLabs-Signature form)", true},
      {"FORWARD_WEBHOOK_MAX_ATTEMPTS", "8",
       "Tries per forwarded event before it is dead-lettered (replay it later)", false},
      {"RECONCILE_AFTER_SECONDS", "300",
       "Seconds after a call ends before a missing post-call webhook is fetched from the API "
       "instead (0 = never)",
       false},
  };
  return settings;
}

std::map<std::string, std::string, std::less<>> CaptureEnvironment() {
  std::map<std::string, std::string, std::less<>> captured;
  for (const SettingInfo& setting : AllSettings()) {
    const std::string name(setting.name);
    // Set-but-empty is kept: an empty variable deliberately overrides the .env file.
    // getenv is only unsafe against a concurrent setenv, which callgate never does.
    if (const char* value = std::getenv(name.c_str());  // NOLINT(concurrency-mt-unsafe)
        value != nullptr) {
      captured.emplace(name, value);
    }
  }
  return captured;
}

}  // namespace callgate::config
