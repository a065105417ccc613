// The background status refresher: while a call is not finished, its conversation's status is
// fetched from the upstream (GET /v1/convai/conversations/{id}) with exponential backoff and
// written to the ledger, so the ledger reaches done or failed even if no webhook ever arrives.
//
// Per call: the first fetch `initial_delay` after it is tracked; after each fetch that brought
// no status change (or failed) the delay doubles, up to `max_delay`; a status change resets it.
// A call stops being followed when the ledger has it final (whoever finished it: this refresher
// or a webhook), when the ledger does not know its conversation id, when the upstream answered
// "not found" `max_not_found` times in a row (the call is then marked failed), or when it has
// been followed for `max_follow` since it was created (it then stays as it is; the next start
// or a webhook may still finish it).
//
// Start() loads the ledger's unfinished calls (after a restart). Calls that are still `queued`
// without a conversation id were left by a process that stopped before the upstream answered:
// `orphan_after` after their creation, if they are still queued, they are marked failed with
// an outcome-unknown reason (source `recovery`), never dialed again.
//
// Bounds: at most `max_concurrent` fetch-and-store cycles at once (the rest wait their turn),
// at most `max_tracked` calls followed.
//
// Threading: thread-safe. The source's and the ledger's callbacks may run on any thread; the
// scheduler's tasks run on its threads. Stop() refuses further work, waits for calls into the
// ledger, source or scheduler that are under way on other threads, and makes every later
// callback a no-op; it must not be called from inside those callbacks. After Stop() returns,
// the ledger, source, clock and scheduler are no longer used and may be destroyed.
#pragma once

#include "calls/ledger.hpp"
#include "core/clock.hpp"
#include "core/scheduler.hpp"

#include <boost/json/value.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>

namespace callgate::calls {

// A conversation's state as the upstream reports it.
struct ConversationStatus {
  CallStatus status = CallStatus::kInitiated;  // the upstream's initiated..failed
  std::optional<boost::json::value> transcript;
  std::optional<boost::json::value> analysis;
  std::optional<std::int64_t> duration_secs;
  std::optional<std::string> failure_reason;
};

struct FetchError {
  enum class Kind {
    kNotFound,   // the upstream does not know the conversation (404)
    kTransient,  // anything else: timeout, 5xx, 429, a bad answer; retried with backoff
  };
  Kind kind = Kind::kTransient;
  std::string message;  // for the log; no secrets
};

using FetchResult = std::variant<ConversationStatus, FetchError>;

// Where conversation statuses come from; the upstream client implements it.
class ConversationStatusSource {
 public:
  virtual ~ConversationStatusSource() = default;
  // Calls `done` exactly once, on any thread (also from inside Fetch).
  virtual void Fetch(std::string conversation_id, std::function<void(FetchResult)> done) = 0;
};

struct RefresherOptions {
  std::chrono::milliseconds initial_delay{2'000};
  std::chrono::milliseconds max_delay{60'000};
  std::size_t max_concurrent = 4;
  std::size_t max_tracked = 10'000;
  std::chrono::milliseconds max_follow = std::chrono::hours(6);
  int max_not_found = 3;
  std::chrono::milliseconds orphan_after{60'000};
};

struct RefresherStats {
  std::size_t tracked = 0;    // calls being followed now
  std::size_t in_flight = 0;  // fetch-and-store cycles under way
  std::uint64_t fetches = 0;  // answers received from the source
  std::uint64_t fetch_errors = 0;
  std::uint64_t finished = 0;        // calls seen reaching done or failed
  std::uint64_t given_up = 0;        // dropped after max_follow, or unknown to the ledger
  std::uint64_t orphans_failed = 0;  // queued calls of a stopped process marked failed
};

class StatusRefresher {
 public:
  StatusRefresher(CallLedger& ledger, ConversationStatusSource& source, core::Clock& clock,
                  core::Scheduler& scheduler, RefresherOptions options = {});
  ~StatusRefresher();  // Stop()
  StatusRefresher(const StatusRefresher&) = delete;
  StatusRefresher& operator=(const StatusRefresher&) = delete;

  // Loads the ledger's unfinished calls and follows them (see above). Call once, before the
  // server accepts requests.
  void Start();

  // Follows a call that the upstream just accepted (after CallLedger::MarkInitiated). False
  // when stopped or when `max_tracked` calls are followed already. Tracking a call twice is
  // harmless.
  bool Track(std::string call_id, std::string conversation_id);

  void Stop();

  RefresherStats stats() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace callgate::calls
