#include "calls/sqlite_ledger.hpp"

#include "core/ids.hpp"
#include "store/statement.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <charconv>
#include <exception>
#include <memory>
#include <utility>

namespace callgate::calls {
namespace {

using store::Statement;
using store::Transaction;

constexpr std::string_view kColumns =
    "seq, call_id, created_at_ms, updated_at_ms, to_number, from_number, agent_phone_number_id, "
    "agent_id, prompt, options, conversation_id, call_sid, sip_call_id, status, failure_reason, "
    "transcript, analysis, duration_secs, source";

struct Row {
  std::int64_t seq = 0;
  CallRecord record;
};

// A failure on the database thread: logged with SQLite's reason (never with call data), then
// reported as kStorage.
boost::system::error_code StorageError(std::string_view operation, const std::string& reason) {
  spdlog::error("call ledger: {} failed: {}", operation, reason);
  return LedgerErrc::kStorage;
}

std::optional<boost::json::value> ParseJsonColumn(const Statement& stmt, int column,
                                                  std::string_view call_id) {
  if (stmt.IsNull(column)) return std::nullopt;
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(stmt.Text(column), ec);
  if (ec) {
    spdlog::warn("call ledger: call {}: column {} holds invalid JSON; read as null", call_id,
                 column);
    return std::nullopt;
  }
  return value;
}

Row ReadRow(const Statement& stmt) {
  Row row;
  row.seq = stmt.Int64(0);
  CallRecord& r = row.record;
  r.call_id = stmt.Text(1);
  r.created_at_ms = stmt.Int64(2);
  r.updated_at_ms = stmt.Int64(3);
  r.to_number = stmt.Text(4);
  r.from_number = stmt.Text(5);
  r.agent_phone_number_id = stmt.Text(6);
  r.agent_id = stmt.Text(7);
  r.prompt = stmt.Text(8);
  if (auto options = ParseJsonColumn(stmt, 9, r.call_id); options && options->is_object()) {
    r.options = std::move(options->as_object());
  }
  r.conversation_id = stmt.OptionalText(10);
  r.call_sid = stmt.OptionalText(11);
  r.sip_call_id = stmt.OptionalText(12);
  r.status = ParseCallStatus(stmt.Text(13)).value_or(CallStatus::kQueued);
  r.failure_reason = stmt.OptionalText(14);
  r.transcript = ParseJsonColumn(stmt, 15, r.call_id);
  r.analysis = ParseJsonColumn(stmt, 16, r.call_id);
  r.duration_secs = stmt.OptionalInt64(17);
  r.source = ParseUpdateSource(stmt.Text(18)).value_or(UpdateSource::kApi);
  return row;
}

std::optional<std::string> JsonText(const std::optional<boost::json::value>& value) {
  if (!value) return std::nullopt;
  return boost::json::serialize(*value);
}

// One call by a unique column ("call_id" or "conversation_id").
LedgerResult<CallRecord> Load(sqlite3* db, std::string_view column, std::string_view value) {
  Statement stmt(
      db, "SELECT " + std::string(kColumns) + " FROM calls WHERE " + std::string(column) + " = ?1");
  stmt.Bind(1, value);
  const int rc = stmt.Step();
  if (rc == SQLITE_ROW) return ReadRow(stmt).record;
  if (rc == SQLITE_DONE) return LedgerErrc::kNotFound;
  return StorageError("read", stmt.error());
}

// Writes back the columns that change after insertion.
boost::system::error_code Store(sqlite3* db, const CallRecord& r) {
  Statement stmt(db,
                 "UPDATE calls SET updated_at_ms = ?1, agent_phone_number_id = ?2, "
                 "conversation_id = ?3, call_sid = ?4, sip_call_id = ?5, status = ?6, "
                 "failure_reason = ?7, transcript = ?8, analysis = ?9, duration_secs = ?10, "
                 "source = ?11 WHERE call_id = ?12");
  stmt.Bind(1, r.updated_at_ms);
  stmt.Bind(2, std::string_view(r.agent_phone_number_id));
  stmt.Bind(3, r.conversation_id);
  stmt.Bind(4, r.call_sid);
  stmt.Bind(5, r.sip_call_id);
  stmt.Bind(6, ToString(r.status));
  stmt.Bind(7, r.failure_reason);
  stmt.Bind(8, JsonText(r.transcript));
  stmt.Bind(9, JsonText(r.analysis));
  stmt.Bind(10, r.duration_secs);
  stmt.Bind(11, ToString(r.source));
  stmt.Bind(12, std::string_view(r.call_id));
  const int rc = stmt.Step();
  if (rc == SQLITE_DONE) return {};
  if (rc == SQLITE_CONSTRAINT) return LedgerErrc::kConflict;
  return StorageError("update", stmt.error());
}

// Loads a call, lets `change` modify it, writes it back if changed: one transaction.
template <class Change>
LedgerResult<CallRecord> Modify(sqlite3* db, std::string_view column, std::string_view value,
                                Change change, bool* changed_out = nullptr) {
  Transaction transaction(db);
  if (!transaction.ok()) return StorageError("begin", sqlite3_errmsg(db));
  auto loaded = Load(db, column, value);
  if (!loaded) return loaded.error();
  CallRecord record = std::move(*loaded);
  const bool changed = change(record);
  if (changed) {
    if (auto ec = Store(db, record)) return ec;
  }
  if (!transaction.Commit()) return StorageError("commit", sqlite3_errmsg(db));
  if (changed_out != nullptr) *changed_out = changed;
  return record;
}

// --- Cursors: base64url("1.<created_at_ms>.<seq>"), the position of the last row returned.

constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (const char c : bytes) {
    buffer = (buffer << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kBase64Url[(buffer >> bits) & 0x3F]);
    }
  }
  if (bits > 0) out.push_back(kBase64Url[(buffer << (6 - bits)) & 0x3F]);
  return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (const char c : text) {
    const char* found = std::find(kBase64Url, kBase64Url + 64, c);
    if (found == kBase64Url + 64) return std::nullopt;
    buffer = (buffer << 6) | static_cast<std::uint32_t>(found - kBase64Url);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xFF));
    }
  }
  return out;
}

