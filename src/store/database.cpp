#include "store/database.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace callgate::store {
namespace {

// The Database whose task is running on this thread (set around each task).
thread_local Database* t_running = nullptr;

// The store core's own migrations (versions 1-99). Append only.
constexpr Migration kCoreMigrations[] = {
    {1, "meta",
     "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
     "INSERT INTO meta (key, value) VALUES ('created_at', strftime('%s','now'));"},
};

void Exec(sqlite3* db, std::string_view sql, const std::string& path) {
  char* error = nullptr;
  if (sqlite3_exec(db, std::string(sql).c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error != nullptr ? error : sqlite3_errmsg(db);
    sqlite3_free(error);
    throw std::runtime_error("database " + path + ": " + message);
  }
}

std::string QueryText(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  std::string value;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
    value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  return value;
}

std::vector<int> AppliedVersions(sqlite3* db) {
  std::vector<int> versions;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT version FROM schema_migrations ORDER BY version", -1, &stmt,
                         nullptr) == SQLITE_OK) {
    while (sqlite3_step(stmt) == SQLITE_ROW)
      versions.push_back(sqlite3_column_int(stmt, 0));
  }
  sqlite3_finalize(stmt);
  return versions;
}

// Applies every known migration not yet recorded, in version order; returns the highest version.
int Migrate(sqlite3* db, const std::string& path, std::span<const Migration> module_migrations) {
  std::vector<Migration> known(std::begin(kCoreMigrations), std::end(kCoreMigrations));
  known.insert(known.end(), module_migrations.begin(), module_migrations.end());
  std::sort(known.begin(), known.end(),
            [](const Migration& a, const Migration& b) { return a.version < b.version; });
  for (std::size_t i = 1; i < known.size(); ++i) {
    if (known[i].version == known[i - 1].version) {
      throw std::runtime_error(
          "database " + path + ": migrations '" + std::string(known[i - 1].name) + "' and '" +
          std::string(known[i].name) + "' share version " + std::to_string(known[i].version));
    }
  }
  Exec(db,
       "CREATE TABLE IF NOT EXISTS schema_migrations ("
       " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
       path);
  const std::vector<int> applied = AppliedVersions(db);
  for (int version : applied) {
    const bool is_known = std::any_of(known.begin(), known.end(),
                                      [&](const Migration& m) { return m.version == version; });
    if (!is_known) {
      throw std::runtime_error("database " + path + " has schema migration " +
                               std::to_string(version) +
                               ", which this callgate does not know: upgrade callgate");
    }
  }
  int highest = applied.empty() ? 0 : applied.back();
  for (const Migration& migration : known) {
    if (std::binary_search(applied.begin(), applied.end(), migration.version)) continue;
    Exec(db, "BEGIN IMMEDIATE", path);
    try {
      Exec(db, migration.sql, path);
      Exec(db,
           "INSERT INTO schema_migrations (version, name, applied_at) VALUES (" +
               std::to_string(migration.version) + ", '" + std::string(migration.name) +
               "', strftime('%s','now'))",
           path);
      Exec(db, "COMMIT", path);
    } catch (...) {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
    spdlog::info("database: applied migration {} ({})", migration.version, migration.name);
    highest = std::max(highest, migration.version);
  }
  return highest;
}

}  // namespace

std::unique_ptr<Database> Database::Open(const std::string& path,
                                         std::span<const Migration> module_migrations) {
  const std::filesystem::path file(path);
  if (file.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    if (ec) {
      throw std::runtime_error("cannot create the directory " + file.parent_path().string() +
                               " for the database: " + ec.message());
    }
  }
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw std::runtime_error("cannot open the database " + path + ": " + message);
  }
  try {
    sqlite3_busy_timeout(db, 5000);
    // Before anything is written: a no-op on an existing file, which keeps its page size.
    Exec(db, "PRAGMA page_size=" + std::to_string(kPageBytes), path);
    Exec(db, "PRAGMA journal_mode=WAL", path);
    Exec(db, "PRAGMA synchronous=FULL", path);
    Exec(db, "PRAGMA foreign_keys=ON", path);
    const int version = Migrate(db, path, module_migrations);
    const std::string page_size = QueryText(db, "PRAGMA page_size");
    int page_bytes = 0;
    std::from_chars(page_size.data(), page_size.data() + page_size.size(), page_bytes);
    if (page_bytes <= 0) throw std::runtime_error("database " + path + ": no page size");
    auto database = std::unique_ptr<Database>(new Database(path, db, version, page_bytes));
    database->StartCheckpointer();
    return database;
  } catch (...) {
    sqlite3_close(db);
    throw;
  }
}

Database::Database(std::string path, sqlite3* db, int schema_version, int page_bytes)
    : path_(std::move(path)),
      db_(db),
      schema_version_(schema_version),
      page_bytes_(page_bytes),
      checkpointer_("sqlite-checkpoint", 1),
      worker_("sqlite", 4096) {}

