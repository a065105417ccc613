// The simulator's post-call webhooks, sent the way ElevenLabs sends them (elevenlabs-api.md §7
// and the workspace webhooks page, docs/simulator.md):
//   * post_call_transcription when a conversation ends (data = the GET-conversation shape);
//   * post_call_audio after it when enabled (data = {agent_id, conversation_id, full_audio}, the
//     recording as base64 MP3), sent with Transfer-Encoding: chunked;
//   * call_initiation_failure for a phone call that was never answered (busy, no answer,
//     failed), with failure_reason and the provider's metadata (field names unconfirmed).
// Each POST carries `ElevenLabs-Signature: t=<unix>,v0=<hex HMAC-SHA256 of "t.body">` when a
// secret is set. The timestamp is wall-clock time (not the simulator's scaled clock), since the
// receiver checks it against its own.
//
// Delivery: once, no retries, by default ("each webhook event is dispatched only once"). With
// retries enabled, a post_call_transcription that fails with 5xx, 429, 408 or a connection error
// is retried on the documented schedule: 30 s, 2 min, 8 min, 30 min after the previous attempt
// (5 attempts in all) plus up to 10% jitter, divided by the simulator's time scale. A webhook
// with 10 consecutive failures and no success in the last 7 days (or ever) is disabled until
// re-enabled through the control API, as the real service does.
//
// Faults (flag --webhook-fault or POST /_sim/webhook-faults): the next N events are sent with a
// wrong signature, a stale timestamp (31 minutes old), no signature, or withheld (not sent at
// all, for reconciliation tests).
//
// Control API: GET /_sim/webhooks (configuration without the secret, state, deliveries),
// POST /_sim/webhooks/config (url, secret, events, retries, enabled), DELETE /_sim/webhooks
// (clears the delivery log), POST|GET|DELETE /_sim/webhook-faults, and
// POST /_sim/conversations/{id}/webhook {"type": ...} to send one now (202).
#pragma once

#include "core/clock.hpp"
#include "core/scheduler.hpp"
#include "http/router.hpp"
#include "sim/simulator.hpp"
#include "upstream/http_client.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace callgate::sim {

struct WebhookOptions {
  std::string url;     // empty = no webhooks until configured through the control API
  std::string secret;  // HMAC secret; empty = unsigned requests
  bool transcript = true;
  bool audio = false;
  bool initiation_failure = true;
  bool retries = false;
  std::chrono::milliseconds poll_interval{100};  // how often ended conversations are collected
  std::chrono::milliseconds timeout{10'000};     // per delivery attempt
  std::size_t max_log_entries = 1'000;
  std::size_t max_pending_retries = 100;  // per webhook, as documented
};

enum class WebhookFaultMode { kBadSignature, kStaleTimestamp, kUnsigned, kWithhold };
std::optional<WebhookFaultMode> ParseWebhookFaultMode(std::string_view text);
std::string_view WebhookFaultModeName(WebhookFaultMode mode);

// "t=<t>,v0=<lower-case hex HMAC-SHA256(secret, "<t>." + body)>".
std::string SignWebhook(std::string_view secret, std::int64_t timestamp, std::string_view body);

// The documented delays before attempts 2..5.
const std::vector<std::chrono::seconds>& WebhookRetrySchedule();

// Event bodies (pure).
boost::json::object TranscriptionEvent(const Simulator::EndedConversation& ended,
                                       std::int64_t event_timestamp);
boost::json::object AudioEvent(const Simulator::EndedConversation& ended,
                               std::int64_t event_timestamp, std::string_view mp3);
boost::json::object InitiationFailureEvent(const Simulator::EndedConversation& ended,
                                           std::int64_t event_timestamp);

class WebhookSender {
 public:
  // `wall_clock` stamps signatures and events. `jitter` returns a value in [0, 1) (random by
  // default). Construct after, and destroy before, the simulator and the client.
  WebhookSender(WebhookOptions options, Simulator& simulator, upstream::HttpClient& client,
                core::Scheduler& scheduler, core::Clock& wall_clock,
                std::function<double()> jitter = {});
  ~WebhookSender();
  WebhookSender(const WebhookSender&) = delete;
  WebhookSender& operator=(const WebhookSender&) = delete;

  // Starts collecting ended conversations every poll_interval. Stop() ends it; callbacks that
  // arrive afterwards are ignored. The destructor stops.
  void Start();
  void Stop();

  void AddRoutes(http::Router& router);
  // Where webhooks go from now on (as POST /_sim/webhooks/config does).
  void SetUrl(std::string url);
  void AddFault(WebhookFaultMode mode, int count, std::string conversation_id = {});

 private:
  struct Event {
    std::string id;
    std::string type;
    std::string conversation_id;
    std::string body;
    bool chunked = false;
    int attempt = 0;
  };
  struct Delivery {
    std::string event_id, type, conversation_id, outcome, error, fault;
    int attempt = 0, status = 0;
    std::int64_t sent_at_ms = 0;
    std::size_t body_bytes = 0;
  };
  struct Guard;

  void Poll();
  void Dispatch(const Simulator::EndedConversation& ended);  // the configured events
  void Dispatch(const Simulator::EndedConversation& ended, bool transcript, bool audio,
                bool failure);
  void Send(std::shared_ptr<Event> event);
  void OnResult(std::shared_ptr<Event> event, Delivery delivery, bool retryable);
  void Log(Delivery delivery);
  std::optional<WebhookFaultMode> TakeFault(const std::string& conversation_id);
  std::int64_t NowSeconds() const;
  boost::json::object StateJson();

  WebhookOptions options_;
  Simulator& simulator_;
  upstream::HttpClient& client_;
  core::Scheduler& scheduler_;
  core::Clock& wall_clock_;
  std::function<double()> jitter_;
  std::shared_ptr<Guard> guard_;

  std::mutex mutex_;  // everything below
  struct Fault {
    WebhookFaultMode mode;
    int remaining;
    std::string conversation_id;
  };
  std::vector<Fault> faults_;
  std::deque<Delivery> log_;
  std::uint64_t events_sent_ = 0;
  int consecutive_failures_ = 0;
  std::optional<std::int64_t> last_success_;
  bool enabled_ = true;
  std::size_t pending_retries_ = 0;
};

}  // namespace callgate::sim
