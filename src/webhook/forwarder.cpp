#include "webhook/forwarder.hpp"

#include "store/statement.hpp"
#include "webhook/signature.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <climits>
#include <condition_variable>
#include <mutex>
#include <set>

namespace callgate::webhook {
namespace {

std::int64_t UnixMillis(const core::Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.Now().time_since_epoch())
      .count();
}

constexpr const char* kInsertDelivery =
    "INSERT OR IGNORE INTO webhook_forwards (event_seq, target, ordering_key, state, attempts,"
    " next_attempt_ms, updated_at_ms) VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?4)";

// Events of one conversation are ordered; an event without a conversation orders nothing.
std::string OrderingKey(std::string_view conversation_id, std::string_view event_id) {
  return conversation_id.empty() ? "event:" + std::string(event_id)
                                 : "conversation:" + std::string(conversation_id);
}

}  // namespace

std::chrono::milliseconds Backoff(const ForwarderOptions& options, int attempt) {
  std::chrono::milliseconds delay = options.initial_backoff;
  for (int i = 1; i < attempt && delay < options.max_backoff; ++i)
    delay *= 2;
  return std::min(delay, options.max_backoff);
}

struct Forwarder::Impl : std::enable_shared_from_this<Impl> {
  Impl(store::Database& db, Transport& t, const core::Clock& c, core::Scheduler& s,
       ForwarderOptions o)
      : database(db), transport(t), clock(c), scheduler(s), options(std::move(o)) {}

  store::Database& database;
  Transport& transport;
  const core::Clock& clock;
  core::Scheduler& scheduler;
  const ForwarderOptions options;

  std::mutex mutex;
  std::condition_variable idle;
  bool stopping = false;
  std::size_t outstanding = 0;  // transport calls not yet recorded
  struct Queued {
    std::int64_t seq;
    std::string ordering_key;
  };
  std::vector<Queued> queued;  // stored events whose rows are not written yet
  bool flush_posted = false;

  // Database thread only.
  std::set<std::int64_t> in_flight;
  std::int64_t wakeup_at_ms = INT64_MAX;

  bool Stopping() {
    std::lock_guard lock(mutex);
    return stopping;
  }

  void PostFlush() {
    std::weak_ptr<Impl> weak = weak_from_this();
    if (database.Post([self = shared_from_this()](sqlite3* db) { self->Flush(db); })) return;
    // The database queue is full: try again shortly (the rows are also recovered at start-up).
    scheduler.After(std::chrono::milliseconds(100), [weak] {
      if (auto self = weak.lock()) self->PostFlush();
    });
  }

  // Writes the rows of the queued events, one transaction for all of them.
  void Flush(sqlite3* db) {
    std::vector<Queued> events;
    {
      std::lock_guard lock(mutex);
      events.swap(queued);
      flush_posted = false;
    }
    if (events.empty()) return;
    const std::int64_t now = UnixMillis(clock);
    // The first failure's message: a later statement or the ROLLBACK would replace SQLite's.
    std::string failure;
    const auto run = [&failure](store::Statement& statement) {
      if (statement.Run()) return true;
      if (failure.empty()) failure = statement.error();
      return false;
    };
    bool ok = store::Exec(db, "BEGIN IMMEDIATE");
    if (!ok) failure = sqlite3_errmsg(db);
    if (ok) {
      store::Statement insert(db, kInsertDelivery);
      for (const Queued& event : events) {
        for (const std::string& target : options.targets) {
          ok = run(insert.Bind(1, event.seq)
                       .Bind(2, target)
                       .Bind(3, event.ordering_key)
                       .Bind(4, now)) &&
               ok;
        }
      }
      store::Statement watermark(db,
                                 "UPDATE webhook_forward_targets SET from_seq = MAX(from_seq, ?1)"
                                 " WHERE target = ?2");
      std::int64_t highest = 0;
      for (const Queued& event : events)
        highest = std::max(highest, event.seq);
      for (const std::string& target : options.targets) {
        ok = run(watermark.Bind(1, highest).Bind(2, target)) && ok;
      }
      if (ok && !store::Exec(db, "COMMIT")) {
        ok = false;
        failure = sqlite3_errmsg(db);
      }
      if (!ok) store::Exec(db, "ROLLBACK");
    }
    if (!ok) {
      // Not lost: the watermark did not move, so Start() recreates these rows after a restart.
      spdlog::error("webhook forwarder: deliveries of {} events not queued: {}", events.size(),
                    failure);
    }
    Pump(db);
  }

