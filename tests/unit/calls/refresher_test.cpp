// StatusRefresher with a fake status source, the manual clock and scheduler: backoff, bounds,
// give-up rules, orphan recovery, Stop(); an in-memory ledger for exact control, and once with
// the SQLite ledger.
#include "calls/refresher.hpp"
#include "calls/sqlite_ledger.hpp"
#include "calls/upstream_status_source.hpp"

#include "calls_support.hpp"
#include "core/ids.hpp"
#include "support/process.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <deque>
#include <map>
#include <mutex>
#include <vector>

namespace callgate::calls {
namespace {

using namespace std::chrono_literals;
using testing::ManualScheduler;

// An in-memory CallLedger with the same update rules; answers synchronously.
class FakeLedger final : public CallLedger {
 public:
  explicit FakeLedger(core::Clock& clock) : clock_(clock) {}

  std::string Add(CallStatus status, std::optional<std::string> conversation_id,
                  std::int64_t created_ms) {
    CallRecord record;
    record.call_id = core::NewId("call");
    record.status = status;
    record.conversation_id = std::move(conversation_id);
    record.created_at_ms = created_ms;
    record.updated_at_ms = created_ms;
    std::lock_guard lock(mutex_);
    calls_.push_back(record);
    return record.call_id;
  }
  CallRecord Find(const std::string& call_id) {
    std::lock_guard lock(mutex_);
    return *Lookup([&](const CallRecord& r) { return r.call_id == call_id; });
  }

  void Insert(NewCall, LedgerCallback<CallRecord> done) override { done(LedgerErrc::kStorage); }
  void MarkInitiated(std::string call_id, UpstreamAccepted answer,
                     LedgerCallback<CallRecord> done) override {
    done(Change([&](const CallRecord& r) { return r.call_id == call_id; },
                [&](CallRecord& r) { return RecordUpstreamAccepted(r, answer, Now()); }));
  }
  void MarkFailed(std::string call_id, std::string reason, UpdateSource source,
                  LedgerCallback<CallRecord> done) override {
    done(Change([&](const CallRecord& r) { return r.call_id == call_id; },
                [&](CallRecord& r) { return RecordFailure(r, reason, source, Now()); }));
  }
  void ApplyConversationUpdate(ConversationUpdate update,
                               LedgerCallback<UpdateOutcome> done) override {
    bool changed = false;
    auto record =
        Change([&](const CallRecord& r) { return r.conversation_id == update.conversation_id; },
               [&](CallRecord& r) {
                 changed = RecordConversationUpdate(r, update, Now());
                 return changed;
               });
    if (!record) {
      done(record.error());
      return;
    }
    done(UpdateOutcome{*record, changed});
  }
  void Get(std::string call_id, LedgerCallback<CallRecord> done) override {
    done(Change([&](const CallRecord& r) { return r.call_id == call_id; },
                [](CallRecord&) { return false; }));
  }
  void GetByConversation(std::string conversation_id, LedgerCallback<CallRecord> done) override {
    done(Change([&](const CallRecord& r) { return r.conversation_id == conversation_id; },
                [](CallRecord&) { return false; }));
  }
  void List(ListQuery, LedgerCallback<CallPage> done) override { done(CallPage{}); }
  void ListUnfinished(std::size_t limit, LedgerCallback<std::vector<CallRecord>> done) override {
    std::vector<CallRecord> result;
    {
      std::lock_guard lock(mutex_);
      for (const auto& r : calls_) {
        if (!IsFinal(r.status) && result.size() < limit) result.push_back(r);
      }
    }
    done(std::move(result));
  }

 private:
  std::int64_t Now() const { return UnixMillis(clock_); }
  template <class Match>
  CallRecord* Lookup(Match match) {
    for (auto& r : calls_) {
      if (match(r)) return &r;
    }
    return nullptr;
  }
  template <class Match, class Modify>
  LedgerResult<CallRecord> Change(Match match, Modify modify) {
    std::lock_guard lock(mutex_);
    CallRecord* record = Lookup(match);
    if (record == nullptr) return LedgerErrc::kNotFound;
    modify(*record);
    return *record;
  }