void Database::StartCheckpointer() {
  if (QueryText(db_, "PRAGMA journal_mode") != "wal") return;  // e.g. an in-memory database
  sqlite3* second = nullptr;
  if (sqlite3_open_v2(path_.c_str(), &second, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    spdlog::warn("database {}: no checkpoint connection ({}); checkpoints stay in the commits",
                 path_, second != nullptr ? sqlite3_errmsg(second) : "out of memory");
    sqlite3_close(second);
    return;
  }
  sqlite3_busy_timeout(second, 5000);
  // A connection opens the WAL on its first read; until then a checkpoint does nothing.
  if (QueryText(second, "PRAGMA journal_mode") != "wal") {
    spdlog::warn(
        "database {}: the checkpoint connection does not see WAL mode; checkpoints stay"
        " in the commits",
        path_);
    sqlite3_close(second);
    return;
  }
  checkpoint_db_ = second;
  // Replaces SQLite's automatic checkpoint (itself a WAL hook).
  sqlite3_wal_hook(db_, &Database::OnWalCommit, this);
}

int Database::OnWalCommit(void* self_ptr, sqlite3* db, const char* schema, int frames) {
  auto* self = static_cast<Database*>(self_ptr);
  // The WAL starts over only when a write begins after every frame was copied, which a
  // background checkpoint racing a busy writer rarely achieves: past kForceCheckpointWalBytes the
  // writer copies the rest itself (little, the background copied the bulk) unless the
  // background is at it right now; past twice that, in any case.
  const bool background_busy = self->checkpoint_pending_.load();
  const auto force_frames = static_cast<int>(kForceCheckpointWalBytes / self->page_bytes_);
  if (frames >= 2 * force_frames || (frames >= force_frames && !background_busy)) {
    if (sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr) ==
        SQLITE_OK) {
      self->checkpoints_forced_.fetch_add(1, std::memory_order_relaxed);
    }
    return SQLITE_OK;
  }
  if (frames >= self->checkpoint_frames() && !self->checkpoint_pending_.exchange(true)) {
    if (!self->checkpointer_.Post([self] { self->Checkpoint(); })) {
      self->checkpoint_pending_ = false;
    }
  }
  return SQLITE_OK;
}

void Database::Checkpoint() {
  // PASSIVE: copies what no reader still needs, never blocks the writer. The next write
  // transaction restarts the WAL from its beginning once everything has been copied.
  int copied = 0;
  const int rc = sqlite3_wal_checkpoint_v2(checkpoint_db_, nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                           nullptr, &copied);
  if (rc == SQLITE_OK) last_backfilled_.store(std::max(copied, 0), std::memory_order_relaxed);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
    spdlog::warn("database {}: checkpoint failed: {}", path_, sqlite3_errmsg(checkpoint_db_));
  }
  checkpoints_background_.fetch_add(1, std::memory_order_relaxed);
  checkpoint_pending_ = false;
}

Database::CheckpointStats Database::checkpoint_stats() const {
  return {.background = checkpoints_background_.load(std::memory_order_relaxed),
          .forced = checkpoints_forced_.load(std::memory_order_relaxed),
          .last_backfilled = last_backfilled_.load(std::memory_order_relaxed)};
}

Database::~Database() {
  Close();
}

bool Database::Post(std::function<void(sqlite3*)> task) {
  return worker_.Post([this, task = std::move(task)] {
    t_running = this;
    task(db_);
    t_running = nullptr;
  });
}

sqlite3_stmt* Database::Acquire(sqlite3* db, std::string_view sql) {
  Database* self = t_running;
  if (self == nullptr || self->db_ != db) return nullptr;
  auto it = self->statements_.find(sql);
  if (it == self->statements_.end()) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                           &stmt, nullptr) != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return nullptr;
    }
    it = self->statements_.emplace(std::string(sql), stmt).first;
  }
  if (!self->in_use_.insert(it->second).second) return nullptr;
  return it->second;
}

void Database::Release(sqlite3_stmt* stmt) {
  Database* self = t_running;
  if (self == nullptr || stmt == nullptr) return;
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  self->in_use_.erase(stmt);
}

bool Database::Ping(sqlite3* db) {
  return QueryText(db, "SELECT 1") == "1";
}

void Database::Close() {
  worker_.Stop();
  checkpointer_.Stop();
  if (checkpoint_db_ != nullptr) {
    sqlite3_wal_hook(db_, nullptr, nullptr);
    sqlite3_close(checkpoint_db_);
    checkpoint_db_ = nullptr;
  }
  for (auto& [sql, stmt] : statements_)
    sqlite3_finalize(stmt);
  statements_.clear();
  in_use_.clear();
  if (db_ != nullptr) {
    sqlite3_close(db_);
    db_ = nullptr;
  }
}

}  // namespace callgate::store
