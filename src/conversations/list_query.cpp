#include "conversations/list_query.hpp"

#include "upstream/elevenlabs.hpp"

#include <boost/url/parse_query.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <map>
#include <span>
#include <utility>
#include <vector>

namespace callgate::conversations {
namespace {

enum class Kind { kCursor, kInteger, kIdentifier, kText, kEnum, kBool };

struct Parameter {
  std::string_view name;
  Kind kind;
  bool repeatable = false;
  std::int64_t min = 0;  // kInteger
  std::int64_t max = 0;
  std::span<const std::string_view> values = {};  // kEnum
};

constexpr std::array<std::string_view, 3> kCallSuccessful{"success", "failure", "unknown"};
constexpr std::array<std::string_view, 5> kStatuses{"initiated", "in-progress", "processing",
                                                    "done", "failed"};
constexpr std::array<std::string_view, 2> kSummaryModes{"exclude", "include"};

constexpr std::size_t kMaxCursorLength = 1024;
constexpr std::size_t kMaxIdentifierLength = 256;
constexpr std::size_t kMaxTextLength = 512;
constexpr std::size_t kMaxRepeatedValues = 50;

constexpr std::array<Parameter, 26> kParameters{{
    {"cursor", Kind::kCursor},
    {"page_size", Kind::kInteger, false, 1, 100},
    {"agent_id", Kind::kIdentifier},
    {"user_id", Kind::kIdentifier},
    {"branch_id", Kind::kIdentifier},
    {"call_successful", Kind::kEnum, false, 0, 0, kCallSuccessful},
    {"call_start_before_unix", Kind::kInteger, false, 0, 99'999'999'999},
    {"call_start_after_unix", Kind::kInteger, false, 0, 99'999'999'999},
    {"call_duration_min_secs", Kind::kInteger, false, 0, 9'999'999},
    {"call_duration_max_secs", Kind::kInteger, false, 0, 9'999'999},
    {"rating_min", Kind::kInteger, false, 1, 5},
    {"rating_max", Kind::kInteger, false, 1, 5},
    {"has_feedback_comment", Kind::kBool},
    {"text_only", Kind::kBool},
    {"search", Kind::kText},
    {"summary_mode", Kind::kEnum, false, 0, 0, kSummaryModes},
    {"conversation_initiation_source", Kind::kIdentifier},
    {"conversation_product_type", Kind::kIdentifier},
    {"main_languages", Kind::kIdentifier, true},
    {"termination_reasons", Kind::kIdentifier, true},
    {"tool_names", Kind::kIdentifier, true},
    {"tool_names_successful", Kind::kIdentifier, true},
    {"tool_names_errored", Kind::kIdentifier, true},
    {"tag_ids", Kind::kIdentifier, true},
    {"topic_ids", Kind::kIdentifier, true},
    {"exclude_statuses", Kind::kEnum, true, 0, 0, kStatuses},
}};

const Parameter* FindParameter(std::string_view name) {
  for (const Parameter& parameter : kParameters) {
    if (parameter.name == name) return &parameter;
  }
  return nullptr;
}

std::string AcceptedNames() {
  std::string names;
  for (const Parameter& parameter : kParameters) {
    if (!names.empty()) names += ", ";
    names += parameter.name;
  }
  return names;
}

std::string Join(std::span<const std::string_view> values) {
  std::string joined;
  for (const std::string_view value : values) {
    if (!joined.empty()) joined += ", ";
    joined += value;
  }
  return joined;
}

// Printable text without control characters (what a client means as an id or a search).
bool Printable(std::string_view text) {
  return std::none_of(text.begin(), text.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f;
  });
}

// What a value shows of itself in an error message: bounded, printable.
std::string Shown(std::string_view value) {
  std::string shown(value.substr(0, 40));
  for (char& c : shown) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) c = '?';
  }
  return value.size() > 40 ? shown + "..." : shown;
}

std::optional<std::int64_t> ParseInteger(std::string_view text) {
  if (text.empty() || text.size() > 12) return std::nullopt;
  if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

// Checks one value; returns the error message, or nothing when it is acceptable.
std::optional<std::string> Check(const Parameter& parameter, std::string_view value) {
  const std::string name(parameter.name);
  switch (parameter.kind) {
    case Kind::kCursor:
      if (value.size() > kMaxCursorLength || !Printable(value)) {
        return "cursor must be the next_cursor of a previous page";
      }
      return std::nullopt;
    case Kind::kInteger: {
      const auto number = ParseInteger(value);
      if (!number || *number < parameter.min || *number > parameter.max) {
        return name + " must be an integer from " + std::to_string(parameter.min) + " to " +
               std::to_string(parameter.max) + "; got '" + Shown(value) + "'";
      }
      return std::nullopt;
    }
    case Kind::kIdentifier:
      if (value.empty() || value.size() > kMaxIdentifierLength || !Printable(value)) {
        return name + " must be 1 to " + std::to_string(kMaxIdentifierLength) +
               " printable characters; got '" + Shown(value) + "'";
      }
      return std::nullopt;
    case Kind::kText:
      if (value.empty() || value.size() > kMaxTextLength || !Printable(value)) {
        return name + " must be 1 to " + std::to_string(kMaxTextLength) + " printable characters";
      }
      return std::nullopt;
    case Kind::kEnum:
      if (std::find(parameter.values.begin(), parameter.values.end(), value) ==
          parameter.values.end()) {
        return name + " must be one of " + Join(parameter.values) + "; got '" + Shown(value) + "'";
      }
      return std::nullopt;
    case Kind::kBool:
      if (value != "true" && value != "false") {
        return name + " must be true or false; got '" + Shown(value) + "'";
      }
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

ParsedConversationQuery ParseConversationQuery(std::string_view raw_query) {
  ParsedConversationQuery parsed;
  auto fail = [&](std::string parameter, std::string message) {
    parsed.upstream_query.clear();
    parsed.error = ListQueryError{std::move(parameter), std::move(message)};
    return parsed;
  };
  if (raw_query.empty()) return parsed;
  const auto params = boost::urls::parse_query(raw_query);
  if (!params) return fail("", "the query string is not well-formed");

  boost::urls::encoding_opts opts;
  opts.space_as_plus = true;
  std::map<std::string_view, std::size_t> counts;
  std::map<std::string_view, std::int64_t> numbers;
  std::size_t repeated_values = 0;
  std::vector<std::pair<std::string_view, std::string>> accepted;
  for (const auto& param : *params) {
    const std::string name = param.key.decode(opts);
    const std::string value = param.has_value ? param.value.decode(opts) : std::string();
    if (name.empty() && value.empty()) continue;  // "a=1&&b=2"
    const Parameter* parameter = FindParameter(name);
    if (parameter == nullptr) {
      return fail(Shown(name),
                  "unknown query parameter '" + Shown(name) + "'; accepted: " + AcceptedNames());
    }
    if (++counts[parameter->name] > 1 && !parameter->repeatable) {
      return fail(name, "'" + name + "' is given more than once");
    }
    if (parameter->repeatable && ++repeated_values > kMaxRepeatedValues) {
      return fail(name, "at most " + std::to_string(kMaxRepeatedValues) +
                            " values in all for the list filters");
    }
    if (parameter->kind == Kind::kCursor && value.empty()) continue;  // the first page
    if (auto message = Check(*parameter, value)) return fail(name, std::move(*message));
    if (parameter->kind == Kind::kInteger) numbers[parameter->name] = *ParseInteger(value);
    accepted.emplace_back(parameter->name, value);
  }

  const std::array<std::pair<std::string_view, std::string_view>, 2> ranges{{
      {"call_duration_min_secs", "call_duration_max_secs"},
      {"rating_min", "rating_max"},
  }};
  for (const auto& [low, high] : ranges) {
    const auto min = numbers.find(low);
    const auto max = numbers.find(high);
    if (min != numbers.end() && max != numbers.end() && min->second > max->second) {
      return fail(std::string(high), std::string(high) + " must not be below " + std::string(low));
    }
  }

  for (const auto& [name, value] : accepted) {
    if (!parsed.upstream_query.empty()) parsed.upstream_query += '&';
    parsed.upstream_query += name;
    parsed.upstream_query += '=';
    parsed.upstream_query += upstream::EncodeComponent(value);
  }
  return parsed;
}

}  // namespace callgate::conversations
