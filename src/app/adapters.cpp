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

namespace {

// What a stored event tells the call ledger; nullopt for events that say nothing about a call.
std::optional<calls::ConversationUpdate> LedgerUpdateFor(const webhook::StoredEvent& stored) {
  if (stored.conversation_id.empty() || !stored.event) return std::nullopt;
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
    return std::nullopt;
  }
  return update;
}

}  // namespace

void LedgerSink::OnStored(const webhook::StoredEvent& event) {
  OnStoredBatch(std::span<const webhook::StoredEvent>(&event, 1));
}

void LedgerSink::OnStoredBatch(std::span<const webhook::StoredEvent> events) {
  std::vector<calls::ConversationUpdate> updates;
  for (const webhook::StoredEvent& stored : events) {
    if (auto update = LedgerUpdateFor(stored)) updates.push_back(std::move(*update));
  }
  if (updates.empty()) return;
  // Only the ids, for the log: the updates themselves move into the ledger.
  std::vector<std::string> ids;
  ids.reserve(updates.size());
  for (const calls::ConversationUpdate& update : updates)
    ids.push_back(update.conversation_id);
  ledger_.ApplyConversationUpdates(
      std::move(updates),
      [ids = std::move(ids)](std::size_t i, calls::LedgerResult<calls::UpdateOutcome> result) {
        if (!result && result.error() != calls::make_error_code(calls::LedgerErrc::kNotFound)) {
          spdlog::error("webhook for conversation {} could not update the call ledger: {}", ids[i],
                        result.error().message());
        }
      });
}

void ReconcilingLedger::ApplyConversationUpdates(std::vector<calls::ConversationUpdate> updates,
                                                 BatchCallback done) {
  std::vector<bool> polled;
  polled.reserve(updates.size());
  for (const calls::ConversationUpdate& update : updates)
    polled.push_back(update.source == calls::UpdateSource::kPoll);
  inner_.ApplyConversationUpdates(
      std::move(updates), [this, polled = std::move(polled), done = std::move(done)](
                              std::size_t i, calls::LedgerResult<calls::UpdateOutcome> result) {
        if (polled[i] && result && result->changed && calls::IsFinal(result->record.status) &&
            result->record.conversation_id) {
          ended_(*result->record.conversation_id);
        }
        done(i, std::move(result));
      });
}

void ReconcilingLedger::ApplyConversationUpdate(calls::ConversationUpdate update,
                                                calls::LedgerCallback<calls::UpdateOutcome> done) {
  std::vector<calls::ConversationUpdate> one;  // a batch of one: the same "ended" rule
  one.push_back(std::move(update));
  ApplyConversationUpdates(
      std::move(one),
      [done = std::move(done)](std::size_t, calls::LedgerResult<calls::UpdateOutcome> r) {
        done(std::move(r));
      });
}

}  // namespace callgate::app