  // Registers targets and recreates rows a crash lost (events after each target's watermark).
  void Recover(sqlite3* db) {
    const std::int64_t now = UnixMillis(clock);
    bool ok = store::Exec(db, "BEGIN IMMEDIATE");
    store::Statement add(
        db,
        "INSERT OR IGNORE INTO webhook_forward_targets (target, from_seq, added_at_ms)"
        " VALUES (?1, (SELECT COALESCE(MAX(seq), 0) FROM webhook_events), ?2)");
    store::Statement missing(
        db,
        "INSERT OR IGNORE INTO webhook_forwards (event_seq, target, ordering_key, state,"
        " attempts, next_attempt_ms, updated_at_ms)"
        " SELECT e.seq, ?1, CASE WHEN e.conversation_id IS NULL"
        " THEN 'event:' || e.event_id ELSE 'conversation:' || e.conversation_id END,"
        " 'pending', 0, ?2, ?2 FROM webhook_events e"
        " WHERE e.seq > (SELECT from_seq FROM webhook_forward_targets WHERE target = ?1)");
    store::Statement advance(
        db,
        "UPDATE webhook_forward_targets SET from_seq ="
        " (SELECT COALESCE(MAX(seq), 0) FROM webhook_events) WHERE target = ?1");
    for (const std::string& target : options.targets) {
      ok = ok && add.Bind(1, target).Bind(2, now).Run();
      ok = ok && missing.Bind(1, target).Bind(2, now).Run();
      const int recovered = sqlite3_changes(db);
      ok = ok && advance.Bind(1, target).Run();
      if (ok && recovered > 0) {
        spdlog::warn("webhook forwarder: {} deliveries to {} recreated after a restart", recovered,
                     target);
      }
    }
    ok = ok && store::Exec(db, "COMMIT");
    if (!ok) {
      spdlog::error("webhook forwarder: start-up recovery failed: {}", sqlite3_errmsg(db));
      store::Exec(db, "ROLLBACK");
    }
    Pump(db);
  }

  // Starts every delivery that is due, is first in its conversation's line, and fits in the
  // in-flight bound; then arms a timer for the next retry.
  void Pump(sqlite3* db) {
    if (Stopping()) return;
    const std::int64_t now = UnixMillis(clock);
    if (in_flight.size() < options.max_in_flight) {
      store::Statement due(db,
                           "SELECT f.id, f.target, f.attempts, e.event_id FROM webhook_forwards f"
                           " JOIN webhook_events e ON e.seq = f.event_seq"
                           " WHERE f.state = 'pending' AND f.next_attempt_ms <= ?1 AND NOT EXISTS ("
                           "  SELECT 1 FROM webhook_forwards g WHERE g.state = 'pending'"
                           "  AND g.target = f.target AND g.ordering_key = f.ordering_key"
                           "  AND g.event_seq < f.event_seq)"
                           " ORDER BY f.event_seq, f.id LIMIT ?2");
      due.Bind(1, now).Bind(2, static_cast<std::int64_t>(options.max_in_flight + in_flight.size()));
      struct Due {
        std::int64_t id;
        std::string target;
        std::int64_t attempts;
        std::string event_id;
      };
      std::vector<Due> start;
      int rc = SQLITE_DONE;
      while ((rc = due.Step()) == SQLITE_ROW &&
             in_flight.size() + start.size() < options.max_in_flight) {
        if (in_flight.count(due.Int64(0)) != 0) continue;
        start.push_back({due.Int64(0), due.Text(1), due.Int64(2), due.Text(3)});
      }
      if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        spdlog::error("webhook forwarder: {}", due.error());
      store::Statement payload(db,
                               "SELECT e.payload FROM webhook_forwards f JOIN webhook_events e"
                               " ON e.seq = f.event_seq WHERE f.id = ?1");
      for (Due& d : start) {
        std::string body;
        if (payload.Bind(1, d.id).Step() == SQLITE_ROW) body = payload.Blob(0);
        payload.Reset();
        Send(d.id, std::move(d.target), d.attempts + 1, d.event_id, std::move(body));
      }
    }
    ScheduleWakeup(db, now);
  }

