// SqliteCallLedger on a real SQLite file in a temporary directory.
#include "calls/sqlite_ledger.hpp"

#include "calls_support.hpp"
#include "support/process.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <boost/json.hpp>

#include <future>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace callgate::calls {
namespace {

using namespace std::chrono_literals;
using callgate::testing::TempDir;
using testing::Await;

constexpr std::int64_t kStartMs = 1'700'000'000'000;

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (dir_.path() / "callgate.db").string();
    database_ = testing::OpenDatabase(path_);
    ledger_ = std::make_unique<SqliteCallLedger>(*database_, clock_);
  }

  void Reopen() {
    ledger_.reset();
    database_->Close();
    database_ = testing::OpenDatabase(path_);
    ledger_ = std::make_unique<SqliteCallLedger>(*database_, clock_);
  }

  static NewCall Call(std::string to = "+15551234567") {
    return {.to_number = std::move(to),
            .from_number = "+15550000000",
            .agent_phone_number_id = "phnum_1",
            .agent_id = "agent_1",
            .prompt = "Get the parking ticket dismissed",
            .options = {{"first_message", "Hello"}, {"metadata", {{"case", 7}}}}};
  }

  CallRecord Insert(NewCall call) {
    auto result =
        Await<LedgerResult<CallRecord>>([&](auto done) { ledger_->Insert(std::move(call), done); });
    EXPECT_TRUE(result.has_value());
    return result.value();
  }
  CallRecord Insert() { return Insert(Call()); }

  LedgerResult<CallRecord> Get(const std::string& id) {
    return Await<LedgerResult<CallRecord>>([&](auto done) { ledger_->Get(id, done); });
  }
  LedgerResult<CallRecord> GetByConversation(const std::string& id) {
    return Await<LedgerResult<CallRecord>>(
        [&](auto done) { ledger_->GetByConversation(id, done); });
  }
  LedgerResult<CallRecord> Initiate(const std::string& id, const std::string& conversation) {
    return Await<LedgerResult<CallRecord>>([&](auto done) {
      ledger_->MarkInitiated(id, {.conversation_id = conversation, .call_sid = "CA" + id}, done);
    });
  }
  LedgerResult<UpdateOutcome> Update(ConversationUpdate update) {
    return Await<LedgerResult<UpdateOutcome>>(
        [&](auto done) { ledger_->ApplyConversationUpdate(std::move(update), done); });
  }
  LedgerResult<CallPage> List(ListQuery query) {
    return Await<LedgerResult<CallPage>>([&](auto done) { ledger_->List(std::move(query), done); });
  }

  TempDir dir_;
  std::string path_;
  core::ManualClock clock_{core::SystemTime{std::chrono::milliseconds(kStartMs)}};
  std::unique_ptr<store::Database> database_;
  std::unique_ptr<SqliteCallLedger> ledger_;
};

TEST_F(LedgerTest, MigrationsAreInTheCallsRange) {
  EXPECT_EQ(database_->schema_version(), 101);
  for (const auto& migration : Migrations()) {
    EXPECT_GE(migration.version, 100);
    EXPECT_LE(migration.version, 199);
  }
}

TEST_F(LedgerTest, InsertStoresAQueuedCallWithTheClocksTime) {
  const CallRecord inserted = Insert();
  EXPECT_TRUE(inserted.call_id.starts_with("call_"));
  EXPECT_EQ(inserted.call_id.size(), 5U + 24U);
  EXPECT_EQ(inserted.status, CallStatus::kQueued);
  EXPECT_EQ(inserted.created_at_ms, kStartMs);
  EXPECT_EQ(inserted.updated_at_ms, kStartMs);
  EXPECT_EQ(inserted.source, UpdateSource::kApi);

  const auto stored = Get(inserted.call_id);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->to_number, "+15551234567");
  EXPECT_EQ(stored->from_number, "+15550000000");
  EXPECT_EQ(stored->agent_phone_number_id, "phnum_1");
  EXPECT_EQ(stored->agent_id, "agent_1");
  EXPECT_EQ(stored->prompt, "Get the parking ticket dismissed");
  EXPECT_EQ(stored->options.at("metadata").at("case"), 7);
  EXPECT_EQ(stored->status, CallStatus::kQueued);
  EXPECT_FALSE(stored->conversation_id);
  EXPECT_FALSE(stored->transcript);
  EXPECT_EQ(stored->created_at_ms, kStartMs);
}

