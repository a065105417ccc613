#include "calls/refresher.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace callgate::calls {
namespace {

constexpr std::string_view kOrphanReason =
    "callgate stopped before the upstream answered the outbound-call request; whether the call "
    "was placed is unknown (it was not placed again)";
constexpr std::string_view kNotFoundReason = "the upstream does not know this conversation";

}  // namespace

struct StatusRefresher::State : std::enable_shared_from_this<State> {
  State(CallLedger& l, ConversationStatusSource& s, core::Clock& c, core::Scheduler& sch,
        RefresherOptions o)
      : ledger(l), source(s), clock(c), scheduler(sch), options(o) {}

  struct Call {
    std::string conversation_id;
    std::int64_t follow_until_ms = 0;
    std::chrono::milliseconds delay{0};
    std::optional<CallStatus> last_status;
    int not_found = 0;
  };

  CallLedger& ledger;
  ConversationStatusSource& source;
  core::Clock& clock;
  core::Scheduler& scheduler;
  const RefresherOptions options;

  mutable std::mutex mutex;
  std::condition_variable idle;
  bool stopped = false;
  int active = 0;  // threads inside a call to the ledger, source or scheduler
  std::map<std::string, Call> calls;
  std::deque<std::string> ready;
  RefresherStats stats;

  // Runs `fn` (which calls into the ledger, source or scheduler) unless stopped, so that Stop()
  // can wait for it.
  template <class Fn>
  void Guarded(Fn fn) {
    {
      std::lock_guard lock(mutex);
      if (stopped) return;
      ++active;
    }
    fn();
    std::lock_guard lock(mutex);
    if (--active == 0) idle.notify_all();
  }

  std::weak_ptr<State> weak() { return weak_from_this(); }

  void Schedule(const std::string& call_id, std::chrono::milliseconds delay) {
    Guarded([&] {
      scheduler.After(delay, [weak = weak(), call_id] {
        if (const auto self = weak.lock()) self->OnDue(call_id);
      });
    });
  }

  // Adds a call to follow; with the lock held. False when full.
  bool AddLocked(const std::string& call_id, std::string conversation_id, std::int64_t created_ms) {
    if (calls.contains(call_id)) return false;
    if (calls.size() >= options.max_tracked) {
      spdlog::warn("refresher: already following {} calls; call {} is not followed", calls.size(),
                   call_id);
      return false;
    }
    Call call;
    call.conversation_id = std::move(conversation_id);
    call.follow_until_ms = created_ms + options.max_follow.count();
    call.delay = options.initial_delay;
    calls.emplace(call_id, std::move(call));
    return true;
  }

  void OnDue(const std::string& call_id) {
    {
      std::lock_guard lock(mutex);
      if (stopped || !calls.contains(call_id)) return;
      ready.push_back(call_id);
    }
    Pump();
  }

  // Starts as many waiting cycles as the concurrency bound allows.
  void Pump() {
    struct Due {
      std::string call_id;
      std::string conversation_id;
    };
    std::vector<Due> to_fetch;
    {
      std::lock_guard lock(mutex);
      if (stopped) return;
      while (stats.in_flight < options.max_concurrent && !ready.empty()) {
        std::string call_id = std::move(ready.front());
        ready.pop_front();
        const auto it = calls.find(call_id);
        if (it == calls.end()) continue;
        ++stats.in_flight;
        to_fetch.push_back({std::move(call_id), it->second.conversation_id});
      }
    }
    for (const Due& due : to_fetch) {  // (no structured binding: clang 14 cannot capture one)
      Guarded([&] {
        source.Fetch(due.conversation_id,
                     [weak = weak(), call_id = due.call_id](FetchResult result) {
                       if (const auto self = weak.lock())
                         self->OnFetched(call_id, std::move(result));
                     });
      });
    }
  }

