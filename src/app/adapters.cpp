#include "app/adapters.hpp"

#include "calls/upstream_status_source.hpp"

#include <spdlog/spdlog.h>

namespace callgate::app {

conversation::EngineOptions EngineOptionsFrom(const config::Config& config) {
  conversation::EngineOptions options;
  options.session.audio.chunk = config.audio_chunk;
  options.session.audio.prebuffer = config.audio_jitter_prebuffer;
  options.session.audio.max_buffer = config.audio_jitter_max;
  options.echo = config.audio_echo_cancellation == "on" ? audio::backends::EchoCancellationMode::kOn
                 : config.audio_echo_cancellation == "off"
                     ? audio::backends::EchoCancellationMode::kOff
                     : audio::backends::EchoCancellationMode::kAuto;
  options.max_sessions = config.max_live_sessions;
  return options;
}

void HttpTransport::Post(std::string url, std::vector<std::pair<std::string, std::string>> headers,
                         std::string body,
                         std::function<void(int status, std::string error)> done) {
  upstream::HttpRequest request;
  request.method = "POST";
  request.url = std::move(url);
  for (auto& [name, value] : headers)
    request.headers.Add(std::move(name), std::move(value));
  request.body = std::move(body);
  request.timeout = timeout_;
  client_.Send(std::move(request), [done = std::move(done)](upstream::HttpOutcome outcome) {
    if (const auto* response = std::get_if<upstream::HttpResponse>(&outcome)) {
      done(response->status, "");
      return;
    }
    const auto& failure = std::get<upstream::HttpFailure>(outcome);
    done(0, std::string(upstream::ToString(failure.kind)) + ": " + failure.message);
  });
}

void LedgerSink::OnStored(const webhook::StoredEvent& stored) {
  if (stored.conversation_id.empty() || !stored.event) return;
  const webhook::Event& event = *stored.event;
  calls::ConversationUpdate update;
  update.conversation_id = stored.conversation_id;
  update.source = stored.source == webhook::Source::kReconciliation ? calls::UpdateSource::kRecovery
                                                                    : calls::UpdateSource::kWebhook;
  if (event.kind == webhook::EventType::kPostCallTranscription) {
    // Filled only if the conversation is one of our calls: no transcript copy for the others.
    update.complete = [held = stored.event](calls::ConversationUpdate& u) {
      calls::ConversationStatus status = calls::StatusFromConversation(webhook::DataOf(*held));
      u.status = status.status;
      u.transcript = std::move(status.transcript);
      u.analysis = std::move(status.analysis);
      u.duration_secs = status.duration_secs;
      u.failure_reason = std::move(status.failure_reason);
    };
  } else if (event.kind == webhook::EventType::kCallInitiationFailure && event.failure) {
    update.status = calls::CallStatus::kFailed;
    update.failure_reason = "call initiation failed: " + event.failure->failure_reason;
  } else {
    return;
  }
  const std::string id = stored.conversation_id;
  ledger_.ApplyConversationUpdate(
      std::move(update), [id](calls::LedgerResult<calls::UpdateOutcome> result) {
        if (!result && result.error() != calls::make_error_code(calls::LedgerErrc::kNotFound)) {
          spdlog::error("webhook for conversation {} could not update the call ledger: {}", id,
                        result.error().message());
        }
      });
}

void ReconcilingLedger::ApplyConversationUpdate(calls::ConversationUpdate update,
                                                calls::LedgerCallback<calls::UpdateOutcome> done) {
  const bool polled = update.source == calls::UpdateSource::kPoll;
  inner_.ApplyConversationUpdate(
      std::move(update),
      [this, polled, done = std::move(done)](calls::LedgerResult<calls::UpdateOutcome> result) {
        if (polled && result && result->changed && calls::IsFinal(result->record.status) &&
            result->record.conversation_id) {
          ended_(*result->record.conversation_id);
        }
        done(std::move(result));
      });
}

}  // namespace callgate::app