  void Send(std::int64_t id, std::string target, std::int64_t attempt, const std::string& event_id,
            std::string body) {
    in_flight.insert(id);
    {
      std::lock_guard lock(mutex);
      ++outstanding;
    }
    std::vector<std::pair<std::string, std::string>> headers{
        {"Content-Type", "application/json"},
        {"Callgate-Event-Id", event_id},
        {"Callgate-Delivery-Attempt", std::to_string(attempt)}};
    if (!options.secret.empty()) {
      headers.emplace_back(std::string(kSignatureHeader),
                           Sign(options.secret, clock.NowUnixSeconds(), body));
    }
    spdlog::debug("webhook forwarder: event {} to {} (attempt {})", event_id, target, attempt);
    std::weak_ptr<Impl> weak = weak_from_this();
    transport.Post(std::move(target), std::move(headers), std::move(body),
                   [weak, id](int status, std::string error) {
                     if (auto self = weak.lock()) self->Finished(id, status, std::move(error));
                   });
  }

  // Any thread: hands the outcome to the database thread.
  void Finished(std::int64_t id, int status, std::string error) {
    auto self = shared_from_this();
    if (database.Post(
            [self, id, status, error](sqlite3* db) { self->Record(db, id, status, error); })) {
      return;
    }
    std::weak_ptr<Impl> weak = self;
    scheduler.After(std::chrono::milliseconds(100), [weak, id, status, error] {
      if (auto again = weak.lock()) again->Finished(id, status, error);
    });
  }

  void Record(sqlite3* db, std::int64_t id, int status, const std::string& error) {
    in_flight.erase(id);
    const std::int64_t now = UnixMillis(clock);
    const bool delivered = status >= 200 && status < 300;
    store::Statement row(db, "SELECT attempts, target FROM webhook_forwards WHERE id = ?1");
    std::int64_t attempts = 1;
    std::string target;
    if (row.Bind(1, id).Step() == SQLITE_ROW) {
      attempts = row.Int64(0) + 1;
      target = row.Text(1);
    }
    const std::string reason =
        delivered ? std::string()
                  : (error.empty() ? "HTTP " + std::to_string(status) : error.substr(0, 500));
    std::string state = "delivered";
    std::int64_t next = now;
    if (!delivered) {
      if (attempts >= options.max_attempts) {
        state = "dead";
        spdlog::error("webhook forwarder: delivery {} to {} is dead after {} attempts: {}", id,
                      target, attempts, reason);
      } else {
        state = "pending";
        next = now + Backoff(options, static_cast<int>(attempts)).count();
        spdlog::warn("webhook forwarder: delivery {} to {} failed (attempt {}): {}", id, target,
                     attempts, reason);
      }
    }
    store::Statement update(
        db,
        "UPDATE webhook_forwards SET state = ?2, attempts = ?3, next_attempt_ms = ?4,"
        " last_status = ?5, last_error = NULLIF(?6, ''), updated_at_ms = ?7"
        " WHERE id = ?1");
    update.Bind(1, id)
        .Bind(2, state)
        .Bind(3, attempts)
        .Bind(4, next)
        .Bind(5, status)
        .Bind(6, reason)
        .Bind(7, now);
    if (!update.Run()) {
      spdlog::error("webhook forwarder: cannot record delivery {}: {}", id, update.error());
    }
    {
      std::lock_guard lock(mutex);
      --outstanding;
    }
    idle.notify_all();
    Pump(db);
  }

  void ScheduleWakeup(sqlite3* db, std::int64_t now) {
    store::Statement next(db,
                          "SELECT MIN(next_attempt_ms) FROM webhook_forwards"
                          " WHERE state = 'pending' AND next_attempt_ms > ?1");
    if (next.Bind(1, now).Step() != SQLITE_ROW || next.IsNull(0)) return;
    const std::int64_t at = next.Int64(0);
    if (at <= now || at >= wakeup_at_ms) return;  // an earlier timer is already armed
    wakeup_at_ms = at;
    std::weak_ptr<Impl> weak = weak_from_this();
    scheduler.After(std::chrono::milliseconds(at - now), [weak] {
      auto self = weak.lock();
      if (!self) return;
      self->database.Post([self](sqlite3* handle) {
        self->wakeup_at_ms = INT64_MAX;
        self->Pump(handle);
      });
    });
  }
};