  core::Clock& clock_;
  std::mutex mutex_;
  std::vector<CallRecord> calls_;
};

ConversationStatus Status(CallStatus status) {
  return ConversationStatus{.status = status};
}

// Answers from a script per conversation (the last answer repeats), or holds the callbacks
// until the test answers them (deferred).
class FakeSource final : public ConversationStatusSource {
 public:
  explicit FakeSource(core::Clock& clock) : clock_(clock) {}

  void Fetch(std::string conversation_id, std::function<void(FetchResult)> done) override {
    std::unique_lock lock(mutex_);
    fetches_[conversation_id].push_back(clock_.Now());
    if (deferred_) {
      pending_.emplace_back(std::move(conversation_id), std::move(done));
      max_pending_ = std::max(max_pending_, pending_.size());
      return;
    }
    auto& script = scripts_[conversation_id];
    FetchResult result =
        script.empty() ? FetchResult{FetchError{FetchError::Kind::kNotFound}} : script.front();
    if (script.size() > 1) script.pop_front();
    lock.unlock();
    done(std::move(result));
  }

  void Script(const std::string& conversation_id, std::deque<FetchResult> answers) {
    std::lock_guard lock(mutex_);
    scripts_[conversation_id] = std::move(answers);
  }
  void Defer() { deferred_ = true; }
  std::size_t pending() {
    std::lock_guard lock(mutex_);
    return pending_.size();
  }
  std::size_t max_pending() {
    std::lock_guard lock(mutex_);
    return max_pending_;
  }
  // Answers the oldest held fetch; returns its conversation id.
  std::string AnswerOldest(FetchResult result) {
    std::unique_lock lock(mutex_);
    auto [id, done] = std::move(pending_.front());
    pending_.pop_front();
    lock.unlock();
    done(std::move(result));
    return id;
  }
  // Seconds after `start` at which the conversation was fetched.
  std::vector<std::int64_t> FetchSeconds(const std::string& conversation_id,
                                         core::SystemTime start) {
    std::lock_guard lock(mutex_);
    std::vector<std::int64_t> seconds;
    for (const auto& at : fetches_[conversation_id])
      seconds.push_back(std::chrono::duration_cast<std::chrono::seconds>(at - start).count());
    return seconds;
  }

 private:
  core::Clock& clock_;
  std::mutex mutex_;
  bool deferred_ = false;
  std::map<std::string, std::deque<FetchResult>> scripts_;
  std::map<std::string, std::vector<core::SystemTime>> fetches_;
  std::deque<std::pair<std::string, std::function<void(FetchResult)>>> pending_;
  std::size_t max_pending_ = 0;
};

class RefresherTest : public ::testing::Test {
 protected:
  void Make(RefresherOptions options = {}) {
    refresher_ = std::make_unique<StatusRefresher>(ledger_, source_, clock_, scheduler_, options);
  }
  std::string AddInitiated(const std::string& conversation_id) {
    return ledger_.Add(CallStatus::kInitiated, conversation_id, UnixMillis(clock_));
  }