TEST_F(LedgerTest, EachInsertGetsItsOwnId) {
  std::set<std::string> ids;
  for (int i = 0; i < 20; ++i)
    ids.insert(Insert().call_id);
  EXPECT_EQ(ids.size(), 20U);
}

TEST_F(LedgerTest, UnknownIdsAreNotFound) {
  EXPECT_EQ(Get("call_nope").error(), LedgerErrc::kNotFound);
  EXPECT_EQ(GetByConversation("conv_nope").error(), LedgerErrc::kNotFound);
  EXPECT_EQ(Initiate("call_nope", "conv_1").error(), LedgerErrc::kNotFound);
  EXPECT_EQ(Update({.conversation_id = "conv_nope", .status = CallStatus::kDone}).error(),
            LedgerErrc::kNotFound);
}

TEST_F(LedgerTest, UpstreamAnswerIsRecordedAndFoundByConversation) {
  const CallRecord call = Insert();
  clock_.Advance(1500ms);
  const auto initiated = Initiate(call.call_id, "conv_abc");
  ASSERT_TRUE(initiated.has_value());
  EXPECT_EQ(initiated->status, CallStatus::kInitiated);
  EXPECT_EQ(initiated->conversation_id, "conv_abc");
  EXPECT_EQ(initiated->call_sid, "CA" + call.call_id);
  EXPECT_EQ(initiated->updated_at_ms, kStartMs + 1500);
  EXPECT_EQ(initiated->created_at_ms, kStartMs);

  const auto found = GetByConversation("conv_abc");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->call_id, call.call_id);
  EXPECT_EQ(found->status, CallStatus::kInitiated);
}

TEST_F(LedgerTest, AConversationIdBelongsToOneCall) {
  const CallRecord first = Insert();
  const CallRecord second = Insert();
  ASSERT_TRUE(Initiate(first.call_id, "conv_same").has_value());
  EXPECT_EQ(Initiate(second.call_id, "conv_same").error(), LedgerErrc::kConflict);
  EXPECT_EQ(Get(second.call_id)->status, CallStatus::kQueued);  // rolled back
}

TEST_F(LedgerTest, MarkFailedRecordsTheReasonUnlessFinal) {
  const CallRecord call = Insert();
  auto failed = Await<LedgerResult<CallRecord>>([&](auto done) {
    ledger_->MarkFailed(call.call_id, "upstream_auth_failed", UpdateSource::kApi, done);
  });
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->status, CallStatus::kFailed);
  EXPECT_EQ(Get(call.call_id)->failure_reason, "upstream_auth_failed");

  const CallRecord other = Insert();
  ASSERT_TRUE(Initiate(other.call_id, "conv_done").has_value());
  ASSERT_TRUE(Update({.conversation_id = "conv_done", .status = CallStatus::kDone}).has_value());
  auto late = Await<LedgerResult<CallRecord>>([&](auto done) {
    ledger_->MarkFailed(other.call_id, "too late", UpdateSource::kPoll, done);
  });
  ASSERT_TRUE(late.has_value());
  EXPECT_EQ(late->status, CallStatus::kDone);
  EXPECT_FALSE(Get(other.call_id)->failure_reason);
}

