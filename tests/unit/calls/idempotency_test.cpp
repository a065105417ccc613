// IdempotencyStore on a real SQLite file, with a manual clock and scheduler; the concurrent
// duplicate case with real threads.
#include "calls/idempotency.hpp"

#include "calls_support.hpp"
#include "store/statement.hpp"
#include "support/process.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <atomic>
#include <barrier>
#include <future>
#include <thread>
#include <vector>

namespace callgate::calls {
namespace {

using namespace std::chrono_literals;
using callgate::testing::TempDir;
using testing::Await;
using testing::ManualScheduler;

TEST(IdempotencyKeyValidation, AcceptsPrintableAsciiUpToTheLimit) {
  EXPECT_FALSE(ValidateIdempotencyKey("order-123_ABC:xyz"));
  EXPECT_FALSE(ValidateIdempotencyKey(std::string(255, 'k')));
  EXPECT_FALSE(ValidateIdempotencyKey("a key with spaces"));
  EXPECT_EQ(ValidateIdempotencyKey(""), "the Idempotency-Key header is empty");
  EXPECT_EQ(ValidateIdempotencyKey(std::string(256, 'k')),
            "the Idempotency-Key is 256 characters long; the limit is 255");
  EXPECT_EQ(ValidateIdempotencyKey("ab\x01"),
            "the Idempotency-Key may only contain printable ASCII characters; character 3 is "
            "not one");
  EXPECT_TRUE(ValidateIdempotencyKey("caf\xc3\xa9"));
  EXPECT_TRUE(ValidateIdempotencyKey("abcdef", 5));
}

TEST(RequestFingerprint, IgnoresKeyOrderAndSpacingButNotContent) {
  const auto a = boost::json::parse(R"({"to_number":"+15551234567","prompt":"hi",
      "dynamic_variables":{"x":1,"y":[1,2]}})");
  const auto b = boost::json::parse(
      R"({ "dynamic_variables": {"y": [1, 2], "x": 1}, "prompt": "hi", "to_number": "+15551234567" })");
  const auto c = boost::json::parse(R"({"to_number":"+15551234567","prompt":"hi!",
      "dynamic_variables":{"x":1,"y":[1,2]}})");
  const auto d = boost::json::parse(R"({"to_number":"+15551234567","prompt":"hi",
      "dynamic_variables":{"x":1,"y":[2,1]}})");
  const std::string fa = RequestFingerprint("POST", "/api/calls/outbound", a);
  EXPECT_EQ(fa.size(), 64U);
  EXPECT_EQ(fa, RequestFingerprint("POST", "/api/calls/outbound", b));
  EXPECT_NE(fa, RequestFingerprint("POST", "/api/calls/outbound", c));
  EXPECT_NE(fa, RequestFingerprint("POST", "/api/calls/outbound", d));
  EXPECT_NE(fa, RequestFingerprint("POST", "/api/other", a));
  // A known vector, from `printf 'POST\n/p\n{}' | openssl dgst -sha256`.
  EXPECT_EQ(RequestFingerprint("POST", "/p", boost::json::object{}),
            "70afba2bdaa6e008e2c7c76079284057d04446716920855bb1c95f65a9b7fece");
}

class IdempotencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (dir_.path() / "callgate.db").string();
    Open();
  }

  void Open(IdempotencyOptions options = {}) {
    options_ = options;
    database_ = testing::OpenDatabase(path_);
    store_ = std::make_unique<IdempotencyStore>(*database_, clock_, scheduler_, options);
  }
  // A process restart: everything in memory is lost, the file stays.
  void Restart(IdempotencyOptions options = {}) {
    store_.reset();
    database_->Close();
    database_.reset();
    Open(options);
  }

  BeginResult Begin(const std::string& key, const std::string& fingerprint = "fp-1",
                    const std::string& scope = "") {
    return Await<BeginResult>([&](auto done) { store_->Begin({scope, key}, fingerprint, done); });
  }
  // Begin whose answer may come later.
  std::future<BeginResult> BeginLater(const std::string& key,
                                      const std::string& fingerprint = "fp-1") {
    auto promise = std::make_shared<std::promise<BeginResult>>();
    auto future = promise->get_future();
    store_->Begin({"", key}, fingerprint,
                  [promise](BeginResult r) { promise->set_value(std::move(r)); });
    return future;
  }
  bool Complete(const std::string& key, StoredResponse response) {
    return Await<bool>([&](auto done) { store_->Complete({"", key}, std::move(response), done); });
  }
  std::string Count(const char* sql) {
    std::promise<std::string> result;
    database_->Post([&](sqlite3* db) {
      store::Statement stmt(db, sql);
      stmt.Step();
      result.set_value(stmt.Text(0));
    });
    return result.get_future().get();
  }

  static StoredResponse Created(std::string body = R"({"call_id":"call_1"})") {
    return {.status = 200, .content_type = "application/json", .body = std::move(body)};
  }

  TempDir dir_;
  std::string path_;
  core::ManualClock clock_;
  ManualScheduler scheduler_{clock_};
  IdempotencyOptions options_;
  std::unique_ptr<store::Database> database_;
  std::unique_ptr<IdempotencyStore> store_;
};

