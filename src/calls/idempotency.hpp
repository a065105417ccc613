// Exactly-once request handling for the `Idempotency-Key` header (Stripe's semantics), so that
// a retried POST /api/calls/outbound never rings a person twice.
//
// A key is remembered with a fingerprint of the request (RequestFingerprint) and, once the
// first request finished, its response. For a request carrying a key, the handler calls
// Begin() and acts on the outcome:
//   kProceed     first use of the key: handle the request, then call Complete(key, response),
//                or Abandon(key) when the request provably never reached the upstream (e.g.
//                validation failed, or the upstream connection was refused) so a retry may run.
//   kReplay      answer `response` as stored, with the header `Idempotent-Replayed: true`.
//                Also what a request gets that arrived while the first one with the same key
//                and fingerprint was still running: it waits for the first one's response.
//   kConflict    the key was used with a different request: 409 `idempotency_key_reused`.
//   kInProgress  a request with this key is still running and this one could not wait for it
//                (too many waiters, or it waited `wait_timeout`): 409 `idempotency_key_in_use`
//                with Retry-After; retrying later gets the stored response.
//   kBusy        too many keys in flight, or the database queue is full: 503, retry later.
//   kUnavailable the store is stopped, or the database failed: 503.
//   kInvalidKey  the key or scope fails ValidateIdempotencyKey (the handler should have checked
//                it first and answered 400).
//
// Keys live `ttl` (24 h) from their first use, measured on the injected clock; expired keys are
// treated as new and purged every `purge_interval`. Keys are persisted (migration 101) and
// survive a restart. A key whose first request was still running when the process stopped is,
// on the next start, completed with a stored 500 `outcome_unknown` answer (kOutcomeUnknown*):
// the upstream may or may not have placed that call, so it is never dialed again with that key;
// the answer tells the client to look the call up in GET /api/calls before using a new key.
//
// A request that got kProceed must end with Complete() or Abandon(); a key left neither stays
// in flight in memory (its waiters time out with kInProgress) until the next start, when it
// becomes outcome-unknown like any key of a stopped process.
//
// Scopes: `scope` separates the key spaces of different clients (e.g. a hash of the presented
// API key), so one client can never receive another's stored response.
//
// Threading: all methods are thread-safe. A Begin callback runs exactly once, on the calling
// thread (immediate answers), on the database thread, or on a scheduler thread (a waiter's
// timeout); never with a lock held, so it may call back into the store. Callbacks must not
// throw. The store coordinates concurrent requests in memory: it is correct for one gateway
// process per database (a multi-instance backend would need row locks instead).
//
// Lifetime: the database, clock and scheduler must outlive the store, and the clock must also
// outlive the tasks the store queued on the database (close the database before destroying the
// clock). Stop() (or destroy) the store before closing the database. Tasks already handed to the
// scheduler hold only a weak reference and do nothing once the store is gone or stopped.
#pragma once

#include "core/clock.hpp"
#include "core/scheduler.hpp"
#include "store/database.hpp"

#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace callgate::calls {

// The answer to a restarted request whose outcome cannot be known (see above).
inline constexpr int kOutcomeUnknownStatus = 500;
inline constexpr std::string_view kOutcomeUnknownCode = "outcome_unknown";

struct IdempotencyKey {
  std::string scope;  // may be empty (one key space)
  std::string key;    // the Idempotency-Key header's value
};

// What is replayed: the whole response a client saw, status, content type and body.
struct StoredResponse {
  int status = 0;
  std::string content_type = "application/json";
  std::string body;
};

enum class BeginOutcome {
  kProceed,
  kReplay,
  kConflict,
  kInProgress,
  kBusy,
  kUnavailable,
  kInvalidKey,
};
std::string_view ToString(BeginOutcome outcome);

struct BeginResult {
  BeginOutcome outcome = BeginOutcome::kUnavailable;
  StoredResponse response;  // kReplay
  bool waited = false;      // kReplay: this request waited for a concurrent first request
};

struct IdempotencyOptions {
  std::chrono::milliseconds ttl = std::chrono::hours(24);
  std::size_t max_key_length = 255;
  std::size_t max_waiters_per_key = 16;
  std::size_t max_keys_in_flight = 10'000;
  std::chrono::milliseconds wait_timeout = std::chrono::seconds(30);
  std::chrono::milliseconds purge_interval = std::chrono::hours(1);  // 0 = no periodic purge
};

// Nothing when `key` is acceptable: 1..max_length characters of printable ASCII (space to
// '~'). Otherwise a message for a 400 that names the problem.
std::optional<std::string> ValidateIdempotencyKey(std::string_view key,
                                                  std::size_t max_length = 255);

// Lower-case hex SHA-256 of the method, the path and the body as canonical JSON (object keys
// sorted, no whitespace), so two requests that mean the same thing have the same fingerprint
// whatever their key order or spacing.
std::string RequestFingerprint(std::string_view method, std::string_view path,
                               const boost::json::value& body);

class IdempotencyStore {
 public:
  // `database` was opened with calls::Migrations(). Queues the start-up recovery (keys left
  // in flight become outcome-unknown answers) ahead of any Begin(), and the first purge.
  IdempotencyStore(store::Database& database, core::Clock& clock, core::Scheduler& scheduler,
                   IdempotencyOptions options = {});
  ~IdempotencyStore();  // Stop()
  IdempotencyStore(const IdempotencyStore&) = delete;
  IdempotencyStore& operator=(const IdempotencyStore&) = delete;

  void Begin(IdempotencyKey key, std::string fingerprint, std::function<void(BeginResult)> done);

  // Stores the response of a request that got kProceed and answers the requests waiting for it
  // (after the response is on disk). `done(true)` once persisted; false if the key was not in
  // flight or the database failed (the waiters are answered anyway; a key whose completion could
  // not be persisted becomes outcome-unknown at the next start, never a second call).
  void Complete(const IdempotencyKey& key, StoredResponse response,
                std::function<void(bool)> done = {});

  // The request that got kProceed will not reach the upstream: the key is forgotten. If other
  // requests are waiting for it, the oldest becomes the new first request (gets kProceed).
  void Abandon(const IdempotencyKey& key);

  // Deletes completed keys whose lifetime ended; answers how many (on the database thread).
  void PurgeExpired(std::function<void(boost::system::result<std::size_t>)> done = {});

  // Refuses new Begin() calls (kUnavailable), answers every waiting request kInProgress and
  // stops the periodic purge. Complete() and Abandon() still work for requests in flight.
  // Idempotent.
  void Stop();

  std::size_t keys_in_flight() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace callgate::calls
