#include "calls/call_record.hpp"

#include <array>
#include <cstdio>
#include <utility>

namespace callgate::calls {
namespace {

constexpr std::array<std::pair<CallStatus, std::string_view>, 6> kStatusNames{{
    {CallStatus::kQueued, "queued"},
    {CallStatus::kInitiated, "initiated"},
    {CallStatus::kInProgress, "in-progress"},
    {CallStatus::kProcessing, "processing"},
    {CallStatus::kDone, "done"},
    {CallStatus::kFailed, "failed"},
}};

constexpr std::array<std::pair<UpdateSource, std::string_view>, 4> kSourceNames{{
    {UpdateSource::kApi, "api"},
    {UpdateSource::kPoll, "poll"},
    {UpdateSource::kWebhook, "webhook"},
    {UpdateSource::kRecovery, "recovery"},
}};

int Rank(CallStatus status) {
  return status == CallStatus::kFailed ? static_cast<int>(CallStatus::kDone)
                                       : static_cast<int>(status);
}

boost::json::value OptionalString(const std::optional<std::string>& value) {
  if (!value) return nullptr;
  return boost::json::value(*value);
}

boost::json::value EmptyAsNull(const std::string& value) {
  if (value.empty()) return nullptr;
  return boost::json::value(value);
}

// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
void CivilFromDays(std::int64_t days, std::int64_t& year, unsigned& month, unsigned& day) {
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  day = doy - (153 * mp + 2) / 5 + 1;
  month = mp < 10 ? mp + 3 : mp - 9;
  year = static_cast<std::int64_t>(yoe) + era * 400 + (month <= 2 ? 1 : 0);
}

}  // namespace

std::string_view ToString(CallStatus status) {
  for (const auto& [value, name] : kStatusNames) {
    if (value == status) return name;
  }
  return "unknown";
}

std::optional<CallStatus> ParseCallStatus(std::string_view text) {
  for (const auto& [value, name] : kStatusNames) {
    if (name == text) return value;
  }
  return std::nullopt;
}

bool IsFinal(CallStatus status) {
  return status == CallStatus::kDone || status == CallStatus::kFailed;
}

bool CanAdvance(CallStatus from, CallStatus to) {
  return !IsFinal(from) && Rank(to) > Rank(from);
}

std::string_view ToString(UpdateSource source) {
  for (const auto& [value, name] : kSourceNames) {
    if (value == source) return name;
  }
  return "unknown";
}

std::optional<UpdateSource> ParseUpdateSource(std::string_view text) {
  for (const auto& [value, name] : kSourceNames) {
    if (name == text) return value;
  }
  return std::nullopt;
}

std::string FormatUnixMillis(std::int64_t unix_ms) {
  std::int64_t days = unix_ms / 86'400'000;
  std::int64_t rest = unix_ms % 86'400'000;
  if (rest < 0) {
    rest += 86'400'000;
    --days;
  }
  std::int64_t year = 0;
  unsigned month = 0;
  unsigned day = 0;
  CivilFromDays(days, year, month, day);
  const auto millis = static_cast<int>(rest % 1000);
  const auto seconds = static_cast<int>(rest / 1000);
  std::array<char, 40> text{};
  std::snprintf(text.data(), text.size(), "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ",
                static_cast<long long>(year), month, day, seconds / 3600, (seconds / 60) % 60,
                seconds % 60, millis);
  return std::string(text.data());
}

boost::json::object ToJson(const CallRecord& record, JsonDetail detail) {
  boost::json::object json;
  json["call_id"] = record.call_id;
  json["status"] = ToString(record.status);
  json["to_number"] = record.to_number;
  json["from_number"] = EmptyAsNull(record.from_number);
  json["agent_phone_number_id"] = EmptyAsNull(record.agent_phone_number_id);
  json["agent_id"] = record.agent_id;
  json["prompt"] = record.prompt;
  json["options"] = record.options;
  json["conversation_id"] = OptionalString(record.conversation_id);
  json["call_sid"] = OptionalString(record.call_sid);
  json["sip_call_id"] = OptionalString(record.sip_call_id);
  json["failure_reason"] = OptionalString(record.failure_reason);
  json["duration_secs"] =
      record.duration_secs ? boost::json::value(*record.duration_secs) : boost::json::value();
  if (detail == JsonDetail::kFull) {
    json["transcript"] = record.transcript.value_or(nullptr);
    json["analysis"] = record.analysis.value_or(nullptr);
  }
  json["source"] = ToString(record.source);
  json["created_at"] = FormatUnixMillis(record.created_at_ms);
  json["created_at_unix_ms"] = record.created_at_ms;
  json["updated_at"] = FormatUnixMillis(record.updated_at_ms);
  json["updated_at_unix_ms"] = record.updated_at_ms;
  return json;
}

}  // namespace callgate::calls