struct Position {
  std::int64_t created_at_ms = 0;
  std::int64_t seq = 0;
};

std::string EncodeCursor(const Position& position) {
  return Base64UrlEncode("1." + std::to_string(position.created_at_ms) + "." +
                         std::to_string(position.seq));
}

bool ParseInt64(std::string_view text, std::int64_t& value) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc{} && end == text.data() + text.size();
}

std::optional<Position> DecodeCursor(std::string_view cursor) {
  if (cursor.size() > 64) return std::nullopt;
  const auto text = Base64UrlDecode(cursor);
  if (!text || !text->starts_with("1.")) return std::nullopt;
  const std::string_view body = std::string_view(*text).substr(2);
  const std::size_t dot = body.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  Position position;
  if (!ParseInt64(body.substr(0, dot), position.created_at_ms) ||
      !ParseInt64(body.substr(dot + 1), position.seq) || position.seq < 0) {
    return std::nullopt;
  }
  // Only the exact encoding is accepted, so a cursor has one spelling.
  if (EncodeCursor(position) != cursor) return std::nullopt;
  return position;
}

LedgerResult<CallPage> ListPage(sqlite3* db, const ListQuery& query) {
  std::optional<Position> after;
  if (!query.cursor.empty()) {
    after = DecodeCursor(query.cursor);
    if (!after) return LedgerErrc::kInvalidCursor;
  }
  const std::size_t limit = std::clamp<std::size_t>(query.limit, 1, ListQuery::kMaxLimit);
  std::string sql = "SELECT " + std::string(kColumns) + " FROM calls WHERE 1";
  if (query.status) sql += " AND status = ?1";
  if (query.to_number) sql += " AND to_number = ?2";
  if (query.since_ms) sql += " AND created_at_ms >= ?3";
  if (query.until_ms) sql += " AND created_at_ms < ?4";
  if (after) sql += " AND (created_at_ms < ?5 OR (created_at_ms = ?5 AND seq < ?6))";
  sql += " ORDER BY created_at_ms DESC, seq DESC LIMIT ?7";
  Statement stmt(db, sql);
  if (query.status) stmt.Bind(1, ToString(*query.status));
  if (query.to_number) stmt.Bind(2, std::string_view(*query.to_number));
  if (query.since_ms) stmt.Bind(3, *query.since_ms);
  if (query.until_ms) stmt.Bind(4, *query.until_ms);
  if (after) {
    stmt.Bind(5, after->created_at_ms);
    stmt.Bind(6, after->seq);
  }
  stmt.Bind(7, static_cast<std::int64_t>(limit + 1));  // one more tells whether there are more
  CallPage page;
  Position last;
  int rc = SQLITE_ROW;
  while ((rc = stmt.Step()) == SQLITE_ROW) {
    if (page.calls.size() == limit) {
      page.has_more = true;
      break;
    }
    Row row = ReadRow(stmt);
    last = {row.record.created_at_ms, row.seq};
    page.calls.push_back(std::move(row.record));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return StorageError("list", stmt.error());
  if (page.has_more) page.next_cursor = EncodeCursor(last);
  return page;
}

// Runs `fn(db)` on the database thread and hands its result to `done` there; kBusy on the
// calling thread when the database refuses the task.
template <class T, class Fn>
void Run(store::Database& database, std::string_view operation, LedgerCallback<T> done, Fn fn) {
  auto callback = std::make_shared<LedgerCallback<T>>(std::move(done));
  const bool posted = database.Post([callback, operation, fn = std::move(fn)](sqlite3* db) mutable {
    LedgerResult<T> result = LedgerErrc::kStorage;
    try {
      result = fn(db);
    } catch (const std::exception& e) {
      result = StorageError(operation, e.what());
    }
    (*callback)(std::move(result));
  });
  if (!posted) (*callback)(LedgerErrc::kBusy);
}

// Whether a conversation is one of the ledger's calls. Most post-call events are for
// conversations callgate did not dial (a web widget, an inbound call): those are answered from
// the index, without a write transaction.
LedgerResult<bool> IsCall(sqlite3* db, std::string_view conversation_id) {
  Statement known(db, "SELECT 1 FROM calls WHERE conversation_id = ?1");
  known.Bind(1, conversation_id);
  const int rc = known.Step();
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return LedgerResult<bool>(boost::system::in_place_error, StorageError("read", known.error()));
}

// Applies `update` to the call that owns its conversation (found by IsCall).
LedgerResult<UpdateOutcome> ApplyToCall(sqlite3* db, const core::Clock& clock,
                                        ConversationUpdate& update) {
  if (update.complete) {
    const auto complete = std::move(update.complete);
    complete(update);
  }
  bool changed = false;
  auto record = Modify(
      db, "conversation_id", update.conversation_id,
      [&](CallRecord& r) { return RecordConversationUpdate(r, update, UnixMillis(clock)); },
      &changed);
  if (!record) return record.error();
  return UpdateOutcome{std::move(*record), changed};
}

}  // namespace

