// Load(): merging the sources, validating every value, and rendering the result for display.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <thread>
#include <utility>

#include <boost/url/parse.hpp>
#include <boost/url/scheme.hpp>
#include <boost/url/url_view.hpp>

#include "config/config.hpp"

namespace callgate::config {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool IsControl(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return byte < 0x20 || byte == 0x7f;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && IsSpace(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

char AsciiLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return AsciiLower(x) == AsciiLower(y);
         });
}

bool IStartsWith(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && IEquals(text.substr(0, prefix.size()), prefix);
}

// Replaces the password of a "scheme://user:pass@host" URL by "***", so that a URL can be shown
// (in an error or by `callgate config`) without leaking a credential.
std::string RedactUserinfo(std::string_view url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return std::string(url);
  }
  const std::size_t authority_begin = scheme_end + 3;
  std::size_t authority_end = url.find_first_of("/?#", authority_begin);
  if (authority_end == std::string_view::npos) {
    authority_end = url.size();
  }
  const std::string_view authority = url.substr(authority_begin, authority_end - authority_begin);
  const std::size_t at = authority.rfind('@');
  if (at == std::string_view::npos) {
    return std::string(url);
  }
  const std::size_t colon = authority.substr(0, at).find(':');
  if (colon == std::string_view::npos) {
    return std::string(url);
  }
  std::string redacted(url.substr(0, authority_begin + colon + 1));
  redacted += "***";
  redacted += url.substr(authority_begin + at);
  return redacted;
}

// Quotes a (non-secret) value for an error message, keeping the message on one line.
std::string Quote(std::string_view value) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::string quoted = "'";
  for (const char c : value) {
    if (c == '\n') {
      quoted += "\\n";
    } else if (c == '\r') {
      quoted += "\\r";
    } else if (c == '\t') {
      quoted += "\\t";
    } else if (IsControl(c)) {
      const auto byte = static_cast<unsigned char>(c);
      quoted += "\\x";
      quoted += kHex[byte >> 4U];
      quoted += kHex[byte & 0xfU];
    } else {
      quoted += c;
    }
  }
  quoted += "'";
  return quoted;
}

ConfigError Invalid(std::string_view name, std::string message) {
  return ConfigError{std::string(name), std::move(message)};
}

// Digits only: no sign, no spaces inside, no suffix; anything else is a typo we should report.
std::optional<std::uint64_t> ParseWhole(std::string_view text, std::uint64_t min,
                                        std::uint64_t max) {
  text = Trim(text);
  if (text.empty() || text.front() < '0' || text.front() > '9') {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  if (value < min || value > max) {
    return std::nullopt;
  }
  return value;
}

std::optional<ConfigError> ParseNumber(std::string_view name, std::string_view raw,
                                       std::uint64_t min, std::uint64_t max, std::string_view unit,
                                       std::uint64_t& out) {
  const auto value = ParseWhole(raw, min, max);
  if (!value) {
    return Invalid(name, "must be a whole number" + std::string(unit) + " from " +
                             std::to_string(min) + " to " + std::to_string(max) + ", got " +
                             Quote(raw));
  }
  out = *value;
  return std::nullopt;
}

std::optional<ConfigError> ParseMilliseconds(std::string_view name, std::string_view raw,
                                             std::uint64_t min, std::chrono::milliseconds& out) {
  constexpr std::uint64_t kHour = 3'600'000;
  std::uint64_t value = 0;
  if (auto error = ParseNumber(name, raw, min, kHour, " of milliseconds", value)) {
    return error;
  }
  out = std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(value));
  return std::nullopt;
}

// Milliseconds within [min, max]; `bound` explains a lower bound that depends on another
// setting, e.g. " (AUDIO_JITTER_PREBUFFER_MS + 100)".
std::optional<ConfigError> ParseMillisecondsIn(std::string_view name, std::string_view raw,
                                               std::int64_t min, std::int64_t max,
                                               std::chrono::milliseconds& out,
                                               std::string_view bound = {}) {
  if (auto error = ParseMilliseconds(name, raw, 0, out)) return error;
  if (out.count() < min || out.count() > max) {
    return Invalid(name, "must be from " + std::to_string(min) + std::string(bound) + " to " +
                             std::to_string(max) + " milliseconds, got " + Quote(raw));
  }
  return std::nullopt;
}

