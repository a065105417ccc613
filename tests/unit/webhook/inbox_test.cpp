// The inbox on a real SQLite file: durability, deduplication, group commit, recordings.
#include "webhook/inbox.hpp"

#include "support/process.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <fstream>
#include <future>
#include <iterator>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace callgate::webhook {
namespace {

using namespace std::chrono_literals;
using callgate::testing::TempDir;

std::string Transcription(const std::string& conversation, const std::string& extra = "") {
  return R"({"type":"post_call_transcription","event_timestamp":1739537297,"data":{"agent_id":"a1",)"
         R"("conversation_id":")" +
         conversation + R"(","status":"done","transcript":[{"role":"agent","message":"Hi)" + extra +
         R"("}]}})";
}

// base64 of the bytes, for audio events (`printf ... | base64` gives the same).
std::string Base64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned n = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    for (int k = 18; k >= 0; k -= 6)
      out += kAlphabet[(n >> k) & 63];
  }
  if (i + 1 == bytes.size()) {
    const unsigned n = static_cast<unsigned char>(bytes[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const unsigned n = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string AudioEvent(const std::string& conversation, std::string_view mp3) {
  return R"({"type":"post_call_audio","event_timestamp":1739537319,"data":{"agent_id":"a1",)"
         R"("conversation_id":")" +
         conversation + R"(","full_audio":")" + Base64(mp3) + R"("}})";
}

Submission Make(const std::string& body, std::string replay_key = "",
                Source source = Source::kWebhook) {
  EventResult parsed = ParseEvent(body);
  EXPECT_TRUE(parsed.has_value()) << body;
  Submission submission;
  submission.event = std::move(*parsed);
  submission.source = source;
  submission.verification = "verified";
  submission.replay_key = std::move(replay_key);
  return submission;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

class RecordingSink final : public EventSink {
 public:
  void OnStored(const StoredEvent& event) override {
    std::lock_guard lock(mutex_);
    events_.push_back(event);
  }
  std::vector<StoredEvent> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<StoredEvent> events_;
};

class InboxTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void TearDown() override { CloseAll(); }

  void Open(InboxOptions options = {}) {
    database_ = store::Database::Open(db_path(), Migrations());
    options.data_dir = dir_.path() / "data";
    inbox_ = std::make_unique<Inbox>(*database_, clock_, options, std::vector<EventSink*>{&sink_});
  }
  void CloseAll() {
    if (inbox_) inbox_->Stop();
    inbox_.reset();
    database_.reset();
  }
  std::string db_path() const { return (dir_.path() / "callgate.db").string(); }

  SubmitResult SubmitAndWait(Submission submission) {
    std::promise<SubmitResult> result;
    inbox_->Submit(std::move(submission), [&](SubmitResult r) { result.set_value(std::move(r)); });
    return result.get_future().get();
  }
  EventPage ListAndWait(EventFilter filter = {}, std::string cursor = "", std::size_t limit = 50) {
    std::promise<EventPage> result;
    EXPECT_TRUE(inbox_->List(std::move(filter), std::move(cursor), limit,
                             [&](std::optional<EventPage> page, std::string error) {
                               EXPECT_TRUE(page) << error;
                               result.set_value(page.value_or(EventPage{}));
                             }));
    return result.get_future().get();
  }
  std::optional<EventRecord> GetAndWait(const std::string& id) {
    std::promise<std::optional<EventRecord>> result;
    EXPECT_TRUE(inbox_->Get(id, [&](std::optional<EventRecord> record, std::string error) {
      EXPECT_EQ(error, "");
      result.set_value(std::move(record));
    }));
    return result.get_future().get();
  }
  std::int64_t Count(const char* sql) {
    std::promise<std::int64_t> result;
    database_->Post([&](sqlite3* db) {
      sqlite3_stmt* stmt = nullptr;
      sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
      std::int64_t n = -1;
      if (sqlite3_step(stmt) == SQLITE_ROW) n = sqlite3_column_int64(stmt, 0);
      sqlite3_finalize(stmt);
      result.set_value(n);
    });
    return result.get_future().get();
  }
  // Holds the database thread until the returned promise is fulfilled, so submissions queue up.
  std::shared_ptr<std::promise<void>> BlockDatabase() {
    auto gate = std::make_shared<std::promise<void>>();
    auto entered = std::make_shared<std::promise<void>>();
    std::shared_future<void> open = gate->get_future().share();
    database_->Post([open, entered](sqlite3*) {
      entered->set_value();
      open.wait();
    });
    entered->get_future().wait();
    return gate;
  }

  TempDir dir_;
  core::ManualClock clock_;
  RecordingSink sink_;
  std::unique_ptr<store::Database> database_;
  std::unique_ptr<Inbox> inbox_;
};