SqliteCallLedger::SqliteCallLedger(store::Database& database, core::Clock& clock)
    : database_(database), clock_(clock) {}

void SqliteCallLedger::Insert(NewCall call, LedgerCallback<CallRecord> done) {
  Run<CallRecord>(
      database_, "insert", std::move(done),
      [&clock = clock_, call = std::move(call)](sqlite3* db) -> LedgerResult<CallRecord> {
        CallRecord r;
        r.call_id = core::NewId("call");
        r.created_at_ms = UnixMillis(clock);
        r.updated_at_ms = r.created_at_ms;
        r.to_number = call.to_number;
        r.from_number = call.from_number;
        r.agent_phone_number_id = call.agent_phone_number_id;
        r.agent_id = call.agent_id;
        r.prompt = call.prompt;
        r.options = call.options;
        r.status = CallStatus::kQueued;
        r.source = UpdateSource::kApi;
        Statement stmt(db,
                       "INSERT INTO calls (call_id, created_at_ms, updated_at_ms, to_number, "
                       "from_number, agent_phone_number_id, agent_id, prompt, options, status, "
                       "source) VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
        stmt.Bind(1, std::string_view(r.call_id));
        stmt.Bind(2, r.created_at_ms);
        stmt.Bind(3, std::string_view(r.to_number));
        stmt.Bind(4, std::string_view(r.from_number));
        stmt.Bind(5, std::string_view(r.agent_phone_number_id));
        stmt.Bind(6, std::string_view(r.agent_id));
        stmt.Bind(7, std::string_view(r.prompt));
        stmt.Bind(8, std::string_view(boost::json::serialize(r.options)));
        stmt.Bind(9, ToString(r.status));
        stmt.Bind(10, ToString(r.source));
        if (stmt.Step() != SQLITE_DONE) return StorageError("insert", stmt.error());
        return r;
      });
}

void SqliteCallLedger::MarkInitiated(std::string call_id, UpstreamAccepted answer,
                                     LedgerCallback<CallRecord> done) {
  Run<CallRecord>(
      database_, "mark initiated", std::move(done),
      [&clock = clock_, call_id = std::move(call_id), answer = std::move(answer)](sqlite3* db) {
        return Modify(db, "call_id", call_id, [&](CallRecord& record) {
          return RecordUpstreamAccepted(record, answer, UnixMillis(clock));
        });
      });
}

void SqliteCallLedger::MarkFailed(std::string call_id, std::string reason, UpdateSource source,
                                  LedgerCallback<CallRecord> done) {
  Run<CallRecord>(database_, "mark failed", std::move(done),
                  [&clock = clock_, call_id = std::move(call_id), reason = std::move(reason),
                   source](sqlite3* db) {
                    return Modify(db, "call_id", call_id, [&](CallRecord& record) {
                      return RecordFailure(record, reason, source, UnixMillis(clock));
                    });
                  });
}

void SqliteCallLedger::ApplyConversationUpdate(ConversationUpdate update,
                                               LedgerCallback<UpdateOutcome> done) {
  // A batch of one: the same look-up and the same rules.
  std::vector<ConversationUpdate> one;
  one.push_back(std::move(update));
  ApplyConversationUpdates(
      std::move(one), [done = std::move(done)](std::size_t, LedgerResult<UpdateOutcome> result) {
        done(std::move(result));
      });
}

void SqliteCallLedger::ApplyConversationUpdates(std::vector<ConversationUpdate> updates,
                                                BatchCallback done) {
  auto callback = std::make_shared<BatchCallback>(std::move(done));
  const std::size_t count = updates.size();
  const bool posted = database_.Post(
      [&clock = clock_, callback, updates = std::move(updates)](sqlite3* db) mutable {
        std::vector<LedgerResult<bool>> known;
        known.reserve(updates.size());
        // One read transaction for every look-up: outside one, each SELECT would take and drop
        // the WAL's read lock (a few fcntl calls) on its own.
        const bool reading = store::Exec(db, "BEGIN");
        for (const ConversationUpdate& update : updates) {
          try {
            known.push_back(IsCall(db, update.conversation_id));
          } catch (const std::exception& e) {
            known.emplace_back(boost::system::in_place_error,
                               StorageError("conversation update", e.what()));
          }
        }
        if (reading) store::Exec(db, "COMMIT");
        for (std::size_t i = 0; i < updates.size(); ++i) {
          LedgerResult<UpdateOutcome> result = LedgerErrc::kStorage;
          try {
            if (!known[i]) {
              result = known[i].error();
            } else if (!*known[i]) {
              result = LedgerErrc::kNotFound;
            } else {
              result = ApplyToCall(db, clock, updates[i]);
            }
          } catch (const std::exception& e) {
            result = StorageError("conversation update", e.what());
          }
          (*callback)(i, std::move(result));
        }
      });
  if (!posted) {
    for (std::size_t i = 0; i < count; ++i)
      (*callback)(i, LedgerErrc::kBusy);
  }
}

void SqliteCallLedger::Get(std::string call_id, LedgerCallback<CallRecord> done) {
  Run<CallRecord>(database_, "get", std::move(done), [call_id = std::move(call_id)](sqlite3* db) {
    return Load(db, "call_id", call_id);
  });
}

void SqliteCallLedger::GetByConversation(std::string conversation_id,
                                         LedgerCallback<CallRecord> done) {
  Run<CallRecord>(database_, "get by conversation", std::move(done),
                  [conversation_id = std::move(conversation_id)](sqlite3* db) {
                    return Load(db, "conversation_id", conversation_id);
                  });
}

void SqliteCallLedger::List(ListQuery query, LedgerCallback<CallPage> done) {
  Run<CallPage>(database_, "list", std::move(done),
                [query = std::move(query)](sqlite3* db) { return ListPage(db, query); });
}

void SqliteCallLedger::ListUnfinished(std::size_t limit,
                                      LedgerCallback<std::vector<CallRecord>> done) {
  Run<std::vector<CallRecord>>(database_, "list unfinished", std::move(done),
                               [limit](sqlite3* db) -> LedgerResult<std::vector<CallRecord>> {
                                 Statement stmt(
                                     db, "SELECT " + std::string(kColumns) +
                                             " FROM calls WHERE status NOT IN ('done','failed')"
                                             " ORDER BY seq ASC LIMIT ?1");
                                 stmt.Bind(1, static_cast<std::int64_t>(limit));
                                 std::vector<CallRecord> calls;
                                 int rc = SQLITE_ROW;
                                 while ((rc = stmt.Step()) == SQLITE_ROW)
                                   calls.push_back(ReadRow(stmt).record);
                                 if (rc != SQLITE_DONE)
                                   return StorageError("list unfinished", stmt.error());
                                 return calls;
                               });
}

}  // namespace callgate::calls