TEST_F(LedgerTest, ConversationUpdatesFollowTheRulesAndPersistJson) {
  const CallRecord call = Insert();
  ASSERT_TRUE(Initiate(call.call_id, "conv_1").has_value());
  clock_.Advance(10s);
  auto progress = Update({.conversation_id = "conv_1",
                          .status = CallStatus::kInProgress,
                          .source = UpdateSource::kPoll});
  ASSERT_TRUE(progress.has_value());
  EXPECT_TRUE(progress->changed);
  EXPECT_EQ(progress->record.status, CallStatus::kInProgress);
  EXPECT_EQ(progress->record.source, UpdateSource::kPoll);

  auto stale = Update({.conversation_id = "conv_1", .status = CallStatus::kInitiated});
  ASSERT_TRUE(stale.has_value());
  EXPECT_FALSE(stale->changed);
  EXPECT_EQ(stale->record.status, CallStatus::kInProgress);

  clock_.Advance(60s);
  const boost::json::value transcript = boost::json::parse(
      R"([{"role":"agent","message":"Hi","time_in_call_secs":0},
          {"role":"user","message":"Hello","time_in_call_secs":2}])");
  auto done = Update({.conversation_id = "conv_1",
                      .status = CallStatus::kDone,
                      .transcript = transcript,
                      .analysis = boost::json::object{{"call_successful", "success"}},
                      .duration_secs = 61,
                      .source = UpdateSource::kWebhook});
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(done->changed);

  auto again = Update({.conversation_id = "conv_1", .status = CallStatus::kFailed});
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(again->changed);

  Reopen();  // from disk
  const auto stored = Get(call.call_id);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->status, CallStatus::kDone);
  EXPECT_EQ(stored->transcript, transcript);
  EXPECT_EQ(stored->analysis->at("call_successful"), "success");
  EXPECT_EQ(stored->duration_secs, 61);
  EXPECT_EQ(stored->source, UpdateSource::kWebhook);
  EXPECT_EQ(stored->updated_at_ms, kStartMs + 70'000);
}

TEST_F(LedgerTest, AnUpdateIsCompletedOnlyForAConversationThatIsACall) {
  const CallRecord call = Insert();
  ASSERT_TRUE(Initiate(call.call_id, "conv_1").has_value());
  int completed = 0;
  auto fill = [&completed](ConversationUpdate& update) {
    ++completed;
    update.status = CallStatus::kDone;
    update.duration_secs = 42;
  };

  ConversationUpdate stranger{.conversation_id = "conv_not_ours", .source = UpdateSource::kWebhook};
  stranger.complete = fill;
  const auto unknown = Update(std::move(stranger));
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error(), make_error_code(LedgerErrc::kNotFound));
  EXPECT_EQ(completed, 0);

  ConversationUpdate ours{.conversation_id = "conv_1", .source = UpdateSource::kWebhook};
  ours.complete = fill;
  const auto updated = Update(std::move(ours));
  ASSERT_TRUE(updated.has_value());
  EXPECT_EQ(completed, 1);
  EXPECT_TRUE(updated->changed);
  EXPECT_EQ(updated->record.status, CallStatus::kDone);
  EXPECT_EQ(updated->record.duration_secs, 42);
  EXPECT_EQ(updated->record.source, UpdateSource::kWebhook);
}

