#include "sim/state.hpp"

#include "sim/render.hpp"
#include "sim/tokens.hpp"

#include <algorithm>

namespace callgate::sim {
namespace {

// Signatures are kept this long past expiry so that late use reports kExpired, not kUnknown.
constexpr std::chrono::hours kSignatureRetention{1};
constexpr std::size_t kPruneSignaturesAbove = 10'000;

std::int64_t UnixSeconds(core::SystemTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

std::vector<AgentConfig> DefaultAgents() {
  return {
      {.agent_id = "agent_sim_default",
       .name = "Simulated Agent",
       .is_public = false,
       .first_message = "Hello! I'm calling about {{purpose}}."},
      {.agent_id = "agent_sim_public",
       .name = "Simulated Public Agent",
       .is_public = true,
       .first_message = "Hi! How can I help you today?"},
  };
}

std::vector<PhoneNumberConfig> DefaultPhoneNumbers() {
  return {
      {.phone_number_id = "phnum_sim_twilio",
       .phone_number = "+15550100000",
       .label = "Simulator Twilio line",
       .provider = "twilio",
       .assigned_agent_id = "agent_sim_default"},
      {.phone_number_id = "phnum_sim_sip",
       .phone_number = "+15550100001",
       .label = "Simulator SIP trunk",
       .provider = "sip_trunk",
       .livekit_stack = "standard"},
  };
}

SimState::SimState(const SimOptions& options)
    : agents_(options.agents.empty() ? DefaultAgents() : options.agents),
      phone_numbers_(options.phone_numbers.empty() ? DefaultPhoneNumbers() : options.phone_numbers),
      callees_(options.callees.begin(), options.callees.end()),
      durations_{.ring_secs = options.ring_secs,
                 .talk_secs = options.talk_secs,
                 .processing_secs = options.processing_secs},
      max_conversations_(std::max<std::size_t>(options.max_conversations, 1)) {}

const AgentConfig* SimState::FindAgent(std::string_view agent_id) const {
  for (const auto& agent : agents_) {
    if (agent.agent_id == agent_id) return &agent;
  }
  return nullptr;
}

const PhoneNumberConfig* SimState::FindPhoneNumber(std::string_view phone_number_id) const {
  for (const auto& number : phone_numbers_) {
    if (number.phone_number_id == phone_number_id) return &number;
  }
  return nullptr;
}

CalleeBehaviour SimState::Callee(std::string_view number) const {
  const auto it = callees_.find(number);
  return it == callees_.end() ? CalleeBehaviour::kAnswer : it->second;
}

void SimState::SetCallee(std::string number, CalleeBehaviour behaviour) {
  callees_[std::move(number)] = behaviour;
}

const ConversationRecord& SimState::AddConversation(ConversationRecord record) {
  while (by_seq_.size() >= max_conversations_) {
    by_id_.erase(by_seq_.begin()->second.conversation_id);
    by_seq_.erase(by_seq_.begin());
  }
  record.seq = next_seq_++;
  by_id_[record.conversation_id] = record.seq;
  auto [it, inserted] = by_seq_.emplace(record.seq, std::move(record));
  return it->second;
}

const ConversationRecord* SimState::FindConversation(std::string_view conversation_id) const {
  const auto it = by_id_.find(std::string(conversation_id));
  if (it == by_id_.end()) return nullptr;
  return &by_seq_.at(it->second);
}

ConversationRecord* SimState::FindConversation(std::string_view conversation_id) {
  const auto it = by_id_.find(std::string(conversation_id));
  if (it == by_id_.end()) return nullptr;
  return &by_seq_.at(it->second);
}

bool SimState::DeleteConversation(std::string_view conversation_id) {
  const auto it = by_id_.find(std::string(conversation_id));
  if (it == by_id_.end()) return false;
  by_seq_.erase(it->second);
  by_id_.erase(it);
  return true;
}

ConversationPage SimState::ListConversations(const ConversationFilter& filter,
                                             std::optional<std::uint64_t> before_seq,
                                             std::size_t page_size, core::SystemTime now) const {
  ConversationPage page;
  auto end = before_seq ? by_seq_.lower_bound(*before_seq) : by_seq_.end();
  for (auto it = std::make_reverse_iterator(end); it != by_seq_.rend(); ++it) {
    const ConversationRecord& record = it->second;
    if (filter.agent_id && record.agent_id != *filter.agent_id) continue;
    const std::int64_t start = UnixSeconds(record.created);
    if (filter.call_start_before_unix && !(start < *filter.call_start_before_unix)) continue;
    if (filter.call_start_after_unix && !(start > *filter.call_start_after_unix)) continue;
    ConversationSnapshot snapshot = Evaluate(record, now, durations_);
    if (filter.call_successful && SummaryCallSuccessful(snapshot) != *filter.call_successful) {
      continue;
    }
    if (page.items.size() == page_size) {
      page.has_more = true;
      page.next_before_seq = page.items.back().first->seq;
      break;
    }
    page.items.emplace_back(&record, std::move(snapshot));
  }
  return page;
}

std::string SimState::IssueSignature(std::string agent_id, core::SystemTime now) {
  if (signatures_.size() > kPruneSignaturesAbove) PruneSignatures(now);
  std::string signature = NewSignature();
  signatures_[signature] = {std::move(agent_id), now, false};
  return signature;
}

SignatureCheck SimState::ConsumeSignature(std::string_view agent_id, std::string_view signature,
                                          core::SystemTime now) {
  const auto it = signatures_.find(std::string(signature));
  if (it == signatures_.end()) return SignatureCheck::kUnknown;
  SignatureEntry& entry = it->second;
  if (entry.agent_id != agent_id) return SignatureCheck::kAgentMismatch;
  if (entry.used) return SignatureCheck::kUsed;
  if (now - entry.issued > kSignatureLifetime) return SignatureCheck::kExpired;
  entry.used = true;
  return SignatureCheck::kOk;
}

void SimState::PruneSignatures(core::SystemTime now) {
  std::erase_if(signatures_, [&](const auto& item) {
    return now - item.second.issued > kSignatureLifetime + kSignatureRetention;
  });
}

}  // namespace callgate::sim
