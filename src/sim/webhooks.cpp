#include "sim/webhooks.hpp"

#include "core/base64.hpp"
#include "core/ids.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <spdlog/spdlog.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <random>

namespace callgate::sim {

namespace {

constexpr const char* kTranscription = "post_call_transcription";
constexpr const char* kAudio = "post_call_audio";
constexpr const char* kInitiationFailure = "call_initiation_failure";
constexpr int kMaxAttempts = 5;
constexpr int kDisableAfterFailures = 10;
constexpr std::int64_t kSevenDays = 7 * 24 * 3600;

http::Response BadRequest(std::string message) {
  return http::Response::Json(400, {{"detail", std::move(message)}});
}

double RandomUnit() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
}

}  // namespace

std::optional<WebhookFaultMode> ParseWebhookFaultMode(std::string_view text) {
  if (text == "bad_signature") return WebhookFaultMode::kBadSignature;
  if (text == "stale_timestamp") return WebhookFaultMode::kStaleTimestamp;
  if (text == "unsigned") return WebhookFaultMode::kUnsigned;
  if (text == "withhold") return WebhookFaultMode::kWithhold;
  return std::nullopt;
}

std::string_view WebhookFaultModeName(WebhookFaultMode mode) {
  switch (mode) {
    case WebhookFaultMode::kBadSignature:
      return "bad_signature";
    case WebhookFaultMode::kStaleTimestamp:
      return "stale_timestamp";
    case WebhookFaultMode::kUnsigned:
      return "unsigned";
    case WebhookFaultMode::kWithhold:
      return "withhold";
  }
  return "unknown";
}

std::string SignWebhook(std::string_view secret, std::int64_t timestamp, std::string_view body) {
  const std::string t = std::to_string(timestamp);
  std::string message = t + ".";
  message.append(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[mac[i] >> 4];
    hex += kHex[mac[i] & 0xF];
  }
  return "t=" + t + ",v0=" + hex;
}

const std::vector<std::chrono::seconds>& WebhookRetrySchedule() {
  using std::chrono::minutes;
  using std::chrono::seconds;
  static const std::vector<seconds> kSchedule{seconds(30), minutes(2), minutes(8), minutes(30)};
  return kSchedule;
}

boost::json::object TranscriptionEvent(const Simulator::EndedConversation& ended,
                                       std::int64_t event_timestamp) {
  return {
      {"type", kTranscription}, {"event_timestamp", event_timestamp}, {"data", ended.conversation}};
}

boost::json::object AudioEvent(const Simulator::EndedConversation& ended,
                               std::int64_t event_timestamp, std::string_view mp3) {
  return {{"type", kAudio},
          {"event_timestamp", event_timestamp},
          {"data",
           {{"agent_id", ended.agent_id},
            {"conversation_id", ended.conversation_id},
            {"full_audio", core::Base64Encode(mp3)}}}};
}

boost::json::object InitiationFailureEvent(const Simulator::EndedConversation& ended,
                                           std::int64_t event_timestamp) {
  // Field names from third-party handlers (elevenlabs-api.md §7.1: unconfirmed).
  std::string reason = "unknown";
  if (ended.termination_reason == "busy" || ended.termination_reason == "no-answer") {
    reason = ended.termination_reason;
  }
  boost::json::object metadata;
  if (ended.provider == Provider::kTwilio) {
    const std::string status = reason == "unknown" ? "failed" : reason;
    metadata = {{"type", "twilio"},
                {"body",
                 {{"CallSid", ended.call_sid},
                  {"CallStatus", status},
                  {"To", ended.external_number},
                  {"From", ended.agent_number},
                  {"Direction", "outbound-api"}}}};
  } else {
    const int sip_status = reason == "busy" ? 486 : reason == "no-answer" ? 480 : 500;
    metadata = {{"type", "sip"},
                {"body",
                 {{"sip_status_code", sip_status},
                  {"sip_call_id", ended.call_sid},
                  {"to_number", ended.external_number},
                  {"from_number", ended.agent_number}}}};
  }
  return {{"type", kInitiationFailure},
          {"event_timestamp", event_timestamp},
          {"data",
           {{"agent_id", ended.agent_id},
            {"conversation_id", ended.conversation_id},
            {"failure_reason", reason},
            {"metadata", std::move(metadata)}}}};
}

// Callbacks (scheduler tasks, HTTP completions, renderer results) may arrive after Stop(): they
// take the guard's mutex and return when the sender is gone, so Stop() waits for a running one.
struct WebhookSender::Guard {
  std::mutex mutex;
  bool alive = true;
};

