// The call ledger in the gateway's SQLite file (store::Database: WAL, synchronous=FULL), so a
// call is on disk before its callback reports it stored. The schema is migration 100 of
// calls::Migrations(); the database must have been opened with it.
//
// Every operation runs on the database thread (store::Database::Post) and answers there; when
// the database's queue is full or it is closing, the callback gets LedgerErrc::kBusy on the
// calling thread. Thread-safe: any thread may call any operation.
//
// Lifetime: queued operations use the database and the clock, not the ledger object, so the
// ledger may be destroyed at any time; the database and the clock must outlive the operations
// already queued (close the database before destroying the clock).
#pragma once

#include "calls/ledger.hpp"
#include "core/clock.hpp"
#include "store/database.hpp"

namespace callgate::calls {

class SqliteCallLedger final : public CallLedger {
 public:
  SqliteCallLedger(store::Database& database, core::Clock& clock);

  void Insert(NewCall call, LedgerCallback<CallRecord> done) override;
  void MarkInitiated(std::string call_id, UpstreamAccepted answer,
                     LedgerCallback<CallRecord> done) override;
  void MarkFailed(std::string call_id, std::string reason, UpdateSource source,
                  LedgerCallback<CallRecord> done) override;
  void ApplyConversationUpdate(ConversationUpdate update,
                               LedgerCallback<UpdateOutcome> done) override;
  // One database task; the calls are looked up in one read transaction.
  void ApplyConversationUpdates(std::vector<ConversationUpdate> updates,
                                BatchCallback done) override;
  void Get(std::string call_id, LedgerCallback<CallRecord> done) override;
  void GetByConversation(std::string conversation_id, LedgerCallback<CallRecord> done) override;
  void List(ListQuery query, LedgerCallback<CallPage> done) override;
  void ListUnfinished(std::size_t limit, LedgerCallback<std::vector<CallRecord>> done) override;

 private:
  store::Database& database_;
  core::Clock& clock_;
};

}  // namespace callgate::calls
