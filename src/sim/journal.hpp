// The simulator's request journal: what the gateway actually sent, for tests to assert on
// (GET /_sim/requests). Secrets never enter it: the xi-api-key and Authorization header values
// are replaced by "***", and so is any occurrence of the configured API key anywhere else
// (path, query, body, other headers). Bounded: the oldest entries are dropped beyond
// `max_entries`. Not thread-safe (Simulator holds its mutex).
#pragma once

#include "core/clock.hpp"
#include "http/message.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace callgate::sim {

struct JournalEntry {
  std::uint64_t seq = 0;
  std::int64_t time_unix_ms = 0;  // simulated time
  std::string method, path, query;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names, redacted
  std::string body;                                          // redacted
  int status = 0;        // the status sent; 0 when the connection was reset instead
  std::string trace_id;  // the x-trace-id answered, if any
  std::string fault_id;  // the injected fault that shaped the answer, if any
};

class Journal {
 public:
  Journal(std::size_t max_entries, std::string secret);

  void Record(const http::Request& request, const http::Response& response, core::SystemTime when,
              std::string fault_id);
  // {"requests":[{"seq","time_unix_ms","method","path","query","headers":{...},"body","status",
  //   "trace_id","fault"}]} oldest first; `path` keeps only that exact path, `since` only
  // entries with seq > since.
  boost::json::object ToJson(std::optional<std::string_view> path,
                             std::optional<std::uint64_t> since) const;
  std::size_t Clear();
  const std::deque<JournalEntry>& entries() const { return entries_; }

 private:
  std::string Redact(std::string text) const;

  std::size_t max_entries_;
  std::string secret_;
  std::uint64_t next_seq_ = 1;
  std::deque<JournalEntry> entries_;
};

}  // namespace callgate::sim