  void OnFetched(const std::string& call_id, FetchResult result) {
    std::optional<ConversationUpdate> update;
    bool mark_not_found = false;
    {
      std::lock_guard lock(mutex);
      if (stopped) return;
      const auto it = calls.find(call_id);
      if (it == calls.end()) return;
      Call& call = it->second;
      ++stats.fetches;
      if (auto* status = std::get_if<ConversationStatus>(&result)) {
        call.not_found = 0;
        update = ConversationUpdate{
            call.conversation_id,        status->status,        std::move(status->transcript),
            std::move(status->analysis), status->duration_secs, std::move(status->failure_reason),
            UpdateSource::kPoll};
      } else {
        const auto& error = std::get<FetchError>(result);
        ++stats.fetch_errors;
        if (error.kind == FetchError::Kind::kNotFound) {
          mark_not_found = ++call.not_found >= options.max_not_found;
        } else {
          call.not_found = 0;
        }
        spdlog::debug("refresher: call {}: fetching conversation {} failed: {}", call_id,
                      call.conversation_id, error.message);
      }
    }
    if (update) {
      Guarded([&] {
        ledger.ApplyConversationUpdate(
            std::move(*update), [weak = weak(), call_id](LedgerResult<UpdateOutcome> outcome) {
              if (const auto self = weak.lock()) self->OnApplied(call_id, std::move(outcome));
            });
      });
    } else if (mark_not_found) {
      spdlog::warn("refresher: call {}: the upstream does not know its conversation; marked failed",
                   call_id);
      Guarded([&] {
        ledger.MarkFailed(call_id, std::string(kNotFoundReason), UpdateSource::kPoll,
                          [weak = weak(), call_id](LedgerResult<CallRecord> record) {
                            if (const auto self = weak.lock()) {
                              self->EndCycle(call_id,
                                             record ? std::optional(record->status) : std::nullopt,
                                             !record && record.error() == LedgerErrc::kNotFound);
                            }
                          });
      });
    } else {
      EndCycle(call_id, std::nullopt, false);
    }
  }

  void OnApplied(const std::string& call_id, LedgerResult<UpdateOutcome> outcome) {
    if (!outcome) {
      const bool unknown = outcome.error() == LedgerErrc::kNotFound;
      if (unknown) {
        spdlog::warn("refresher: call {}: the ledger has no call with its conversation id",
                     call_id);
      }
      EndCycle(call_id, std::nullopt, unknown);
      return;
    }
    EndCycle(call_id, outcome->record.status, false);
  }