std::optional<ConfigError> ParseBytes(std::string_view name, std::string_view raw,
                                      std::uint64_t max, std::size_t& out) {
  std::uint64_t value = 0;
  if (auto error = ParseNumber(name, raw, 1024, max, " of bytes", value)) {
    return error;
  }
  out = static_cast<std::size_t>(value);
  return std::nullopt;
}

bool IsE164(std::string_view number) {
  // ^\+[1-9][0-9]{1,14}$
  if (number.size() < 3 || number.size() > 16 || number[0] != '+') {
    return false;
  }
  if (number[1] < '1' || number[1] > '9') {
    return false;
  }
  return std::all_of(number.begin() + 2, number.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<ConfigError> ParseFromNumber(std::string_view name, std::string_view raw,
                                           Config& config) {
  const std::string_view number = Trim(raw);
  if (!number.empty() && !IsE164(number)) {
    return Invalid(name,
                   "must be a phone number in E.164 form such as +15551234567 ('+', country code "
                   "and number, no spaces or dashes), or empty, got " +
                       Quote(raw));
  }
  config.elevenlabs_from_number = number;
  return std::nullopt;
}

// Empty when `url` is acceptable, otherwise the reason it is not.
std::string_view BaseUrlProblem(std::string_view url) {
  const auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) {
    return "not an absolute URL";
  }
  const boost::urls::url_view& view = *parsed;
  if (view.scheme_id() != boost::urls::scheme::http &&
      view.scheme_id() != boost::urls::scheme::https) {
    return "the scheme must be http or https";
  }
  if (!view.has_authority() || view.encoded_host().empty()) {
    return "no host";
  }
  if (view.has_userinfo()) {
    return "credentials are not allowed in it";
  }
  if (view.has_port()) {
    // port_number() wraps around past 65535, so check the digits themselves.
    const auto port = ParseWhole(view.port(), 1, 65535);
    if (!port) {
      return "the port must be from 1 to 65535";
    }
  }
  if (view.has_query()) {
    return "a query is not allowed";
  }
  if (view.has_fragment()) {
    return "a fragment is not allowed";
  }
  if (!view.encoded_path().empty() && view.encoded_path() != "/") {
    return "a path is not allowed";
  }
  return {};
}

std::optional<ConfigError> ParseBaseUrl(std::string_view name, std::string_view raw,
                                        Config& config) {
  std::string_view url = Trim(raw);
  if (const std::string_view problem = BaseUrlProblem(url); !problem.empty()) {
    return Invalid(name, "must be an http(s) URL such as https://api.elevenlabs.io (" +
                             std::string(problem) + "), got " + Quote(RedactUserinfo(raw)));
  }
  // Callers append "/v1/...", so the one slash a root path may carry has to go.
  if (url.ends_with('/')) {
    url.remove_suffix(1);
  }
  config.elevenlabs_base_url = url;
  return std::nullopt;
}

std::optional<ConfigError> ParseSeconds(std::string_view name, std::string_view raw,
                                        std::uint64_t min, std::uint64_t max,
                                        std::chrono::seconds& out) {
  std::uint64_t value = 0;
  if (auto error = ParseNumber(name, raw, min, max, " of seconds", value)) return error;
  out = std::chrono::seconds(static_cast<std::chrono::seconds::rep>(value));
  return std::nullopt;
}

std::string AsciiLowerCopy(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::optional<ConfigError> ParseForwardUrls(std::string_view name, std::string_view raw,
                                            Config& config) {
  std::vector<std::string> urls;
  std::size_t begin = 0;
  while (begin <= raw.size()) {
    std::size_t end = raw.find(',', begin);
    if (end == std::string_view::npos) end = raw.size();
    const std::string_view item = Trim(raw.substr(begin, end - begin));
    if (!item.empty()) {
      const auto parsed = boost::urls::parse_absolute_uri(item);
      if (!parsed || (parsed->scheme() != "http" && parsed->scheme() != "https") ||
          parsed->host().empty()) {
        return Invalid(name, "item " + std::to_string(urls.size() + 1) +
                                 " must be an http(s) URL, got " + Quote(RedactUserinfo(item)));
      }
      urls.emplace_back(item);
    }
    begin = end + 1;
  }
  config.forward_webhook_urls = std::move(urls);
  return std::nullopt;
}

std::optional<ConfigError> ParseCaFile(std::string_view name, std::string_view raw,
                                       Config& config) {
  const std::string path(Trim(raw));
  if (!path.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      return Invalid(name, "must be a readable PEM file, got " + Quote(path) + " (no such file)");
    }
  }
  config.elevenlabs_ca_file = path;
  return std::nullopt;
}

std::optional<ConfigError> ParsePublicBaseUrl(std::string_view name, std::string_view raw,
                                              Config& config) {
  std::string_view url = Trim(raw);
  if (url.empty()) {
    config.public_base_url.clear();
    return std::nullopt;
  }
  const auto parsed = boost::urls::parse_absolute_uri(url);
  const bool http = parsed && (parsed->scheme() == "http" || parsed->scheme() == "https");
  if (!http || parsed->host().empty() || parsed->has_query() || parsed->has_fragment() ||
      parsed->has_userinfo()) {
    return Invalid(name,
                   "must be an http(s) URL without query, fragment or credentials, such as "
                   "https://abc.ngrok.app or https://example.com/callgate, got " +
                       Quote(RedactUserinfo(raw)));
  }
  while (url.ends_with('/'))
    url.remove_suffix(1);
  config.public_base_url = url;
  return std::nullopt;
}

std::optional<ConfigError> ParseApiKeys(std::string_view name, std::string_view raw,
                                        Config& config) {
  // Positions count the keys that are left once empty items are dropped; the keys themselves
  // are secrets and never appear in a message.
  std::vector<std::string> keys;
  std::size_t begin = 0;
  while (begin <= raw.size()) {
    std::size_t end = raw.find(',', begin);
    if (end == std::string_view::npos) {
      end = raw.size();
    }
    const std::string_view key = Trim(raw.substr(begin, end - begin));
    begin = end + 1;
    if (key.empty()) {
      continue;
    }
    const std::string position = "key #" + std::to_string(keys.size() + 1);
    if (std::any_of(key.begin(), key.end(), IsSpace)) {
      return Invalid(name, position +
                               " contains whitespace; keys are separated by commas and may not "
                               "contain spaces or control characters");
    }
    if (std::any_of(key.begin(), key.end(), IsControl)) {
      return Invalid(name, position +
                               " contains a control character; keys are separated by commas and "
                               "may not contain spaces or control characters");
    }
    keys.emplace_back(key);
  }
  config.api_keys = std::move(keys);
  return std::nullopt;
}

std::optional<ConfigError> ParseEnvironment(std::string_view name, std::string_view raw,
                                            Config& config) {
  const std::string_view value = Trim(raw);
  if (IEquals(value, "development")) {
    config.environment = Environment::kDevelopment;
  } else if (IEquals(value, "production")) {
    config.environment = Environment::kProduction;
  } else {
    return Invalid(name, "must be development or production, got " + Quote(raw));
  }
  return std::nullopt;
}

std::optional<ConfigError> ParseLogLevel(std::string_view name, std::string_view raw,
                                         Config& config) {
  static constexpr std::array<std::pair<std::string_view, LogLevel>, 7> kLevels = {{
      {"trace", LogLevel::kTrace},
      {"debug", LogLevel::kDebug},
      {"info", LogLevel::kInfo},
      {"warning", LogLevel::kWarning},
      {"warn", LogLevel::kWarning},
      {"error", LogLevel::kError},
      {"critical", LogLevel::kCritical},
  }};
  const std::string_view value = Trim(raw);
  for (const auto& [level_name, level] : kLevels) {
    if (IEquals(value, level_name)) {
      config.log_level = level;
      return std::nullopt;
    }
  }
  return Invalid(
      name,
      "must be one of trace, debug, info, warning (or warn), error, critical, got " + Quote(raw));
}

bool IsIpv4(const std::string& text) {
  in_addr address{};
  return ::inet_pton(AF_INET, text.c_str(), &address) == 1;
}

bool IsIpv6(const std::string& text) {
  in6_addr address{};
  return ::inet_pton(AF_INET6, text.c_str(), &address) == 1;
}

std::optional<ConfigError> ParseHost(std::string_view name, std::string_view raw, Config& config) {
  const std::string_view value = Trim(raw);
  std::optional<std::string> host;
  if (IEquals(value, "localhost")) {
    host = "localhost";
  } else if (value.size() > 2 && value.front() == '[' && value.back() == ']') {
    // "[::1]" is how an IPv6 address is written next to a port; accept it here too.
    std::string inner(value.substr(1, value.size() - 2));
    if (IsIpv6(inner)) {
      host = std::move(inner);
    }
  } else if (std::string literal(value); IsIpv4(literal) || IsIpv6(literal)) {
    host = std::move(literal);
  }
  if (!host) {
    return Invalid(name,
                   "must be an IPv4 or IPv6 address such as 0.0.0.0, 127.0.0.1 or ::1, or "
                   "localhost (host names are not resolved), got " +
                       Quote(raw));
  }
  config.host = std::move(*host);
  return std::nullopt;
}

std::optional<ConfigError> ParsePort(std::string_view name, std::string_view raw, Config& config) {
  std::uint64_t port = 0;
  if (auto error = ParseNumber(name, raw, 0, 65535, "", port)) {
    return error;
  }
  config.port = static_cast<std::uint16_t>(port);
  return std::nullopt;
}

// Some other URL scheme ("postgres://...", "mysql:..."), as opposed to a bare file path.
bool HasScheme(std::string_view text) {
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon < 2) {
    return false;  // 1 letter: a drive, not ours
  }
  const auto is_alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!is_alpha(text[0])) {
    return false;
  }
  return std::all_of(
      text.begin() + 1, text.begin() + static_cast<std::ptrdiff_t>(colon), [&](char c) {
        return is_alpha(c) || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
      });
}

