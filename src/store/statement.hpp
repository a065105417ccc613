// A prepared SQLite statement with typed binds and column reads, and a transaction guard, for
// code running on a store::Database's thread (the call ledger, the idempotency store, the
// webhook inbox, the dialer's sessions). On that thread the statement is taken from the
// connection's cache, compiled once, and handed back reset when the Statement goes away.
#pragma once

#include "store/database.hpp"

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace callgate::store {

class Statement {
 public:
  // On a store::Database's thread the statement comes from its cache (compiled once per
  // connection) and goes back to it, reset, on destruction; elsewhere it is compiled here.
  Statement(sqlite3* db, std::string_view sql) : db_(db) {
    stmt_ = store::Database::Acquire(db, sql);
    cached_ = stmt_ != nullptr;
    ok_ = cached_ || sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_,
                                        nullptr) == SQLITE_OK;
  }
  ~Statement() {
    if (cached_) {
      store::Database::Release(stmt_);
    } else {
      sqlite3_finalize(stmt_);
    }
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool ok() const { return ok_; }
  std::string error() const { return sqlite3_errmsg(db_); }

  // Binds are 1-based, like SQLite's, and chain: s.Bind(1, a).Bind(2, b).Run().
  Statement& Bind(int index, std::string_view text) {
    return Check(sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                                   SQLITE_TRANSIENT));
  }
  Statement& Bind(int index, const std::string& text) {
    return Bind(index, std::string_view(text));
  }
  Statement& Bind(int index, const char* text) { return Bind(index, std::string_view(text)); }
  Statement& BindBlob(int index, std::string_view bytes) {
    return Check(sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()),
                                   SQLITE_TRANSIENT));
  }
  Statement& Bind(int index, std::int64_t value) {
    return Check(sqlite3_bind_int64(stmt_, index, value));
  }
  Statement& Bind(int index, int value) { return Check(sqlite3_bind_int(stmt_, index, value)); }
  Statement& BindNull(int index) { return Check(sqlite3_bind_null(stmt_, index)); }
  // Without a copy: `bytes` must stay alive and unchanged until the last Step() (a large
  // payload bound for one insert).
  void BindView(int index, std::string_view text) {
    Check(
        sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC));
  }
  void BindBlobView(int index, std::string_view bytes) {
    Check(sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_STATIC));
  }
  // Text, or NULL when empty.
  void BindTextOrNull(int index, std::string_view text) {
    if (text.empty()) {
      BindNull(index);
    } else {
      Bind(index, text);
    }
  }
  void Bind(int index, const std::optional<std::string>& text) {
    if (text) {
      Bind(index, std::string_view(*text));
    } else {
      BindNull(index);
    }
  }
  void Bind(int index, const std::optional<std::int64_t>& value) {
    if (value) {
      Bind(index, *value);
    } else {
      BindNull(index);
    }
  }

  // For the rare call that needs the raw handle (sqlite3_bind_parameter_index...).
  sqlite3_stmt* get() const { return stmt_; }

  // SQLITE_ROW, SQLITE_DONE or an error code (also after a failed prepare or bind).
  int Step() {
    if (!ok_) return SQLITE_ERROR;
    return sqlite3_step(stmt_);
  }
  // One step for a statement run several times with new binds: true on SQLITE_DONE or
  // SQLITE_ROW, then reset (read error() before the next call on failure).
  bool Run() {
    const int rc = Step();
    if (ok_) sqlite3_reset(stmt_);
    return rc == SQLITE_DONE || rc == SQLITE_ROW;
  }
  // Back to before the first Step(), binds kept.
  void Reset() {
    if (ok_) sqlite3_reset(stmt_);
  }

  bool IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  std::string Text(int column) const {
    const auto* text = sqlite3_column_text(stmt_, column);
    const int size = sqlite3_column_bytes(stmt_, column);
    if (text == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size));
  }
  std::string Blob(int column) const {
    const void* data = sqlite3_column_blob(stmt_, column);
    const int size = sqlite3_column_bytes(stmt_, column);
    if (data == nullptr) return {};
    return std::string(static_cast<const char*>(data), static_cast<std::size_t>(size));
  }
  std::optional<std::string> OptionalText(int column) const {
    if (IsNull(column)) return std::nullopt;
    return Text(column);
  }
  std::int64_t Int64(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::optional<std::int64_t> OptionalInt64(int column) const {
    if (IsNull(column)) return std::nullopt;
    return Int64(column);
  }

 private:
  Statement& Check(int rc) {
    if (rc != SQLITE_OK) ok_ = false;
    return *this;
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  bool cached_ = false;
  bool ok_ = false;
};

// SQL without parameters or results (BEGIN, COMMIT, ROLLBACK, ...): true on success.
inline bool Exec(sqlite3* db, const char* sql) {
  return sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
}

// BEGIN IMMEDIATE on construction (ok() tells whether it began); ROLLBACK on destruction unless
// Commit() succeeded.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) { ok_ = Run("BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (ok_ && !committed_) Run("ROLLBACK");
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  bool ok() const { return ok_; }
  bool Commit() {
    committed_ = Run("COMMIT");
    return committed_;
  }

 private:
  bool Run(std::string_view sql) {
    Statement statement(db_, sql);
    return statement.Step() == SQLITE_DONE;
  }

  sqlite3* db_;
  bool ok_ = false;
  bool committed_ = false;
};

}  // namespace callgate::store
