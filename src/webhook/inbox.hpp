// The webhook inbox: every accepted post-call event, stored durably, once.
//
// Contract: Submit()'s callback says kStored only after the event's transaction has committed
// on store::Database (WAL, synchronous=FULL), so an acknowledged event survives a crash or power
// loss. Submissions are grouped: the database thread takes whatever is queued (up to
// max_batch_events / max_batch_bytes), writes it in one BEGIN...COMMIT, then completes every
// callback, so one fsync serves many events under load while a lone event is committed at once.
// An event whose INSERT fails is answered kFailed alone; the rest of its batch commits.
//
// Deduplication (answered kDuplicate with the first event's id, nothing stored or processed):
//   - a redelivered event: the same type and conversation id as a stored event (whatever the
//     source: a webhook after a reconciliation is a duplicate too). A replayed delivery (the
//     same signature, hence the same body) of such an event is caught here as well;
//   - a replayed delivery of an event without a conversation id: the same replay key (see
//     VerifyResult::replay_key) within `replay_window`, after which the signature check refuses
//     the replay anyway. Such events carry nothing else to recognise them by.
//
// post_call_audio: the decoded MP3 is written on the inbox's file thread to a temporary file in
// <data_dir>/recordings/ and fsync'd; in the transaction, if the event is new, it is renamed to
// <conversation_id>.mp3 (and the directory fsync'd) before the COMMIT that references it. A
// duplicate's temporary file is removed, so a committed recording is never replaced.
//
// After the commit, the batch's callbacks run first (the 200s are not held up), then each new
// event is handed to every EventSink, in commit order, on the database thread (sinks must not
// block; post real work elsewhere). Any database task posted after a callback ran sees the
// sinks done.
//
// Bounds: at most max_pending_events / max_pending_bytes waiting for the database thread, and
// the file thread's queue; beyond them Submit() answers kBusy at once (the route turns it into
// a 503). Thread-safe: Submit, List, Get and RecordingPath may be called from any thread.
// Stop() completes what was accepted and must run before the Database is closed; the destructor
// calls it.
#pragma once

#include "core/clock.hpp"
#include "core/worker.hpp"
#include "metrics/latency.hpp"
#include "store/database.hpp"
#include "webhook/event.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

struct sqlite3;

namespace callgate::webhook {

// This module's schema migrations (versions 200-299), for store::Database::Open.
std::span<const store::Migration> Migrations();

enum class Source { kWebhook, kReconciliation };
std::string_view SourceName(Source source);  // "webhook" | "reconciliation"

// An event as stored, handed to sinks after its commit.
struct StoredEvent {
  std::string event_id;  // "evt_<12 hex ms><16 hex random>"
  std::int64_t seq = 0;  // commit order (newest = largest)
  std::string type;
  std::string conversation_id;
  std::string agent_id;
  std::optional<std::int64_t> event_timestamp;
  std::int64_t received_at_ms = 0;  // unix milliseconds, from the inbox's clock
  Source source = Source::kWebhook;
  std::string verification;  // "verified" | "verified_body_only" | "unverified" | caller's
  std::optional<std::filesystem::path> recording_path;  // post_call_audio: the MP3 file
  // The typed event. For post_call_audio the MP3 bytes have been moved to the file.
  std::shared_ptr<const Event> event;
};

// Fed with every new (non-duplicate) event after it is committed. The call ledger, the
// terminal banner and the forwarder implement it; the composition root wires them.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void OnStored(const StoredEvent& event) = 0;
  // The new events of one committed batch, in commit order (on the database thread). By
  // default OnStored for each (an exception is logged and the next event goes on); a sink with
  // work per event on another queue may hand it over in one go.
  virtual void OnStoredBatch(std::span<const StoredEvent> events);
};

struct Submission {
  Event event;  // ParseEvent(body): event.raw is the body as received, stored as it is
  Source source = Source::kWebhook;
  std::string verification;  // VerificationName(...) or, for reconciliation, e.g. "api"
  std::string replay_key;    // VerifyResult::replay_key; empty = none
};

enum class SubmitStatus {
  kStored,     // committed durably
  kDuplicate,  // already stored; event_id is the earlier one
  kBusy,       // not accepted: queues full or the inbox is stopping (retry later)
  kFailed,     // accepted but the write failed (disk full, I/O error); nothing committed
};
std::string_view SubmitStatusName(SubmitStatus status);

struct SubmitResult {
  SubmitStatus status = SubmitStatus::kFailed;
  std::string event_id;
  std::string message;  // why, for kBusy / kFailed (no payload content)
};

// One row of the inbox (List: payload empty; Get: payload filled).
struct EventRecord {
  std::int64_t seq = 0;
  std::string event_id;
  std::string type;
  std::string conversation_id;
  std::string agent_id;
  std::optional<std::int64_t> event_timestamp;
  std::int64_t received_at_ms = 0;
  std::string source;
  std::string verification;
  std::int64_t payload_bytes = 0;
  std::string recording;  // file name under <data_dir>/recordings, empty if none
  std::string payload;    // Get only
};

