// The simulator's state: agents and phone numbers (fixed at start), callee behaviours,
// conversations and signed-URL signatures. Pure (no I/O, time passed in) and not thread-safe:
// Simulator serialises access with its mutex. Agents and phone numbers never change after
// construction, so pointers to them stay valid for the state's life; conversation pointers stay
// valid until that conversation is deleted or evicted.
#pragma once

#include "core/clock.hpp"
#include "sim/lifecycle.hpp"
#include "sim/options.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace callgate::sim {

enum class SignatureCheck { kOk, kUnknown, kExpired, kUsed, kAgentMismatch };

struct ConversationFilter {
  std::optional<std::string> agent_id;
  std::optional<std::string> call_successful;          // success|failure|unknown
  std::optional<std::int64_t> call_start_before_unix;  // start_time < this
  std::optional<std::int64_t> call_start_after_unix;   // start_time > this
};

struct ConversationPage {
  std::vector<std::pair<const ConversationRecord*, ConversationSnapshot>> items;  // newest first
  bool has_more = false;
  std::optional<std::uint64_t> next_before_seq;  // set when has_more: continue below this seq
};

class SimState {
 public:
  // A signed URL's signature is accepted for this long after it was issued (inclusive).
  static constexpr std::chrono::minutes kSignatureLifetime{15};

  explicit SimState(const SimOptions& options);

  const std::vector<AgentConfig>& agents() const { return agents_; }
  const AgentConfig* FindAgent(std::string_view agent_id) const;
  const std::vector<PhoneNumberConfig>& phone_numbers() const { return phone_numbers_; }
  const PhoneNumberConfig* FindPhoneNumber(std::string_view phone_number_id) const;
  const Durations& durations() const { return durations_; }

  CalleeBehaviour Callee(std::string_view number) const;  // kAnswer unless configured
  void SetCallee(std::string number, CalleeBehaviour behaviour);
  const std::map<std::string, CalleeBehaviour, std::less<>>& callees() const { return callees_; }

  // Stores the conversation (assigning its seq); evicts the oldest beyond the bound.
  const ConversationRecord& AddConversation(ConversationRecord record);
  const ConversationRecord* FindConversation(std::string_view conversation_id) const;
  ConversationRecord* FindConversation(std::string_view conversation_id);
  bool DeleteConversation(std::string_view conversation_id);
  std::size_t conversation_count() const { return by_seq_.size(); }

  // Newest first; `before_seq` (from a cursor) continues a previous page.
  ConversationPage ListConversations(const ConversationFilter& filter,
                                     std::optional<std::uint64_t> before_seq, std::size_t page_size,
                                     core::SystemTime now) const;

  // A new single-use signature for `agent_id`, valid for kSignatureLifetime from `now`.
  std::string IssueSignature(std::string agent_id, core::SystemTime now);
  // kOk consumes it. A mismatched agent does not consume it; an unknown, used or expired one
  // stays as it is.
  SignatureCheck ConsumeSignature(std::string_view agent_id, std::string_view signature,
                                  core::SystemTime now);

 private:
  struct SignatureEntry {
    std::string agent_id;
    core::SystemTime issued;
    bool used = false;
  };
  void PruneSignatures(core::SystemTime now);

  std::vector<AgentConfig> agents_;
  std::vector<PhoneNumberConfig> phone_numbers_;
  std::map<std::string, CalleeBehaviour, std::less<>> callees_;
  Durations durations_;
  std::size_t max_conversations_;
  std::uint64_t next_seq_ = 1;
  std::map<std::uint64_t, ConversationRecord> by_seq_;
  std::unordered_map<std::string, std::uint64_t> by_id_;
  std::unordered_map<std::string, SignatureEntry> signatures_;
};

}  // namespace callgate::sim
