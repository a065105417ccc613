// Adapters between modules that do not know each other, built by the composition root:
//   - the webhook forwarder's Transport over the upstream HTTP client;
//   - a webhook EventSink that feeds the call ledger (post_call_transcription completes a call,
//     call_initiation_failure fails it).
#pragma once

#include "calls/ledger.hpp"
#include "config/config.hpp"
#include "conversation/engine.hpp"
#include "upstream/http_client.hpp"
#include "webhook/forwarder.hpp"
#include "webhook/inbox.hpp"

#include <chrono>
#include <functional>
#include <string>

namespace callgate::app {

// The session engine's options from the configuration (AUDIO_CHUNK_MS,
// AUDIO_ECHO_CANCELLATION, MAX_LIVE_SESSIONS); used by serve and talk.
conversation::EngineOptions EngineOptionsFrom(const config::Config& config);

class HttpTransport final : public webhook::Transport {
 public:
  HttpTransport(upstream::HttpClient& client, std::chrono::milliseconds timeout)
      : client_(client), timeout_(timeout) {}
  // `done(status, "")` for any HTTP answer; `done(0, reason)` when there was none.
  void Post(std::string url, std::vector<std::pair<std::string, std::string>> headers,
            std::string body, std::function<void(int status, std::string error)> done) override;

 private:
  upstream::HttpClient& client_;
  std::chrono::milliseconds timeout_;
};

// The call ledger, telling `ended` when polling (not a webhook) brought a call to done or
// failed: the reconciler then makes sure its post-call events are in the inbox.
class ReconcilingLedger final : public calls::CallLedger {
 public:
  ReconcilingLedger(calls::CallLedger& inner, std::function<void(std::string)> ended)
      : inner_(inner), ended_(std::move(ended)) {}
  void Insert(calls::NewCall call, calls::LedgerCallback<calls::CallRecord> done) override {
    inner_.Insert(std::move(call), std::move(done));
  }
  void MarkInitiated(std::string call_id, calls::UpstreamAccepted answer,
                     calls::LedgerCallback<calls::CallRecord> done) override {
    inner_.MarkInitiated(std::move(call_id), std::move(answer), std::move(done));
  }
  void MarkFailed(std::string call_id, std::string reason, calls::UpdateSource source,
                  calls::LedgerCallback<calls::CallRecord> done) override {
    inner_.MarkFailed(std::move(call_id), std::move(reason), source, std::move(done));
  }
  void ApplyConversationUpdate(calls::ConversationUpdate update,
                               calls::LedgerCallback<calls::UpdateOutcome> done) override;
  void ApplyConversationUpdates(std::vector<calls::ConversationUpdate> updates,
                                BatchCallback done) override;
  void Get(std::string call_id, calls::LedgerCallback<calls::CallRecord> done) override {
    inner_.Get(std::move(call_id), std::move(done));
  }
  void GetByConversation(std::string conversation_id,
                         calls::LedgerCallback<calls::CallRecord> done) override {
    inner_.GetByConversation(std::move(conversation_id), std::move(done));
  }
  void List(calls::ListQuery query, calls::LedgerCallback<calls::CallPage> done) override {
    inner_.List(std::move(query), std::move(done));
  }
  void ListUnfinished(std::size_t limit,
                      calls::LedgerCallback<std::vector<calls::CallRecord>> done) override {
    inner_.ListUnfinished(limit, std::move(done));
  }

 private:
  calls::CallLedger& inner_;
  std::function<void(std::string)> ended_;
};

class LedgerSink final : public webhook::EventSink {
 public:
  explicit LedgerSink(calls::CallLedger& ledger) : ledger_(ledger) {}
  void OnStored(const webhook::StoredEvent& event) override;
  // One ledger task for the whole batch.
  void OnStoredBatch(std::span<const webhook::StoredEvent> events) override;

 private:
  calls::CallLedger& ledger_;
};

}  // namespace callgate::app
