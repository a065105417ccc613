#include "webhook/inbox.hpp"

#include "store/statement.hpp"

#include "core/ids.hpp"
#include "core/secure_compare.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <system_error>

namespace callgate::webhook {
namespace {

// Append only: a released migration is never edited; a change is a new migration (201, ...).
constexpr store::Migration kMigrations[] = {
    {200, "webhook_inbox",
     "CREATE TABLE webhook_events ("
     " seq INTEGER PRIMARY KEY,"
     " event_id TEXT NOT NULL UNIQUE,"
     " type TEXT NOT NULL,"
     " conversation_id TEXT,"
     " agent_id TEXT,"
     " event_timestamp INTEGER,"
     " received_at_ms INTEGER NOT NULL,"
     " source TEXT NOT NULL CHECK (source IN ('webhook', 'reconciliation')),"
     " verification TEXT NOT NULL,"
     " payload BLOB NOT NULL,"
     " payload_bytes INTEGER NOT NULL,"
     " recording TEXT);"
     // A redelivered event (same conversation and type) is a duplicate; the same index serves
     // the listing's conversation filter.
     "CREATE UNIQUE INDEX webhook_events_dedup ON webhook_events (conversation_id, type)"
     " WHERE conversation_id IS NOT NULL;"
     "CREATE INDEX webhook_events_by_type ON webhook_events (type, seq);"
     "CREATE INDEX webhook_events_by_received ON webhook_events (received_at_ms);"
     // Replayed deliveries of events without a conversation id (the others are recognised by
     // conversation and type): the SHA-256 of the accepted signature, until it would be stale.
     "CREATE TABLE webhook_replay_keys ("
     " key_hash BLOB PRIMARY KEY,"
     " event_id TEXT NOT NULL,"
     " expires_at_ms INTEGER NOT NULL) WITHOUT ROWID;"
     "CREATE INDEX webhook_replay_keys_by_expiry ON webhook_replay_keys (expires_at_ms);"},
    // Forwarding (forwarder.hpp): one row per (event, target); per target, rows for events after
    // from_seq exist (the watermark that recovers rows lost to a crash).
    {201, "webhook_forwarding",
     "CREATE TABLE webhook_forward_targets ("
     " target TEXT PRIMARY KEY,"
     " from_seq INTEGER NOT NULL,"
     " added_at_ms INTEGER NOT NULL);"
     "CREATE TABLE webhook_forwards ("
     " id INTEGER PRIMARY KEY,"
     " event_seq INTEGER NOT NULL REFERENCES webhook_events (seq),"
     " target TEXT NOT NULL,"
     " ordering_key TEXT NOT NULL,"
     " state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),"
     " attempts INTEGER NOT NULL DEFAULT 0,"
     " next_attempt_ms INTEGER NOT NULL,"
     " last_status INTEGER,"
     " last_error TEXT,"
     " updated_at_ms INTEGER NOT NULL,"
     " UNIQUE (event_seq, target));"
     "CREATE INDEX webhook_forwards_queue ON webhook_forwards (state, target, ordering_key,"
     " event_seq);"},
};

constexpr std::int64_t kPruneEveryMs = 60'000;

// "evt_" + the receive time in milliseconds (12 hex digits) + 64 random bits: unique, and
// roughly time-ordered, so the UNIQUE index on event_id grows at its right edge instead of
// touching a random page (one more 4 KiB WAL frame) per event.
std::string NewEventId(std::int64_t received_at_ms) {
  char time_part[16];
  std::snprintf(time_part, sizeof time_part, "%012llx",
                static_cast<unsigned long long>(std::max<std::int64_t>(received_at_ms, 0)) &
                    0xffffffffffffULL);
  const std::string random = core::NewId("");  // "_" + 24 hex digits
  return "evt_" + std::string(time_part) + random.substr(1, 16);
}

std::int64_t UnixMillis(const core::Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.Now().time_since_epoch())
      .count();
}

constexpr const char* kRecordColumns =
    "seq, event_id, type, conversation_id, agent_id, event_timestamp, received_at_ms, source,"
    " verification, payload_bytes, recording";

EventRecord ReadRecord(const store::Statement& row) {
  EventRecord record;
  record.seq = row.Int64(0);
  record.event_id = row.Text(1);
  record.type = row.Text(2);
  record.conversation_id = row.Text(3);
  record.agent_id = row.Text(4);
  record.event_timestamp = row.OptionalInt64(5);
  record.received_at_ms = row.Int64(6);
  record.source = row.Text(7);
  record.verification = row.Text(8);
  record.payload_bytes = row.Int64(9);
  record.recording = row.Text(10);
  return record;
}

// Writes `bytes` to a new file and fsyncs it. Empty string on success, else the reason.
std::string WriteDurably(const std::filesystem::path& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return std::strerror(errno);
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string reason = std::strerror(errno);
      ::close(fd);
      return reason;
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const std::string reason = std::strerror(errno);
    ::close(fd);
    return reason;
  }
  if (::close(fd) != 0) return std::strerror(errno);
  return {};
}