TEST_F(InboxTest, StoresGetsAndListsAnEvent) {
  const std::string body = Transcription("conv_1");
  const SubmitResult result = SubmitAndWait(Make(body, "t=1,v0=aa"));
  ASSERT_EQ(result.status, SubmitStatus::kStored) << result.message;
  EXPECT_TRUE(result.event_id.starts_with("evt_"));
  EXPECT_EQ(result.event_id.size(), 4u + 12 + 16);
  // Time-ordered: the receive time in milliseconds leads.
  EXPECT_EQ(result.event_id.substr(4, 12), "018bcfe56800");  // 1'700'000'000'000 in hex

  const auto record = GetAndWait(result.event_id);
  ASSERT_TRUE(record);
  EXPECT_EQ(record->payload, body);  // byte for byte
  EXPECT_EQ(record->type, "post_call_transcription");
  EXPECT_EQ(record->conversation_id, "conv_1");
  EXPECT_EQ(record->agent_id, "a1");
  EXPECT_EQ(record->event_timestamp, 1739537297);
  EXPECT_EQ(record->verification, "verified");
  EXPECT_EQ(record->source, "webhook");
  EXPECT_EQ(record->received_at_ms, 1'700'000'000'000);
  EXPECT_EQ(record->payload_bytes, static_cast<std::int64_t>(body.size()));
  EXPECT_FALSE(GetAndWait("evt_nope"));

  const EventPage page = ListAndWait();
  ASSERT_EQ(page.events.size(), 1u);
  EXPECT_EQ(page.events[0].event_id, result.event_id);
  EXPECT_EQ(page.events[0].payload, "");  // listings carry no payload

  const auto sunk = sink_.events();
  ASSERT_EQ(sunk.size(), 1u);
  EXPECT_EQ(sunk[0].event_id, result.event_id);
  ASSERT_TRUE(sunk[0].event && TranscriptionOf(*sunk[0].event));
  EXPECT_EQ(TranscriptionOf(*sunk[0].event)->transcript[0].message, "Hi");
}

TEST_F(InboxTest, RedeliveredEventIsADuplicate) {
  const SubmitResult first = SubmitAndWait(Make(Transcription("conv_1"), "key-1"));
  ASSERT_EQ(first.status, SubmitStatus::kStored);
  // Same type and conversation, another signature and other content: a redelivery.
  const SubmitResult again = SubmitAndWait(Make(Transcription("conv_1", " again"), "key-2"));
  EXPECT_EQ(again.status, SubmitStatus::kDuplicate);
  EXPECT_EQ(again.event_id, first.event_id);
  // From reconciliation too.
  const SubmitResult reconciled =
      SubmitAndWait(Make(Transcription("conv_1"), "", Source::kReconciliation));
  EXPECT_EQ(reconciled.status, SubmitStatus::kDuplicate);
  // Another type for the same conversation is its own event.
  const SubmitResult failure = SubmitAndWait(
      Make(R"({"type":"call_initiation_failure","data":{"conversation_id":"conv_1"}})"));
  EXPECT_EQ(failure.status, SubmitStatus::kStored);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM webhook_events"), 2);
  // Events with a conversation id need no replay memory: a replay is a redelivery.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM webhook_replay_keys"), 0);
  EXPECT_EQ(SubmitAndWait(Make(Transcription("conv_1"), "key-1")).status, SubmitStatus::kDuplicate);
  EXPECT_EQ(sink_.events().size(), 2u) << "duplicates are not processed";
  EXPECT_EQ(inbox_->stats().duplicates, 3u);
}

