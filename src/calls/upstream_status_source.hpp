// The refresher's ConversationStatusSource over the ElevenLabs API: GET
// /v1/convai/conversations/{id}, its status, transcript, analysis and duration. A 404 is
// kNotFound; every other failure is kTransient (the refresher retries with backoff).
#pragma once

#include "calls/refresher.hpp"
#include "upstream/elevenlabs.hpp"

namespace callgate::calls {

// The ledger's view of an upstream conversation object (pure; exposed for tests and for the
// webhook inbox, whose post_call_transcription carries the same shape).
ConversationStatus StatusFromConversation(const boost::json::object& conversation);

class UpstreamStatusSource final : public ConversationStatusSource {
 public:
  explicit UpstreamStatusSource(upstream::ElevenLabsApi& api) : api_(api) {}
  void Fetch(std::string conversation_id, std::function<void(FetchResult)> done) override;

 private:
  upstream::ElevenLabsApi& api_;
};

}  // namespace callgate::calls
