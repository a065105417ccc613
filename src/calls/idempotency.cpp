#include "calls/idempotency.hpp"

#include "store/statement.hpp"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <boost/json.hpp>

#include <algorithm>
#include <deque>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace callgate::calls {
namespace {

using store::Statement;
using Callback = std::function<void(BeginResult)>;
using MapKey = std::pair<std::string, std::string>;  // scope, key

std::int64_t NowMillis(const core::Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.Now().time_since_epoch())
      .count();
}

std::string OutcomeUnknownBody() {
  boost::json::object error{
      {"code", kOutcomeUnknownCode},
      {"message",
       "callgate stopped while the first request with this Idempotency-Key was being "
       "processed, so whether the call was placed is unknown; it was not placed again. Look "
       "the call up in GET /api/calls before retrying with a new Idempotency-Key."}};
  return boost::json::serialize(boost::json::object{{"error", std::move(error)}});
}

void CanonicalJson(const boost::json::value& value, std::string& out) {
  switch (value.kind()) {
    case boost::json::kind::object: {
      const auto& object = value.get_object();
      std::vector<const boost::json::key_value_pair*> members;
      members.reserve(object.size());
      for (const auto& member : object)
        members.push_back(&member);
      std::sort(members.begin(), members.end(),
                [](const auto* a, const auto* b) { return a->key() < b->key(); });
      out.push_back('{');
      for (std::size_t i = 0; i < members.size(); ++i) {
        if (i != 0) out.push_back(',');
        out += boost::json::serialize(boost::json::string(members[i]->key()));
        out.push_back(':');
        CanonicalJson(members[i]->value(), out);
      }
      out.push_back('}');
      return;
    }
    case boost::json::kind::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& element : value.get_array()) {
        if (!first) out.push_back(',');
        first = false;
        CanonicalJson(element, out);
      }
      out.push_back(']');
      return;
    }
    default:
      out += boost::json::serialize(value);
  }
}

struct Answer {
  Callback done;
  BeginResult result;
};

void Deliver(std::vector<Answer>& answers) {
  for (auto& answer : answers) {
    if (answer.done) answer.done(std::move(answer.result));
  }
}

BeginResult Outcome(BeginOutcome outcome) {
  BeginResult result;
  result.outcome = outcome;
  return result;
}

BeginResult Replay(const StoredResponse& response, bool waited) {
  BeginResult result;
  result.outcome = BeginOutcome::kReplay;
  result.response = response;
  result.waited = waited;
  return result;
}

}  // namespace

std::string_view ToString(BeginOutcome outcome) {
  switch (outcome) {
    case BeginOutcome::kProceed:
      return "proceed";
    case BeginOutcome::kReplay:
      return "replay";
    case BeginOutcome::kConflict:
      return "conflict";
    case BeginOutcome::kInProgress:
      return "in_progress";
    case BeginOutcome::kBusy:
      return "busy";
    case BeginOutcome::kUnavailable:
      return "unavailable";
    case BeginOutcome::kInvalidKey:
      return "invalid_key";
  }
  return "unknown";
}

std::optional<std::string> ValidateIdempotencyKey(std::string_view key, std::size_t max_length) {
  if (key.empty()) return std::string("the Idempotency-Key header is empty");
  if (key.size() > max_length) {
    return "the Idempotency-Key is " + std::to_string(key.size()) +
           " characters long; the limit is " + std::to_string(max_length);
  }
  for (std::size_t i = 0; i < key.size(); ++i) {
    const auto c = static_cast<unsigned char>(key[i]);
    if (c < 0x20 || c > 0x7E) {
      return "the Idempotency-Key may only contain printable ASCII characters; character " +
             std::to_string(i + 1) + " is not one";
    }
  }
  return std::nullopt;
}

std::string RequestFingerprint(std::string_view method, std::string_view path,
                               const boost::json::value& body) {
  std::string text(method);
  text.push_back('\n');
  text += path;
  text.push_back('\n');
  CanonicalJson(body, text);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xF]);
  }
  return hex;
}