TEST_F(InboxTest, ReplayedDeliveryIsADuplicateWithinTheWindow) {
  // Events without a conversation id can only be recognised by their signature.
  const std::string body = R"({"type":"something_new","data":{"n":1}})";
  const SubmitResult first = SubmitAndWait(Make(body, "t=1700000000,v0=abc"));
  ASSERT_EQ(first.status, SubmitStatus::kStored);
  const SubmitResult replay = SubmitAndWait(Make(body, "t=1700000000,v0=abc"));
  EXPECT_EQ(replay.status, SubmitStatus::kDuplicate);
  EXPECT_EQ(replay.event_id, first.event_id);
  // Another signature (a new delivery of an event with no identity) is stored.
  EXPECT_EQ(SubmitAndWait(Make(body, "t=1700000001,v0=abd")).status, SubmitStatus::kStored);
  // Unsigned events have no replay key: each is stored.
  EXPECT_EQ(SubmitAndWait(Make(body)).status, SubmitStatus::kStored);
  EXPECT_EQ(SubmitAndWait(Make(body)).status, SubmitStatus::kStored);
  // After the window the key is forgotten (the signature check refuses such a replay anyway).
  clock_.Advance(35min + 1s);
  EXPECT_EQ(SubmitAndWait(Make(body, "t=1700000000,v0=abc")).status, SubmitStatus::kStored);
  // Stale keys are pruned.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM webhook_replay_keys"), 1);
}

TEST_F(InboxTest, ManyConcurrentSubmissionsAreAllDurable) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 150;
  std::atomic<int> stored{0};
  std::atomic<int> completed{0};
  std::promise<void> all_done;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string conversation = "conv_" + std::to_string(t) + "_" + std::to_string(i);
        inbox_->Submit(Make(Transcription(conversation), "key-" + conversation),
                       [&](SubmitResult result) {
                         if (result.status == SubmitStatus::kStored) ++stored;
                         if (++completed == kThreads * kPerThread) all_done.set_value();
                       });
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  all_done.get_future().wait();
  EXPECT_EQ(stored.load(), kThreads * kPerThread);
  // Sinks run after the callbacks of their batch; Stop() returns once every batch is done.
  inbox_->Stop();
  EXPECT_EQ(sink_.events().size(), static_cast<std::size_t>(kThreads * kPerThread));

  // Everything acknowledged is on disk: reopen the file and count.
  CloseAll();
  Open();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM webhook_events"), kThreads * kPerThread);
  EXPECT_EQ(Count("SELECT COUNT(DISTINCT conversation_id) FROM webhook_events"),
            kThreads * kPerThread);
}

TEST_F(InboxTest, QueuedEventsShareOneTransaction) {
  auto gate = BlockDatabase();
  std::atomic<int> stored{0};
  std::promise<void> all_done;
  constexpr int kEvents = 100;
  for (int i = 0; i < kEvents; ++i) {
    inbox_->Submit(Make(Transcription("conv_" + std::to_string(i))), [&](SubmitResult result) {
      if (result.status == SubmitStatus::kStored && ++stored == kEvents) all_done.set_value();
    });
  }
  EXPECT_EQ(stored.load(), 0) << "nothing is acknowledged before its commit";
  EXPECT_EQ(inbox_->commit_latency().count, 0u);
  gate->set_value();
  all_done.get_future().wait();
  const InboxStats stats = inbox_->stats();
  EXPECT_EQ(stats.batches, 1u);
  EXPECT_EQ(stats.largest_batch, static_cast<std::uint64_t>(kEvents));
  EXPECT_EQ(stats.stored, static_cast<std::uint64_t>(kEvents));
  // The one commit is timed, before any of its events is answered.
  const metrics::LatencySummary commits = inbox_->commit_latency();
  EXPECT_EQ(commits.count, 1u);
  EXPECT_GT(commits.max.count(), 0);
  EXPECT_GE(commits.p50, commits.max) << "one sample: its bucket's bound is at least the value";
}