bool SyncDirectory(const std::filesystem::path& directory) {
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

void RemoveQuietly(const std::filesystem::path& path) {
  if (path.empty()) return;
  std::error_code ec;
  std::filesystem::remove(path, ec);
}

template <class Callback, class... Args>
void CallSafely(const Callback& callback, std::string_view what, Args&&... args) {
  try {
    callback(std::forward<Args>(args)...);
  } catch (const std::exception& e) {
    spdlog::error("webhook inbox: {} threw: {}", what, e.what());
  } catch (...) {
    spdlog::error("webhook inbox: {} threw", what);
  }
}

}  // namespace

void EventSink::OnStoredBatch(std::span<const StoredEvent> events) {
  for (const StoredEvent& event : events)
    CallSafely([&] { OnStored(event); }, "an event sink");
}

std::span<const store::Migration> Migrations() {
  return kMigrations;
}

std::string_view SourceName(Source source) {
  return source == Source::kReconciliation ? "reconciliation" : "webhook";
}

std::string_view SubmitStatusName(SubmitStatus status) {
  switch (status) {
    case SubmitStatus::kStored:
      return "stored";
    case SubmitStatus::kDuplicate:
      return "duplicate";
    case SubmitStatus::kBusy:
      return "busy";
    case SubmitStatus::kFailed:
      return "failed";
  }
  return "failed";
}

namespace {

constexpr std::string_view kFindReplaySql =
    "SELECT event_id FROM webhook_replay_keys WHERE key_hash = ?1 AND expires_at_ms > ?2";
constexpr std::string_view kFindEventSql =
    "SELECT event_id FROM webhook_events WHERE conversation_id = ?2 AND type = ?1";
constexpr std::string_view kInsertEventSql =
    "INSERT INTO webhook_events (event_id, type, conversation_id, agent_id, event_timestamp,"
    " received_at_ms, source, verification, payload, payload_bytes, recording)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING";
constexpr std::string_view kInsertReplaySql =
    "INSERT OR REPLACE INTO webhook_replay_keys (key_hash, event_id, expires_at_ms)"
    " VALUES (?1, ?2, ?3)";
constexpr std::string_view kPruneReplaysSql =
    "DELETE FROM webhook_replay_keys WHERE expires_at_ms <= ?1";

// The first matching row's event_id, nullopt when there is none. A failed query sets `error`.
std::optional<std::string> FirstEventId(store::Statement& query, std::string& error) {
  const int rc = query.Step();
  if (rc == SQLITE_ROW) return query.Text(0);
  if (rc != SQLITE_DONE) error = query.error();
  return std::nullopt;
}

// The stored event of the same type and conversation as `event`, if any (see FirstEventId).
std::optional<std::string> FirstOfConversation(sqlite3* db, const Event& event,
                                               std::string& error) {
  store::Statement q(db, kFindEventSql);
  q.BindView(1, event.type);
  q.BindView(2, event.conversation_id);
  return FirstEventId(q, error);
}

}  // namespace

Inbox::Inbox(store::Database& database, const core::Clock& clock, InboxOptions options,
             std::vector<EventSink*> sinks)
    : database_(database),
      clock_(clock),
      options_(std::move(options)),
      sinks_(std::move(sinks)),
      recordings_dir_(options_.data_dir / "recordings"),
      files_("webhook-files", options_.file_queue) {
  std::error_code ec;
  std::filesystem::create_directories(recordings_dir_, ec);
  if (ec) {
    throw std::runtime_error("cannot create the recordings directory " + recordings_dir_.string() +
                             ": " + ec.message());
  }
  // Temporary files are named ".<conversation>.<event>.tmp"; any left belong to events that were
  // never acknowledged (a crash before their commit).
  for (const auto& entry : std::filesystem::directory_iterator(recordings_dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(".") && name.ends_with(".tmp")) RemoveQuietly(entry.path());
  }
}

