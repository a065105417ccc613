#include "sim/faults.hpp"

#include "sim/fastapi_errors.hpp"

#include <algorithm>
#include <array>
#include <memory>

namespace callgate::sim {
namespace {

constexpr std::array kStatuses = {429, 500, 502, 503, 504};
constexpr std::int64_t kMaxLatencyMs = 600'000;

std::string_view ActionName(FaultAction action) {
  switch (action) {
    case FaultAction::kNone:
      return "latency";
    case FaultAction::kStatus:
      return "status";
    case FaultAction::kReset:
      return "reset";
    case FaultAction::kHtml:
      return "html";
    case FaultAction::kTruncate:
      return "truncate";
  }
  return "latency";
}

std::optional<std::int64_t> IntField(const boost::json::object& body, std::string_view key,
                                     std::string& error) {
  const auto it = body.find(key);
  if (it == body.end() || it->value().is_null()) return std::nullopt;
  if (it->value().is_int64()) return it->value().as_int64();
  if (it->value().is_uint64()) {
    error = std::string(key) + " is out of range";
    return std::nullopt;
  }
  error = std::string(key) + " must be an integer";
  return std::nullopt;
}

bool FlagField(const boost::json::object& body, std::string_view key, std::string& error) {
  const auto it = body.find(key);
  if (it == body.end() || it->value().is_null()) return false;
  if (!it->value().is_bool()) {
    error = std::string(key) + " must be a boolean";
    return false;
  }
  return it->value().as_bool();
}

}  // namespace

FaultParse ParseFaultSpec(const boost::json::value& value) {
  FaultParse result;
  if (!value.is_object()) {
    result.error = "the body must be a JSON object";
    return result;
  }
  const auto& body = value.as_object();
  static constexpr std::array kKnown = {"route",      "count",          "status", "retry_after",
                                        "style",      "reset",          "html",   "truncate",
                                        "latency_ms", "process_request"};
  for (const auto& [key, v] : body) {
    if (std::find(kKnown.begin(), kKnown.end(), std::string_view(key)) == kKnown.end()) {
      result.error = "unknown field '" + std::string(key) + "'";
      return result;
    }
  }
  FaultSpec spec;
  std::string error;
  if (const auto it = body.find("route"); it != body.end()) {
    if (!it->value().is_string()) {
      result.error = "route must be a string";
      return result;
    }
    spec.route = std::string(it->value().as_string());
  }
  if (spec.route != "*") {
    const auto space = spec.route.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 >= spec.route.size() ||
        spec.route[space + 1] != '/') {
      result.error =
          "route must be \"*\" or \"METHOD /path\", e.g. "
          "\"POST /v1/convai/twilio/outbound-call\"";
      return result;
    }
  }
  const auto count = IntField(body, "count", error);
  const auto status = IntField(body, "status", error);
  const auto retry_after = IntField(body, "retry_after", error);
  const auto latency = IntField(body, "latency_ms", error);
  const bool reset = FlagField(body, "reset", error);
  const bool html = FlagField(body, "html", error);
  const bool truncate = FlagField(body, "truncate", error);
  const bool process_request = FlagField(body, "process_request", error);
  if (!error.empty()) {
    result.error = error;
    return result;
  }
  if (count) {
    if (*count == 0 || *count < -1) {
      result.error = "count must be a positive integer, or -1 for until cleared";
      return result;
    }
    spec.count = *count;
  }
  const int actions = (status ? 1 : 0) + (reset ? 1 : 0) + (html ? 1 : 0) + (truncate ? 1 : 0);
  if (actions > 1) {
    result.error = "give at most one of status, reset, html, truncate";
    return result;
  }
  if (actions == 0 && !latency) {
    result.error = "give one of status, reset, html, truncate, or latency_ms";
    return result;
  }
  if (status) {
    if (std::find(kStatuses.begin(), kStatuses.end(), *status) == kStatuses.end()) {
      result.error = "status must be one of 429, 500, 502, 503, 504";
      return result;
    }
    spec.action = FaultAction::kStatus;
    spec.status = static_cast<int>(*status);
  } else if (reset) {
    spec.action = FaultAction::kReset;
  } else if (html) {
    spec.action = FaultAction::kHtml;
  } else if (truncate) {
    spec.action = FaultAction::kTruncate;
  }
  if (retry_after) {
    if (spec.action != FaultAction::kStatus || (spec.status != 429 && spec.status != 503)) {
      result.error = "retry_after applies only to status 429 or 503";
      return result;
    }
    if (*retry_after < 0) {
      result.error = "retry_after must not be negative";
      return result;
    }
    spec.retry_after = *retry_after;
  }
  if (const auto it = body.find("style"); it != body.end()) {
    if (!it->value().is_string() ||
        (it->value().as_string() != "legacy" && it->value().as_string() != "current")) {
      result.error = "style must be \"legacy\" or \"current\"";
      return result;
    }
    if (spec.action != FaultAction::kStatus || spec.status != 429) {
      result.error = "style applies only to status 429";
      return result;
    }
    spec.style = std::string(it->value().as_string());
  }
  if (process_request) {
    if (spec.action == FaultAction::kNone || spec.action == FaultAction::kTruncate) {
      result.error = "process_request applies only to status, reset and html faults";
      return result;
    }
    spec.process_request = true;
  }
  if (latency) {
    if (*latency < 0 || *latency > kMaxLatencyMs) {
      result.error = "latency_ms must be between 0 and 600000";
      return result;
    }
    spec.latency = std::chrono::milliseconds(*latency);
  }
  result.spec = std::move(spec);
  return result;
}