std::optional<ConfigError> ParseDatabaseUrl(std::string_view name, std::string_view raw,
                                            Config& config) {
  const std::string_view url = Trim(raw);
  std::string_view path = url;
  // "sqlite:///abs" leaves "/abs", so the absolute form needs no rule of its own.
  if (IStartsWith(url, "sqlite://")) {
    path.remove_prefix(9);
  } else if (IStartsWith(url, "sqlite:")) {
    path.remove_prefix(7);
  } else if (HasScheme(url)) {
    return Invalid(name,
                   "only SQLite is supported: use sqlite:PATH (such as "
                   "sqlite:data/callgate.db), got " +
                       Quote(RedactUserinfo(raw)));
  }
  if (path.empty() || path == ":memory:") {
    return Invalid(name,
                   "must name a SQLite database file, such as sqlite:data/callgate.db or "
                   "sqlite:///var/lib/callgate/callgate.db (an in-memory database would lose the "
                   "call ledger), got " +
                       Quote(RedactUserinfo(raw)));
  }
  config.database_url = url;
  config.database_path = path;
  return std::nullopt;
}

std::optional<ConfigError> ParseDataDir(std::string_view /*name*/, std::string_view raw,
                                        Config& config) {
  const std::string_view dir = Trim(raw);
  if (!dir.empty()) {
    config.data_dir = dir;
    return std::nullopt;
  }
  // Empty means "next to the database" (env.example ships DATA_DIR= for exactly this reason);
  // DATABASE_URL comes earlier in AllSettings(), so database_path is already resolved.
  const std::filesystem::path parent = std::filesystem::path(config.database_path).parent_path();
  config.data_dir = parent.empty() ? std::string(".") : parent.string();
  return std::nullopt;
}

