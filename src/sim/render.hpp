// JSON renderings of the simulator's model in the real API's response shapes
// (elevenlabs-api.md §2, §3.1, §3.2). Pure; thread-safe.
#pragma once

#include "sim/lifecycle.hpp"
#include "sim/options.hpp"

#include <boost/json/object.hpp>

namespace callgate::sim {

// GET /v1/convai/conversations/{id}. Every value is made in `storage` (the route passes a
// monotonic arena: the document is a few hundred small values, serialized once and dropped).
boost::json::object ConversationJson(const ConversationRecord& record,
                                     const ConversationSnapshot& snapshot,
                                     const boost::json::storage_ptr& storage = {});

// One item of GET /v1/convai/conversations. `call_successful` there is required:
// "success"/"failure" once analysed, "unknown" before.
boost::json::object ConversationSummaryJson(const ConversationRecord& record,
                                            const ConversationSnapshot& snapshot);
std::string_view SummaryCallSuccessful(const ConversationSnapshot& snapshot);

// One item of GET /v1/convai/phone-numbers. `assigned_agent` may be null.
boost::json::object PhoneNumberJson(const PhoneNumberConfig& number,
                                    const AgentConfig* assigned_agent);

}  // namespace callgate::sim