// The composition root wraps a batch's answers (in a net::PostBatch): every answer of the batch,
// duplicates and all, runs inside one call of answer_scope, and the sinks only after it.
TEST_F(InboxTest, AnswersOfABatchRunInsideOneAnswerScopeBeforeTheSinks) {
  CloseAll();
  std::mutex mutex;
  std::vector<std::string> log;  // what ran, in order
  bool in_scope = false;         // database thread only
  auto note = [&](std::string what) {
    std::lock_guard lock(mutex);
    log.push_back(std::move(what));
  };
  Open(InboxOptions{.answer_scope = [&](const std::function<void()>& answer_all) {
    note("scope opens");
    in_scope = true;
    answer_all();
    in_scope = false;
    note("scope closes; events sunk: " + std::to_string(sink_.events().size()));
  }});
  auto gate = BlockDatabase();
  std::atomic<int> left{3};
  std::promise<void> all_answered;
  for (const char* conversation : {"conv_s1", "conv_s2", "conv_s1"}) {
    inbox_->Submit(Make(Transcription(conversation)), [&](SubmitResult result) {
      note(std::string(in_scope ? "in scope: " : "outside: ") +
           std::string(SubmitStatusName(result.status)));
      if (--left == 0) all_answered.set_value();
    });
  }
  gate->set_value();
  all_answered.get_future().wait();
  ASSERT_TRUE(callgate::testing::WaitFor([&] { return sink_.events().size() == 2; }, 10s));
  std::lock_guard lock(mutex);
  EXPECT_EQ(log, (std::vector<std::string>{"scope opens", "in scope: stored", "in scope: stored",
                                           "in scope: duplicate", "scope closes; events sunk: 0"}));
}

TEST_F(InboxTest, DuplicatesInsideOneBatch) {
  auto gate = BlockDatabase();
  std::vector<std::future<SubmitResult>> results;
  for (int i = 0; i < 3; ++i) {
    auto promise = std::make_shared<std::promise<SubmitResult>>();
    results.push_back(promise->get_future());
    inbox_->Submit(Make(Transcription("conv_same")),
                   [promise](SubmitResult r) { promise->set_value(std::move(r)); });
  }
  gate->set_value();
  const SubmitResult first = results[0].get();
  EXPECT_EQ(first.status, SubmitStatus::kStored);
  for (int i = 1; i < 3; ++i) {
    const SubmitResult r = results[static_cast<std::size_t>(i)].get();
    EXPECT_EQ(r.status, SubmitStatus::kDuplicate);
    EXPECT_EQ(r.event_id, first.event_id);
  }
}

// Takes each committed batch in one call.
class BatchSink final : public EventSink {
 public:
  void OnStored(const StoredEvent&) override { ADD_FAILURE() << "expected whole batches"; }
  void OnStoredBatch(std::span<const StoredEvent> events) override {
    std::vector<std::string> ids;
    for (const StoredEvent& event : events)
      ids.push_back(event.conversation_id);
    batches.push_back(std::move(ids));  // on the database thread only
  }
  std::vector<std::vector<std::string>> batches;
};

// One event at a time (the default batch hand-over); throws for one conversation.
class ThrowingSink final : public EventSink {
 public:
  void OnStored(const StoredEvent& event) override {
    if (event.conversation_id == "conv_1") throw std::runtime_error("a sink bug");
    seen.push_back(event.conversation_id);
  }
  std::vector<std::string> seen;
};

TEST_F(InboxTest, SinksGetEachBatchInCommitOrderWithoutDuplicates) {
  CloseAll();
  BatchSink batch_sink;
  ThrowingSink throwing_sink;
  database_ = store::Database::Open(db_path(), Migrations());
  InboxOptions options;
  options.data_dir = dir_.path() / "data";
  inbox_ = std::make_unique<Inbox>(*database_, clock_, options,
                                   std::vector<EventSink*>{&throwing_sink, &batch_sink});
  auto gate = BlockDatabase();
  std::vector<std::future<SubmitResult>> results;
  for (const char* id : {"conv_0", "conv_1", "conv_2", "conv_1", "conv_3"}) {
    auto promise = std::make_shared<std::promise<SubmitResult>>();
    results.push_back(promise->get_future());
    inbox_->Submit(Make(Transcription(id)),
                   [promise](SubmitResult r) { promise->set_value(std::move(r)); });
  }
  gate->set_value();
  for (auto& result : results)
    result.wait();
  BlockDatabase()->set_value();  // the batch's task, sinks included, has finished
  EXPECT_EQ(results[3].get().status, SubmitStatus::kDuplicate);
  ASSERT_EQ(batch_sink.batches.size(), 1u);
  EXPECT_EQ(batch_sink.batches[0],
            (std::vector<std::string>{"conv_0", "conv_1", "conv_2", "conv_3"}));
  // The exception for conv_1 was logged; the events after it still reached the sink.
  EXPECT_EQ(throwing_sink.seen, (std::vector<std::string>{"conv_0", "conv_2", "conv_3"}));
  CloseAll();
}