WebhookSender::WebhookSender(WebhookOptions options, Simulator& simulator,
                             upstream::HttpClient& client, core::Scheduler& scheduler,
                             core::Clock& wall_clock, std::function<double()> jitter)
    : options_(std::move(options)),
      simulator_(simulator),
      client_(client),
      scheduler_(scheduler),
      wall_clock_(wall_clock),
      jitter_(jitter ? std::move(jitter) : std::function<double()>(RandomUnit)),
      guard_(std::make_shared<Guard>()) {}

WebhookSender::~WebhookSender() {
  Stop();
}

void WebhookSender::Start() {
  auto guard = guard_;
  scheduler_.After(options_.poll_interval, [this, guard] {
    std::lock_guard lock(guard->mutex);
    if (!guard->alive) return;
    Poll();
  });
}

void WebhookSender::Stop() {
  std::lock_guard lock(guard_->mutex);
  guard_->alive = false;
}

// Under the guard.
void WebhookSender::Poll() {
  for (const auto& ended : simulator_.TakeNewlyEnded())
    Dispatch(ended);
  auto guard = guard_;
  scheduler_.After(options_.poll_interval, [this, guard] {
    std::lock_guard lock(guard->mutex);
    if (!guard->alive) return;
    Poll();
  });
}

std::int64_t WebhookSender::NowSeconds() const {
  return std::chrono::duration_cast<std::chrono::seconds>(wall_clock_.Now().time_since_epoch())
      .count();
}

// Under the guard.
void WebhookSender::Dispatch(const Simulator::EndedConversation& ended) {
  bool transcript = false, audio = false, failure = false;
  {
    std::lock_guard lock(mutex_);
    if (options_.url.empty()) return;
    transcript = options_.transcript;
    audio = options_.audio;
    failure = options_.initiation_failure;
  }
  Dispatch(ended, transcript, audio, failure);
}

// Under the guard.
void WebhookSender::Dispatch(const Simulator::EndedConversation& ended, bool transcript, bool audio,
                             bool failure) {
  const bool never_connected = ended.status == ConversationStatus::kFailed && !ended.answered &&
                               ended.channel == Channel::kPhone;
  if (never_connected) {
    if (failure) {
      Send(std::make_shared<Event>(
          Event{core::NewId("whevt"), kInitiationFailure, ended.conversation_id,
                boost::json::serialize(InitiationFailureEvent(ended, NowSeconds()))}));
    }
    return;
  }
  if (transcript) {
    Send(std::make_shared<Event>(
        Event{core::NewId("whevt"), kTranscription, ended.conversation_id,
              boost::json::serialize(TranscriptionEvent(ended, NowSeconds()))}));
  }
  if (audio && ended.has_audio) {
    auto guard = guard_;
    auto copy = std::make_shared<Simulator::EndedConversation>(ended);
    const bool queued = simulator_.RenderRecording(
        ended.conversation_id, ended.transcript,
        [this, guard, copy](std::shared_ptr<const std::string> mp3, const std::string& error) {
          std::lock_guard lock(guard->mutex);
          if (!guard->alive) return;
          if (!mp3) {
            Log({.type = kAudio,
                 .conversation_id = copy->conversation_id,
                 .outcome = "not_sent",
                 .error = "recording failed: " + error});
            return;
          }
          auto event = std::make_shared<Event>(
              Event{core::NewId("whevt"), kAudio, copy->conversation_id,
                    boost::json::serialize(AudioEvent(*copy, NowSeconds(), *mp3))});
          event->chunked = true;
          Send(std::move(event));
        });
    if (!queued) {
      Log({.type = kAudio,
           .conversation_id = ended.conversation_id,
           .outcome = "not_sent",
           .error = "the recording renderer is busy"});
    }
  }
}

std::optional<WebhookFaultMode> WebhookSender::TakeFault(const std::string& conversation_id) {
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (!it->conversation_id.empty() && it->conversation_id != conversation_id) continue;
    const WebhookFaultMode mode = it->mode;
    if (--it->remaining <= 0) faults_.erase(it);
    return mode;
  }
  return std::nullopt;
}