// Everything lives here, shared with the database tasks and the scheduler's timers, so that
// they stay valid whatever the order in which the store and its tasks end.
struct IdempotencyStore::State : std::enable_shared_from_this<State> {
  State(store::Database& db, core::Clock& c, core::Scheduler& s, IdempotencyOptions o)
      : database(db), clock(c), scheduler(s), options(o) {}

  struct Waiter {
    std::uint64_t id = 0;
    std::string fingerprint;
    Callback done;
  };
  // A key this process is working on: the first request is checking the database (kChecking)
  // or running (kInFlight); later ones with the same key wait.
  struct Entry {
    enum class Phase { kChecking, kInFlight };
    Phase phase = Phase::kChecking;
    std::string fingerprint;  // the first request's
    Callback owner;           // the first request's callback, while kChecking
    std::deque<Waiter> waiters;
    bool completing = false;
  };

  store::Database& database;
  core::Clock& clock;
  core::Scheduler& scheduler;
  const IdempotencyOptions options;

  mutable std::mutex mutex;
  std::map<MapKey, Entry> entries;
  bool stopped = false;
  std::uint64_t next_waiter_id = 0;

  void Recover(sqlite3* db);
  void Check(sqlite3* db, const MapKey& key, const std::string& fingerprint);
  void Finish(const MapKey& key, const StoredResponse& response, bool persisted,
              const std::function<void(bool)>& done);
  void OnWaitTimeout(const MapKey& key, std::uint64_t waiter_id);
  void SchedulePurge();
  static boost::system::result<std::size_t> Purge(sqlite3* db, std::int64_t now_ms);
};

// On the first database task: keys whose first request was running when the process stopped.
void IdempotencyStore::State::Recover(sqlite3* db) {
  Statement stmt(db,
                 "UPDATE idempotency_keys SET state = 'completed', response_status = ?1, "
                 "response_content_type = 'application/json', response_body = ?2, "
                 "completed_at_ms = ?3 WHERE state = 'in_flight'");
  stmt.Bind(1, kOutcomeUnknownStatus);
  stmt.BindBlob(2, OutcomeUnknownBody());
  stmt.Bind(3, NowMillis(clock));
  if (stmt.Step() != SQLITE_DONE) {
    spdlog::error("idempotency: start-up recovery failed: {}", stmt.error());
    return;
  }
  if (const int count = sqlite3_changes(db); count > 0) {
    spdlog::warn(
        "idempotency: {} key(s) were in flight when callgate stopped; they now answer {} "
        "(the calls are not placed again)",
        count, kOutcomeUnknownCode);
  }
}