Forwarder::Forwarder(store::Database& database, Transport& transport, const core::Clock& clock,
                     core::Scheduler& scheduler, ForwarderOptions options)
    : impl_(std::make_shared<Impl>(database, transport, clock, scheduler, std::move(options))) {}

Forwarder::~Forwarder() {
  Stop();
}

void Forwarder::Start() {
  if (impl_->options.targets.empty()) return;
  impl_->database.Post([impl = impl_](sqlite3* db) { impl->Recover(db); });
}

void Forwarder::OnStored(const StoredEvent& event) {
  if (impl_->options.targets.empty()) return;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopping) return;  // recovered from the watermark at the next start
    impl_->queued.push_back({event.seq, OrderingKey(event.conversation_id, event.event_id)});
    if (impl_->flush_posted) return;
    impl_->flush_posted = true;
  }
  impl_->PostFlush();
}

bool Forwarder::Replay(std::string event_id,
                       std::function<void(std::size_t rows, std::string error)> done) {
  return impl_->database.Post(
      [impl = impl_, event_id = std::move(event_id), done = std::move(done)](sqlite3* db) {
        store::Statement event(
            db, "SELECT seq, conversation_id FROM webhook_events WHERE event_id = ?1");
        if (const int rc = event.Bind(1, event_id).Step(); rc != SQLITE_ROW) {
          done(0, rc == SQLITE_DONE ? std::string() : event.error());  // unknown, or a failure
          return;
        }
        const std::int64_t seq = event.Int64(0);
        const std::string key = OrderingKey(event.Text(1), event_id);
        const std::int64_t now = UnixMillis(impl->clock);
        store::Statement reset(
            db,
            "INSERT INTO webhook_forwards (event_seq, target, ordering_key, state, attempts,"
            " next_attempt_ms, updated_at_ms) VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?4)"
            " ON CONFLICT (event_seq, target) DO UPDATE SET state = 'pending', attempts = 0,"
            " next_attempt_ms = ?4, last_status = NULL, last_error = NULL, updated_at_ms = ?4");
        std::size_t rows = 0;
        std::string error;
        for (const std::string& target : impl->options.targets) {
          if (reset.Bind(1, seq).Bind(2, target).Bind(3, key).Bind(4, now).Run()) {
            ++rows;
          } else {
            error = reset.error();
          }
        }
        spdlog::info("webhook forwarder: event {} queued again for {} targets", event_id, rows);
        done(rows, error);
        impl->Pump(db);
      });
}

bool Forwarder::Deliveries(
    std::string event_id,
    std::function<void(std::vector<Delivery> deliveries, std::string error)> done) {
  return impl_->database.Post(
      [event_id = std::move(event_id), done = std::move(done)](sqlite3* db) {
        store::Statement query(
            db,
            "SELECT f.id, e.event_id, f.target, f.state, f.attempts, f.next_attempt_ms,"
            " COALESCE(f.last_status, 0), COALESCE(f.last_error, '') FROM webhook_forwards f"
            " JOIN webhook_events e ON e.seq = f.event_seq"
            " WHERE (?1 = '' AND f.state = 'dead') OR e.event_id = ?1 ORDER BY f.id");
        query.Bind(1, event_id);
        std::vector<Delivery> deliveries;
        int rc = SQLITE_DONE;
        while ((rc = query.Step()) == SQLITE_ROW) {
          deliveries.push_back({.id = query.Int64(0),
                                .event_id = query.Text(1),
                                .target = query.Text(2),
                                .state = query.Text(3),
                                .attempts = static_cast<int>(query.Int64(4)),
                                .next_attempt_ms = query.Int64(5),
                                .last_status = static_cast<int>(query.Int64(6)),
                                .last_error = query.Text(7)});
        }
        done(std::move(deliveries), rc == SQLITE_DONE ? std::string() : query.error());
      });
}

void Forwarder::Stop() {
  std::unique_lock lock(impl_->mutex);
  if (impl_->stopping) return;  // idempotent: the destructor calls it again
  impl_->stopping = true;
  // Deliveries in flight get their answer recorded; the transport bounds how long that takes.
  impl_->idle.wait_for(lock, impl_->options.stop_timeout, [&] { return impl_->outstanding == 0; });
}

}  // namespace callgate::webhook