Inbox::~Inbox() {
  Stop();
}

void Inbox::Submit(Submission submission, SubmitCallback done) {
  const bool audio = submission.event.audio.has_value();
  const std::size_t bytes =
      submission.event.raw.size() + (audio ? submission.event.audio->mp3.size() : 0);
  std::string refusal;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      refusal = "the webhook inbox is shutting down";
    } else if (reserved_events_ >= options_.max_pending_events) {
      refusal = "the webhook inbox already has " + std::to_string(reserved_events_) +
                " events waiting to be stored";
    } else if (reserved_events_ > 0 && reserved_bytes_ + bytes > options_.max_pending_bytes) {
      // A single event larger than the byte bound is still taken when nothing else waits.
      refusal = "the webhook inbox already has " + std::to_string(reserved_bytes_) +
                " bytes waiting to be stored";
    } else {
      ++reserved_events_;
      reserved_bytes_ += bytes;
    }
  }
  if (!refusal.empty()) {
    {
      std::lock_guard lock(mutex_);
      ++stats_.busy;
    }
    CallSafely(done, "a submit callback",
               SubmitResult{.status = SubmitStatus::kBusy, .message = std::move(refusal)});
    return;
  }

  Pending pending;
  pending.received_at_ms = UnixMillis(clock_);
  pending.event_id = NewEventId(pending.received_at_ms);
  pending.event = std::make_shared<Event>(std::move(submission.event));
  pending.submission = std::move(submission);
  pending.bytes = bytes;
  pending.done = std::move(done);

  if (!audio) {
    Enqueue(std::move(pending));
    return;
  }
  // The MP3 goes to a temporary file first, on the file thread (tens of megabytes and an fsync
  // must not hold up the database thread or an I/O thread).
  auto shared = std::make_shared<Pending>(std::move(pending));
  const bool posted = files_.Post([this, shared] {
    Pending& p = *shared;
    p.temp_recording =
        recordings_dir_ / ("." + p.event->conversation_id + "." + p.event_id + ".tmp");
    const std::string error = WriteDurably(p.temp_recording, p.event->audio->mp3);
    std::string().swap(p.event->audio->mp3);  // the bytes now live in the file
    if (!error.empty()) {
      spdlog::error("webhook inbox: cannot write the recording of conversation {}: {}",
                    p.event->conversation_id, error);
      RemoveQuietly(p.temp_recording);
      p.temp_recording.clear();
      Complete(p, {.status = SubmitStatus::kFailed,
                   .message = "the recording could not be written: " + error});
      return;
    }
    Enqueue(std::move(p));
  });
  if (!posted) {
    Complete(*shared,
             {.status = SubmitStatus::kBusy, .message = "the webhook inbox's file queue is full"});
  }
}

bool Inbox::Offload(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
  }
  return files_.Post(std::move(task));
}

void Inbox::Complete(Pending& pending, SubmitResult result) {
  {
    std::lock_guard lock(mutex_);
    --reserved_events_;
    reserved_bytes_ -= pending.bytes;
    switch (result.status) {
      case SubmitStatus::kStored:
        ++stats_.stored;
        break;
      case SubmitStatus::kDuplicate:
        ++stats_.duplicates;
        break;
      case SubmitStatus::kBusy:
        ++stats_.busy;
        break;
      case SubmitStatus::kFailed:
        ++stats_.failed;
        break;
    }
  }
  idle_.notify_all();
  if (pending.done) CallSafely(pending.done, "a submit callback", std::move(result));
  pending.done = nullptr;
}

void Inbox::Enqueue(Pending pending) {
  {
    std::lock_guard lock(mutex_);
    pending_.push_back(std::move(pending));
    if (drain_posted_) return;
    drain_posted_ = true;
  }
  if (database_.Post([this](sqlite3* db) { Drain(db); })) return;
  // The database refuses work (its queue is full or it is closing): nothing will drain what is
  // queued, so answer it now.
  std::deque<Pending> refused;
  {
    std::lock_guard lock(mutex_);
    refused.swap(pending_);
    drain_posted_ = false;
  }
  for (Pending& p : refused) {
    RemoveQuietly(p.temp_recording);
    Complete(p, {.status = SubmitStatus::kBusy, .message = "the database is not accepting work"});
  }
}

