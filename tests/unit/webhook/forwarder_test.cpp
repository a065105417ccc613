// Forwarding with a fake transport, a manual clock and a manual scheduler, on a real SQLite
// file: signatures (checked with the openssl CLI), retries with backoff, dead letters, replay,
// order per conversation, recovery after a crash.
#include "webhook/forwarder.hpp"

#include "fakes.hpp"
#include "openssl_cli.hpp"
#include "support/process.hpp"
#include "webhook/signature.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <future>
#include <mutex>

namespace callgate::webhook {
namespace {

using namespace std::chrono_literals;
using callgate::testing::TempDir;
using callgate::testing::WaitFor;
using testing::FakeTransport;
using testing::ManualScheduler;

constexpr char kForwardSecret[] = "fwd_secret_7c1e9a";
constexpr char kTargetA[] = "https://n8n.example/webhook/a";
constexpr char kTargetB[] = "https://hooks.example/b";

std::string Transcription(const std::string& conversation) {
  return R"({"type":"post_call_transcription","data":{"conversation_id":")" + conversation +
         R"(","status":"done"}})";
}

class ForwarderTest : public ::testing::Test {
 protected:
  void SetUp() override { database_ = store::Database::Open(path(), Migrations()); }
  void TearDown() override { StopAll(); }

  std::string path() const { return (dir_.path() / "callgate.db").string(); }

  void Start(ForwarderOptions options, bool attach = true) {
    if (options.secret.empty()) options.secret = kForwardSecret;
    options.stop_timeout = 5s;  // a test that fails midway must not hang on unanswered calls
    forwarder_ = std::make_unique<Forwarder>(*database_, transport_, clock_, scheduler_, options);
    forwarder_->Start();
    std::vector<EventSink*> sinks;
    if (attach) sinks.push_back(forwarder_.get());
    inbox_ =
        std::make_unique<Inbox>(*database_, clock_, InboxOptions{.data_dir = dir_.path()}, sinks);
  }
  void StopAll() {
    if (inbox_) inbox_->Stop();
    if (forwarder_) forwarder_->Stop();
    inbox_.reset();
    forwarder_.reset();
  }

  std::string Store(const std::string& body) {
    Submission submission;
    submission.event = ParseEvent(body).value();
    submission.verification = "verified";
    std::promise<SubmitResult> result;
    inbox_->Submit(std::move(submission), [&](SubmitResult r) { result.set_value(std::move(r)); });
    const SubmitResult r = result.get_future().get();
    EXPECT_EQ(r.status, SubmitStatus::kStored) << r.message;
    return r.event_id;
  }
  // Every task already queued on the database thread, and those they queue, have run.
  void Settle() {
    for (int i = 0; i < 4; ++i) {
      std::promise<void> done;
      database_->Post([&](sqlite3*) { done.set_value(); });
      done.get_future().wait();
    }
  }
  bool WaitCalls(std::size_t n) {
    return WaitFor([&] { return transport_.count() >= n; }, 10s) && transport_.count() == n;
  }
  std::vector<Delivery> Deliveries(const std::string& event_id) {
    Settle();
    std::promise<std::vector<Delivery>> result;
    EXPECT_TRUE(forwarder_->Deliveries(event_id, [&](std::vector<Delivery> d, std::string error) {
      EXPECT_EQ(error, "");
      result.set_value(std::move(d));
    }));
    return result.get_future().get();
  }
  // The next retry: time passes, the timer fires.
  void NextRetry(std::chrono::milliseconds after) {
    Settle();  // answers are recorded (and their retries armed) on the database thread
    clock_.Advance(after);
    scheduler_.RunAll();
  }

  TempDir dir_;
  core::ManualClock clock_;
  ManualScheduler scheduler_;
  FakeTransport transport_;
  std::unique_ptr<store::Database> database_;
  std::unique_ptr<Forwarder> forwarder_;
  std::unique_ptr<Inbox> inbox_;
};