bool Ready(const std::future<BeginResult>& future) {
  return future.wait_for(0s) == std::future_status::ready;
}

TEST_F(IdempotencyTest, FirstUseProceedsAndLaterUsesReplayTheStoredResponse) {
  EXPECT_EQ(Begin("k1").outcome, BeginOutcome::kProceed);
  EXPECT_EQ(store_->keys_in_flight(), 1U);
  EXPECT_TRUE(Complete("k1", Created()));
  EXPECT_EQ(store_->keys_in_flight(), 0U);
  const BeginResult replay = Begin("k1");
  EXPECT_EQ(replay.outcome, BeginOutcome::kReplay);
  EXPECT_FALSE(replay.waited);
  EXPECT_EQ(replay.response.status, 200);
  EXPECT_EQ(replay.response.content_type, "application/json");
  EXPECT_EQ(replay.response.body, R"({"call_id":"call_1"})");
}

TEST_F(IdempotencyTest, ErrorResponsesAreReplayedToo) {
  EXPECT_EQ(Begin("k-err").outcome, BeginOutcome::kProceed);
  EXPECT_TRUE(Complete("k-err", {.status = 502, .body = R"({"error":{"code":"x"}})"}));
  const BeginResult replay = Begin("k-err");
  EXPECT_EQ(replay.outcome, BeginOutcome::kReplay);
  EXPECT_EQ(replay.response.status, 502);
}

TEST_F(IdempotencyTest, ADifferentRequestWithTheSameKeyConflicts) {
  EXPECT_EQ(Begin("k2", "fp-a").outcome, BeginOutcome::kProceed);
  EXPECT_EQ(Begin("k2", "fp-b").outcome, BeginOutcome::kConflict);  // while in flight
  EXPECT_TRUE(Complete("k2", Created()));
  EXPECT_EQ(Begin("k2", "fp-b").outcome, BeginOutcome::kConflict);  // after completion
  EXPECT_EQ(Begin("k2", "fp-a").outcome, BeginOutcome::kReplay);
}

TEST_F(IdempotencyTest, ADuplicateWaitsForTheFirstAndGetsItsResponse) {
  EXPECT_EQ(Begin("k3").outcome, BeginOutcome::kProceed);
  auto second = BeginLater("k3");
  EXPECT_FALSE(Ready(second));  // waiting, not answered
  EXPECT_TRUE(Complete("k3", Created(R"({"call_id":"first"})")));
  const BeginResult result = second.get();
  EXPECT_EQ(result.outcome, BeginOutcome::kReplay);
  EXPECT_TRUE(result.waited);
  EXPECT_EQ(result.response.body, R"({"call_id":"first"})");
}

TEST_F(IdempotencyTest, ConcurrentDuplicatesDialExactlyOnce) {
  constexpr int kRequests = 12;
  std::atomic<int> upstream_calls{0};
  std::atomic<int> proceeded{0};
  std::barrier start(kRequests);
  std::vector<std::promise<BeginResult>> answers(kRequests);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRequests; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();  // all Begin() at the same moment
      store_->Begin({"", "same-moment"}, "fp", [&, i](BeginResult result) {
        if (result.outcome == BeginOutcome::kProceed) {
          ++proceeded;
          ++upstream_calls;  // the one request that dials
          store_->Complete({"", "same-moment"},
                           Created(R"({"call_id":"call_once","conversation_id":"conv_1"})"));
        }
        answers[static_cast<std::size_t>(i)].set_value(std::move(result));
      });
    });
  }
  for (auto& thread : threads)
    thread.join();
  int replays = 0;
  for (auto& answer : answers) {
    const BeginResult result = answer.get_future().get();
    if (result.outcome == BeginOutcome::kReplay) {
      ++replays;
      EXPECT_EQ(result.response.body, R"({"call_id":"call_once","conversation_id":"conv_1"})");
    } else {
      EXPECT_EQ(result.outcome, BeginOutcome::kProceed);
    }
  }
  EXPECT_EQ(upstream_calls.load(), 1);
  EXPECT_EQ(proceeded.load(), 1);
  EXPECT_EQ(replays, kRequests - 1);
  EXPECT_EQ(Begin("same-moment", "fp").outcome, BeginOutcome::kReplay);
}