struct EventFilter {
  std::string type;                        // empty = any
  std::string conversation_id;             // empty = any
  std::optional<std::int64_t> since_unix;  // received_at >= since (seconds)
  std::optional<std::int64_t> until_unix;  // received_at <  until (seconds)
};

struct EventPage {
  std::vector<EventRecord> events;  // newest first
  std::string next_cursor;          // empty when there is no further page
};

// Counters since start (for metrics and tests). `batches` counts committed transactions.
struct InboxStats {
  std::uint64_t stored = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t busy = 0;
  std::uint64_t failed = 0;
  std::uint64_t batches = 0;
  std::uint64_t largest_batch = 0;
  std::uint64_t waiting = 0;  // now: accepted and not yet answered (being stored)
};

struct InboxOptions {
  std::filesystem::path data_dir;  // recordings go to <data_dir>/recordings
  std::size_t max_pending_events = 10'000;
  std::size_t max_pending_bytes = 512u * 1024 * 1024;
  std::size_t max_batch_events = 1'000;
  std::size_t max_batch_bytes = 64u * 1024 * 1024;
  std::size_t file_queue = 64;  // file-thread tasks (audio writes, offloaded work)
  // How long a replay key is remembered: the signature's max age plus its max future skew.
  std::chrono::seconds replay_window{35 * 60};
  // Runs the loop that answers a committed batch, on the database thread: the composition root
  // opens a net::PostBatch around it, so that a batch's answers reach each I/O thread in one
  // hand-off. Empty: the loop runs as it is.
  std::function<void(const std::function<void()>& answer_all)> answer_scope;
};

class Inbox {
 public:
  // Creates <data_dir>/recordings and removes temporary files a crash left there. Throws
  // std::runtime_error when the directory cannot be created. `database` must have been opened
  // with Migrations(). The sinks must outlive the inbox.
  Inbox(store::Database& database, const core::Clock& clock, InboxOptions options,
        std::vector<EventSink*> sinks = {});
  ~Inbox();
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  using SubmitCallback = std::function<void(SubmitResult)>;
  // `done` runs exactly once: inline for kBusy, otherwise on the database thread after the
  // commit (or the failure).
  void Submit(Submission submission, SubmitCallback done);

  // Runs `task` on the inbox's file thread (blocking or CPU-heavy work off the I/O threads:
  // the route verifies and parses large bodies there). False when its queue is full or stopping.
  bool Offload(std::function<void()> task);

  // Newest first. `cursor` is a previous page's next_cursor or empty; `limit` is clamped to
  // 1..1000. The callback runs on the database thread; on a bad cursor or a database failure
  // it gets an error message instead of a page. False when the database refuses the task.
  using ListCallback = std::function<void(std::optional<EventPage>, std::string error)>;
  bool List(EventFilter filter, std::string cursor, std::size_t limit, ListCallback done);

  // The event with its raw payload, or nullopt when there is none.
  using GetCallback = std::function<void(std::optional<EventRecord>, std::string error)>;
  bool Get(std::string event_id, GetCallback done);

  // <data_dir>/recordings/<conversation_id>.mp3 when a post_call_audio for that conversation
  // has been stored (the file exists), else nullopt. Only checks the file system.
  std::optional<std::filesystem::path> RecordingPath(std::string_view conversation_id) const;

  // Stops accepting, writes and commits everything accepted, completes its callbacks. Idempotent.
  void Stop();

  InboxStats stats() const;
  // The group commits that stored events, each from its BEGIN to its COMMIT's fsync returning:
  // what a slow disk adds to every webhook's 200 (/metrics: callgate_webhook_commit_seconds).
  metrics::LatencySummary commit_latency() const { return commit_latency_.Summarize(); }

 private:
  struct Pending {
    Submission submission;
    std::shared_ptr<Event> event;
    std::string event_id;
    std::int64_t received_at_ms = 0;
    std::filesystem::path temp_recording;  // post_call_audio, written and fsync'd
    std::size_t bytes = 0;
    SubmitCallback done;
  };

  void Enqueue(Pending pending);
  void Drain(sqlite3* db);
  void CommitBatch(sqlite3* db, std::vector<Pending>& batch);
  // Releases the pending event's reservation and runs its callback.
  void Complete(Pending& pending, SubmitResult result);

  store::Database& database_;
  const core::Clock& clock_;
  InboxOptions options_;
  std::vector<EventSink*> sinks_;
  std::filesystem::path recordings_dir_;

  metrics::LatencyHistogram commit_latency_;  // lock-free
  mutable std::mutex mutex_;
  std::condition_variable idle_;
  std::deque<Pending> pending_;      // waiting for the database thread
  std::size_t reserved_events_ = 0;  // accepted and not yet completed (pending_, files, batch)
  std::size_t reserved_bytes_ = 0;
  bool drain_posted_ = false;  // a Drain task is queued or running on the database thread
  bool stopping_ = false;
  InboxStats stats_;

  std::int64_t last_prune_ms_ = 0;  // database thread only
  core::Worker files_;
};

}  // namespace callgate::webhook