TEST_F(InboxTest, FullQueueAnswersBusyAtOnce) {
  CloseAll();
  Open({.max_pending_events = 2});
  auto gate = BlockDatabase();
  std::vector<std::future<SubmitResult>> results;
  for (int i = 0; i < 3; ++i) {
    auto promise = std::make_shared<std::promise<SubmitResult>>();
    results.push_back(promise->get_future());
    inbox_->Submit(Make(Transcription("conv_" + std::to_string(i))),
                   [promise](SubmitResult r) { promise->set_value(std::move(r)); });
  }
  ASSERT_EQ(results[2].wait_for(0s), std::future_status::ready) << "refused without waiting";
  const SubmitResult busy = results[2].get();
  EXPECT_EQ(busy.status, SubmitStatus::kBusy);
  EXPECT_NE(busy.message.find("2 events"), std::string::npos) << busy.message;
  gate->set_value();
  EXPECT_EQ(results[0].get().status, SubmitStatus::kStored);
  EXPECT_EQ(results[1].get().status, SubmitStatus::kStored);
  // Once drained, there is room again.
  EXPECT_EQ(SubmitAndWait(Make(Transcription("conv_2"))).status, SubmitStatus::kStored);
}

TEST_F(InboxTest, AudioIsWrittenToAFileBeforeItsCommit) {
  const std::string mp3 = std::string("ID3\x04\x00\x00", 6) + std::string(100'000, '\xfb');
  EXPECT_FALSE(inbox_->RecordingPath("conv_a"));
  const SubmitResult result = SubmitAndWait(Make(AudioEvent("conv_a", mp3), "key-audio"));
  ASSERT_EQ(result.status, SubmitStatus::kStored) << result.message;
  const auto path = inbox_->RecordingPath("conv_a");
  ASSERT_TRUE(path);
  EXPECT_EQ(*path, dir_.path() / "data" / "recordings" / "conv_a.mp3");
  EXPECT_EQ(ReadFile(*path), mp3);
  const auto record = GetAndWait(result.event_id);
  ASSERT_TRUE(record);
  EXPECT_EQ(record->recording, "conv_a.mp3");
  const auto sunk = sink_.events();
  ASSERT_EQ(sunk.size(), 1u);
  EXPECT_EQ(sunk[0].recording_path, *path);

  // A redelivery with other bytes never replaces the committed recording.
  const SubmitResult again = SubmitAndWait(Make(AudioEvent("conv_a", "other bytes")));
  EXPECT_EQ(again.status, SubmitStatus::kDuplicate);
  EXPECT_EQ(ReadFile(*path), mp3);
  // No temporary file is left behind.
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(path->parent_path())) {
    EXPECT_EQ(entry.path().extension(), ".mp3") << entry.path();
    ++files;
  }
  EXPECT_EQ(files, 1u);
  EXPECT_FALSE(inbox_->RecordingPath("../callgate"));
  EXPECT_FALSE(inbox_->RecordingPath("conv_b"));
}

TEST_F(InboxTest, OneFailingEventDoesNotFailItsBatch) {
  // A directory where conv_x's recording must go: the rename fails for that event only.
  std::filesystem::create_directories(dir_.path() / "data" / "recordings" / "conv_x.mp3" / "d");
  auto gate = BlockDatabase();
  std::promise<SubmitResult> audio;
  std::promise<SubmitResult> text;
  inbox_->Submit(Make(AudioEvent("conv_x", "abc")),
                 [&](SubmitResult r) { audio.set_value(std::move(r)); });
  // Wait until the audio's temporary file is written (it queues behind the file thread).
  ASSERT_TRUE(callgate::testing::WaitFor(
      [&] {
        for (const auto& entry :
             std::filesystem::directory_iterator(dir_.path() / "data" / "recordings")) {
          if (entry.path().extension() == ".tmp") return true;
        }
        return false;
      },
      10s));
  inbox_->Submit(Make(Transcription("conv_y")),
                 [&](SubmitResult r) { text.set_value(std::move(r)); });
  gate->set_value();
  EXPECT_EQ(audio.get_future().get().status, SubmitStatus::kFailed);
  EXPECT_EQ(text.get_future().get().status, SubmitStatus::kStored);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM webhook_events"), 1);
  EXPECT_EQ(inbox_->stats().failed, 1u);
}