TEST_F(LedgerTest, ABatchOfUpdatesAnswersEachInOrder) {
  const CallRecord first = Insert();
  const CallRecord second = Insert(Call("+15557654321"));
  ASSERT_TRUE(Initiate(first.call_id, "conv_a").has_value());
  ASSERT_TRUE(Initiate(second.call_id, "conv_b").has_value());
  int completed = 0;
  std::vector<ConversationUpdate> updates;
  for (const char* id : {"conv_stranger", "conv_a", "conv_other", "conv_b"}) {
    ConversationUpdate update{.conversation_id = id, .source = UpdateSource::kWebhook};
    update.complete = [&completed](ConversationUpdate& u) {
      ++completed;
      u.status = u.conversation_id == "conv_a" ? CallStatus::kDone : CallStatus::kFailed;
      u.failure_reason = "no-answer";
    };
    updates.push_back(std::move(update));
  }
  std::vector<std::pair<std::size_t, LedgerResult<UpdateOutcome>>> answers;
  std::promise<void> all;
  ledger_->ApplyConversationUpdates(
      std::move(updates), [&](std::size_t i, LedgerResult<UpdateOutcome> result) {
        answers.emplace_back(i, std::move(result));  // on the database thread, one at a time
        if (answers.size() == 4) all.set_value();
      });
  ASSERT_EQ(all.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  ASSERT_EQ(answers.size(), 4u);
  for (std::size_t i = 0; i < answers.size(); ++i)
    EXPECT_EQ(answers[i].first, i);
  EXPECT_EQ(answers[0].second.error(), make_error_code(LedgerErrc::kNotFound));
  EXPECT_EQ(answers[2].second.error(), make_error_code(LedgerErrc::kNotFound));
  ASSERT_TRUE(answers[1].second.has_value());
  EXPECT_EQ(answers[1].second->record.call_id, first.call_id);
  EXPECT_EQ(answers[1].second->record.status, CallStatus::kDone);
  ASSERT_TRUE(answers[3].second.has_value());
  EXPECT_EQ(answers[3].second->record.call_id, second.call_id);
  EXPECT_EQ(answers[3].second->record.status, CallStatus::kFailed);
  EXPECT_EQ(completed, 2);  // only the calls' updates were filled in
  // Stored, not just answered.
  EXPECT_EQ(Get(first.call_id)->status, CallStatus::kDone);
  EXPECT_EQ(Get(second.call_id)->status, CallStatus::kFailed);

  database_->Close();  // a batch the database refuses: every update answers busy
  std::vector<std::size_t> busy;
  std::vector<ConversationUpdate> refused(2);
  ledger_->ApplyConversationUpdates(std::move(refused),
                                    [&](std::size_t i, LedgerResult<UpdateOutcome> result) {
                                      EXPECT_EQ(result.error(), LedgerErrc::kBusy);
                                      busy.push_back(i);
                                    });
  EXPECT_EQ(busy, (std::vector<std::size_t>{0, 1}));
}

TEST_F(LedgerTest, TheLedgerSurvivesARestart) {
  const CallRecord call = Insert();
  ASSERT_TRUE(Initiate(call.call_id, "conv_r").has_value());
  Reopen();
  const auto stored = GetByConversation("conv_r");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->call_id, call.call_id);
  EXPECT_EQ(stored->options.at("first_message"), "Hello");
}