TEST_F(IdempotencyTest, ConcurrentDifferentBodiesGetOneProceedAndConflicts) {
  constexpr int kRequests = 6;
  std::barrier start(kRequests);
  std::vector<std::promise<BeginResult>> answers(kRequests);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRequests; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      store_->Begin({"", "mixed"}, "fp-" + std::to_string(i), [&, i](BeginResult result) {
        if (result.outcome == BeginOutcome::kProceed) store_->Complete({"", "mixed"}, Created());
        answers[static_cast<std::size_t>(i)].set_value(std::move(result));
      });
    });
  }
  for (auto& thread : threads)
    thread.join();
  int proceeded = 0;
  int conflicts = 0;
  for (auto& answer : answers) {
    const auto outcome = answer.get_future().get().outcome;
    proceeded += outcome == BeginOutcome::kProceed ? 1 : 0;
    conflicts += outcome == BeginOutcome::kConflict ? 1 : 0;
  }
  EXPECT_EQ(proceeded, 1);
  EXPECT_EQ(conflicts, kRequests - 1);
}

TEST_F(IdempotencyTest, AbandoningForgetsTheKey) {
  EXPECT_EQ(Begin("k4").outcome, BeginOutcome::kProceed);
  store_->Abandon({"", "k4"});
  EXPECT_EQ(store_->keys_in_flight(), 0U);
  EXPECT_EQ(Begin("k4", "another body now").outcome, BeginOutcome::kProceed);
}

TEST_F(IdempotencyTest, AbandoningHandsTheKeyToTheOldestWaiter) {
  EXPECT_EQ(Begin("k5").outcome, BeginOutcome::kProceed);
  auto second = BeginLater("k5");
  auto third = BeginLater("k5");
  store_->Abandon({"", "k5"});
  ASSERT_TRUE(Ready(second));
  EXPECT_EQ(second.get().outcome, BeginOutcome::kProceed);
  EXPECT_FALSE(Ready(third));
  EXPECT_TRUE(Complete("k5", Created(R"({"by":"second"})")));
  const BeginResult result = third.get();
  EXPECT_EQ(result.outcome, BeginOutcome::kReplay);
  EXPECT_EQ(result.response.body, R"({"by":"second"})");
}

TEST_F(IdempotencyTest, AWaiterGivesUpAfterTheWaitTimeout) {
  EXPECT_EQ(Begin("k6").outcome, BeginOutcome::kProceed);
  auto second = BeginLater("k6");
  scheduler_.Advance(29s);
  EXPECT_FALSE(Ready(second));
  scheduler_.Advance(1s);
  ASSERT_TRUE(Ready(second));
  EXPECT_EQ(second.get().outcome, BeginOutcome::kInProgress);
  // The first request still completes normally.
  EXPECT_TRUE(Complete("k6", Created()));
  EXPECT_EQ(Begin("k6").outcome, BeginOutcome::kReplay);
}

TEST_F(IdempotencyTest, WaitersAreBounded) {
  Restart({.max_waiters_per_key = 2});
  EXPECT_EQ(Begin("k7").outcome, BeginOutcome::kProceed);
  auto w1 = BeginLater("k7");
  auto w2 = BeginLater("k7");
  EXPECT_EQ(Begin("k7").outcome, BeginOutcome::kInProgress);
  EXPECT_TRUE(Complete("k7", Created()));
  EXPECT_EQ(w1.get().outcome, BeginOutcome::kReplay);
  EXPECT_EQ(w2.get().outcome, BeginOutcome::kReplay);
}

TEST_F(IdempotencyTest, KeysInFlightAreBounded) {
  Restart({.max_keys_in_flight = 2});
  EXPECT_EQ(Begin("a").outcome, BeginOutcome::kProceed);
  EXPECT_EQ(Begin("b").outcome, BeginOutcome::kProceed);
  EXPECT_EQ(Begin("c").outcome, BeginOutcome::kBusy);
  EXPECT_TRUE(Complete("a", Created()));
  EXPECT_EQ(Begin("c").outcome, BeginOutcome::kProceed);
}

TEST_F(IdempotencyTest, InvalidKeysAreRefused) {
  EXPECT_EQ(Begin("").outcome, BeginOutcome::kInvalidKey);
  EXPECT_EQ(Begin(std::string(256, 'x')).outcome, BeginOutcome::kInvalidKey);
  EXPECT_EQ(Begin("tab\there").outcome, BeginOutcome::kInvalidKey);
}

TEST_F(IdempotencyTest, ScopesSeparateKeySpaces) {
  EXPECT_EQ(Begin("shared", "fp", "client-a").outcome, BeginOutcome::kProceed);
  EXPECT_EQ(Begin("shared", "fp", "client-b").outcome, BeginOutcome::kProceed);
  EXPECT_EQ(store_->keys_in_flight(), 2U);
}