std::optional<ConfigError> ParseAudio(std::string_view name, std::string_view raw,
                                      AudioEndpoint& out) {
  const std::string_view value = Trim(raw);
  AudioEndpoint endpoint;
  if (IEquals(value, "device")) {
    endpoint = {AudioEndpoint::Kind::kDevice, ""};
  } else if (IEquals(value, "null")) {
    endpoint = {AudioEndpoint::Kind::kNull, ""};
  } else if (IStartsWith(value, "device:")) {
    endpoint = {AudioEndpoint::Kind::kDevice, std::string(value.substr(7))};
    if (endpoint.target.empty()) {
      return Invalid(name,
                     "device: needs a device name (device:NAME), or use device for the default "
                     "device, got " +
                         Quote(raw));
    }
  } else if (IStartsWith(value, "file:")) {
    endpoint = {AudioEndpoint::Kind::kFile, std::string(value.substr(5))};
    if (endpoint.target.empty()) {
      return Invalid(name, "file: needs a path (file:PATH), got " + Quote(raw));
    }
  } else {
    return Invalid(name,
                   "must be one of device, device:NAME, file:PATH or null, got " + Quote(raw));
  }
  out = std::move(endpoint);
  return std::nullopt;
}

std::optional<ConfigError> ParseIoThreads(std::string_view name, std::string_view raw,
                                          Config& config) {
  std::uint64_t threads = 0;
  if (auto error = ParseNumber(name, raw, 0, 256, "", threads)) {
    return error;
  }
  if (threads == 0) {
    threads = std::max(1U, std::thread::hardware_concurrency());
  }
  config.io_threads = static_cast<unsigned>(threads);
  return std::nullopt;
}