TEST_F(LedgerTest, ListsNewestFirstAcrossPagesWithoutGapsOrRepeats) {
  std::vector<std::string> inserted;
  for (int i = 0; i < 7; ++i) {
    inserted.push_back(Insert().call_id);
    if (i % 2 == 0) clock_.Advance(1ms);  // some calls share a millisecond
  }
  std::vector<std::string> listed;
  ListQuery query;
  query.limit = 3;
  int pages = 0;
  while (true) {
    auto page = List(query);
    ASSERT_TRUE(page.has_value());
    ++pages;
    for (const auto& call : page->calls)
      listed.push_back(call.call_id);
    if (!page->has_more) {
      EXPECT_FALSE(page->next_cursor);
      break;
    }
    ASSERT_TRUE(page->next_cursor);
    EXPECT_EQ(page->calls.size(), 3U);
    query.cursor = *page->next_cursor;
    if (pages == 1) Insert();  // a call placed while paging does not disturb later pages
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(listed, std::vector<std::string>(inserted.rbegin(), inserted.rend()));
}

TEST_F(LedgerTest, ListFiltersByStatusNumberAndTime) {
  const CallRecord a = Insert(Call("+15550000001"));
  clock_.Advance(1h);
  const CallRecord b = Insert(Call("+15550000002"));
  ASSERT_TRUE(Initiate(b.call_id, "conv_b").has_value());
  clock_.Advance(1h);
  const CallRecord c = Insert(Call("+15550000001"));

  auto ids = [&](ListQuery query) {
    std::vector<std::string> result;
    auto page = List(std::move(query));
    EXPECT_TRUE(page.has_value());
    for (const auto& call : page->calls)
      result.push_back(call.call_id);
    return result;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids({.status = CallStatus::kQueued}), (V{c.call_id, a.call_id}));
  EXPECT_EQ(ids({.status = CallStatus::kInitiated}), (V{b.call_id}));
  EXPECT_EQ(ids({.status = CallStatus::kDone}), V{});
  EXPECT_EQ(ids({.to_number = "+15550000001"}), (V{c.call_id, a.call_id}));
  EXPECT_EQ(ids({.since_ms = kStartMs + 3'600'000}), (V{c.call_id, b.call_id}));
  EXPECT_EQ(ids({.until_ms = kStartMs + 3'600'000}), (V{a.call_id}));  // exclusive
  EXPECT_EQ(ids({.since_ms = kStartMs + 1, .until_ms = kStartMs + 7'200'000}), (V{b.call_id}));
  EXPECT_EQ(ids({.status = CallStatus::kQueued, .to_number = "+15550000002"}), V{});
}

TEST_F(LedgerTest, LimitIsClampedToOneToAHundred) {
  for (int i = 0; i < 102; ++i)
    Insert();
  auto big = List({.limit = 1000});
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(big->calls.size(), 100U);
  EXPECT_TRUE(big->has_more);
  auto zero = List({.limit = 0});
  ASSERT_TRUE(zero.has_value());
  EXPECT_EQ(zero->calls.size(), 1U);
  auto fits = List({});
  EXPECT_EQ(fits->calls.size(), ListQuery::kDefaultLimit);
}

TEST_F(LedgerTest, ForeignOrTamperedCursorsAreRefused) {
  for (int i = 0; i < 3; ++i)
    Insert();
  auto page = List({.limit = 1});
  ASSERT_TRUE(page.has_value() && page->next_cursor);
  const std::string good = *page->next_cursor;
  EXPECT_TRUE(List({.cursor = good}).has_value());
  for (const std::string& bad : {std::string("garbage!"), std::string("AAAA"), good + "A",
                                 good.substr(0, good.size() - 1), std::string(200, 'A')}) {
    EXPECT_EQ(List({.cursor = bad}).error(), LedgerErrc::kInvalidCursor) << bad;
  }
}

TEST_F(LedgerTest, UnfinishedCallsOldestFirst) {
  const CallRecord a = Insert();
  const CallRecord b = Insert();
  const CallRecord c = Insert();
  ASSERT_TRUE(Initiate(b.call_id, "conv_b").has_value());
  ASSERT_TRUE(Initiate(c.call_id, "conv_c").has_value());
  ASSERT_TRUE(Update({.conversation_id = "conv_c", .status = CallStatus::kDone}).has_value());
  auto unfinished = Await<LedgerResult<std::vector<CallRecord>>>(
      [&](auto done) { ledger_->ListUnfinished(10, done); });
  ASSERT_TRUE(unfinished.has_value());
  ASSERT_EQ(unfinished->size(), 2U);
  EXPECT_EQ((*unfinished)[0].call_id, a.call_id);
  EXPECT_EQ((*unfinished)[1].call_id, b.call_id);
  auto one = Await<LedgerResult<std::vector<CallRecord>>>(
      [&](auto done) { ledger_->ListUnfinished(1, done); });
  EXPECT_EQ(one->size(), 1U);
}

TEST_F(LedgerTest, AClosedDatabaseAnswersBusyOnTheCallingThread) {
  database_->Close();
  const auto caller = std::this_thread::get_id();
  std::thread::id answered_on;
  LedgerResult<CallRecord> result = LedgerErrc::kStorage;
  ledger_->Insert(Call(), [&](LedgerResult<CallRecord> r) {
    answered_on = std::this_thread::get_id();
    result = std::move(r);
  });
  EXPECT_EQ(answered_on, caller);
  EXPECT_EQ(result.error(), LedgerErrc::kBusy);
}

TEST_F(LedgerTest, AnswersRunOnTheDatabaseThread) {
  const auto caller = std::this_thread::get_id();
  const auto answered_on = Await<std::thread::id>([&](auto done) {
    ledger_->Insert(Call(), [done](LedgerResult<CallRecord>) { done(std::this_thread::get_id()); });
  });
  EXPECT_NE(answered_on, caller);
}

TEST_F(LedgerTest, ConcurrentInsertsFromManyThreadsAreAllStored) {
  constexpr int kThreads = 8;
  constexpr int kEach = 10;
  std::vector<std::thread> threads;
  std::atomic<int> stored{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        auto r = Await<LedgerResult<CallRecord>>([&](auto done) { ledger_->Insert(Call(), done); });
        if (r) ++stored;
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(stored.load(), kThreads * kEach);
  auto page = List({.limit = 100});
  EXPECT_EQ(page->calls.size(), static_cast<std::size_t>(kThreads * kEach));
}

}  // namespace
}  // namespace callgate::calls
