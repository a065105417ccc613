// Forwarding: every stored webhook event is passed on, as the JSON payload ElevenLabs sent, to
// each configured URL (automation tools such as n8n that cannot verify ElevenLabs' HMAC), signed
// with callgate's own secret in the same `t=...,v0=...` form (header ElevenLabs-Signature, so
// the SDKs' verifiers and ours serve both).
//
// Delivery state lives in SQLite (migration 201): one row per (event, target), pending ->
// delivered, or dead after max_attempts failures. Per target, events of one conversation are
// delivered in the order they were stored: a later one waits while an earlier one is pending
// (retrying); a dead one no longer blocks. Failures (a non-2xx status or a transport error) are
// retried after initial_backoff, doubling up to max_backoff. Replay() sends an event again
// (dead or delivered), e.g. for `callgate webhooks replay ID`.
//
// Nothing here delays the inbox's 200: OnStored only queues database work. Rows are written
// after the event's commit; if the process dies in between, Start() recreates the missing rows
// from a per-target watermark, so every stored event is forwarded at least once. A receiver
// may see an event twice (a crash after its 2xx, before the row is marked): the
// Callgate-Event-Id header lets it deduplicate.
//
// Threading: all state is touched on the database thread; Transport::Post is called there and
// must not block; its callback may run on any thread. Timers come from the injected Scheduler
// and time from the injected Clock. Stop() stops new attempts and waits for those in flight;
// the Forwarder must be stopped before the Database is closed.
#pragma once

#include "core/clock.hpp"
#include "core/scheduler.hpp"
#include "store/database.hpp"
#include "webhook/inbox.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace callgate::webhook {

// The HTTP POST, implemented by the composition root with the real HTTP client. `done` must be
// called exactly once, with the response status (0 when there was none) and, for a transport
// failure, a short reason.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual void Post(std::string url, std::vector<std::pair<std::string, std::string>> headers,
                    std::string body, std::function<void(int status, std::string error)> done) = 0;
};

struct ForwarderOptions {
  std::vector<std::string> targets;  // FORWARD_WEBHOOK_URLS
  std::string secret;                // FORWARD_WEBHOOK_SECRET; empty = unsigned
  int max_attempts = 8;
  std::chrono::milliseconds initial_backoff{1'000};
  std::chrono::milliseconds max_backoff{10 * 60 * 1'000};
  std::size_t max_in_flight = 16;  // deliveries awaiting their answer, all targets
  // Stop() waits this long for answers in flight; unanswered ones stay pending (sent again
  // after a restart).
  std::chrono::milliseconds stop_timeout{30'000};
};

// One delivery's state, for operators and tests.
struct Delivery {
  std::int64_t id = 0;
  std::string event_id;
  std::string target;
  std::string state;  // "pending" | "delivered" | "dead"
  int attempts = 0;
  std::int64_t next_attempt_ms = 0;
  int last_status = 0;
  std::string last_error;
};

class Forwarder final : public EventSink {
 public:
  Forwarder(store::Database& database, Transport& transport, const core::Clock& clock,
            core::Scheduler& scheduler, ForwarderOptions options);
  ~Forwarder() override;  // Stop()
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // Registers the targets (a new target starts with the events stored from now on), recreates
  // rows missing after a crash, and starts delivering. Call once, before events arrive.
  void Start();

  // EventSink: queues a delivery of `event` to every target.
  void OnStored(const StoredEvent& event) override;

  // Sends the event again to every target (resets attempts). `done(rows, error)`: rows reset or
  // created, 0 when no such event. False when the database refuses the task.
  bool Replay(std::string event_id, std::function<void(std::size_t rows, std::string error)> done);

  // The deliveries of one event (empty id: every dead delivery), oldest first.
  bool Deliveries(std::string event_id,
                  std::function<void(std::vector<Delivery> deliveries, std::string error)> done);

  void Stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Exposed for tests: the delay before attempt `attempt` + 1 after `attempt` failures (>= 1).
std::chrono::milliseconds Backoff(const ForwarderOptions& options, int attempt);

}  // namespace callgate::webhook
