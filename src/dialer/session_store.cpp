#include "dialer/session_store.hpp"

#include "store/statement.hpp"

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

std::optional<boost::json::object> ParseRow(std::string_view text) {
  if (text.empty()) return std::nullopt;
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
    std::string reason;
    if (const auto* end = session.if_contains("end_reason"); end && end->is_object()) {
      reason = Text(end->as_object(), "code");
    }
    store::Statement insert(
        db,
        "INSERT OR REPLACE INTO dialer_sessions"
        " (session_id, agent_id, conversation_id, end_reason, saved_seq, session)"
        " VALUES (?, ?, ?, ?, (SELECT COALESCE(MAX(saved_seq), 0) + 1 FROM dialer_sessions), ?)");
    insert.Bind(1, Text(session, "session_id"));
    insert.Bind(2, Text(session, "agent_id"));
    insert.Bind(3, Text(session, "conversation_id"));
    insert.Bind(4, reason);
    insert.Bind(5, boost::json::serialize(session));
    const bool ok = insert.Step() == SQLITE_DONE;
    if (!ok) spdlog::error("dialer: a session could not be saved: {}", insert.error());
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
    std::optional<boost::json::object> found;
    store::Statement select(db, "SELECT session FROM dialer_sessions WHERE session_id = ?");
    select.Bind(1, id);
    if (select.Step() == SQLITE_ROW) found = ParseRow(select.Text(0));
    done(std::move(found));
  });
  if (!queued) done(std::nullopt);
}

void SessionStore::List(std::size_t limit,
                        std::function<void(std::vector<boost::json::object>)> done) {
  const bool queued = database_.Post([limit, done](sqlite3* db) {
    std::vector<boost::json::object> sessions;
    store::Statement select(db,
                            "SELECT session FROM dialer_sessions ORDER BY saved_seq DESC LIMIT ?");
    select.Bind(1, static_cast<std::int64_t>(limit));
    while (select.Step() == SQLITE_ROW) {
      if (auto row = ParseRow(select.Text(0))) sessions.push_back(std::move(*row));
    }
    done(std::move(sessions));
  });
  if (!queued) done({});
}

}  // namespace callgate::dialer