TEST_F(IdempotencyTest, KeysLiveTwentyFourHours) {
  EXPECT_EQ(Begin("k8").outcome, BeginOutcome::kProceed);
  EXPECT_TRUE(Complete("k8", Created()));
  clock_.Advance(24h - 1ms);
  EXPECT_EQ(Begin("k8").outcome, BeginOutcome::kReplay);
  clock_.Advance(1ms);
  EXPECT_EQ(Begin("k8", "a new request").outcome, BeginOutcome::kProceed);
}

TEST_F(IdempotencyTest, PurgeRemovesOnlyExpiredCompletedKeys) {
  EXPECT_EQ(Begin("old").outcome, BeginOutcome::kProceed);
  EXPECT_TRUE(Complete("old", Created()));
  clock_.Advance(23h);
  EXPECT_EQ(Begin("young").outcome, BeginOutcome::kProceed);
  EXPECT_TRUE(Complete("young", Created()));
  EXPECT_EQ(Begin("running").outcome, BeginOutcome::kProceed);
  clock_.Advance(1h);
  const auto purged =
      Await<boost::system::result<std::size_t>>([&](auto done) { store_->PurgeExpired(done); });
  ASSERT_TRUE(purged.has_value());
  EXPECT_EQ(*purged, 1U);
  EXPECT_EQ(Count("SELECT group_concat(key) FROM (SELECT key FROM idempotency_keys ORDER BY key)"),
            "running,young");
}

TEST_F(IdempotencyTest, ThePeriodicPurgeRunsOnTheScheduler) {
  EXPECT_EQ(Begin("p").outcome, BeginOutcome::kProceed);
  EXPECT_TRUE(Complete("p", Created()));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM idempotency_keys"), "1");
  scheduler_.Advance(24h);  // hourly purges; the key expires at 24 h, the 24th purge drops it
  testing::Drain(*database_);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM idempotency_keys"), "0");
}

TEST_F(IdempotencyTest, CompletedKeysSurviveARestart) {
  EXPECT_EQ(Begin("k9").outcome, BeginOutcome::kProceed);
  EXPECT_TRUE(Complete("k9", Created(R"({"call_id":"before restart"})")));
  Restart();
  const BeginResult replay = Begin("k9");
  EXPECT_EQ(replay.outcome, BeginOutcome::kReplay);
  EXPECT_EQ(replay.response.body, R"({"call_id":"before restart"})");
  EXPECT_EQ(Begin("k9", "other").outcome, BeginOutcome::kConflict);
}

TEST_F(IdempotencyTest, AKeyInFlightWhenTheProcessStoppedBecomesOutcomeUnknown) {
  EXPECT_EQ(Begin("crash").outcome, BeginOutcome::kProceed);  // ... then the process dies
  Restart();
  const BeginResult retry = Begin("crash");
  ASSERT_EQ(retry.outcome, BeginOutcome::kReplay);  // not kProceed: never dial twice
  EXPECT_EQ(retry.response.status, kOutcomeUnknownStatus);
  const auto body = boost::json::parse(retry.response.body);
  EXPECT_EQ(body.at("error").at("code").as_string(), kOutcomeUnknownCode);
  EXPECT_EQ(Begin("crash", "different").outcome, BeginOutcome::kConflict);
}

TEST_F(IdempotencyTest, StopAnswersWaitersAndRefusesNewRequests) {
  EXPECT_EQ(Begin("k10").outcome, BeginOutcome::kProceed);
  auto waiter = BeginLater("k10");
  store_->Stop();
  ASSERT_TRUE(Ready(waiter));
  EXPECT_EQ(waiter.get().outcome, BeginOutcome::kInProgress);
  EXPECT_EQ(Begin("k11").outcome, BeginOutcome::kUnavailable);
  EXPECT_TRUE(Complete("k10", Created()));  // a request in flight still completes
}

TEST_F(IdempotencyTest, CompletingAKeyNotInFlightIsRefused) {
  EXPECT_FALSE(Complete("never-begun", Created()));
  EXPECT_EQ(Begin("k12").outcome, BeginOutcome::kProceed);
  EXPECT_TRUE(Complete("k12", Created()));
  EXPECT_FALSE(Complete("k12", Created("second")));
  EXPECT_EQ(Begin("k12").response.body, Created().body);
}

TEST_F(IdempotencyTest, AClosedDatabaseMakesBeginBusy) {
  database_->Close();
  EXPECT_EQ(Begin("k13").outcome, BeginOutcome::kBusy);
  EXPECT_EQ(store_->keys_in_flight(), 0U);
}

}  // namespace
}  // namespace callgate::calls
