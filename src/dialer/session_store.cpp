#include "dialer/session_store.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace callgate::dialer {
namespace {

constexpr store::Migration kMigrations[] = {
    {300, "dialer_sessions",
     "CREATE TABLE dialer_sessions ("
     " session_id TEXT PRIMARY KEY,"
     " agent_id TEXT NOT NULL,"
     " conversation_id TEXT NOT NULL DEFAULT '',"
     " end_reason TEXT NOT NULL DEFAULT '',"
     " saved_seq INTEGER NOT NULL,"
     " session TEXT NOT NULL);"
     "CREATE INDEX dialer_sessions_by_seq ON dialer_sessions (saved_seq DESC);"},
};

std::string Text(const boost::json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value != nullptr && value->is_string() ? std::string(value->as_string()) : std::string();
}

std::optional<boost::json::object> ParseRow(sqlite3_stmt* stmt, int column) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
  if (text == nullptr) return std::nullopt;
  boost::system::error_code ec;
  auto value = boost::json::parse(text, ec);
  if (ec || !value.is_object()) return std::nullopt;
  return std::move(value.as_object());
}

}  // namespace

std::span<const store::Migration> Migrations() {
  return kMigrations;
}

void SessionStore::Save(boost::json::object session, std::function<void(bool)> done) {
  const bool queued = database_.Post([session = std::move(session), done](sqlite3* db) {
    sqlite3_stmt* stmt = nullptr;
    const char* sql =
        "INSERT OR REPLACE INTO dialer_sessions"
        " (session_id, agent_id, conversation_id, end_reason, saved_seq, session)"
        " VALUES (?, ?, ?, ?, (SELECT COALESCE(MAX(saved_seq), 0) + 1 FROM dialer_sessions), ?)";
    bool ok = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK;
    if (ok) {
      std::string reason;
      if (const auto* end = session.if_contains("end_reason"); end && end->is_object()) {
        reason = Text(end->as_object(), "code");
      }
      const std::string values[] = {Text(session, "session_id"), Text(session, "agent_id"),
                                    Text(session, "conversation_id"), reason,
                                    boost::json::serialize(session)};
      const int columns[] = {1, 2, 3, 4, 5};
      for (int i = 0; i < 5; ++i) {
        sqlite3_bind_text(stmt, columns[i], values[i].data(), static_cast<int>(values[i].size()),
                          SQLITE_TRANSIENT);
      }
      ok = sqlite3_step(stmt) == SQLITE_DONE;
    }
    if (!ok) spdlog::error("dialer: a session could not be saved: {}", sqlite3_errmsg(db));
    sqlite3_finalize(stmt);
    if (done) done(ok);
  });
  if (!queued) {
    spdlog::error("dialer: the database refused to save a session (queue full or closing)");
    if (done) done(false);
  }
}

void SessionStore::Get(std::string session_id,
                       std::function<void(std::optional<boost::json::object>)> done) {
  const bool queued = database_.Post([id = std::move(session_id), done](sqlite3* db) {
    sqlite3_stmt* stmt = nullptr;
    std::optional<boost::json::object> found;
    if (sqlite3_prepare_v2(db, "SELECT session FROM dialer_sessions WHERE session_id = ?", -1,
                           &stmt, nullptr) == SQLITE_OK) {
      sqlite3_bind_text(stmt, 1, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
      if (sqlite3_step(stmt) == SQLITE_ROW) found = ParseRow(stmt, 0);
    }
    sqlite3_finalize(stmt);
    done(std::move(found));
  });
  if (!queued) done(std::nullopt);
}

void SessionStore::List(std::size_t limit,
                        std::function<void(std::vector<boost::json::object>)> done) {
  const bool queued = database_.Post([limit, done](sqlite3* db) {
    sqlite3_stmt* stmt = nullptr;
    std::vector<boost::json::object> sessions;
    if (sqlite3_prepare_v2(db,
                           "SELECT session FROM dialer_sessions ORDER BY saved_seq DESC LIMIT ?",
                           -1, &stmt, nullptr) == SQLITE_OK) {
      sqlite3_bind_int64(stmt, 1, static_cast<sqlite3_int64>(limit));
      while (sqlite3_step(stmt) == SQLITE_ROW) {
        if (auto row = ParseRow(stmt, 0)) sessions.push_back(std::move(*row));
      }
    }
    sqlite3_finalize(stmt);
    done(std::move(sessions));
  });
  if (!queued) done({});
}

}  // namespace callgate::dialer
