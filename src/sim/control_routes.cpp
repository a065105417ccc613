// The control API under /_sim/ (no auth, never journaled, never faulted): what tests use to
// inspect and steer the simulator. Errors are 400 {"detail":"<what is wrong>"}.
#include "sim/simulator.hpp"

#include <boost/json/parse.hpp>

#include <charconv>
#include <stdexcept>

namespace callgate::sim {
namespace {

http::Response BadRequest(std::string message) {
  return http::Response::Json(400, {{"detail", std::move(message)}});
}

std::optional<boost::json::value> ParseBody(const http::Request& request, std::string& error) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(request.body, ec);
  if (ec) {
    error = "the body is not valid JSON: " + ec.message();
    return std::nullopt;
  }
  return value;
}

std::int64_t UnixSeconds(core::SystemTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::int64_t UnixMillis(core::SystemTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

using Control = std::function<http::Response(const http::Request&)>;

void AddControl(http::Router& router, std::string method, std::string pattern, Control control,
                http::RouteOptions options = {}) {
  router.Add(
      std::move(method), std::move(pattern),
      [control = std::move(control)](http::Request request, http::Responder responder) {
        responder.Send(control(request));
      },
      options);
}

}  // namespace

void Simulator::AddControlRoutes(http::Router& router) {
  const http::RouteOptions json_body{.body = http::BodyKind::kRaw};
  AddControl(router, "GET", "/_sim/health", [](const http::Request&) {
    return http::Response::Json(200, {{"status", "ok"}});
  });
  AddControl(router, "GET", "/_sim/requests",
             [this](const http::Request& r) { return ControlListRequests(r); });
  AddControl(router, "DELETE", "/_sim/requests",
             [this](const http::Request&) { return ControlClearRequests(); });
  AddControl(
      router, "POST", "/_sim/faults", [this](const http::Request& r) { return ControlAddFault(r); },
      json_body);
  AddControl(router, "GET", "/_sim/faults",
             [this](const http::Request&) { return ControlListFaults(); });
  AddControl(router, "DELETE", "/_sim/faults",
             [this](const http::Request&) { return ControlClearFaults(); });
  AddControl(
      router, "POST", "/_sim/clock/advance",
      [this](const http::Request& r) { return ControlAdvanceClock(r); }, json_body);
  AddControl(router, "GET", "/_sim/clock",
             [this](const http::Request&) { return ControlGetClock(); });
  AddControl(
      router, "POST", "/_sim/callees",
      [this](const http::Request& r) { return ControlSetCallee(r); }, json_body);
  AddControl(router, "GET", "/_sim/callees",
             [this](const http::Request&) { return ControlListCallees(); });
}

http::Response Simulator::ControlListRequests(const http::Request& request) {
  const auto path = request.QueryParam("path");
  std::optional<std::uint64_t> since;
  if (const auto text = request.QueryParam("since")) {
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (text->empty() || ec != std::errc{} || end != text->data() + text->size()) {
      return BadRequest("since must be a non-negative integer (a journal seq)");
    }
    since = value;
  }
  std::lock_guard lock(mutex_);
  return http::Response::Json(
      200, journal_.ToJson(path ? std::optional<std::string_view>(*path) : std::nullopt, since));
}

http::Response Simulator::ControlClearRequests() {
  std::lock_guard lock(mutex_);
  return http::Response::Json(200, {{"cleared", journal_.Clear()}});
}

http::Response Simulator::ControlAddFault(const http::Request& request) {
  std::string error;
  const auto body = ParseBody(request, error);
  if (!body) return BadRequest(error);
  FaultParse parsed = ParseFaultSpec(*body);
  if (!parsed.spec) return BadRequest(parsed.error);
  if (!IsKnownApiRoute(parsed.spec->route)) {
    std::string known;
    for (const auto& [method, pattern] : api_routes_)
      known += "; " + method + " " + pattern;
    return BadRequest("route '" + parsed.spec->route +
                      "' matches no simulated API route. Known: *" + known);
  }
  std::lock_guard lock(mutex_);
  const std::string id = faults_.Add(std::move(*parsed.spec));
  return http::Response::Json(200, {{"id", id}, {"fault", FaultJson(faults_.faults().back())}});
}

http::Response Simulator::ControlListFaults() {
  std::lock_guard lock(mutex_);
  boost::json::array faults;
  for (const auto& fault : faults_.faults())
    faults.push_back(FaultJson(fault));
  return http::Response::Json(200, {{"faults", std::move(faults)}});
}

http::Response Simulator::ControlClearFaults() {
  std::lock_guard lock(mutex_);
  return http::Response::Json(200, {{"cleared", faults_.Clear()}});
}

http::Response Simulator::ControlAdvanceClock(const http::Request& request) {
  if (!options_.advance_clock) {
    return http::Response::Json(
        409, {{"detail", "this simulator's clock cannot be advanced (no advance_clock given)"}});
  }
  std::string error;
  const auto body = ParseBody(request, error);
  if (!body) return BadRequest(error);
  const auto* seconds = body->is_object() ? body->as_object().if_contains("seconds") : nullptr;
  if (seconds == nullptr || !seconds->is_int64() || seconds->as_int64() < 0) {
    return BadRequest("expected {\"seconds\": <non-negative integer>}");
  }
  options_.advance_clock(std::chrono::seconds(seconds->as_int64()));
  return ControlGetClock();
}

http::Response Simulator::ControlGetClock() {
  const auto now = clock_.Now();
  return http::Response::Json(200, {{"now_unix_secs", UnixSeconds(now)},
                                    {"now_unix_ms", UnixMillis(now)},
                                    {"time_scale", options_.time_scale}});
}

http::Response Simulator::ControlSetCallee(const http::Request& request) {
  std::string error;
  const auto body = ParseBody(request, error);
  if (!body) return BadRequest(error);
  const auto* object = body->if_object();
  const auto* number = object ? object->if_contains("number") : nullptr;
  const auto* behaviour = object ? object->if_contains("behaviour") : nullptr;
  if (number == nullptr || !number->is_string() || behaviour == nullptr ||
      !behaviour->is_string()) {
    return BadRequest(
        "expected {\"number\": \"+1555...\", \"behaviour\": "
        "\"answer|busy|no-answer|fail\"}");
  }
  CalleeBehaviour parsed{};
  try {
    parsed = ParseCallee(behaviour->as_string());
  } catch (const std::invalid_argument& e) {
    return BadRequest(e.what());
  }
  std::lock_guard lock(mutex_);
  state_.SetCallee(std::string(number->as_string()), parsed);
  return http::Response::Json(200,
                              {{"number", number->as_string()}, {"behaviour", CalleeName(parsed)}});
}

http::Response Simulator::ControlListCallees() {
  std::lock_guard lock(mutex_);
  boost::json::object callees;
  for (const auto& [number, behaviour] : state_.callees())
    callees[number] = CalleeName(behaviour);
  return http::Response::Json(200, {{"callees", std::move(callees)}});
}

}  // namespace callgate::sim