// Under the guard.
void WebhookSender::Send(std::shared_ptr<Event> event) {
  ++event->attempt;
  upstream::HttpRequest request;
  Delivery delivery{.event_id = event->id,
                    .type = event->type,
                    .conversation_id = event->conversation_id,
                    .attempt = event->attempt,
                    .sent_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                      wall_clock_.Now().time_since_epoch())
                                      .count(),
                    .body_bytes = event->body.size()};
  {
    std::lock_guard lock(mutex_);
    if (!enabled_) {
      delivery.outcome = "not_sent";
      delivery.error = "the webhook is disabled after repeated failures";
      log_.push_back(std::move(delivery));
      while (log_.size() > options_.max_log_entries)
        log_.pop_front();
      return;
    }
    const auto fault = TakeFault(event->conversation_id);
    if (fault) delivery.fault = WebhookFaultModeName(*fault);
    if (fault == WebhookFaultMode::kWithhold) {
      delivery.outcome = "withheld";
      log_.push_back(std::move(delivery));
      while (log_.size() > options_.max_log_entries)
        log_.pop_front();
      return;
    }
    std::int64_t t = NowSeconds();
    if (fault == WebhookFaultMode::kStaleTimestamp) t -= 31 * 60;
    if (fault != WebhookFaultMode::kUnsigned &&
        (!options_.secret.empty() || fault == WebhookFaultMode::kBadSignature)) {
      const std::string key = fault == WebhookFaultMode::kBadSignature
                                  ? "not-the-secret-" + options_.secret
                                  : options_.secret;
      request.headers.Set("ElevenLabs-Signature", SignWebhook(key, t, event->body));
    }
    request.url = options_.url;
    request.timeout = options_.timeout;
    ++events_sent_;
  }
  request.method = "POST";
  request.headers.Set("Content-Type", "application/json");
  request.body = event->body;
  request.chunked = event->chunked;
  auto guard = guard_;
  client_.Send(std::move(request), [this, guard, event, delivery](upstream::HttpOutcome outcome) {
    std::lock_guard lock(guard->mutex);
    if (!guard->alive) return;
    Delivery done = delivery;
    bool retryable = false;
    if (const auto* response = std::get_if<upstream::HttpResponse>(&outcome)) {
      done.status = response->status;
      done.outcome = response->status == 200 ? "delivered" : "failed";
      retryable = response->status >= 500 || response->status == 429 || response->status == 408;
      if (response->status != 200)
        done.error = "the receiver answered " + std::to_string(response->status);
    } else {
      const auto& failure = std::get<upstream::HttpFailure>(outcome);
      done.outcome = "failed";
      done.error = std::string(upstream::ToString(failure.kind)) + ": " + failure.message;
      retryable = true;
    }
    OnResult(event, std::move(done), retryable);
  });
}

// Under the guard.
void WebhookSender::OnResult(std::shared_ptr<Event> event, Delivery delivery, bool retryable) {
  const bool delivered = delivery.outcome == "delivered";
  bool retry = false;
  std::chrono::milliseconds delay{0};
  {
    std::lock_guard lock(mutex_);
    if (delivered) {
      consecutive_failures_ = 0;
      last_success_ = NowSeconds();
    } else {
      ++consecutive_failures_;
      const bool stale_success = !last_success_ || NowSeconds() - *last_success_ > kSevenDays;
      if (consecutive_failures_ >= kDisableAfterFailures && stale_success && enabled_) {
        enabled_ = false;
        spdlog::warn("simulator: webhook {} disabled after {} consecutive failures", options_.url,
                     consecutive_failures_);
      }
      retry = retryable && options_.retries && event->type == kTranscription &&
              event->attempt < kMaxAttempts && enabled_ &&
              pending_retries_ < options_.max_pending_retries;
      if (retry) {
        const auto base = WebhookRetrySchedule()[static_cast<std::size_t>(event->attempt - 1)];
        const double scale = std::max(simulator_.time_scale(), 1e-6);
        const double millis =
            1000.0 * static_cast<double>(base.count()) * (1.0 + 0.1 * jitter_()) / scale;
        delay = std::chrono::milliseconds(static_cast<std::int64_t>(millis));
        ++pending_retries_;
        delivery.outcome = "retry_scheduled";
      }
    }
    log_.push_back(std::move(delivery));
    while (log_.size() > options_.max_log_entries)
      log_.pop_front();
  }
  if (!retry) return;
  auto guard = guard_;
  scheduler_.After(delay, [this, guard, event] {
    std::lock_guard lock(guard->mutex);
    if (!guard->alive) return;
    {
      std::lock_guard state_lock(mutex_);
      --pending_retries_;
    }
    Send(event);
  });
}

void WebhookSender::Log(Delivery delivery) {
  std::lock_guard lock(mutex_);
  log_.push_back(std::move(delivery));
  while (log_.size() > options_.max_log_entries)
    log_.pop_front();
}