TEST_F(InboxTest, StaleTemporaryFilesAreRemovedAtStart) {
  CloseAll();
  const auto recordings = dir_.path() / "data" / "recordings";
  std::ofstream(recordings / ".conv_z.evt_1.tmp") << "partial";
  std::ofstream(recordings / "conv_keep.mp3") << "done";
  Open();
  EXPECT_FALSE(std::filesystem::exists(recordings / ".conv_z.evt_1.tmp"));
  EXPECT_TRUE(inbox_->RecordingPath("conv_keep"));
}

TEST_F(InboxTest, ListFiltersAndPages) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(SubmitAndWait(Make(Transcription("conv_" + std::to_string(i)))).event_id);
    clock_.Advance(10s);
  }
  ids.push_back(
      SubmitAndWait(
          Make(R"({"type":"call_initiation_failure","data":{"conversation_id":"conv_1"}})"))
          .event_id);
  // Newest first, paged by cursor.
  EventPage page = ListAndWait({}, "", 4);
  ASSERT_EQ(page.events.size(), 4u);
  EXPECT_EQ(page.events[0].event_id, ids[5]);
  EXPECT_EQ(page.events[3].event_id, ids[2]);
  ASSERT_FALSE(page.next_cursor.empty());
  page = ListAndWait({}, page.next_cursor, 4);
  ASSERT_EQ(page.events.size(), 2u);
  EXPECT_EQ(page.events[0].event_id, ids[1]);
  EXPECT_EQ(page.events[1].event_id, ids[0]);
  EXPECT_TRUE(page.next_cursor.empty());

  EXPECT_EQ(ListAndWait({.type = "call_initiation_failure"}).events.size(), 1u);
  EXPECT_EQ(ListAndWait({.conversation_id = "conv_1"}).events.size(), 2u);
  EXPECT_EQ(
      ListAndWait({.type = "post_call_transcription", .conversation_id = "conv_1"}).events.size(),
      1u);
  // received_at: 1'700'000'000 + 10 s per event.
  page = ListAndWait({.since_unix = 1'700'000'010, .until_unix = 1'700'000'030});
  ASSERT_EQ(page.events.size(), 2u);
  EXPECT_EQ(page.events[0].event_id, ids[2]);
  EXPECT_EQ(page.events[1].event_id, ids[1]);

  std::promise<std::string> error;
  EXPECT_TRUE(inbox_->List({}, "not-a-cursor", 10, [&](std::optional<EventPage> p, std::string e) {
    EXPECT_FALSE(p);
    error.set_value(e);
  }));
  EXPECT_FALSE(error.get_future().get().empty());
}

TEST_F(InboxTest, StopCommitsEverythingAccepted) {
  std::atomic<int> stored{0};
  constexpr int kEvents = 50;
  for (int i = 0; i < kEvents; ++i) {
    inbox_->Submit(Make(Transcription("conv_" + std::to_string(i))), [&](SubmitResult result) {
      if (result.status == SubmitStatus::kStored) ++stored;
    });
  }
  inbox_->Submit(Make(AudioEvent("conv_audio", "mp3 bytes")), [&](SubmitResult result) {
    if (result.status == SubmitStatus::kStored) ++stored;
  });
  inbox_->Stop();
  EXPECT_EQ(stored.load(), kEvents + 1);
  // After Stop, submissions are refused at once.
  std::promise<SubmitResult> late;
  inbox_->Submit(Make(Transcription("conv_late")),
                 [&](SubmitResult r) { late.set_value(std::move(r)); });
  EXPECT_EQ(late.get_future().get().status, SubmitStatus::kBusy);
  CloseAll();
  Open();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM webhook_events"), kEvents + 1);
}

TEST_F(InboxTest, MigrationsAreInTheWebhookRange) {
  for (const store::Migration& migration : Migrations()) {
    EXPECT_GE(migration.version, 200);
    EXPECT_LE(migration.version, 299);
  }
  EXPECT_EQ(Count("SELECT COUNT(*) FROM schema_migrations WHERE version BETWEEN 200 AND 299"),
            static_cast<std::int64_t>(Migrations().size()));
}

}  // namespace
}  // namespace callgate::webhook