std::optional<ConfigError> ParseBool(std::string_view name, std::string_view raw, bool& out) {
  const std::string_view value = Trim(raw);
  for (const std::string_view yes : {"true", "1", "yes", "on"}) {
    if (IEquals(value, yes)) {
      out = true;
      return std::nullopt;
    }
  }
  for (const std::string_view no : {"false", "0", "no", "off"}) {
    if (IEquals(value, no)) {
      out = false;
      return std::nullopt;
    }
  }
  return Invalid(name,
                 "must be true or false (1/0, yes/no and on/off also work), got " + Quote(raw));
}

std::string CountKeys(std::size_t count) {
  if (count == 0) {
    return "<not set>";
  }
  return "<" + std::to_string(count) + (count == 1 ? " key>" : " keys>");
}

std::string SetOrNot(const std::string& secret) {
  return secret.empty() ? "<not set>" : "<set>";
}

std::string Milliseconds(std::chrono::milliseconds value) {
  return std::to_string(value.count());
}

using Parser = std::optional<ConfigError> (*)(std::string_view name, std::string_view raw,
                                              Config& config);
using Renderer = std::string (*)(const Config& config);

// How to read a setting into a Config and how to show it again. One entry per AllSettings()
// name; Load() and Describe() walk AllSettings() and look the entry up here.
struct Codec {
  std::string_view name;
  Parser parse;
  Renderer render;
};

std::optional<ConfigError> SetString(std::string_view raw, std::string& out) {
  out = Trim(raw);
  return std::nullopt;
}