void Inbox::Drain(sqlite3* db) {
  while (true) {
    std::vector<Pending> batch;
    {
      std::lock_guard lock(mutex_);
      std::size_t batch_bytes = 0;
      while (!pending_.empty() && batch.size() < options_.max_batch_events &&
             (batch.empty() || batch_bytes + pending_.front().bytes <= options_.max_batch_bytes)) {
        batch_bytes += pending_.front().bytes;
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    if (!batch.empty()) CommitBatch(db, batch);
    {
      std::lock_guard lock(mutex_);
      if (pending_.empty()) {
        drain_posted_ = false;
        break;
      }
    }
    // More arrived while committing: queue behind the other database work (the ledger's) rather
    // than starving it; if the database refuses, keep going here.
    if (database_.Post([this](sqlite3* next) { Drain(next); })) return;
  }
  idle_.notify_all();
}

void Inbox::CommitBatch(sqlite3* db, std::vector<Pending>& batch) {
  const auto started = std::chrono::steady_clock::now();
  std::vector<SubmitResult> results(batch.size());
  std::vector<StoredEvent> stored;
  stored.reserve(batch.size());
  std::string failure;
  if (failure.empty() && !store::Exec(db, "BEGIN IMMEDIATE")) failure = sqlite3_errmsg(db);

  const std::int64_t now_ms = UnixMillis(clock_);
  const std::int64_t replay_window_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.replay_window).count();
  bool renamed_any = false;

  for (std::size_t i = 0; i < batch.size() && failure.empty(); ++i) {
    Pending& p = batch[i];
    const Event& event = *p.event;
    const Submission& s = p.submission;
    SubmitResult& result = results[i];
    // A replayed delivery? Only events without a conversation id need the replay memory: a
    // replay of any other event has its conversation and type, so it is a redelivery below.
    // Their key is hashed here, the others' not at all.
    const auto key_hash = !s.replay_key.empty() && event.conversation_id.empty()
                              ? core::Sha256(s.replay_key)
                              : std::nullopt;
    const bool remember_key = key_hash.has_value();
    const std::string_view key_bytes =
        key_hash
            ? std::string_view(reinterpret_cast<const char*>(key_hash->data()), key_hash->size())
            : std::string_view();
    std::string error;
    if (remember_key) {
      store::Statement q(db, kFindReplaySql);
      q.BindBlobView(1, key_bytes);
      q.Bind(2, now_ms);
      if (auto first = FirstEventId(q, error)) {
        result = {.status = SubmitStatus::kDuplicate, .event_id = std::move(*first)};
        continue;
      }
    }
    // A redelivered event? For most events the INSERT below finds out (it does nothing on the
    // dedup index's conflict): one index look-up instead of two. An event with a recording
    // must know before its file is renamed into place, over the first one's.
    if (error.empty() && !event.conversation_id.empty() && !p.temp_recording.empty()) {
      if (auto first = FirstOfConversation(db, event, error)) {
        result = {.status = SubmitStatus::kDuplicate, .event_id = std::move(*first)};
        continue;
      }
    }

    // No SAVEPOINT per event: SQLite would copy every page it touches to a sub-journal. A
    // failed INSERT undoes itself (statement atomicity) and leaves the transaction open.
    std::string recording;
    if (error.empty() && !p.temp_recording.empty()) {
      recording = event.conversation_id + ".mp3";
      std::error_code ec;
      std::filesystem::rename(p.temp_recording, recordings_dir_ / recording, ec);
      if (ec) {
        error = "cannot move the recording into place: " + ec.message();
      } else {
        p.temp_recording.clear();
        renamed_any = true;
      }
    }
    if (error.empty()) {
      // Bound without copies: everything bound outlives the Step().
      store::Statement q(db, kInsertEventSql);
      q.BindView(1, p.event_id);
      q.BindView(2, event.type);
      q.BindTextOrNull(3, event.conversation_id);
      q.BindTextOrNull(4, event.agent_id);
      q.Bind(5, event.event_timestamp);
      q.Bind(6, p.received_at_ms);
      q.BindView(7, SourceName(s.source));
      q.BindView(8, s.verification);
      q.BindBlobView(9, event.raw);
      q.Bind(10, static_cast<std::int64_t>(event.raw.size()));
      q.BindTextOrNull(11, recording);
      if (q.Step() != SQLITE_DONE) error = q.error();
    }
    if (error.empty() && sqlite3_changes(db) == 0) {
      // Nothing inserted: a redelivery (the dedup index's conflict), whose first event is the
      // answer. (The other unique key, event_id, has 64 random bits per millisecond.)
      if (auto first = FirstOfConversation(db, event, error)) {
        result = {.status = SubmitStatus::kDuplicate, .event_id = std::move(*first)};
        continue;
      }
      if (error.empty()) error = "the event id " + p.event_id + " is already taken";
    }
    if (!error.empty()) {
      spdlog::error("webhook inbox: event {} ({}) not stored: {}", p.event_id, event.type, error);
      result = {.status = SubmitStatus::kFailed, .message = "the event could not be stored"};
      // After SQLITE_FULL, SQLITE_IOERR and the like SQLite may have rolled the whole
      // transaction back; the rest of the batch must not go on in autocommit mode.
      if (sqlite3_get_autocommit(db) != 0) failure = "the transaction was rolled back: " + error;
      continue;
    }
    const std::int64_t seq = sqlite3_last_insert_rowid(db);
    if (remember_key) {
      store::Statement q(db, kInsertReplaySql);
      q.BindBlobView(1, key_bytes);
      q.BindView(2, p.event_id);
      q.Bind(3, p.received_at_ms + replay_window_ms);
      // The event is stored either way; without its key only a replay of an event that has no
      // conversation id would get through (typed events are still deduplicated by conversation).
      if (q.Step() != SQLITE_DONE) {
        spdlog::warn("webhook inbox: replay key of event {} not recorded: {}", p.event_id,
                     q.error());
      }
    }
    result = {.status = SubmitStatus::kStored, .event_id = p.event_id};
    StoredEvent& out = stored.emplace_back();
    out.event_id = p.event_id;
    out.seq = seq;
    out.type = event.type;
    out.conversation_id = event.conversation_id;
    out.agent_id = event.agent_id;
    out.event_timestamp = event.event_timestamp;
    out.received_at_ms = p.received_at_ms;
    out.source = s.source;
    out.verification = s.verification;
    if (!recording.empty()) out.recording_path = recordings_dir_ / recording;
    out.event = p.event;
  }

  if (failure.empty() && now_ms - last_prune_ms_ >= kPruneEveryMs) {
    store::Statement q(db, kPruneReplaysSql);
    q.Bind(1, now_ms);
    q.Step();  // best effort: stale keys only cost space
    last_prune_ms_ = now_ms;
  }
  // The renamed recordings' directory entries must be durable before the rows that name them.
  if (failure.empty() && renamed_any && !SyncDirectory(recordings_dir_)) {
    failure = "cannot fsync the recordings directory";
  }
  if (failure.empty() && !store::Exec(db, "COMMIT")) failure = sqlite3_errmsg(db);
  if (failure.empty()) {
    commit_latency_.Record(std::chrono::steady_clock::now() - started);
    std::lock_guard lock(mutex_);
    ++stats_.batches;
    stats_.largest_batch = std::max<std::uint64_t>(stats_.largest_batch, batch.size());
  }
  if (!failure.empty()) {
    if (sqlite3_get_autocommit(db) == 0) store::Exec(db, "ROLLBACK");
    spdlog::error("webhook inbox: a batch of {} events was not committed: {}", batch.size(),
                  failure);
    for (std::size_t i = 0; i < batch.size(); ++i)
      results[i] = {.status = SubmitStatus::kFailed, .message = "the event could not be stored"};
    stored.clear();
  }

  const auto answer_all = [&] {
    for (std::size_t i = 0; i < batch.size(); ++i) {
      RemoveQuietly(batch[i].temp_recording);  // duplicates' and failures' temporary files
      Complete(batch[i], std::move(results[i]));
    }
  };
  if (options_.answer_scope) {
    options_.answer_scope(answer_all);
  } else {
    answer_all();
  }
  if (!stored.empty()) {
    for (EventSink* sink : sinks_)
      CallSafely([&] { sink->OnStoredBatch(stored); }, "an event sink");
  }
}

bool Inbox::List(EventFilter filter, std::string cursor, std::size_t limit, ListCallback done) {
  limit = std::clamp<std::size_t>(limit, 1, 1000);
  std::optional<std::int64_t> before;
  if (!cursor.empty()) {
    std::int64_t seq = 0;
    const auto [end, ec] = std::from_chars(cursor.data(), cursor.data() + cursor.size(), seq);
    if (ec != std::errc{} || end != cursor.data() + cursor.size() || seq <= 0) {
      CallSafely(done, "a list callback", std::nullopt, "the cursor is not valid");
      return true;
    }
    before = seq;
  }
  return database_.Post(
      [filter = std::move(filter), before, limit, done = std::move(done)](sqlite3* db) {
        std::string sql = std::string("SELECT ") + kRecordColumns + " FROM webhook_events WHERE 1";
        if (!filter.type.empty()) sql += " AND type = :type";
        if (!filter.conversation_id.empty()) sql += " AND conversation_id = :conversation";
        if (filter.since_unix) sql += " AND received_at_ms >= :since";
        if (filter.until_unix) sql += " AND received_at_ms < :until";
        if (before) sql += " AND seq < :before";
        sql += " ORDER BY seq DESC LIMIT :limit";
        store::Statement query(db, sql);
        if (!query.ok()) {
          CallSafely(done, "a list callback", std::nullopt, query.error());
          return;
        }
        auto bind_text = [&](const char* name, const std::string& value) {
          query.Bind(sqlite3_bind_parameter_index(query.get(), name), value);
        };
        auto bind_int = [&](const char* name, std::int64_t value) {
          query.Bind(sqlite3_bind_parameter_index(query.get(), name), value);
        };
        if (!filter.type.empty()) bind_text(":type", filter.type);
        if (!filter.conversation_id.empty()) bind_text(":conversation", filter.conversation_id);
        // Seconds to milliseconds, saturating (a huge value must not overflow).
        auto millis = [](std::int64_t seconds) {
          constexpr std::int64_t kMax = INT64_MAX / 1000;
          return std::clamp<std::int64_t>(seconds, -kMax, kMax) * 1000;
        };
        if (filter.since_unix) bind_int(":since", millis(*filter.since_unix));
        if (filter.until_unix) bind_int(":until", millis(*filter.until_unix));
        if (before) bind_int(":before", *before);
        bind_int(":limit", static_cast<std::int64_t>(limit) + 1);
        EventPage page;
        int rc = SQLITE_OK;
        while ((rc = query.Step()) == SQLITE_ROW)
          page.events.push_back(ReadRecord(query));
        const std::string error = rc == SQLITE_DONE ? std::string() : query.error();
        if (!error.empty()) {
          CallSafely(done, "a list callback", std::nullopt, error);
          return;
        }
        if (page.events.size() > limit) {
          page.events.resize(limit);
          page.next_cursor = std::to_string(page.events.back().seq);
        }
        CallSafely(done, "a list callback", std::move(page), std::string());
      });
}

bool Inbox::Get(std::string event_id, GetCallback done) {
  return database_.Post([event_id = std::move(event_id), done = std::move(done)](sqlite3* db) {
    const std::string sql = std::string("SELECT ") + kRecordColumns +
                            ", payload FROM webhook_events WHERE event_id = ?1";
    store::Statement query(db, sql);
    if (!query.ok()) {
      CallSafely(done, "a get callback", std::nullopt, query.error());
      return;
    }
    query.Bind(1, event_id);
    std::optional<EventRecord> record;
    std::string error;
    const int rc = query.Step();
    if (rc == SQLITE_ROW) {
      record = ReadRecord(query);
      record->payload = query.Blob(11);
    } else if (rc != SQLITE_DONE) {
      error = query.error();
    }
    CallSafely(done, "a get callback", std::move(record), std::move(error));
  });
}

std::optional<std::filesystem::path> Inbox::RecordingPath(std::string_view conversation_id) const {
  if (!IsSafeConversationId(conversation_id)) return std::nullopt;
  std::filesystem::path path = recordings_dir_ / (std::string(conversation_id) + ".mp3");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
  return path;
}

InboxStats Inbox::stats() const {
  std::lock_guard lock(mutex_);
  InboxStats stats = stats_;
  stats.waiting = reserved_events_;
  return stats;
}

void Inbox::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  files_.Stop();  // audio writes already accepted finish and are queued for the database
  {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [this] { return reserved_events_ == 0 && !drain_posted_; });
  }
}

}  // namespace callgate::webhook