void IdempotencyStore::State::Check(sqlite3* db, const MapKey& key,
                                    const std::string& fingerprint) {
  enum class Found { kNew, kCompleted, kElsewhere, kFailed };
  Found found = Found::kFailed;
  std::string stored_fingerprint;
  StoredResponse stored;
  const std::int64_t now = NowMillis(clock);
  {
    Statement select(db,
                     "SELECT fingerprint, state, response_status, response_content_type, "
                     "response_body, expires_at_ms FROM idempotency_keys "
                     "WHERE scope = ?1 AND key = ?2");
    select.Bind(1, std::string_view(key.first));
    select.Bind(2, std::string_view(key.second));
    const int rc = select.Step();
    if (rc == SQLITE_ROW && select.Int64(5) > now) {
      stored_fingerprint = select.Text(0);
      if (select.Text(1) == "completed") {
        found = Found::kCompleted;
        stored.status = static_cast<int>(select.Int64(2));
        stored.content_type = select.Text(3);
        stored.body = select.Blob(4);
      } else {
        // Only another process can hold a key in flight that this one does not know of.
        found = Found::kElsewhere;
      }
    } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
      found = Found::kNew;  // never seen, or expired: the key starts again
    } else {
      spdlog::error("idempotency: reading a key failed: {}", select.error());
    }
  }
  if (found == Found::kNew) {
    // On disk before the request may proceed, so a crash from here on is recovered as
    // outcome-unknown instead of letting a retry dial again.
    Statement insert(db,
                     "INSERT OR REPLACE INTO idempotency_keys (scope, key, fingerprint, state, "
                     "created_at_ms, expires_at_ms) VALUES (?1, ?2, ?3, 'in_flight', ?4, ?5)");
    insert.Bind(1, std::string_view(key.first));
    insert.Bind(2, std::string_view(key.second));
    insert.Bind(3, std::string_view(fingerprint));
    insert.Bind(4, now);
    insert.Bind(5, now + options.ttl.count());
    if (insert.Step() != SQLITE_DONE) {
      spdlog::error("idempotency: storing a key failed: {}", insert.error());
      found = Found::kFailed;
    }
  }

  std::vector<Answer> answers;
  {
    std::lock_guard lock(mutex);
    const auto it = entries.find(key);
    if (it == entries.end()) return;  // cannot happen: only Check removes a checking entry
    Entry& entry = it->second;
    auto answer_all = [&](auto result_for) {
      answers.push_back({std::move(entry.owner), result_for(entry.fingerprint)});
      for (auto& waiter : entry.waiters)
        answers.push_back({std::move(waiter.done), result_for(waiter.fingerprint)});
      entries.erase(it);
    };
    switch (found) {
      case Found::kCompleted:
        answer_all([&](const std::string& fp) {
          return fp == stored_fingerprint ? Replay(stored, false)
                                          : Outcome(BeginOutcome::kConflict);
        });
        break;
      case Found::kElsewhere:
        answer_all([&](const std::string& fp) {
          return fp == stored_fingerprint ? Outcome(BeginOutcome::kInProgress)
                                          : Outcome(BeginOutcome::kConflict);
        });
        break;
      case Found::kFailed:
        answer_all([](const std::string&) { return Outcome(BeginOutcome::kUnavailable); });
        break;
      case Found::kNew: {
        entry.phase = Entry::Phase::kInFlight;
        answers.push_back({std::move(entry.owner), Outcome(BeginOutcome::kProceed)});
        // Requests that arrived while checking with another body conflict; the rest wait.
        std::deque<Waiter> same;
        for (auto& waiter : entry.waiters) {
          if (waiter.fingerprint == entry.fingerprint) {
            same.push_back(std::move(waiter));
          } else {
            answers.push_back({std::move(waiter.done), Outcome(BeginOutcome::kConflict)});
          }
        }
        entry.waiters = std::move(same);
        break;
      }
    }
  }
  Deliver(answers);
}

void IdempotencyStore::State::Finish(const MapKey& key, const StoredResponse& response,
                                     bool persisted, const std::function<void(bool)>& done) {
  std::vector<Answer> answers;
  {
    std::lock_guard lock(mutex);
    if (const auto it = entries.find(key); it != entries.end()) {
      for (auto& waiter : it->second.waiters)
        answers.push_back({std::move(waiter.done), Replay(response, true)});
      entries.erase(it);
    }
  }
  Deliver(answers);
  if (done) done(persisted);
}

void IdempotencyStore::State::OnWaitTimeout(const MapKey& key, std::uint64_t waiter_id) {
  Callback done;
  {
    std::lock_guard lock(mutex);
    const auto it = entries.find(key);
    if (it == entries.end()) return;
    auto& waiters = it->second.waiters;
    const auto waiter = std::find_if(waiters.begin(), waiters.end(),
                                     [&](const Waiter& w) { return w.id == waiter_id; });
    if (waiter == waiters.end()) return;  // answered already
    done = std::move(waiter->done);
    waiters.erase(waiter);
  }
  done(Outcome(BeginOutcome::kInProgress));
}

boost::system::result<std::size_t> IdempotencyStore::State::Purge(sqlite3* db,
                                                                  std::int64_t now_ms) {
  Statement stmt(db,
                 "DELETE FROM idempotency_keys WHERE expires_at_ms <= ?1 AND state = 'completed'");
  stmt.Bind(1, now_ms);
  if (stmt.Step() != SQLITE_DONE) {
    spdlog::error("idempotency: purging expired keys failed: {}", stmt.error());
    return boost::system::errc::make_error_code(boost::system::errc::io_error);
  }
  return static_cast<std::size_t>(sqlite3_changes(db));
}

