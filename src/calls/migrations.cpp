#include "calls/migrations.hpp"

namespace callgate::calls {
namespace {

// Append only: a released migration is never edited; a change is a new version (<= 199).
constexpr store::Migration kMigrations[] = {
    {100, "calls",
     "CREATE TABLE calls ("
     " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
     " call_id TEXT NOT NULL UNIQUE,"
     " created_at_ms INTEGER NOT NULL,"
     " updated_at_ms INTEGER NOT NULL,"
     " to_number TEXT NOT NULL,"
     " from_number TEXT NOT NULL DEFAULT '',"
     " agent_phone_number_id TEXT NOT NULL DEFAULT '',"
     " agent_id TEXT NOT NULL,"
     " prompt TEXT NOT NULL,"
     " options TEXT NOT NULL DEFAULT '{}',"
     " conversation_id TEXT UNIQUE,"
     " call_sid TEXT,"
     " sip_call_id TEXT,"
     " status TEXT NOT NULL CHECK (status IN"
     "  ('queued','initiated','in-progress','processing','done','failed')),"
     " failure_reason TEXT,"
     " transcript TEXT,"
     " analysis TEXT,"
     " duration_secs INTEGER,"
     " source TEXT NOT NULL);"
     "CREATE INDEX calls_by_created ON calls (created_at_ms DESC, seq DESC);"
     "CREATE INDEX calls_by_status ON calls (status, created_at_ms DESC, seq DESC);"
     "CREATE INDEX calls_by_to_number ON calls (to_number, created_at_ms DESC, seq DESC);"
     "CREATE INDEX calls_unfinished ON calls (seq) WHERE status NOT IN ('done','failed');"},
    {101, "idempotency_keys",
     "CREATE TABLE idempotency_keys ("
     " scope TEXT NOT NULL,"
     " key TEXT NOT NULL,"
     " fingerprint TEXT NOT NULL,"
     " state TEXT NOT NULL CHECK (state IN ('in_flight','completed')),"
     " response_status INTEGER,"
     " response_content_type TEXT,"
     " response_body BLOB,"
     " created_at_ms INTEGER NOT NULL,"
     " expires_at_ms INTEGER NOT NULL,"
     " completed_at_ms INTEGER,"
     " PRIMARY KEY (scope, key)) WITHOUT ROWID;"
     "CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at_ms);"},
};

}  // namespace

std::span<const store::Migration> Migrations() {
  return kMigrations;
}

}  // namespace callgate::calls
