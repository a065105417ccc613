#include "calls/ledger.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace callgate::calls {
namespace {

// boost::system::error_category has a protected non-virtual destructor by design (categories
// are never deleted through a base pointer); g++'s -Wnon-virtual-dtor still flags the subclass.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class LedgerCategoryImpl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "callgate.calls.ledger"; }
  std::string message(int value) const override {
    switch (static_cast<LedgerErrc>(value)) {
      case LedgerErrc::kNotFound:
        return "no such call";
      case LedgerErrc::kConflict:
        return "the conversation id already belongs to another call";
      case LedgerErrc::kInvalidCursor:
        return "the cursor is not one this ledger produced";
      case LedgerErrc::kBusy:
        return "the call ledger is busy or closing";
      case LedgerErrc::kStorage:
        return "the call ledger's database failed";
    }
    return "unknown call ledger error";
  }
};
#pragma GCC diagnostic pop

int StatusRank(CallStatus status) {
  return status == CallStatus::kFailed ? static_cast<int>(CallStatus::kDone)
                                       : static_cast<int>(status);
}

// Sets `field` from `value` when the update may: always while the call is live (the newest
// state wins), only to fill a gap once it is final.
template <class T>
bool Merge(std::optional<T>& field, const std::optional<T>& value, bool was_final) {
  if (!value) return false;
  if (was_final && field) return false;
  if (field && *field == *value) return false;
  field = value;
  return true;
}

}  // namespace

const boost::system::error_category& LedgerCategory() {
  static const LedgerCategoryImpl category;
  return category;
}

boost::system::error_code make_error_code(LedgerErrc e) {
  return {static_cast<int>(e), LedgerCategory()};
}

std::int64_t UnixMillis(const core::Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.Now().time_since_epoch())
      .count();
}

bool RecordUpstreamAccepted(CallRecord& record, const UpstreamAccepted& answer,
                            std::int64_t now_ms) {
  bool changed = false;
  auto set = [&](std::optional<std::string>& field, const std::optional<std::string>& value) {
    if (value && field != value) {
      field = value;
      changed = true;
    }
  };
  set(record.conversation_id, answer.conversation_id);
  set(record.call_sid, answer.call_sid);
  set(record.sip_call_id, answer.sip_call_id);
  if (!answer.agent_phone_number_id.empty() &&
      record.agent_phone_number_id != answer.agent_phone_number_id) {
    record.agent_phone_number_id = answer.agent_phone_number_id;
    changed = true;
  }
  if (CanAdvance(record.status, CallStatus::kInitiated)) {
    record.status = CallStatus::kInitiated;
    changed = true;
  }
  if (changed) {
    record.updated_at_ms = now_ms;
    record.source = UpdateSource::kApi;
  }
  return changed;
}

bool RecordFailure(CallRecord& record, std::string_view reason, UpdateSource source,
                   std::int64_t now_ms) {
  if (IsFinal(record.status)) return false;
  record.status = CallStatus::kFailed;
  record.failure_reason = std::string(reason);
  record.updated_at_ms = now_ms;
  record.source = source;
  return true;
}

bool RecordConversationUpdate(CallRecord& record, const ConversationUpdate& update,
                              std::int64_t now_ms) {
  if (StatusRank(update.status) < StatusRank(record.status)) return false;  // stale
  const bool was_final = IsFinal(record.status);
  bool changed = false;
  if (CanAdvance(record.status, update.status)) {
    record.status = update.status;
    if (update.status == CallStatus::kFailed) {
      record.failure_reason = update.failure_reason.value_or("the conversation failed upstream");
    }
    changed = true;
  }
  changed = Merge(record.transcript, update.transcript, was_final) || changed;
  changed = Merge(record.analysis, update.analysis, was_final) || changed;
  changed = Merge(record.duration_secs, update.duration_secs, was_final) || changed;
  if (changed) {
    record.updated_at_ms = now_ms;
    record.source = update.source;
  }
  return changed;
}

void CallLedger::ApplyConversationUpdates(std::vector<ConversationUpdate> updates,
                                          BatchCallback done) {
  auto callback = std::make_shared<BatchCallback>(std::move(done));
  for (std::size_t i = 0; i < updates.size(); ++i) {
    ApplyConversationUpdate(
        std::move(updates[i]),
        [callback, i](LedgerResult<UpdateOutcome> result) { (*callback)(i, std::move(result)); });
  }
}

}  // namespace callgate::calls