constexpr std::array<Codec, 41> kCodecs = {{
    {"ELEVENLABS_API_KEY",
     [](std::string_view, std::string_view raw, Config& c) {
       return SetString(raw, c.elevenlabs_api_key);
     },
     [](const Config& c) { return SetOrNot(c.elevenlabs_api_key); }},
    {"ELEVENLABS_AGENT_ID",
     [](std::string_view, std::string_view raw, Config& c) {
       return SetString(raw, c.elevenlabs_agent_id);
     },
     [](const Config& c) { return c.elevenlabs_agent_id; }},
    {"ELEVENLABS_AGENT_PHONE_NUMBER_ID",
     [](std::string_view, std::string_view raw, Config& c) {
       return SetString(raw, c.elevenlabs_agent_phone_number_id);
     },
     [](const Config& c) { return c.elevenlabs_agent_phone_number_id; }},
    {"ELEVENLABS_FROM_NUMBER", ParseFromNumber,
     [](const Config& c) { return c.elevenlabs_from_number; }},
    {"ELEVENLABS_WEBHOOK_SECRET",
     // Trimmed like the API key: a stray newline from copy-and-paste would otherwise make every
     // signature check fail with no clue why.
     [](std::string_view, std::string_view raw, Config& c) {
       return SetString(raw, c.elevenlabs_webhook_secret);
     },
     [](const Config& c) { return SetOrNot(c.elevenlabs_webhook_secret); }},
    {"ELEVENLABS_BASE_URL", ParseBaseUrl, [](const Config& c) { return c.elevenlabs_base_url; }},
    {"ELEVENLABS_CA_FILE", ParseCaFile, [](const Config& c) { return c.elevenlabs_ca_file; }},
    {"UPSTREAM_TIMEOUT_MS",
     [](std::string_view name, std::string_view raw, Config& c) {
       return ParseMilliseconds(name, raw, 100, c.upstream_timeout);
     },
     [](const Config& c) { return Milliseconds(c.upstream_timeout); }},
    {"API_KEYS", ParseApiKeys, [](const Config& c) { return CountKeys(c.api_keys.size()); }},
    {"ENVIRONMENT", ParseEnvironment,
     [](const Config& c) { return std::string(ToString(c.environment)); }},
    {"LOG_LEVEL", ParseLogLevel,
     [](const Config& c) { return std::string(ToString(c.log_level)); }},
    {"HOST", ParseHost, [](const Config& c) { return c.host; }},
    {"PORT", ParsePort, [](const Config& c) { return std::to_string(c.port); }},
    {"PUBLIC_BASE_URL", ParsePublicBaseUrl, [](const Config& c) { return c.public_base_url; }},
    {"DATABASE_URL", ParseDatabaseUrl,
     [](const Config& c) { return RedactUserinfo(c.database_url); }},
    {"DATA_DIR", ParseDataDir, [](const Config& c) { return c.data_dir; }},
    {"AUDIO_INPUT",
     [](std::string_view name, std::string_view raw, Config& c) {
       return ParseAudio(name, raw, c.audio_input);
     },
     [](const Config& c) { return c.audio_input.ToString(); }},
    {"AUDIO_OUTPUT",
     [](std::string_view name, std::string_view raw, Config& c) {
       return ParseAudio(name, raw, c.audio_output);
     },
     [](const Config& c) { return c.audio_output.ToString(); }},
    {"AUDIO_CHUNK_MS",
     [](std::string_view name, std::string_view raw, Config& c) {
       return ParseMillisecondsIn(name, raw, 10, 1000, c.audio_chunk);
     },
     [](const Config& c) { return Milliseconds(c.audio_chunk); }},
    {"AUDIO_JITTER_PREBUFFER_MS",
     [](std::string_view name, std::string_view raw, Config& c) {
       return ParseMillisecondsIn(name, raw, 0, 1000, c.audio_jitter_prebuffer);
     },
     [](const Config& c) { return Milliseconds(c.audio_jitter_prebuffer); }},
    {"AUDIO_JITTER_MAX_MS",  // after the prebuffer, which it must exceed
     [](std::string_view name, std::string_view raw, Config& c) {
       return ParseMillisecondsIn(name, raw, c.audio_jitter_prebuffer.count() + 100, 60'000,
                                  c.audio_jitter_max, " (AUDIO_JITTER_PREBUFFER_MS + 100)");
     },
     [](const Config& c) { return Milliseconds(c.audio_jitter_max); }},
    {"AUDIO_ECHO_CANCELLATION",
     [](std::string_view name, std::string_view raw, Config& c) -> std::optional<ConfigError> {
       const std::string value = AsciiLowerCopy(Trim(raw));
       if (value != "auto" && value != "on" && value != "off") {
         return Invalid(name, "must be auto, on or off, got " + Quote(raw));
       }
       c.audio_echo_cancellation = value;
       return std::nullopt;
     },
     [](const Config& c) { return c.audio_echo_cancellation; }},
    {"MAX_LIVE_SESSIONS",
     [](std::string_view name, std::string_view raw, Config& c) -> std::optional<ConfigError> {
       std::uint64_t value = 0;
       if (auto error = ParseNumber(name, raw, 1, 100000, "", value)) return error;
       c.max_live_sessions = static_cast<std::size_t>(value);
       return std::nullopt;
     },
     [](const Config& c) { return std::to_string(c.max_live_sessions); }},
    {"IO_THREADS", ParseIoThreads, [](const Config& c) { return std::to_string(c.io_threads); }},
    {"MAX_BODY_BYTES",
     [](std::string_view name, std::string_view raw, Config& c) {
       return ParseBytes(name, raw, 1024ULL * 1024 * 1024, c.max_body_bytes);
     },
     [](const Config& c) { return std::to_string(c.max_body_bytes); }},
    {"MAX_HEADER_BYTES",
     [](std::string_view name, std::string_view raw, Config& c) {
       return ParseBytes(name, raw, 1024ULL * 1024, c.max_header_bytes);
     },
     [](const Config& c) { return std::to_string(c.max_header_bytes); }},
    {"HEADER_TIMEOUT_MS",
     [](std::string_view name, std::string_view raw, Config& c) {
       return ParseMilliseconds(name, raw, 50, c.header_timeout);
     },
     [](const Config& c) { return Milliseconds(c.header_timeout); }},
    {"IDLE_TIMEOUT_MS",
     [](std::string_view name, std::string_view raw, Config& c) {
       return ParseMilliseconds(name, raw, 50, c.idle_timeout);
     },
     [](const Config& c) { return Milliseconds(c.idle_timeout); }},
    {"BODY_TIMEOUT_MS",
     [](std::string_view name, std::string_view raw, Config& c) {
       return ParseMilliseconds(name, raw, 50, c.body_timeout);
     },
     [](const Config& c) { return Milliseconds(c.body_timeout); }},
    {"SHUTDOWN_GRACE_MS",
     [](std::string_view name, std::string_view raw, Config& c) {
       return ParseMilliseconds(name, raw, 0, c.shutdown_grace);
     },
     [](const Config& c) { return Milliseconds(c.shutdown_grace); }},
    {"INSECURE_NO_AUTH",
     [](std::string_view name, std::string_view raw, Config& c) {
       return ParseBool(name, raw, c.insecure_no_auth);
     },
     [](const Config& c) { return std::string(c.insecure_no_auth ? "true" : "false"); }},
    {"WEBHOOK_MAX_AGE_SECONDS",
     [](std::string_view name, std::string_view raw, Config& c) {
       return ParseSeconds(name, raw, 1, 7 * 24 * 3600, c.webhook_max_age);
     },
     [](const Config& c) { return std::to_string(c.webhook_max_age.count()); }},
    {"WEBHOOK_MAX_FUTURE_SECONDS",
     [](std::string_view name, std::string_view raw, Config& c) {
       return ParseSeconds(name, raw, 0, 24 * 3600, c.webhook_max_future);
     },
     [](const Config& c) { return std::to_string(c.webhook_max_future.count()); }},
    {"WEBHOOK_ALLOW_BODY_ONLY_SIGNATURE",
     [](std::string_view name, std::string_view raw, Config& c) {
       return ParseBool(name, raw, c.webhook_allow_body_only_signature);
     },
     [](const Config& c) {
       return std::string(c.webhook_allow_body_only_signature ? "true" : "false");
     }},
    {"WEBHOOK_ALLOW_UNSIGNED",
     [](std::string_view name, std::string_view raw, Config& c) {
       return ParseBool(name, raw, c.webhook_allow_unsigned);
     },
     [](const Config& c) { return std::string(c.webhook_allow_unsigned ? "true" : "false"); }},
    {"WEBHOOK_MAX_BODY_BYTES",
     [](std::string_view name, std::string_view raw, Config& c) {
       return ParseBytes(name, raw, 1024ULL * 1024 * 1024, c.webhook_max_body_bytes);
     },
     [](const Config& c) { return std::to_string(c.webhook_max_body_bytes); }},
    {"WEBHOOK_BANNER",
     [](std::string_view name, std::string_view raw, Config& c) -> std::optional<ConfigError> {
       const std::string value = AsciiLowerCopy(Trim(raw));
       if (value != "auto" && value != "text" && value != "json" && value != "off") {
         return Invalid(name, "must be auto, text, json or off, got " + Quote(raw));
       }
       c.webhook_banner = value;
       return std::nullopt;
     },
     [](const Config& c) { return c.webhook_banner; }},
    {"FORWARD_WEBHOOK_URLS", ParseForwardUrls,
     [](const Config& c) {
       std::string out;
       for (const auto& url : c.forward_webhook_urls) {
         if (!out.empty()) out += ',';
         out += RedactUserinfo(url);
       }
       return out;
     }},
    {"FORWARD_WEBHOOK_SECRET",
     [](std::string_view, std::string_view raw, Config& c) {
       return SetString(raw, c.forward_webhook_secret);
     },
     [](const Config& c) { return SetOrNot(c.forward_webhook_secret); }},
    {"FORWARD_WEBHOOK_MAX_ATTEMPTS",
     [](std::string_view name, std::string_view raw, Config& c) -> std::optional<ConfigError> {
       std::uint64_t value = 0;
       if (auto error = ParseNumber(name, raw, 1, 100, "", value)) return error;
       c.forward_webhook_max_attempts = static_cast<int>(value);
       return std::nullopt;
     },
     [](const Config& c) { return std::to_string(c.forward_webhook_max_attempts); }},
    {"RECONCILE_AFTER_SECONDS",
     [](std::string_view name, std::string_view raw, Config& c) {
       return ParseSeconds(name, raw, 0, 7 * 24 * 3600, c.reconcile_after);
     },
     [](const Config& c) { return std::to_string(c.reconcile_after.count()); }},
}};

