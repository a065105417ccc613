#include "sim/journal.hpp"

#include "core/strings.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>

namespace callgate::sim {
namespace {

constexpr std::string_view kRedacted = "***";

}  // namespace

Journal::Journal(std::size_t max_entries, std::string secret)
    : max_entries_(std::max<std::size_t>(max_entries, 1)), secret_(std::move(secret)) {}

std::string Journal::Redact(std::string text) const {
  if (secret_.empty()) return text;
  std::size_t pos = 0;
  while ((pos = text.find(secret_, pos)) != std::string::npos) {
    text.replace(pos, secret_.size(), kRedacted);
    pos += kRedacted.size();
  }
  return text;
}

void Journal::Record(const http::Request& request, const http::Response& response,
                     core::SystemTime when, std::string fault_id) {
  JournalEntry entry;
  entry.seq = next_seq_++;
  entry.time_unix_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count();
  entry.method = request.method;
  entry.path = Redact(request.path);
  entry.query = Redact(request.query);
  for (const auto& [name, value] : request.headers.All()) {
    std::string lower = core::AsciiLower(name);
    const bool secret_header = lower == "xi-api-key" || lower == "authorization";
    entry.headers.emplace_back(std::move(lower),
                               secret_header ? std::string(kRedacted) : Redact(value));
  }
  entry.body = Redact(request.body);
  entry.status = response.abort_connection ? 0 : response.status;
  entry.trace_id = std::string(response.headers.Get("x-trace-id").value_or(""));
  entry.fault_id = std::move(fault_id);
  entries_.push_back(std::move(entry));
  while (entries_.size() > max_entries_)
    entries_.pop_front();
}

boost::json::object Journal::ToJson(std::optional<std::string_view> path,
                                    std::optional<std::uint64_t> since) const {
  boost::json::array requests;
  for (const auto& entry : entries_) {
    if (path && entry.path != *path) continue;
    if (since && entry.seq <= *since) continue;
    boost::json::object headers;
    for (const auto& [name, value] : entry.headers) {
      if (auto* existing = headers.if_contains(name)) {
        existing->as_string().append(", ");
        existing->as_string().append(value);
      } else {
        headers[name] = value;
      }
    }
    requests.push_back(boost::json::object{
        {"seq", entry.seq},
        {"time_unix_ms", entry.time_unix_ms},
        {"method", entry.method},
        {"path", entry.path},
        {"query", entry.query},
        {"headers", std::move(headers)},
        {"body", entry.body},
        {"status", entry.status},
        {"trace_id",
         entry.trace_id.empty() ? boost::json::value(nullptr) : boost::json::value(entry.trace_id)},
        {"fault", entry.fault_id.empty() ? boost::json::value(nullptr)
                                         : boost::json::value(entry.fault_id)}});
  }
  return {{"requests", std::move(requests)}};
}

std::size_t Journal::Clear() {
  const std::size_t n = entries_.size();
  entries_.clear();
  return n;
}

}  // namespace callgate::sim
