#include "store/database.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <filesystem>
#include <stdexcept>
#include <string_view>

namespace callgate::store {
namespace {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

// Append only: a released migration is never edited, a change is a new migration.
constexpr Migration kMigrations[] = {
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

int QueryInt(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  int value = 0;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    value = sqlite3_column_int(stmt, 0);
  }
  sqlite3_finalize(stmt);
  return value;
}

int Migrate(sqlite3* db, const std::string& path) {
  Exec(db,
       "CREATE TABLE IF NOT EXISTS schema_migrations ("
       " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
       path);
  int current = QueryInt(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  const int newest = kMigrations[std::size(kMigrations) - 1].version;
  if (current > newest) {
    throw std::runtime_error("database " + path + " has schema version " + std::to_string(current) +
                             ", newer than this callgate knows (" + std::to_string(newest) +
                             "): upgrade callgate");
  }
  for (const Migration& migration : kMigrations) {
    if (migration.version <= current) continue;
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
    current = migration.version;
  }
  return current;
}

}  // namespace

std::unique_ptr<Database> Database::Open(const std::string& path) {
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
    Exec(db, "PRAGMA journal_mode=WAL", path);
    Exec(db, "PRAGMA synchronous=FULL", path);
    Exec(db, "PRAGMA foreign_keys=ON", path);
    const int version = Migrate(db, path);
    return std::unique_ptr<Database>(new Database(path, db, version));
  } catch (...) {
    sqlite3_close(db);
    throw;
  }
}

Database::Database(std::string path, sqlite3* db, int schema_version)
    : path_(std::move(path)), db_(db), schema_version_(schema_version), worker_("sqlite", 4096) {}

Database::~Database() {
  Close();
}

bool Database::Post(std::function<void(sqlite3*)> task) {
  return worker_.Post([this, task = std::move(task)] { task(db_); });
}

bool Database::Ping(sqlite3* db) {
  return QueryInt(db, "SELECT 1") == 1;
}

void Database::Close() {
  worker_.Stop();
  if (db_ != nullptr) {
    sqlite3_close(db_);
    db_ = nullptr;
  }
}

}  // namespace callgate::store
