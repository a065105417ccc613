// The call ledger: every call placed through the gateway, remembered durably from before it is
// dialed until its conversation is over.
//
// CallLedger is the storage interface (SQLite now, see sqlite_ledger.hpp; PostgreSQL can follow
// for several gateway instances). Every operation is asynchronous: it returns at once and later
// calls its callback exactly once with a result. Callbacks run on the storage's own thread (the
// SQLite database thread), or on the calling thread when the operation is refused before it is
// queued (LedgerErrc::kBusy); they must not block for long and must not throw. An HTTP handler
// answers from the callback with http::Responder::Send, which is thread-safe.
//
// Errors (boost::system::error_code in LedgerErrc's category):
//   kNotFound        no call with that id / conversation id
//   kConflict        the conversation id is already attached to another call
//   kInvalidCursor   List() was given a cursor this ledger did not produce
//   kBusy            the storage queue is full or the storage is closing: try again later
//   kStorage         the database failed (logged with the SQLite reason on the storage thread)
//
// Update rules (all backends):
//   - a status only moves forward (queued < initiated < in-progress < processing < done|failed);
//     done and failed are final and never replace each other;
//   - an update that carries an older status than the stored one is stale: its transcript,
//     analysis and duration are ignored too;
//   - once a call is final, later updates only fill what is still missing (transcript,
//     analysis, duration), they never overwrite.
#pragma once

#include "calls/call_record.hpp"
#include "core/clock.hpp"

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace callgate::calls {

enum class LedgerErrc {
  kNotFound = 1,
  kConflict,
  kInvalidCursor,
  kBusy,
  kStorage,
};

const boost::system::error_category& LedgerCategory();
boost::system::error_code make_error_code(LedgerErrc e);  // NOLINT(readability-identifier-naming)

template <class T>
using LedgerResult = boost::system::result<T>;
template <class T>
using LedgerCallback = std::function<void(LedgerResult<T>)>;

// What the outbound-call handler knows before dialing. The ledger adds the id, the times, the
// status (kQueued) and the source (kApi).
struct NewCall {
  std::string to_number;
  std::string from_number;            // may be empty
  std::string agent_phone_number_id;  // may be empty (e.g. not resolved yet)
  std::string agent_id;
  std::string prompt;
  boost::json::object options;  // the request's optional fields, stored as given
};

// The upstream's answer to the outbound-call POST.
struct UpstreamAccepted {
  std::optional<std::string> conversation_id;
  std::optional<std::string> call_sid;
  std::optional<std::string> sip_call_id;
  // When the handler resolved the phone number only now (ELEVENLABS_FROM_NUMBER): recorded if
  // non-empty.
  std::string agent_phone_number_id;
};

// A conversation's state as the upstream reported it (polling or a webhook).
struct ConversationUpdate {
  std::string conversation_id;
  CallStatus status = CallStatus::kInitiated;
  std::optional<boost::json::value> transcript;
  std::optional<boost::json::value> analysis;
  std::optional<std::int64_t> duration_secs;
  std::optional<std::string> failure_reason;  // recorded when the call becomes kFailed
  UpdateSource source = UpdateSource::kPoll;
  // Optional: sets the fields above (but conversation_id and source) when, and only when, the
  // conversation turns out to be a call in the ledger, on the ledger's thread. A webhook sink
  // uses it so that the many events for conversations callgate did not dial cost no copy of
  // their transcript.
  std::function<void(ConversationUpdate&)> complete;
};

struct UpdateOutcome {
  CallRecord record;     // as stored after the update
  bool changed = false;  // false when the update brought nothing new (or was stale)
};

// GET /api/calls: newest first (by creation time), filters combined with AND.
struct ListQuery {
  static constexpr std::size_t kDefaultLimit = 30;
  static constexpr std::size_t kMaxLimit = 100;

  std::optional<CallStatus> status;
  std::optional<std::string> to_number;
  std::optional<std::int64_t> since_ms;  // created_at_ms >= since_ms
  std::optional<std::int64_t> until_ms;  // created_at_ms <  until_ms
  std::string cursor;                    // empty = the first page; else a next_cursor from List()
  std::size_t limit = kDefaultLimit;     // clamped to 1..kMaxLimit
};

struct CallPage {
  std::vector<CallRecord> calls;
  bool has_more = false;
  std::optional<std::string> next_cursor;  // set when has_more; opaque, URL-safe
};

class CallLedger {
 public:
  virtual ~CallLedger() = default;

  // Stores a new call with status kQueued and a fresh call id; answers the stored record.
  // Called before dialing, so that every call placed is remembered even if the process dies.
  virtual void Insert(NewCall call, LedgerCallback<CallRecord> done) = 0;

  // The upstream accepted the call: records the conversation id and call SID / SIP call id and
  // moves the status to kInitiated (unless it already moved further). kConflict when the
  // conversation id belongs to another call.
  virtual void MarkInitiated(std::string call_id, UpstreamAccepted answer,
                             LedgerCallback<CallRecord> done) = 0;

  // The call failed (the upstream refused it, or its outcome cannot be known). Moves the status
  // to kFailed with `reason` unless the call is already final (then answers it unchanged).
  virtual void MarkFailed(std::string call_id, std::string reason, UpdateSource source,
                          LedgerCallback<CallRecord> done) = 0;

  // Applies a conversation's state to the call that owns it, under the update rules above.
  // kNotFound when no call has that conversation id.
  virtual void ApplyConversationUpdate(ConversationUpdate update,
                                       LedgerCallback<UpdateOutcome> done) = 0;

  // Several updates at once (a committed batch of webhook events), each applied as by
  // ApplyConversationUpdate; `done(i, result)` is called once per update, in order. A backend
  // may find which conversations are calls in one read (most are not: a web widget, an inbound
  // call). The default applies them one by one.
  using BatchCallback = std::function<void(std::size_t index, LedgerResult<UpdateOutcome>)>;
  virtual void ApplyConversationUpdates(std::vector<ConversationUpdate> updates,
                                        BatchCallback done);

  virtual void Get(std::string call_id, LedgerCallback<CallRecord> done) = 0;
  virtual void GetByConversation(std::string conversation_id, LedgerCallback<CallRecord> done) = 0;

  virtual void List(ListQuery query, LedgerCallback<CallPage> done) = 0;

  // Calls that are not final, oldest first, at most `limit` (for the background refresher
  // after a restart).
  virtual void ListUnfinished(std::size_t limit, LedgerCallback<std::vector<CallRecord>> done) = 0;
};

// The update rules as pure functions, shared by every backend. Each changes `record` in place
// and returns true when it changed something (it then sets updated_at_ms = now_ms and source).
// The upstream accepted the call: ids recorded, status at least kInitiated (source kApi).
bool RecordUpstreamAccepted(CallRecord& record, const UpstreamAccepted& answer,
                            std::int64_t now_ms);
// kFailed with `reason`, unless the call is already final.
bool RecordFailure(CallRecord& record, std::string_view reason, UpdateSource source,
                   std::int64_t now_ms);
// A conversation update under the rules in this header's opening comment.
bool RecordConversationUpdate(CallRecord& record, const ConversationUpdate& update,
                              std::int64_t now_ms);

// The clock's time in unix milliseconds.
std::int64_t UnixMillis(const core::Clock& clock);

}  // namespace callgate::calls

template <>
struct boost::system::is_error_code_enum<callgate::calls::LedgerErrc> : std::true_type {};