boost::json::object FaultJson(const Fault& fault) {
  const FaultSpec& spec = fault.spec;
  boost::json::object out{{"id", fault.id},
                          {"route", spec.route},
                          {"count", spec.count},
                          {"remaining", fault.remaining},
                          {"applied", fault.applied},
                          {"action", ActionName(spec.action)},
                          {"latency_ms", spec.latency.count()},
                          {"process_request", spec.process_request}};
  if (spec.action == FaultAction::kStatus) {
    out["status"] = spec.status;
    if (spec.retry_after) out["retry_after"] = *spec.retry_after;
    if (spec.status == 429) out["style"] = spec.style;
  }
  return out;
}

bool RouteMatches(std::string_view route, std::string_view method, std::string_view pattern,
                  std::string_view path) {
  if (route == "*") return true;
  const auto space = route.find(' ');
  if (space == std::string_view::npos || route.substr(0, space) != method) return false;
  const std::string_view target = route.substr(space + 1);
  return target == pattern || target == path;
}

std::string FaultPlan::Add(FaultSpec spec) {
  Fault fault;
  fault.id = "flt_" + std::to_string(next_id_++);
  fault.remaining = spec.count;
  fault.spec = std::move(spec);
  faults_.push_back(fault);
  return fault.id;
}

std::optional<Fault> FaultPlan::Take(std::string_view method, std::string_view pattern,
                                     std::string_view path) {
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (!RouteMatches(it->spec.route, method, pattern, path)) continue;
    ++it->applied;
    if (it->remaining > 0) --it->remaining;
    Fault taken = *it;
    if (it->remaining == 0) faults_.erase(it);
    return taken;
  }
  return std::nullopt;
}

std::size_t FaultPlan::Clear() {
  const std::size_t n = faults_.size();
  faults_.clear();
  return n;
}

std::optional<http::Response> FaultResponse(const FaultSpec& spec, std::string_view trace_id) {
  switch (spec.action) {
    case FaultAction::kNone:
    case FaultAction::kTruncate:
      return std::nullopt;
    case FaultAction::kReset: {
      http::Response response;
      response.abort_connection = true;
      return response;
    }
    case FaultAction::kHtml: {
      http::Response response = http::Response::Text(
          502,
          "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
          "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
          "</body>\r\n</html>\r\n",
          "text/html");
      return response;
    }
    case FaultAction::kStatus:
      break;
  }
  http::Response response;
  if (spec.status == 429) {
    constexpr std::string_view kMessage =
        "Too many concurrent requests. Your current subscription is associated with a maximum "
        "of 2 concurrent requests. Please upgrade your subscription or wait for other requests "
        "to finish.";
    response = spec.style == "legacy"
                   ? LegacyError(429, "too_many_concurrent_requests", kMessage, trace_id)
                   : CurrentError(429, "rate_limit_error", "concurrent_limit_exceeded", kMessage,
                                  trace_id, {}, "too_many_concurrent_requests");
  } else {
    response = LegacyError(spec.status, "internal_error",
                           "An internal server error occurred. Please try again later.", trace_id);
  }
  if (spec.retry_after) response.headers.Set("Retry-After", std::to_string(*spec.retry_after));
  return response;
}

namespace {

// The first half of another stream, well framed: Length() says half, and it ends there.
class HalfStream final : public http::BodyStream, public std::enable_shared_from_this<HalfStream> {
 public:
  explicit HalfStream(std::shared_ptr<http::BodyStream> inner)
      : inner_(std::move(inner)), length_(inner_->Length()) {
    if (length_) {
      *length_ /= 2;
      left_ = *length_;
    }
  }
  std::optional<std::uint64_t> Length() const override { return length_; }
  void Next(NextCallback done) override {
    // Unknown length: half of the first chunk, then the end.
    if (left_ == 0 || (!length_ && passed_any_)) {
      done(http::BodyChunk::End());
      return;
    }
    inner_->Next([this, self = shared_from_this(), done = std::move(done)](http::BodyChunk chunk) {
      if (chunk.kind != http::BodyChunk::Kind::kData) {
        done(std::move(chunk));
        return;
      }
      const std::uint64_t keep =
          length_ ? std::min<std::uint64_t>(left_, chunk.data.size()) : chunk.data.size() / 2;
      chunk.data.resize(keep);
      left_ -= std::min(left_, keep);
      passed_any_ = true;
      done(chunk.data.empty() ? http::BodyChunk::End() : std::move(chunk));
    });
  }

 private:
  std::shared_ptr<http::BodyStream> inner_;
  std::optional<std::uint64_t> length_;
  std::uint64_t left_ = 0;
  bool passed_any_ = false;
};

}  // namespace

void TruncateBody(http::Response& response) {
  if (response.stream) {
    response.stream = std::make_shared<HalfStream>(std::move(response.stream));
    return;
  }
  response.body.resize(response.body.size() / 2);
}

}  // namespace callgate::sim
