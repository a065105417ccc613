#include "webhook/reconciler.hpp"

#include "core/base64.hpp"
#include "webhook/event.hpp"

#include <spdlog/spdlog.h>
#include <boost/json/serialize.hpp>

#include <mutex>

namespace callgate::webhook {
// Callbacks may arrive after Stop() or from inside another callback (an inbox refusal is
// answered inline): they take the recursive mutex and return when the reconciler is gone.
struct Reconciler::State {
  std::recursive_mutex mutex;
  bool alive = true;
  ReconcilerStats stats;
};

Reconciler::Reconciler(Inbox& inbox, upstream::ElevenLabsApi& api, core::Clock& clock,
                       core::Scheduler& scheduler, ReconcilerOptions options)
    : inbox_(inbox),
      api_(api),
      clock_(clock),
      scheduler_(scheduler),
      options_(options),
      state_(std::make_shared<State>()) {}

Reconciler::~Reconciler() {
  Stop();
}

void Reconciler::Stop() {
  std::lock_guard lock(state_->mutex);
  state_->alive = false;
}

ReconcilerStats Reconciler::stats() const {
  std::lock_guard lock(state_->mutex);
  return state_->stats;
}

void Reconciler::Ended(std::string conversation_id) {
  {
    std::lock_guard lock(state_->mutex);
    if (!state_->alive) return;
    ++state_->stats.scheduled;
  }
  auto state = state_;
  scheduler_.After(options_.delay, [this, state, id = std::move(conversation_id)]() mutable {
    std::lock_guard lock(state->mutex);
    if (!state->alive) return;
    Check(std::move(id), 1);
  });
}

void Reconciler::Retry(std::string conversation_id, int attempt) {
  if (attempt >= options_.max_attempts) {
    ++state_->stats.failed;
    spdlog::error("reconciliation of conversation {} gave up after {} attempts", conversation_id,
                  attempt);
    return;
  }
  auto state = state_;
  scheduler_.After(options_.delay,
                   [this, state, id = std::move(conversation_id), attempt]() mutable {
                     std::lock_guard lock(state->mutex);
                     if (!state->alive) return;
                     Check(std::move(id), attempt + 1);
                   });
}

// Under the state's mutex.
void Reconciler::Check(std::string conversation_id, int attempt) {
  auto state = state_;
  const bool queued = inbox_.List(
      {.type = std::string(kPostCallTranscription), .conversation_id = conversation_id}, "", 1,
      [this, state, id = conversation_id, attempt](std::optional<EventPage> page,
                                                   std::string error) mutable {
        std::lock_guard lock(state->mutex);
        if (!state->alive) return;
        if (!page) {
          spdlog::warn("reconciliation of {}: the inbox could not be read: {}", id, error);
          Retry(std::move(id), attempt);
          return;
        }
        if (!page->events.empty()) {
          ++state->stats.already_delivered;
          return;
        }
        Fetch(std::move(id), attempt);
      });
  if (!queued) Retry(std::move(conversation_id), attempt);
}

// Under the state's mutex.
void Reconciler::Fetch(std::string conversation_id, int attempt) {
  auto state = state_;
  api_.GetConversation(conversation_id, [this, state, id = conversation_id,
                                         attempt](upstream::ApiResult<boost::json::object>
                                                      result) mutable {
    std::lock_guard lock(state->mutex);
    if (!state->alive) return;
    if (auto* error = std::get_if<upstream::ApiError>(&result)) {
      spdlog::warn("reconciliation of {}: the conversation could not be fetched: {}", id,
                   error->message);
      Retry(std::move(id), attempt);
      return;
    }
    const auto& conversation = std::get<boost::json::object>(result);
    const std::int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch()).count();
    boost::json::object payload{
        {"type", kPostCallTranscription}, {"event_timestamp", now}, {"data", conversation}};
    std::string raw = boost::json::serialize(payload);
    auto event = ParseEvent(std::move(raw));
    if (!event) {
      spdlog::error("reconciliation of {}: the fetched conversation is not a valid event: {}", id,
                    event.error().message);
      ++state->stats.failed;
      return;
    }
    const auto* has_audio = conversation.if_contains("has_audio");
    const bool audio = options_.fetch_audio && has_audio != nullptr && has_audio->is_bool() &&
                       has_audio->as_bool();
    const std::string agent_id = event->agent_id;
    inbox_.Submit(
        {.event = std::move(*event), .source = Source::kReconciliation, .verification = "api"},
        [this, state, id, audio, agent_id](SubmitResult stored) {
          std::lock_guard submit_lock(state->mutex);
          if (!state->alive) return;
          if (stored.status == SubmitStatus::kStored) {
            ++state->stats.reconciled;
            spdlog::info(
                "reconciled conversation {}: its post-call webhook never "
                "arrived, fetched from the API",
                id);
          }
          if (!audio || stored.status != SubmitStatus::kStored) return;
          api_.GetConversationAudio(id, [this, state, id,
                                         agent_id](upstream::ApiResult<upstream::Audio> mp3) {
            std::lock_guard audio_lock(state->mutex);
            if (!state->alive) return;
            if (auto* error = std::get_if<upstream::ApiError>(&mp3)) {
              spdlog::warn("reconciliation of {}: no recording: {}", id, error->message);
              return;
            }
            const std::int64_t at =
                std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch())
                    .count();
            boost::json::object audio_payload{
                {"type", kPostCallAudio},
                {"event_timestamp", at},
                {"data",
                 {{"agent_id", agent_id},
                  {"conversation_id", id},
                  {"full_audio", core::Base64Encode(std::get<upstream::Audio>(mp3).bytes)}}}};
            std::string audio_raw = boost::json::serialize(audio_payload);
            auto audio_event = ParseEvent(std::move(audio_raw));
            if (!audio_event) return;
            inbox_.Submit({.event = std::move(*audio_event),
                           .source = Source::kReconciliation,
                           .verification = "api"},
                          [state](SubmitResult audio_stored) {
                            std::lock_guard inner(state->mutex);
                            if (state->alive && audio_stored.status == SubmitStatus::kStored) {
                              ++state->stats.audio_reconciled;
                            }
                          });
          });
        });
  });
}

}  // namespace callgate::webhook