bool IsKnownSetting(std::string_view name) {
  return std::any_of(AllSettings().begin(), AllSettings().end(),
                     [&](const SettingInfo& setting) { return setting.name == name; });
}

const Codec* FindCodec(std::string_view name) {
  const auto it = std::find_if(kCodecs.begin(), kCodecs.end(),
                               [&](const Codec& codec) { return codec.name == name; });
  return it == kCodecs.end() ? nullptr : &*it;
}

}  // namespace

Result<Config> Load(const Inputs& inputs) {
  for (const auto& [name, value] : inputs.flags) {
    if (!IsKnownSetting(name)) {
      return ConfigError{name, "unknown setting; see `callgate config` for the list"};
    }
  }
  // Names in the environment and .env that we do not know are ignored on purpose: a .env file
  // commonly carries other tools' variables too.

  Config config;
  config.dotenv_path = inputs.dotenv_path;
  for (const SettingInfo& setting : AllSettings()) {
    // The first source that has the name wins, even with an empty value: `API_KEYS=` in the
    // environment deliberately overrides keys in .env. So "set but empty" is not "unset".
    std::string_view raw = setting.default_value;
    Source source = Source::kDefault;
    if (const auto it = inputs.flags.find(setting.name); it != inputs.flags.end()) {
      raw = it->second;
      source = Source::kFlag;
    } else if (const auto env = inputs.environment.find(setting.name);
               env != inputs.environment.end()) {
      raw = env->second;
      source = Source::kEnvironment;
    } else if (const auto dot = inputs.dotenv.find(setting.name); dot != inputs.dotenv.end()) {
      raw = dot->second;
      source = Source::kDotenv;
    }
    config.sources[std::string(setting.name)] = source;

    const Codec* codec = FindCodec(setting.name);
    if (codec == nullptr) {
      return ConfigError{std::string(setting.name), "internal error: no parser for this setting"};
    }
    if (auto error = codec->parse(setting.name, raw, config)) {
      return *std::move(error);
    }
  }
  return config;
}