void WebhookSender::SetUrl(std::string url) {
  std::lock_guard lock(mutex_);
  options_.url = std::move(url);
}

void WebhookSender::AddFault(WebhookFaultMode mode, int count, std::string conversation_id) {
  std::lock_guard lock(mutex_);
  faults_.push_back({mode, std::max(count, 1), std::move(conversation_id)});
}

boost::json::object WebhookSender::StateJson() {
  std::lock_guard lock(mutex_);
  boost::json::array events;
  if (options_.transcript) events.emplace_back("transcript");
  if (options_.audio) events.emplace_back("audio");
  if (options_.initiation_failure) events.emplace_back("call_initiation_failure");
  boost::json::array deliveries;
  for (const auto& d : log_) {
    boost::json::object entry{{"event_id", d.event_id},
                              {"type", d.type},
                              {"conversation_id", d.conversation_id},
                              {"attempt", d.attempt},
                              {"outcome", d.outcome},
                              {"status", d.status},
                              {"sent_at_unix_ms", d.sent_at_ms},
                              {"body_bytes", d.body_bytes}};
    if (!d.error.empty()) entry["error"] = d.error;
    if (!d.fault.empty()) entry["fault"] = d.fault;
    deliveries.push_back(std::move(entry));
  }
  boost::json::object state{{"url", options_.url},
                            {"signed", !options_.secret.empty()},
                            {"events", std::move(events)},
                            {"retries", options_.retries},
                            {"enabled", enabled_},
                            {"consecutive_failures", consecutive_failures_},
                            {"attempts_sent", events_sent_},
                            {"pending_retries", pending_retries_},
                            {"deliveries", std::move(deliveries)}};
  return state;
}

