// The simulator's configuration: which agents and phone numbers exist, how callees behave, the
// one accepted API key and the lifecycle durations. Plain values, filled by the composition root
// (app/) or by tests; Simulator copies them at construction.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace callgate::sim {

struct AgentConfig {
  std::string agent_id, name;
  bool is_public = false;  // public agents may open the WebSocket without a signed URL
  std::string first_message;
  std::string language = "en";
  std::string input_format = "pcm_16000", output_format = "pcm_16000";
  // Security setting "allow overrides": when false, conversation_config_override sent with an
  // outbound call is ignored (the REST call itself still succeeds; see lifecycle.hpp).
  bool allow_overrides = true;
};

struct PhoneNumberConfig {
  std::string phone_number_id, phone_number, label, provider /*twilio|sip_trunk*/;
  std::string assigned_agent_id;  // empty = none
  bool supports_inbound = true, supports_outbound = true;
  std::string livekit_stack = "standard";  // sip_trunk only: standard|static
};

// What the simulated far end does when an outbound call reaches it.
enum class CalleeBehaviour { kAnswer, kBusy, kNoAnswer, kFail };

struct SimOptions {
  std::string api_key;              // the only accepted xi-api-key; never logged or journaled
  double time_scale = 1.0;          // informational (GET /_sim/clock); the Clock does the scaling
  std::vector<AgentConfig> agents;  // empty = DefaultAgents()
  std::vector<PhoneNumberConfig> phone_numbers;    // empty = DefaultPhoneNumbers()
  std::map<std::string, CalleeBehaviour> callees;  // by E.164 number; others answer
  // Lifecycle durations in simulated seconds (see lifecycle.hpp).
  int ring_secs = 3, talk_secs = 20, processing_secs = 5;
  // Moves the injected clock forward for POST /_sim/clock/advance, e.g.
  // [&clock](auto s) { clock.Advance(s); } for a core::ScaledClock or core::ManualClock.
  // Empty = the route answers 409 (the clock cannot be moved).
  std::function<void(std::chrono::seconds)> advance_clock;
  // Bounds: the request journal and the conversation store drop their oldest entries beyond
  // these sizes.
  std::size_t max_journal_entries = 10'000;
  std::size_t max_conversations = 100'000;
};

// agent_sim_default (private, "Simulated Agent", first message with {{purpose}}) and
// agent_sim_public (public).
std::vector<AgentConfig> DefaultAgents();
// phnum_sim_twilio (+15550100000, twilio, assigned to agent_sim_default) and phnum_sim_sip
// (+15550100001, sip_trunk, livekit_stack "standard").
std::vector<PhoneNumberConfig> DefaultPhoneNumbers();

}  // namespace callgate::sim
