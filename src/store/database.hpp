// The SQLite database file: opening it, versioned schema migrations, and a single database
// thread that every query runs on.
//
// SQLite is used in WAL mode with synchronous=FULL, so a committed transaction survives a crash
// or power loss. All access goes through Post(), which runs the task on the database's own
// thread (never an I/O thread) with the connection handle; tasks run one at a time, in order.
// Schema changes are migrations: numbered, applied once in a transaction each, recorded in
// schema_migrations. Each store module (the call ledger, the webhook inbox, ...) owns its
// migrations and passes them to Open(); versions are ranges per module so that modules never
// collide:
//     1-99     store core (meta)          100-199  calls ledger (src/calls)
//     200-299  webhook inbox (src/webhook) 300-399  dialer sessions (src/dialer)
// A migration is applied when its version is not yet recorded, in version order, so a module
// can add one later without renumbering anyone else's.
//
// A new database file gets kPageBytes pages (SQLite's default is 4 KiB): a ~6 KB webhook
// payload then sits in its table leaf instead of spilling onto overflow pages, and a group
// commit writes far fewer WAL frames, each one a header and a page write (strace: 35 pwrite
// calls per commit against 201; bench/README.md, issue 5: a median 7% more durable events per
// second). A file made with another page size keeps it (changing it needs a VACUUM out of WAL
// mode; the README shows how).
//
// WAL checkpoints run on a second connection on a thread of their own, started once the WAL
// holds kCheckpointWalBytes, so commits do not copy pages and fsync the database file (SQLite's
// automatic checkpoint does it inside the commit that crosses the line). Past
// kForceCheckpointWalBytes the database thread copies what is left itself, which lets the WAL
// start over from its beginning. Both bounds are in bytes, turned into frames with the file's
// page size (SQLite's own threshold, 1,000 frames, would mean 32 MB of WAL at 32 KiB pages).
#pragma once

#include "core/worker.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

struct sqlite3;
struct sqlite3_stmt;

namespace callgate::store {

// One schema change. Append only: a released migration is never edited, a change is a new one.
struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

class Database {
 public:
  // Creates the parent directory and the file if needed, applies the core migrations and the
  // given modules' pending migrations. Throws std::runtime_error naming the path and SQLite's
  // reason on failure, on two migrations sharing a version, and when the file records a
  // migration this build does not know (a newer callgate wrote it).
  static std::unique_ptr<Database> Open(const std::string& path,
                                        std::span<const Migration> module_migrations = {});
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs `task` on the database thread. False when the queue is full or the database is closing.
  bool Post(std::function<void(sqlite3*)> task);

  // On the database thread: true when the connection answers a trivial query.
  static bool Ping(sqlite3* db);

  // On the database thread: a statement for `sql`, compiled once per connection and kept until
  // Close() (SQL compilation costs more than running a simple statement). The caller must
  // sqlite3_reset() it before returning (CachedStatement does) and hand it back with Release().
  // nullptr when `db` is not a Database's connection on its own thread (the caller then
  // prepares its own), when the statement is already in use further up the stack, or when it
  // does not compile (sqlite3_errmsg(db) says why).
  static sqlite3_stmt* Acquire(sqlite3* db, std::string_view sql);
  static void Release(sqlite3_stmt* stmt);

  // Runs the queued tasks, then closes the connection.
  void Close();

  static constexpr int kPageBytes = 32 * 1024;  // of a new file
  // About SQLite's own threshold at 4 KiB pages (1,000 frames), and 4x that.
  static constexpr std::int64_t kCheckpointWalBytes = std::int64_t{4} * 1024 * 1024;
  static constexpr std::int64_t kForceCheckpointWalBytes = 4 * kCheckpointWalBytes;

  // The file's page size, and the WAL frames at which a background checkpoint starts.
  int page_bytes() const { return page_bytes_; }
  int checkpoint_frames() const { return static_cast<int>(kCheckpointWalBytes / page_bytes_); }

  // Counters for tests and metrics: checkpoints run in the background / on the database thread.
  struct CheckpointStats {
    std::uint64_t background = 0;
    std::uint64_t forced = 0;
    int last_backfilled = 0;  // WAL frames in the database file after the last background one
  };
  CheckpointStats checkpoint_stats() const;

  const std::string& path() const { return path_; }
  // The highest migration version applied.
  int schema_version() const { return schema_version_; }

 private:
  Database(std::string path, sqlite3* db, int schema_version, int page_bytes);
  void StartCheckpointer();
  static int OnWalCommit(void* self, sqlite3* db, const char* schema, int frames);
  void Checkpoint();  // on the checkpoint thread

  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const {
      return std::hash<std::string_view>{}(text);
    }
  };

  std::string path_;
  sqlite3* db_;
  int schema_version_;
  int page_bytes_;
  // Database thread only (Acquire/Release), then Close() after the thread has stopped.
  std::unordered_map<std::string, sqlite3_stmt*, StringHash, std::equal_to<>> statements_;
  std::unordered_set<sqlite3_stmt*> in_use_;
  // The checkpointer: its own connection (null when the file is not in WAL mode) and thread.
  sqlite3* checkpoint_db_ = nullptr;
  std::atomic<bool> checkpoint_pending_{false};
  std::atomic<std::uint64_t> checkpoints_background_{0};
  std::atomic<std::uint64_t> checkpoints_forced_{0};
  std::atomic<int> last_backfilled_{0};
  core::Worker checkpointer_;
  core::Worker worker_;
};

}  // namespace callgate::store