void WebhookSender::AddRoutes(http::Router& router) {
  const http::RouteOptions raw{.body = http::BodyKind::kRaw};
  auto parse = [](const http::Request& request, boost::json::object& out) -> std::string {
    if (request.body.empty()) return "";
    boost::system::error_code ec;
    auto value = boost::json::parse(request.body, ec);
    if (ec || !value.is_object()) return "the body must be a JSON object";
    out = std::move(value.as_object());
    return "";
  };
  router.Add("GET", "/_sim/webhooks", [this](http::Request, http::Responder responder) {
    responder.Send(http::Response::Json(200, StateJson()));
  });
  router.Add("DELETE", "/_sim/webhooks", [this](http::Request, http::Responder responder) {
    {
      std::lock_guard lock(mutex_);
      log_.clear();
    }
    responder.Send(http::Response::Json(200, StateJson()));
  });
  router.Add(
      "POST", "/_sim/webhooks/config",
      [this, parse](http::Request request, http::Responder responder) {
        boost::json::object body;
        if (auto error = parse(request, body); !error.empty()) {
          responder.Send(BadRequest(error));
          return;
        }
        {
          std::lock_guard lock(mutex_);
          WebhookOptions next = options_;
          bool enable = false;
          for (const auto& [key, value] : body) {
            if (key == "url" && value.is_string()) {
              next.url = value.as_string();
            } else if (key == "secret" && value.is_string()) {
              next.secret = value.as_string();
            } else if (key == "retries" && value.is_bool()) {
              next.retries = value.as_bool();
            } else if (key == "enabled" && value.is_bool()) {
              enable = value.as_bool();
              if (!enable) {
                responder.Send(BadRequest("enabled can only be set to true (re-enable)"));
                return;
              }
            } else if (key == "events" && value.is_array()) {
              next.transcript = next.audio = next.initiation_failure = false;
              for (const auto& item : value.as_array()) {
                const std::string name =
                    item.is_string() ? std::string(item.as_string()) : std::string();
                if (name == "transcript") {
                  next.transcript = true;
                } else if (name == "audio") {
                  next.audio = true;
                } else if (name == "call_initiation_failure") {
                  next.initiation_failure = true;
                } else {
                  responder.Send(
                      BadRequest("events must name transcript, audio or call_initiation_failure"));
                  return;
                }
              }
            } else {
              responder.Send(BadRequest("unknown or mistyped field '" + std::string(key) + "'"));
              return;
            }
          }
          options_ = std::move(next);
          if (enable) {
            enabled_ = true;
            consecutive_failures_ = 0;
          }
        }
        responder.Send(http::Response::Json(200, StateJson()));
      },
      raw);
  auto list_faults = [this] {
    std::lock_guard lock(mutex_);
    boost::json::array faults;
    for (const auto& fault : faults_) {
      faults.push_back({{"mode", WebhookFaultModeName(fault.mode)},
                        {"remaining", fault.remaining},
                        {"conversation_id", fault.conversation_id}});
    }
    return boost::json::object{{"faults", std::move(faults)}};
  };
  router.Add(
      "POST", "/_sim/webhook-faults",
      [this, parse, list_faults](http::Request request, http::Responder responder) {
        boost::json::object body;
        if (auto error = parse(request, body); !error.empty()) {
          responder.Send(BadRequest(error));
          return;
        }
        const auto* mode_value = body.if_contains("mode");
        const auto mode = mode_value && mode_value->is_string()
                              ? ParseWebhookFaultMode(mode_value->as_string())
                              : std::nullopt;
        if (!mode) {
          responder.Send(
              BadRequest("mode must be bad_signature, stale_timestamp, unsigned or withhold"));
          return;
        }
        std::int64_t count = 1;
        if (const auto* c = body.if_contains("count")) {
          if (!c->is_int64() || c->as_int64() < 1 || c->as_int64() > 1'000'000) {
            responder.Send(BadRequest("count must be an integer from 1 to 1000000"));
            return;
          }
          count = c->as_int64();
        }
        std::string conversation_id;
        if (const auto* c = body.if_contains("conversation_id"); c && c->is_string()) {
          conversation_id = c->as_string();
        }
        AddFault(*mode, static_cast<int>(count), std::move(conversation_id));
        responder.Send(http::Response::Json(201, list_faults()));
      },
      raw);
  router.Add("GET", "/_sim/webhook-faults",
             [list_faults](http::Request, http::Responder responder) {
               responder.Send(http::Response::Json(200, list_faults()));
             });
  router.Add("DELETE", "/_sim/webhook-faults",
             [this, list_faults](http::Request, http::Responder responder) {
               {
                 std::lock_guard lock(mutex_);
                 faults_.clear();
               }
               responder.Send(http::Response::Json(200, list_faults()));
             });
  router.Add(
      "POST", "/_sim/conversations/{conversation_id}/webhook",
      [this, parse](http::Request request, http::Responder responder) {
        boost::json::object body;
        if (auto error = parse(request, body); !error.empty()) {
          responder.Send(BadRequest(error));
          return;
        }
        std::string type;
        if (const auto* t = body.if_contains("type")) {
          if (!t->is_string() || (t->as_string() != kTranscription && t->as_string() != kAudio &&
                                  t->as_string() != kInitiationFailure)) {
            responder.Send(
                BadRequest("type must be post_call_transcription, post_call_audio or "
                           "call_initiation_failure"));
            return;
          }
          type = t->as_string();
        }
        {
          std::lock_guard lock(mutex_);
          if (options_.url.empty()) {
            responder.Send(http::Response::Json(
                409, {{"detail", "no webhook URL is configured (POST /_sim/webhooks/config)"}}));
            return;
          }
        }
        bool known = false;
        const std::string id(request.PathParam("conversation_id"));
        auto ended = simulator_.FindEnded(id, known);
        if (!known) {
          responder.Send(http::Response::Json(404, {{"detail", "no conversation '" + id + "'"}}));
          return;
        }
        if (!ended) {
          responder.Send(http::Response::Json(
              409, {{"detail", "conversation '" + id + "' has not ended yet"}}));
          return;
        }
        std::lock_guard guard_lock(guard_->mutex);
        if (!guard_->alive) {
          responder.Send(http::Response::Json(503, {{"detail", "the simulator is stopping"}}));
          return;
        }
        if (type.empty()) {
          Dispatch(*ended);
        } else if (type == kAudio && !ended->has_audio) {
          responder.Send(
              http::Response::Json(409, {{"detail", "conversation '" + id + "' has no audio"}}));
          return;
        } else if (type == kAudio) {
          Dispatch(*ended, false, true, false);
        } else {
          // The one event asked for, even when it is not among the configured events.
          const std::int64_t now = NowSeconds();
          Send(std::make_shared<Event>(
              Event{core::NewId("whevt"), type, id,
                    boost::json::serialize(type == kTranscription
                                               ? TranscriptionEvent(*ended, now)
                                               : InitiationFailureEvent(*ended, now))}));
        }
        responder.Send(http::Response::Json(202, {{"status", "sending"}, {"conversation_id", id}}));
      },
      raw);
}

}  // namespace callgate::sim
