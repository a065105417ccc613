// Fault injection for the simulated API: a queue of faults, each matching a route (or every
// real-API route) and applying to the next `count` matching requests, in the order the faults
// were added. POST /_sim/faults bodies parse into FaultSpec; see ParseFaultSpec for the schema.
// FaultPlan is not thread-safe (Simulator holds its mutex); the response builders are pure.
#pragma once

#include "http/message.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace callgate::sim {

enum class FaultAction {
  kNone,      // latency only: the real answer, delayed
  kStatus,    // an error status with the API's error body (429, 500, 502, 503, 504)
  kReset,     // the connection is reset instead of answered
  kHtml,      // a 502 text/html page, as a proxy in front of the API would send
  kTruncate,  // the real answer with its body cut in half (Content-Length matches the cut)
};

struct FaultSpec {
  std::string route = "*";  // "*" or "METHOD /path-pattern" or "METHOD /concrete/path"
  std::int64_t count = 1;   // requests to affect; -1 = until cleared
  FaultAction action = FaultAction::kNone;
  int status = 0;                           // kStatus
  std::optional<std::int64_t> retry_after;  // kStatus 429/503: Retry-After seconds
  std::string style = "current";            // kStatus 429: "current" | "legacy" body
  std::chrono::milliseconds latency{0};     // delay before the answer (any action)
  // kStatus/kReset/kHtml: let the request take effect (e.g. the call is placed) before the
  // fault answers, so a client retry can create a duplicate. kNone/kTruncate always do.
  bool process_request = false;
};

struct Fault {
  std::string id;  // "flt_<n>"
  FaultSpec spec;
  std::int64_t remaining = 0;  // -1 = unlimited
  std::int64_t applied = 0;
};

// {"route","count","status","retry_after","style","reset","html","truncate","latency_ms",
//  "process_request"}.
// Exactly one of status/reset/html/truncate, or none of them with latency_ms. On failure
// `error` says what is wrong (the control API answers 400 with it).
struct FaultParse {
  std::optional<FaultSpec> spec;
  std::string error;
};
FaultParse ParseFaultSpec(const boost::json::value& body);

boost::json::object FaultJson(const Fault& fault);

class FaultPlan {
 public:
  std::string Add(FaultSpec spec);
  // The first fault matching the request, with one use consumed (a fault is removed when its
  // count reaches zero). `pattern` is the matched route's pattern, `path` the request's path.
  std::optional<Fault> Take(std::string_view method, std::string_view pattern,
                            std::string_view path);
  const std::vector<Fault>& faults() const { return faults_; }
  std::size_t Clear();

 private:
  std::vector<Fault> faults_;
  std::uint64_t next_id_ = 1;
};

// True when `route` ("METHOD /a/b") names `method` + `pattern` or `method` + `path`.
bool RouteMatches(std::string_view route, std::string_view method, std::string_view pattern,
                  std::string_view path);

// The answer that replaces the real one for kStatus, kReset and kHtml; nullopt for kNone and
// kTruncate (which need the real answer).
std::optional<http::Response> FaultResponse(const FaultSpec& spec, std::string_view trace_id);

// Cuts the body to half its length (rounded down). The server's Content-Length then announces
// the cut length, so the client sees a well-framed response with broken JSON. A streamed body
// (a recording) is cut the same way: half its length announced and sent, then its end.
void TruncateBody(http::Response& response);

}  // namespace callgate::sim
