// Test harness: a Simulator behind a Router + Dispatcher (with the simulator's error renderer
// and observer), a ManualClock and a fake Scheduler, driven without sockets the way
// http::Server drives a dispatcher: Prepare, Run, then Observe with the response.
#pragma once

#include "core/clock.hpp"
#include "core/scheduler.hpp"
#include "http/dispatcher.hpp"
#include "http/router.hpp"
#include "sim/simulator.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace callgate::sim::testing {

inline constexpr char kApiKey[] = "sk_sim_test_5b1f0c9e2d7a4e8f";

// Records delayed tasks; tests run them explicitly.
class FakeScheduler final : public core::Scheduler {
 public:
  void After(std::chrono::milliseconds delay, std::function<void()> task) override {
    std::lock_guard lock(mutex_);
    delays_.push_back(delay);
    tasks_.push_back(std::move(task));
  }
  std::vector<std::chrono::milliseconds> delays() const {
    std::lock_guard lock(mutex_);
    return delays_;
  }
  std::size_t pending() const {
    std::lock_guard lock(mutex_);
    return tasks_.size();
  }
  void RunAll() {
    std::vector<std::function<void()>> tasks;
    {
      std::lock_guard lock(mutex_);
      tasks.swap(tasks_);
    }
    for (auto& task : tasks)
      task();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::chrono::milliseconds> delays_;
  std::vector<std::function<void()>> tasks_;
};

struct Reply {
  int status = 0;
  http::Headers headers;
  std::string body;
  bool aborted = false;
  boost::json::value Json() const { return boost::json::parse(body); }
  std::string Header(std::string_view name) const {
    return std::string(headers.Get(name).value_or(""));
  }
};

inline std::string Str(const boost::json::value& value) {
  return value.is_string() ? std::string(value.as_string()) : boost::json::serialize(value);
}

using HeaderList = std::vector<std::pair<std::string, std::string>>;

class SimHarness {
 public:
  explicit SimHarness(SimOptions options = {}) {
    if (options.api_key.empty()) options.api_key = kApiKey;
    if (!options.advance_clock) {
      options.advance_clock = [this](std::chrono::seconds s) { clock.Advance(s); };
    }
    simulator = std::make_unique<Simulator>(std::move(options), clock, scheduler);
    simulator->AddRoutes(router);
    dispatcher = std::make_unique<http::Dispatcher>(
        router, http::DispatchOptions{.default_max_body_bytes = 64 * 1024,
                                      .render_error = simulator->ErrorRenderer(),
                                      .observer = simulator->Observer()});
  }

  // Sends a request; the reply is nullopt while an injected latency holds it (see RunScheduled).
  std::optional<Reply> Send(std::string method, std::string target, HeaderList headers = {},
                            std::string body = {}, bool tls = false) {
    http::Request request;
    request.method = std::move(method);
    request.target = target;
    const auto question = target.find('?');
    request.path = target.substr(0, question);
    if (question != std::string::npos) request.query = target.substr(question + 1);
    request.headers.Add("Host", "sim.test:8080");
    for (auto& [name, value] : headers)
      request.headers.Add(name, value);
    if (!body.empty()) request.headers.Add("Content-Length", std::to_string(body.size()));
    request.body = std::move(body);
    request.tls = tls;
    request.request_id = "req_" + std::to_string(++request_counter_);
    request.remote_address = "127.0.0.1";

    auto slot = std::make_shared<std::optional<http::Response>>();
    auto logged = std::make_shared<http::Request>(request);
    http::Prepared prepared = dispatcher->Prepare(request);
    dispatcher->Run(std::move(prepared), std::move(request),
                    http::Responder([this, slot, logged](http::Response response) {
                      dispatcher->Observe(*logged, response);
                      *slot = std::move(response);
                    }));
    last_slot_ = slot;
    if (!*slot) return std::nullopt;
    return ToReply(**slot);
  }

  // Runs delayed tasks and returns the reply of the last request sent.
  std::optional<Reply> RunScheduled() {
    scheduler.RunAll();
    if (!last_slot_ || !*last_slot_) return std::nullopt;
    return ToReply(**last_slot_);
  }

  Reply Must(std::string method, std::string target, HeaderList headers = {},
             std::string body = {}) {
    auto reply = Send(std::move(method), std::move(target), std::move(headers), std::move(body));
    if (!reply) {
      ADD_FAILURE() << "no immediate reply";
      return {};
    }
    return *reply;
  }

  // A real-API request with the right key (and a JSON content type when there is a body).
  Reply Api(std::string method, std::string target, std::string body = {}) {
    HeaderList headers{{"xi-api-key", kApiKey}};
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    return Must(std::move(method), std::move(target), std::move(headers), std::move(body));
  }

  Reply Call(const std::string& to_number = "+15551234567",
             const std::string& extra_fields = R"("conversation_initiation_client_data":)"
                                               R"({"dynamic_variables":{"purpose":"your order"}})",
             const std::string& route = "/v1/convai/twilio/outbound-call",
             const std::string& phone_number_id = "phnum_sim_twilio") {
    std::string body = R"({"agent_id":"agent_sim_default","agent_phone_number_id":")" +
                       phone_number_id + R"(","to_number":")" + to_number + "\"";
    if (!extra_fields.empty()) body += "," + extra_fields;
    body += "}";
    return Api("POST", route, body);
  }

  core::ManualClock clock;
  FakeScheduler scheduler;
  http::Router router;
  std::unique_ptr<Simulator> simulator;
  std::unique_ptr<http::Dispatcher> dispatcher;

 private:
  static Reply ToReply(const http::Response& response) {
    return {response.status, response.headers, response.body, response.abort_connection};
  }
  int request_counter_ = 0;
  std::shared_ptr<std::optional<http::Response>> last_slot_;
};

}  // namespace callgate::sim::testing