TEST_F(ForwarderTest, EachEventGoesToEachTargetSigned) {
  Start({.targets = {kTargetA, kTargetB}});
  const std::string body = Transcription("conv_1");
  const std::string event_id = Store(body);
  ASSERT_TRUE(WaitCalls(2));
  std::set<std::string> urls;
  for (std::size_t i = 0; i < 2; ++i) {
    const auto call = transport_.call(i);
    urls.insert(call.url);
    EXPECT_EQ(call.body, body);
    EXPECT_EQ(call.Header("Content-Type"), "application/json");
    EXPECT_EQ(call.Header("Callgate-Event-Id"), event_id);
    EXPECT_EQ(call.Header("Callgate-Delivery-Attempt"), "1");
    // The receiver's check, with the MAC from the openssl CLI.
    const std::string signature = call.Header("ElevenLabs-Signature");
    const std::string t = std::to_string(clock_.NowUnixSeconds());
    EXPECT_EQ(signature,
              "t=" + t + ",v0=" + testing::OpensslHmacHex(kForwardSecret, t + "." + body));
    EXPECT_TRUE(Verify(signature, call.body, {.secrets = {kForwardSecret}}, clock_).ok());
  }
  EXPECT_EQ(urls, (std::set<std::string>{kTargetA, kTargetB}));
  transport_.Answer(0, 200);
  transport_.Answer(1, 204);
  const auto deliveries = Deliveries(event_id);
  ASSERT_EQ(deliveries.size(), 2u);
  for (const Delivery& d : deliveries) {
    EXPECT_EQ(d.state, "delivered");
    EXPECT_EQ(d.attempts, 1);
  }
  Settle();
  EXPECT_EQ(transport_.count(), 2u);
}

TEST_F(ForwarderTest, FailsTwiceThenSucceedsDeliveredOnce) {
  Start({.targets = {kTargetA}});
  const std::string event_id = Store(Transcription("conv_1"));
  ASSERT_TRUE(WaitCalls(1));
  transport_.Answer(0, 500);
  auto deliveries = Deliveries(event_id);
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0].state, "pending");
  EXPECT_EQ(deliveries[0].attempts, 1);
  EXPECT_EQ(deliveries[0].last_status, 500);
  EXPECT_EQ(deliveries[0].next_attempt_ms, 1'700'000'001'000);
  EXPECT_EQ(scheduler_.delays(), std::vector<std::chrono::milliseconds>{1s});

  NextRetry(1s);
  ASSERT_TRUE(WaitCalls(2));
  EXPECT_EQ(transport_.call(1).Header("Callgate-Delivery-Attempt"), "2");
  transport_.Answer(1, 0, "connection refused");
  deliveries = Deliveries(event_id);
  EXPECT_EQ(deliveries[0].last_error, "connection refused");
  EXPECT_EQ(scheduler_.delays(), std::vector<std::chrono::milliseconds>{2s});

  NextRetry(2s);
  ASSERT_TRUE(WaitCalls(3));
  transport_.Answer(2, 200);
  deliveries = Deliveries(event_id);
  EXPECT_EQ(deliveries[0].state, "delivered");
  EXPECT_EQ(deliveries[0].attempts, 3);
  // Nothing more is sent, whatever time passes.
  NextRetry(1h);
  Settle();
  EXPECT_EQ(transport_.count(), 3u);
}

TEST_F(ForwarderTest, DeadAfterMaxAttemptsThenReplayed) {
  Start({.targets = {kTargetA}, .max_attempts = 2});
  const std::string event_id = Store(Transcription("conv_1"));
  ASSERT_TRUE(WaitCalls(1));
  transport_.Answer(0, 502);
  NextRetry(1s);
  ASSERT_TRUE(WaitCalls(2));
  transport_.Answer(1, 502);
  auto dead = Deliveries("");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].state, "dead");
  EXPECT_EQ(dead[0].attempts, 2);
  EXPECT_EQ(dead[0].event_id, event_id);
  NextRetry(1h);
  Settle();
  EXPECT_EQ(transport_.count(), 2u) << "a dead delivery is not retried";

  // The dead state survives a restart.
  StopAll();
  Start({.targets = {kTargetA}, .max_attempts = 2});
  EXPECT_EQ(Deliveries("").size(), 1u);

  std::promise<std::size_t> rows;
  ASSERT_TRUE(forwarder_->Replay(event_id, [&](std::size_t n, std::string error) {
    EXPECT_EQ(error, "");
    rows.set_value(n);
  }));
  EXPECT_EQ(rows.get_future().get(), 1u);
  ASSERT_TRUE(WaitCalls(3));
  EXPECT_EQ(transport_.call(2).Header("Callgate-Delivery-Attempt"), "1");
  transport_.Answer(2, 200);
  EXPECT_EQ(Deliveries(event_id)[0].state, "delivered");
  EXPECT_TRUE(Deliveries("").empty());

  std::promise<std::size_t> none;
  ASSERT_TRUE(
      forwarder_->Replay("evt_unknown", [&](std::size_t n, std::string) { none.set_value(n); }));
  EXPECT_EQ(none.get_future().get(), 0u);
}