void IdempotencyStore::State::SchedulePurge() {
  if (options.purge_interval.count() <= 0) return;
  scheduler.After(options.purge_interval, [weak = weak_from_this()] {
    const auto self = weak.lock();
    if (!self) return;
    {
      std::lock_guard lock(self->mutex);
      if (self->stopped) return;
    }
    const bool posted = self->database.Post([self](sqlite3* db) {
      const auto purged = Purge(db, NowMillis(self->clock));
      if (purged && *purged > 0) spdlog::info("idempotency: purged {} expired key(s)", *purged);
    });
    if (!posted) spdlog::warn("idempotency: the database is busy; purge skipped");
    self->SchedulePurge();
  });
}

IdempotencyStore::IdempotencyStore(store::Database& database, core::Clock& clock,
                                   core::Scheduler& scheduler, IdempotencyOptions options)
    : state_(std::make_shared<State>(database, clock, scheduler, options)) {
  const bool posted = database.Post([state = state_](sqlite3* db) {
    state->Recover(db);
    const auto purged = State::Purge(db, NowMillis(state->clock));
    if (purged && *purged > 0) spdlog::info("idempotency: purged {} expired key(s)", *purged);
  });
  if (!posted) spdlog::error("idempotency: the database refused the start-up recovery");
  state_->SchedulePurge();
}

IdempotencyStore::~IdempotencyStore() {
  Stop();
}

void IdempotencyStore::Begin(IdempotencyKey key, std::string fingerprint,
                             std::function<void(BeginResult)> done) {
  State& s = *state_;
  if (ValidateIdempotencyKey(key.key, s.options.max_key_length) ||
      key.scope.size() > s.options.max_key_length) {
    done(Outcome(BeginOutcome::kInvalidKey));
    return;
  }
  MapKey map_key{std::move(key.scope), std::move(key.key)};
  std::unique_lock lock(s.mutex);
  if (s.stopped) {
    lock.unlock();
    done(Outcome(BeginOutcome::kUnavailable));
    return;
  }
  if (const auto it = s.entries.find(map_key); it != s.entries.end()) {
    State::Entry& entry = it->second;
    if (entry.phase == State::Entry::Phase::kInFlight && entry.fingerprint != fingerprint) {
      lock.unlock();
      done(Outcome(BeginOutcome::kConflict));
      return;
    }
    if (entry.waiters.size() >= s.options.max_waiters_per_key) {
      lock.unlock();
      done(Outcome(BeginOutcome::kInProgress));
      return;
    }
    const std::uint64_t id = ++s.next_waiter_id;
    entry.waiters.push_back({id, std::move(fingerprint), std::move(done)});
    lock.unlock();
    s.scheduler.After(s.options.wait_timeout,
                      [weak = std::weak_ptr<State>(state_), map_key = std::move(map_key), id] {
                        if (const auto self = weak.lock()) self->OnWaitTimeout(map_key, id);
                      });
    return;
  }
  if (s.entries.size() >= s.options.max_keys_in_flight) {
    lock.unlock();
    done(Outcome(BeginOutcome::kBusy));
    return;
  }
  State::Entry entry;
  entry.fingerprint = fingerprint;
  entry.owner = std::move(done);
  s.entries.emplace(map_key, std::move(entry));
  // Posted under the lock so that the database sees this key's tasks in the order the store
  // decided them (the database thread never waits for this lock while holding its queue's).
  const bool posted =
      s.database.Post([state = state_, map_key, fingerprint = std::move(fingerprint)](sqlite3* db) {
        state->Check(db, map_key, fingerprint);
      });
  if (posted) return;
  std::vector<Answer> answers;
  const auto it = s.entries.find(map_key);
  answers.push_back({std::move(it->second.owner), Outcome(BeginOutcome::kBusy)});
  for (auto& waiter : it->second.waiters)
    answers.push_back({std::move(waiter.done), Outcome(BeginOutcome::kBusy)});
  s.entries.erase(it);
  lock.unlock();
  Deliver(answers);
}

