// Adapters between modules that do not know each other, built by the composition root:
//   - the webhook forwarder's Transport over the upstream HTTP client;
//   - a webhook EventSink that feeds the call ledger (post_call_transcription completes a call,
//     call_initiation_failure fails it).
#pragma once

#include "calls/ledger.hpp"
#include "upstream/http_client.hpp"
#include "webhook/forwarder.hpp"
#include "webhook/inbox.hpp"

#include <chrono>

namespace callgate::app {

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

class LedgerSink final : public webhook::EventSink {
 public:
  explicit LedgerSink(calls::CallLedger& ledger) : ledger_(ledger) {}
  void OnStored(const webhook::StoredEvent& event) override;

 private:
  calls::CallLedger& ledger_;
};

}  // namespace callgate::app