TEST_F(ForwarderTest, InOrderPerConversation) {
  Start({.targets = {kTargetA}});
  const std::string first = Store(Transcription("conv_1"));
  const std::string second =
      Store(R"({"type":"call_initiation_failure","data":{"conversation_id":"conv_1"}})");
  const std::string other = Store(Transcription("conv_2"));
  // conv_1's second event waits behind its first; conv_2 does not.
  ASSERT_TRUE(WaitCalls(2));
  EXPECT_EQ(transport_.call(0).Header("Callgate-Event-Id"), first);
  EXPECT_EQ(transport_.call(1).Header("Callgate-Event-Id"), other);
  transport_.Answer(1, 200);
  transport_.Answer(0, 500);
  Settle();
  EXPECT_EQ(transport_.count(), 2u) << "the second event waits while the first is retried";
  NextRetry(1s);
  ASSERT_TRUE(WaitCalls(3));
  EXPECT_EQ(transport_.call(2).Header("Callgate-Event-Id"), first);
  transport_.Answer(2, 200);
  ASSERT_TRUE(WaitCalls(4));
  EXPECT_EQ(transport_.call(3).Header("Callgate-Event-Id"), second);
  transport_.Answer(3, 200);
  EXPECT_EQ(Deliveries(second)[0].state, "delivered");
}

TEST_F(ForwarderTest, RowsLostToACrashAreRecreatedAtStart) {
  Start({.targets = {kTargetA}});
  const std::string delivered = Store(Transcription("conv_1"));
  ASSERT_TRUE(WaitCalls(1));
  transport_.Answer(0, 200);
  Settle();
  StopAll();
  // The process "dies" between an event's commit and its deliveries being queued: here, an
  // inbox without the forwarder stores it.
  Start({.targets = {kTargetA}}, /*attach=*/false);
  const std::string lost = Store(Transcription("conv_2"));
  Settle();
  EXPECT_EQ(transport_.count(), 1u);
  StopAll();

  // At the next start the delivery is recreated; a target added now starts from now.
  Start({.targets = {kTargetA, kTargetB}});
  ASSERT_TRUE(WaitCalls(2));
  EXPECT_EQ(transport_.call(1).url, kTargetA);
  EXPECT_EQ(transport_.call(1).Header("Callgate-Event-Id"), lost);
  transport_.Answer(1, 200);
  Settle();
  EXPECT_EQ(transport_.count(), 2u) << "nothing resent, nothing old sent to the new target";
  const std::string fresh = Store(Transcription("conv_3"));
  ASSERT_TRUE(WaitCalls(4));
  EXPECT_EQ(transport_.call(2).Header("Callgate-Event-Id"), fresh);
  EXPECT_EQ(transport_.call(3).Header("Callgate-Event-Id"), fresh);
  transport_.Answer(2, 200);
  transport_.Answer(3, 200);
  EXPECT_EQ(Deliveries(delivered).size(), 1u);
}

TEST_F(ForwarderTest, InFlightIsBounded) {
  Start({.targets = {kTargetA}, .max_in_flight = 2});
  for (int i = 0; i < 5; ++i)
    Store(Transcription("conv_" + std::to_string(i)));
  ASSERT_TRUE(WaitCalls(2));
  Settle();
  EXPECT_EQ(transport_.count(), 2u);
  transport_.Answer(0, 200);
  ASSERT_TRUE(WaitCalls(3));
  transport_.Answer(1, 200);
  transport_.Answer(2, 200);
  ASSERT_TRUE(WaitCalls(5));
  transport_.Answer(3, 200);
  transport_.Answer(4, 200);
}

TEST(ForwarderBackoff, DoublesUpToTheCap) {
  const ForwarderOptions options{.initial_backoff = 1s, .max_backoff = 10s};
  EXPECT_EQ(Backoff(options, 1), 1s);
  EXPECT_EQ(Backoff(options, 2), 2s);
  EXPECT_EQ(Backoff(options, 3), 4s);
  EXPECT_EQ(Backoff(options, 4), 8s);
  EXPECT_EQ(Backoff(options, 5), 10s);
  EXPECT_EQ(Backoff(options, 60), 10s);
}

}  // namespace
}  // namespace callgate::webhook