std::optional<ConfigError> CheckServeSecurity(const Config& config) {
  if (!config.api_keys.empty() || config.insecure_no_auth || config.HostIsLoopback()) {
    return std::nullopt;
  }
  return ConfigError{
      "API_KEYS",
      "is empty and HOST=" + config.host +
          " is not a loopback address, so anyone who can reach port " +
          std::to_string(config.port) +
          " could place calls at your expense. Fix it with one of: set API_KEYS=<a long random "
          "key> (clients send it as X-API-Key), bind to HOST=127.0.0.1, or pass "
          "--insecure-no-auth (INSECURE_NO_AUTH=true) to accept the risk."};
}

bool Config::HostIsLoopback() const {
  std::string_view address = Trim(host);
  if (address.size() > 2 && address.front() == '[' && address.back() == ']') {
    address = address.substr(1, address.size() - 2);
  }
  if (IEquals(address, "localhost")) {
    return true;
  }
  const std::string text(address);
  std::array<unsigned char, 4> v4{};
  if (in_addr a4{}; ::inet_pton(AF_INET, text.c_str(), &a4) == 1) {
    std::memcpy(v4.data(), &a4, v4.size());
    return v4[0] == 127;
  }
  std::array<unsigned char, 16> v6{};
  if (in6_addr a6{}; ::inet_pton(AF_INET6, text.c_str(), &a6) == 1) {
    std::memcpy(v6.data(), &a6, v6.size());
    const bool high_zero = std::all_of(v6.begin(), v6.begin() + 10, [](auto b) { return b == 0; });
    const bool is_loopback = high_zero && v6[10] == 0 && v6[11] == 0 && v6[12] == 0 &&
                             v6[13] == 0 && v6[14] == 0 && v6[15] == 1;
    const bool is_mapped_loopback = high_zero && v6[10] == 0xff && v6[11] == 0xff && v6[12] == 127;
    return is_loopback || is_mapped_loopback;
  }
  return false;
}

std::vector<DescribedSetting> Describe(const Config& config) {
  std::vector<DescribedSetting> described;
  described.reserve(AllSettings().size());
  for (const SettingInfo& setting : AllSettings()) {
    DescribedSetting entry;
    entry.name = setting.name;
    if (const Codec* codec = FindCodec(setting.name); codec != nullptr) {
      entry.value = codec->render(config);
    }
    entry.secret = setting.secret;
    if (const auto it = config.sources.find(setting.name); it != config.sources.end()) {
      entry.source = it->second;
    }
    described.push_back(std::move(entry));
  }
  return described;
}

}  // namespace callgate::config