  // The end of one fetch-and-store cycle: `status` is the call's status in the ledger when it is
  // known; `drop` stops following the call.
  void EndCycle(const std::string& call_id, std::optional<CallStatus> status, bool drop) {
    std::optional<std::chrono::milliseconds> next;
    {
      std::lock_guard lock(mutex);
      if (stopped) return;
      const auto it = calls.find(call_id);
      if (it == calls.end()) return;
      Call& call = it->second;
      if (stats.in_flight > 0) --stats.in_flight;
      if (status && IsFinal(*status)) {
        ++stats.finished;
        calls.erase(it);
      } else if (drop) {
        ++stats.given_up;
        calls.erase(it);
      } else {
        if (status && status != call.last_status) {
          call.delay = options.initial_delay;
        } else {
          call.delay = std::min(call.delay * 2, options.max_delay);
        }
        if (status) call.last_status = status;
        if (UnixMillis(clock) + call.delay.count() > call.follow_until_ms) {
          spdlog::info("refresher: call {} not finished after {} min; no longer followed", call_id,
                       options.max_follow.count() / 60'000);
          ++stats.given_up;
          calls.erase(it);
        } else {
          next = call.delay;
        }
      }
    }
    if (next) Schedule(call_id, *next);
    Pump();
  }

  void OnLoaded(LedgerResult<std::vector<CallRecord>> loaded) {
    if (!loaded) {
      spdlog::error("refresher: cannot load the unfinished calls: {}", loaded.error().message());
      return;
    }
    std::vector<std::pair<std::string, std::chrono::milliseconds>> polls;
    std::vector<std::pair<std::string, std::chrono::milliseconds>> orphan_checks;
    const std::int64_t now = UnixMillis(clock);
    {
      std::lock_guard lock(mutex);
      if (stopped) return;
      for (const CallRecord& record : *loaded) {
        if (record.conversation_id) {
          if (AddLocked(record.call_id, *record.conversation_id, record.created_at_ms)) {
            polls.emplace_back(record.call_id, options.initial_delay);
          }
        } else if (record.status == CallStatus::kQueued) {
          const std::int64_t due = record.created_at_ms + options.orphan_after.count();
          orphan_checks.emplace_back(
              record.call_id, std::chrono::milliseconds(std::max<std::int64_t>(0, due - now)));
        }
      }
    }
    spdlog::info("refresher: following {} unfinished call(s); {} queued call(s) to check",
                 polls.size(), orphan_checks.size());
    for (const auto& [call_id, delay] : polls)
      Schedule(call_id, delay);
    for (const auto& [call_id, delay] : orphan_checks) {
      Guarded([&, call_id = call_id, delay = delay] {
        scheduler.After(delay, [weak = weak(), call_id] {
          if (const auto self = weak.lock()) self->CheckOrphan(call_id);
        });
      });
    }
  }

  void CheckOrphan(const std::string& call_id) {
    Guarded([&] {
      ledger.Get(call_id, [weak = weak(), call_id](LedgerResult<CallRecord> record) {
        const auto self = weak.lock();
        if (!self || !record) return;
        if (record->status != CallStatus::kQueued || record->conversation_id) return;
        self->Guarded([&] {
          self->ledger.MarkFailed(
              call_id, std::string(kOrphanReason), UpdateSource::kRecovery,
              [weak = self->weak(), call_id](LedgerResult<CallRecord> failed) {
                const auto me = weak.lock();
                if (!me || !failed) return;
                spdlog::warn(
                    "refresher: call {} was left queued by a stopped process; marked "
                    "failed (outcome unknown)",
                    call_id);
                std::lock_guard lock(me->mutex);
                ++me->stats.orphans_failed;
              });
        });
      });
    });
  }
};

StatusRefresher::StatusRefresher(CallLedger& ledger, ConversationStatusSource& source,
                                 core::Clock& clock, core::Scheduler& scheduler,
                                 RefresherOptions options)
    : state_(std::make_shared<State>(ledger, source, clock, scheduler, options)) {}

StatusRefresher::~StatusRefresher() {
  Stop();
}

void StatusRefresher::Start() {
  state_->Guarded([&] {
    state_->ledger.ListUnfinished(
        state_->options.max_tracked,
        [weak = state_->weak()](LedgerResult<std::vector<CallRecord>> loaded) {
          if (const auto self = weak.lock()) self->OnLoaded(std::move(loaded));
        });
  });
}

bool StatusRefresher::Track(std::string call_id, std::string conversation_id) {
  {
    std::lock_guard lock(state_->mutex);
    if (state_->stopped) return false;
    if (state_->calls.contains(call_id)) return true;
    if (!state_->AddLocked(call_id, std::move(conversation_id), UnixMillis(state_->clock))) {
      return false;
    }
  }
  state_->Schedule(call_id, state_->options.initial_delay);
  return true;
}

void StatusRefresher::Stop() {
  std::unique_lock lock(state_->mutex);
  state_->stopped = true;
  state_->idle.wait(lock, [&] { return state_->active == 0; });
  state_->calls.clear();
  state_->ready.clear();
  state_->stats.in_flight = 0;
}

RefresherStats StatusRefresher::stats() const {
  std::lock_guard lock(state_->mutex);
  RefresherStats stats = state_->stats;
  stats.tracked = state_->calls.size();
  return stats;
}

}  // namespace callgate::calls