void IdempotencyStore::Complete(const IdempotencyKey& key, StoredResponse response,
                                std::function<void(bool)> done) {
  State& s = *state_;
  MapKey map_key{key.scope, key.key};
  std::unique_lock lock(s.mutex);
  const auto it = s.entries.find(map_key);
  if (it == s.entries.end() || it->second.phase != State::Entry::Phase::kInFlight ||
      it->second.completing) {
    lock.unlock();
    spdlog::warn("idempotency: Complete() for a key that is not in flight; ignored");
    if (done) done(false);
    return;
  }
  it->second.completing = true;
  auto shared_response = std::make_shared<StoredResponse>(std::move(response));
  const bool posted =
      s.database.Post([state = state_, map_key, shared_response, done](sqlite3* db) {
        Statement stmt(db,
                       "UPDATE idempotency_keys SET state = 'completed', response_status = ?1, "
                       "response_content_type = ?2, response_body = ?3, completed_at_ms = ?4 "
                       "WHERE scope = ?5 AND key = ?6 AND state = 'in_flight'");
        stmt.Bind(1, shared_response->status);
        stmt.Bind(2, std::string_view(shared_response->content_type));
        stmt.BindBlob(3, shared_response->body);
        stmt.Bind(4, NowMillis(state->clock));
        stmt.Bind(5, std::string_view(map_key.first));
        stmt.Bind(6, std::string_view(map_key.second));
        const bool persisted = stmt.Step() == SQLITE_DONE && sqlite3_changes(db) == 1;
        if (!persisted) spdlog::error("idempotency: storing a response failed: {}", stmt.error());
        state->Finish(map_key, *shared_response, persisted, done);
      });
  lock.unlock();
  if (!posted) {
    spdlog::error("idempotency: the database is busy; a response was not stored");
    s.Finish(map_key, *shared_response, false, done);
  }
}

void IdempotencyStore::Abandon(const IdempotencyKey& key) {
  State& s = *state_;
  MapKey map_key{key.scope, key.key};
  Callback promoted;
  {
    std::lock_guard lock(s.mutex);
    const auto it = s.entries.find(map_key);
    if (it == s.entries.end() || it->second.phase != State::Entry::Phase::kInFlight ||
        it->second.completing) {
      return;
    }
    auto& waiters = it->second.waiters;
    if (waiters.empty()) {
      s.entries.erase(it);
      const bool posted = s.database.Post([map_key](sqlite3* db) {
        Statement stmt(db,
                       "DELETE FROM idempotency_keys WHERE scope = ?1 AND key = ?2 AND "
                       "state = 'in_flight'");
        stmt.Bind(1, std::string_view(map_key.first));
        stmt.Bind(2, std::string_view(map_key.second));
        if (stmt.Step() != SQLITE_DONE) {
          spdlog::error("idempotency: forgetting an abandoned key failed: {}", stmt.error());
        }
      });
      // Not forgotten on disk: the key answers outcome-unknown after a restart, which is safe.
      if (!posted) spdlog::warn("idempotency: the database is busy; abandoned key kept");
      return;
    }
    // The stored row stays in flight with the same fingerprint: it now stands for the waiter.
    promoted = std::move(waiters.front().done);
    waiters.pop_front();
  }
  promoted(Outcome(BeginOutcome::kProceed));
}

void IdempotencyStore::PurgeExpired(std::function<void(boost::system::result<std::size_t>)> done) {
  auto callback = std::make_shared<decltype(done)>(std::move(done));
  const bool posted = state_->database.Post([state = state_, callback](sqlite3* db) {
    auto purged = State::Purge(db, NowMillis(state->clock));
    if (*callback) (*callback)(purged);
  });
  if (!posted && *callback) {
    (*callback)(
        boost::system::errc::make_error_code(boost::system::errc::resource_unavailable_try_again));
  }
}

void IdempotencyStore::Stop() {
  std::vector<Answer> answers;
  {
    std::lock_guard lock(state_->mutex);
    if (state_->stopped) return;
    state_->stopped = true;
    for (auto& [key, entry] : state_->entries) {
      for (auto& waiter : entry.waiters)
        answers.push_back({std::move(waiter.done), Outcome(BeginOutcome::kInProgress)});
      entry.waiters.clear();
    }
  }
  Deliver(answers);
}

std::size_t IdempotencyStore::keys_in_flight() const {
  std::lock_guard lock(state_->mutex);
  return state_->entries.size();
}

}  // namespace callgate::calls
