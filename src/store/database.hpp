// The SQLite database file: opening it, versioned schema migrations, and a single database
// thread that every query runs on.
//
// SQLite is used in WAL mode with synchronous=FULL, so a committed transaction survives a crash
// or power loss. All access goes through Post(), which runs the task on the database's own
// thread (never an I/O thread) with the connection handle; tasks run one at a time, in order.
// Schema changes are migrations: numbered, applied once in a transaction each, recorded in
// schema_migrations. Later stores (calls, webhook events) add their migrations to kMigrations.
#pragma once

#include "core/worker.hpp"

#include <functional>
#include <memory>
#include <string>

struct sqlite3;

namespace callgate::store {

class Database {
 public:
  // Creates the parent directory and the file if needed, applies pending migrations.
  // Throws std::runtime_error naming the path and SQLite's reason on failure.
  static std::unique_ptr<Database> Open(const std::string& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs `task` on the database thread. False when the queue is full or the database is closing.
  bool Post(std::function<void(sqlite3*)> task);

  // On the database thread: true when the connection answers a trivial query.
  static bool Ping(sqlite3* db);

  // Runs the queued tasks, then closes the connection.
  void Close();

  const std::string& path() const { return path_; }
  int schema_version() const { return schema_version_; }

 private:
  Database(std::string path, sqlite3* db, int schema_version);

  std::string path_;
  sqlite3* db_;
  int schema_version_;
  core::Worker worker_;
};

}  // namespace callgate::store