  core::ManualClock clock_;
  const core::SystemTime start_ = clock_.Now();
  ManualScheduler scheduler_{clock_};
  FakeLedger ledger_{clock_};
  FakeSource source_{clock_};
  std::unique_ptr<StatusRefresher> refresher_;
};

TEST_F(RefresherTest, PollsWithBackoffUntilTheCallIsDone) {
  Make();
  const std::string call = AddInitiated("conv_1");
  ConversationStatus done = Status(CallStatus::kDone);
  done.transcript = boost::json::array{{{"role", "agent"}, {"message", "Bye"}}};
  done.duration_secs = 33;
  source_.Script("conv_1",
                 {Status(CallStatus::kInitiated), Status(CallStatus::kInitiated),
                  Status(CallStatus::kInProgress), Status(CallStatus::kInProgress), done});
  ASSERT_TRUE(refresher_->Track(call, "conv_1"));
  EXPECT_EQ(refresher_->stats().tracked, 1U);
  scheduler_.Advance(10min);
  // 2 s, then doubling while nothing changes, back to 2 s when the status moves.
  EXPECT_EQ(source_.FetchSeconds("conv_1", start_), (std::vector<std::int64_t>{2, 4, 8, 10, 14}));
  const CallRecord record = ledger_.Find(call);
  EXPECT_EQ(record.status, CallStatus::kDone);
  EXPECT_EQ(record.duration_secs, 33);
  EXPECT_EQ(record.transcript->at(0).at("message"), "Bye");
  EXPECT_EQ(record.source, UpdateSource::kPoll);
  const RefresherStats stats = refresher_->stats();
  EXPECT_EQ(stats.tracked, 0U);
  EXPECT_EQ(stats.finished, 1U);
  EXPECT_EQ(stats.fetches, 5U);
  EXPECT_EQ(scheduler_.pending(), 0U);
}

TEST_F(RefresherTest, ErrorsBackOffExponentiallyUpToTheMaximum) {
  Make();
  const std::string call = AddInitiated("conv_e");
  source_.Script("conv_e", {FetchError{FetchError::Kind::kTransient, "503"}});
  refresher_->Track(call, "conv_e");
  scheduler_.Advance(242s);
  EXPECT_EQ(source_.FetchSeconds("conv_e", start_),
            (std::vector<std::int64_t>{2, 6, 14, 30, 62, 122, 182, 242}));
  EXPECT_EQ(refresher_->stats().fetch_errors, 8U);
  EXPECT_EQ(ledger_.Find(call).status, CallStatus::kInitiated);
  EXPECT_EQ(refresher_->stats().tracked, 1U);
}

TEST_F(RefresherTest, AConversationTheUpstreamDoesNotKnowIsMarkedFailed) {
  Make();
  const std::string call = AddInitiated("conv_gone");
  source_.Script("conv_gone", {FetchError{FetchError::Kind::kNotFound, "404"}});
  refresher_->Track(call, "conv_gone");
  scheduler_.Advance(13s);
  EXPECT_EQ(ledger_.Find(call).status, CallStatus::kInitiated);  // two 404s so far
  scheduler_.Advance(1s);
  const CallRecord record = ledger_.Find(call);
  EXPECT_EQ(record.status, CallStatus::kFailed);
  EXPECT_EQ(record.failure_reason, "the upstream does not know this conversation");
  EXPECT_EQ(refresher_->stats().tracked, 0U);
  EXPECT_EQ(source_.FetchSeconds("conv_gone", start_), (std::vector<std::int64_t>{2, 6, 14}));
}

TEST_F(RefresherTest, ANotFoundStreakIsResetByAnAnswer) {
  Make({.max_not_found = 2});
  const std::string call = AddInitiated("conv_flaky");
  const FetchResult not_found = FetchError{FetchError::Kind::kNotFound};
  source_.Script("conv_flaky",
                 {not_found, Status(CallStatus::kInitiated), not_found, Status(CallStatus::kDone)});
  refresher_->Track(call, "conv_flaky");
  scheduler_.Advance(10min);
  EXPECT_EQ(ledger_.Find(call).status, CallStatus::kDone);
}

TEST_F(RefresherTest, ConcurrentFetchesAreBounded) {
  Make({.max_concurrent = 3});
  source_.Defer();
  std::vector<std::string> calls;
  for (int i = 0; i < 8; ++i) {
    calls.push_back(AddInitiated("conv_" + std::to_string(i)));
    refresher_->Track(calls.back(), "conv_" + std::to_string(i));
  }
  scheduler_.Advance(2s);  // all 8 are due
  EXPECT_EQ(source_.pending(), 3U);
  EXPECT_EQ(refresher_->stats().in_flight, 3U);
  int answered = 0;
  while (source_.pending() > 0) {
    source_.AnswerOldest(Status(CallStatus::kDone));
    ++answered;
  }
  EXPECT_EQ(answered, 8);
  EXPECT_EQ(source_.max_pending(), 3U);
  for (const auto& call : calls)
    EXPECT_EQ(ledger_.Find(call).status, CallStatus::kDone);
  EXPECT_EQ(refresher_->stats().finished, 8U);
  EXPECT_EQ(refresher_->stats().in_flight, 0U);
}

TEST_F(RefresherTest, ACallFinishedElsewhereIsNoLongerPolled) {
  Make();
  const std::string call = AddInitiated("conv_w");
  source_.Script("conv_w", {Status(CallStatus::kInProgress)});
  refresher_->Track(call, "conv_w");
  scheduler_.Advance(2s);
  EXPECT_EQ(ledger_.Find(call).status, CallStatus::kInProgress);
  // A webhook finishes the call; the upstream's listing still lags.
  ledger_.ApplyConversationUpdate(
      {.conversation_id = "conv_w", .status = CallStatus::kDone, .source = UpdateSource::kWebhook},
      [](LedgerResult<UpdateOutcome>) {});
  scheduler_.Advance(10min);
  EXPECT_EQ(source_.FetchSeconds("conv_w", start_), (std::vector<std::int64_t>{2, 4}));
  EXPECT_EQ(ledger_.Find(call).status, CallStatus::kDone);
  EXPECT_EQ(ledger_.Find(call).source, UpdateSource::kWebhook);
  EXPECT_EQ(refresher_->stats().tracked, 0U);
}

TEST_F(RefresherTest, ACallIsFollowedForAtMostMaxFollow) {
  Make({.max_follow = 1min});
  const std::string call = AddInitiated("conv_long");
  source_.Script("conv_long", {Status(CallStatus::kInProgress)});
  refresher_->Track(call, "conv_long");
  scheduler_.Advance(10min);
  const auto fetched = source_.FetchSeconds("conv_long", start_);
  ASSERT_FALSE(fetched.empty());
  EXPECT_LE(fetched.back(), 60);
  EXPECT_EQ(refresher_->stats().tracked, 0U);
  EXPECT_EQ(refresher_->stats().given_up, 1U);
  EXPECT_EQ(ledger_.Find(call).status, CallStatus::kInProgress);  // left as it is
}

TEST_F(RefresherTest, TrackingIsBounded) {
  Make({.max_tracked = 2});
  EXPECT_TRUE(refresher_->Track("call_a", "conv_a"));
  EXPECT_TRUE(refresher_->Track("call_b", "conv_b"));
  EXPECT_FALSE(refresher_->Track("call_c", "conv_c"));
  EXPECT_TRUE(refresher_->Track("call_a", "conv_a"));  // already followed: harmless
  EXPECT_EQ(refresher_->stats().tracked, 2U);
}

TEST_F(RefresherTest, AfterStopLateAnswersAndTimersDoNothing) {
  Make();
  source_.Defer();
  const std::string call = AddInitiated("conv_s");
  refresher_->Track(call, "conv_s");
  scheduler_.Advance(2s);
  ASSERT_EQ(source_.pending(), 1U);
  refresher_->Stop();
  source_.AnswerOldest(Status(CallStatus::kDone));
  EXPECT_EQ(ledger_.Find(call).status, CallStatus::kInitiated);
  EXPECT_FALSE(refresher_->Track("call_x", "conv_x"));
  scheduler_.Advance(10min);
  EXPECT_EQ(source_.pending(), 0U);
  EXPECT_EQ(source_.FetchSeconds("conv_s", start_).size(), 1U);
  EXPECT_EQ(refresher_->stats().tracked, 0U);
  refresher_.reset();  // destroyed after Stop: fine
}

TEST_F(RefresherTest, StartFollowsUnfinishedCallsAndFailsOrphans) {
  const std::int64_t now = UnixMillis(clock_);
  const std::string live = ledger_.Add(CallStatus::kInProgress, "conv_live", now - 600'000);
  const std::string orphan = ledger_.Add(CallStatus::kQueued, std::nullopt, now - 10'000);
  const std::string old_orphan = ledger_.Add(CallStatus::kQueued, std::nullopt, now - 3'600'000);
  const std::string answered = ledger_.Add(CallStatus::kQueued, std::nullopt, now - 5'000);
  const std::string finished = ledger_.Add(CallStatus::kDone, "conv_done", now - 900'000);
  source_.Script("conv_live", {Status(CallStatus::kDone)});
  Make();
  refresher_->Start();

  scheduler_.Advance(0ms);  // the old orphan's check is due at once
  EXPECT_EQ(ledger_.Find(old_orphan).status, CallStatus::kFailed);
  EXPECT_EQ(ledger_.Find(old_orphan).source, UpdateSource::kRecovery);
  scheduler_.Advance(2s);
  EXPECT_EQ(ledger_.Find(live).status, CallStatus::kDone);

  // The answer for `answered` arrived before its check (its request was still running).
  ledger_.MarkInitiated(answered, {.conversation_id = "conv_answered"},
                        [](LedgerResult<CallRecord>) {});
  scheduler_.Advance(47s);  // 49 s after start: the orphan is 59 s old
  EXPECT_EQ(ledger_.Find(orphan).status, CallStatus::kQueued);
  scheduler_.Advance(1s);
  const CallRecord failed = ledger_.Find(orphan);
  EXPECT_EQ(failed.status, CallStatus::kFailed);
  EXPECT_EQ(failed.source, UpdateSource::kRecovery);
  EXPECT_NE(failed.failure_reason->find("unknown"), std::string::npos);
  scheduler_.Advance(10s);  // past the check of `answered`
  EXPECT_EQ(ledger_.Find(answered).status, CallStatus::kInitiated);
  EXPECT_EQ(ledger_.Find(finished).status, CallStatus::kDone);
  EXPECT_EQ(source_.FetchSeconds("conv_done", start_).size(), 0U);
  EXPECT_EQ(refresher_->stats().orphans_failed, 2U);
}

TEST(RefresherWithSqlite, TheLedgerReachesDoneWithoutAWebhook) {
  callgate::testing::TempDir dir;
  core::ManualClock clock;
  ManualScheduler scheduler(clock);
  FakeSource source(clock);
  auto database = testing::OpenDatabase((dir.path() / "callgate.db").string());
  SqliteCallLedger ledger(*database, clock);
  const auto call = testing::Await<LedgerResult<CallRecord>>([&](auto done) {
    ledger.Insert({.to_number = "+15551234567", .agent_id = "a", .prompt = "p"}, done);
  });
  ASSERT_TRUE(call.has_value());
  ASSERT_TRUE(testing::Await<LedgerResult<CallRecord>>([&](auto done) {
                ledger.MarkInitiated(call->call_id, {.conversation_id = "conv_sql"}, done);
              }).has_value());
  ConversationStatus done = Status(CallStatus::kDone);
  done.analysis = boost::json::object{{"call_successful", "success"}};
  source.Script("conv_sql", {Status(CallStatus::kInProgress), done});
  {
    StatusRefresher refresher(ledger, source, clock, scheduler);
    refresher.Start();
    testing::Drain(*database);  // the unfinished calls are loaded
    scheduler.Advance(2s);      // first fetch: in-progress
    testing::Drain(*database);  // stored; the next fetch is scheduled
    scheduler.Advance(2s);      // second fetch: done
    testing::Drain(*database);
    EXPECT_EQ(refresher.stats().finished, 1U);
    EXPECT_EQ(refresher.stats().tracked, 0U);
  }
  const auto stored =
      testing::Await<LedgerResult<CallRecord>>([&](auto cb) { ledger.Get(call->call_id, cb); });
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->status, CallStatus::kDone);
  EXPECT_EQ(stored->analysis->at("call_successful"), "success");
  EXPECT_EQ(stored->source, UpdateSource::kPoll);
  database->Close();
}

}  // namespace
}  // namespace callgate::calls

namespace callgate::calls {
namespace {

TEST(StatusFromConversation, CopiesOutOfTheSourcesArena) {
  std::optional<ConversationStatus> status;
  {
    // A webhook event's data lives in an arena that is freed with the event.
    auto arena = boost::json::make_shared_resource<boost::json::monotonic_resource>();
    const boost::json::value conversation = boost::json::parse(
        R"({"status":"done","transcript":[{"role":"agent","message":"Hello there"}],
            "analysis":{"call_successful":"success"},
            "metadata":{"call_duration_secs":12}})",
        arena);
    status = StatusFromConversation(conversation.as_object());
  }
  ASSERT_TRUE(status->transcript.has_value());
  EXPECT_EQ(status->transcript->storage().get(), boost::json::storage_ptr().get());
  EXPECT_EQ(status->analysis->storage().get(), boost::json::storage_ptr().get());
  EXPECT_EQ(status->transcript->at(0).at("message"), "Hello there");
  EXPECT_EQ(status->analysis->at("call_successful"), "success");
  EXPECT_EQ(status->status, CallStatus::kDone);
  EXPECT_EQ(status->duration_secs, 12);
}

}  // namespace
}  // namespace callgate::calls
