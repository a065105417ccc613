#include "conversation/session.hpp"

#include "core/prefetch.hpp"

#include <algorithm>
#include <array>
#include <span>
#include <stdexcept>

namespace callgate::conversation {
namespace {

// Audio passes through this on its way between an endpoint and the pipeline within one Tick():
// one per thread (the ticks of a thousand sessions on a thread reuse what is in its cache)
// rather than per session.
constexpr std::size_t kScratchSamples = 2048;
std::span<std::int16_t> Scratch() {
  thread_local std::array<std::int16_t, kScratchSamples> scratch;
  return scratch;
}
constexpr std::string_view kStopReason = "User ended conversation";

std::string NoToolMessage(std::string_view tool_name) {
  return "Client tool '" + std::string(tool_name) +
         "' is not available: this callgate session has no client tools configured.";
}

}  // namespace

SessionMachine::SessionMachine(const core::Clock& clock, SessionMachineOptions options,
                               SessionIdentity identity)
    : clock_(clock),
      options_(std::move(options)),
      identity_(std::move(identity)),
      start_time_(clock.Now()) {}

void SessionMachine::Begin() {
  status_ = Status::kStarting;
  start_time_ = clock_.Now();
}

void SessionMachine::Connecting() {
  if (finished_ || end_) return;
  status_ = Status::kConnecting;
}

Actions SessionMachine::Opened(const InitiationData& initiation) {
  Actions actions;
  if (finished_) return actions;
  socket_open_ = true;
  ever_opened_ = true;
  if (end_) {  // ended while connecting (Stop() raced the handshake): close at once
    close_requested_ = true;
    actions.close = CloseRequest{1000, stop_requested_ ? std::string(kStopReason) : end_->code};
    return actions;
  }
  status_ = Status::kConnecting;
  SendFrame(InitiationMessage(initiation), actions);
  return actions;
}

Actions SessionMachine::Receive(std::string_view text) {
  Actions actions;
  if (finished_) return actions;
  ParsedEvent parsed = ParseServerMessage(text, options_.max_message_bytes);
  if (!parsed.event) {
    ++malformed_;
    return actions;
  }
  if (end_ && !draining_) return actions;  // closing: nothing more to act on
  std::visit([&](auto&& event) { Handle(std::move(event), actions); }, std::move(*parsed.event));
  return actions;
}

Actions SessionMachine::Closed(const CloseInfo& info) {
  Actions actions;
  const bool was_open = socket_open_;
  socket_open_ = false;
  if (finished_) return actions;
  if (info.opened || was_open) close_code_ = info.code;
  if (end_) {
    // We were ending for a reason of our own (Stop, an endpoint, a drain that finished).
    Finish(actions);
    return actions;
  }
  if (draining_) return actions;  // end_call: keep playing out; Tick() ends the session
  EndReason reason = ReasonForClose(info);
  if (reason.code == "server_closed" && audio_) {
    BeginDrain(std::move(reason), actions);
    return actions;
  }
  end_ = std::move(reason);
  Finish(actions);
  return actions;
}

EndReason SessionMachine::ReasonForClose(const CloseInfo& info) const {
  EndReason reason;
  if (!ever_opened_ && !info.opened) {
    reason.code = "connect_failed";
    reason.detail = info.error.empty() ? "the WebSocket did not open" : info.error;
    return reason;
  }
  reason.close_code = info.code;
  if (info.clean && info.code == 1000 &&
      (!server_error_ || server_error_->code == 1000 || server_error_->code == 0)) {
    reason.code = "server_closed";
    if (server_error_) {
      reason.detail =
          server_error_->error_type.empty()
              ? server_error_->message
              : server_error_->error_type +
                    (server_error_->message.empty() ? "" : ": " + server_error_->message);
    } else {
      reason.detail = info.reason;
    }
    return reason;
  }
  if (info.clean || server_error_) {
    reason.code = "upstream_error";
    const int code =
        info.clean ? info.code : (server_error_->code != 0 ? server_error_->code : 1006);
    reason.detail = std::to_string(code);
    if (server_error_) {
      const std::string type =
          server_error_->error_type.empty() ? info.reason : server_error_->error_type;
      if (!type.empty()) reason.detail += " " + type;
      if (!server_error_->message.empty()) reason.detail += ": " + server_error_->message;
    } else if (!info.reason.empty()) {
      reason.detail += " " + info.reason;
    }
    return reason;
  }
  reason.code = "connection_lost";
  reason.detail = info.error.empty() ? "the connection closed without a close frame" : info.error;
  return reason;
}

// --- events ---------------------------------------------------------------------------------

void SessionMachine::Handle(InitiationMetadata&& event, Actions& actions) {
  if (metadata_received_) {
    ++ignored_;
    return;
  }
  const auto input = audio::ParseFormat(event.user_input_audio_format);
  const auto output = audio::ParseFormat(event.agent_output_audio_format);
  conversation_id_ = Clip(std::move(event.conversation_id));
  metadata_received_ = true;
  if (!input || !output) {
    EndWith({"protocol_error",
             "unsupported audio format '" +
                 Clip(!input ? event.user_input_audio_format : event.agent_output_audio_format) +
                 "' in conversation_initiation_metadata",
             std::nullopt},
            actions);
    return;
  }
  input_format_ = *input;
  output_format_ = *output;
  status_ = Status::kActive;
  actions.open_audio = true;
}

void SessionMachine::Handle(AudioChunk&& event, Actions& actions) {
  (void)actions;
  ++audio_events_;
  received_bytes_ += event.audio.size();
  const std::int64_t id = event.event_id            ? *event.event_id
                          : last_audio_event_id_    ? *last_audio_event_id_
                          : last_agent_response_id_ ? *last_agent_response_id_
                                                    : 0;
  if (!last_audio_event_id_ || id > *last_audio_event_id_) last_audio_event_id_ = id;
  if (audio_) {
    if (audio_->PushAgentAudio(event.audio, id)) {
      ++buffered_audio_events_;
    } else {
      ++stale_audio_events_;
    }
    return;
  }
  if (last_interrupt_id_ && id <= *last_interrupt_id_) {
    ++stale_audio_events_;
    return;
  }
  pending_audio_bytes_ += event.audio.size();
  pending_audio_.push_back({std::move(event.audio), id});
  while (pending_audio_bytes_ > options_.max_pending_audio_bytes && !pending_audio_.empty()) {
    pending_audio_bytes_ -= pending_audio_.front().bytes.size();
    pending_audio_.pop_front();
  }
}

void SessionMachine::Handle(Interruption&& event, Actions& actions) {
  (void)actions;
  ++interruptions_;
  std::optional<std::int64_t> id = event.event_id;
  if (!id) id = last_audio_event_id_ ? last_audio_event_id_ : last_agent_response_id_;
  if (!id) return;  // nothing was said yet: nothing to interrupt
  if (!last_interrupt_id_ || *id > *last_interrupt_id_) last_interrupt_id_ = *id;
  if (audio_) {
    audio_->Interrupt(*id);
  } else {
    std::erase_if(pending_audio_, [&](const PendingAudio& pending) {
      if (pending.event_id > *id) return false;
      pending_audio_bytes_ -= pending.bytes.size();
      ++stale_audio_events_;
      return true;
    });
  }
  for (auto it = transcript_.rbegin(); it != transcript_.rend(); ++it) {
    if (it->role != Turn::Role::kAgent) continue;
    if (!it->event_id || *it->event_id <= *id) it->interrupted = true;
    break;
  }
}

void SessionMachine::Handle(Ping&& event, Actions& actions) {
  if (event.ping_ms) last_ping_ms_ = event.ping_ms;
  if (!can_send()) return;
  SendFrame(PongMessage(event.event_id), actions);
  ++pings_answered_;
}

void SessionMachine::Handle(AgentResponse&& event, Actions& actions) {
  if (event.event_id) last_agent_response_id_ = event.event_id;
  tentative_agent_text_.clear();
  AddTurn(
      Turn{Turn::Role::kAgent, Clip(std::move(event.text)), clock_.Now(), event.event_id, false},
      actions);
}

void SessionMachine::Handle(AgentResponseCorrection&& event, Actions& actions) {
  for (auto it = transcript_.rbegin(); it != transcript_.rend(); ++it) {
    if (it->role != Turn::Role::kAgent) continue;
    if (event.event_id && it->event_id && *it->event_id != *event.event_id) continue;
    it->text = Clip(std::move(event.corrected));
    it->interrupted = true;
    actions.transcript.push_back({TranscriptUpdate::Kind::kCorrected, *it});
    return;
  }
  ++ignored_;
}

void SessionMachine::Handle(UserTranscript&& event, Actions& actions) {
  tentative_user_text_.clear();
  AddTurn(Turn{Turn::Role::kUser, Clip(std::move(event.text)), clock_.Now(), event.event_id, false},
          actions);
}

void SessionMachine::Handle(TentativeUserTranscript&& event, Actions& actions) {
  tentative_user_text_ = Clip(std::move(event.text));
  actions.transcript.push_back(
      {TranscriptUpdate::Kind::kTentative,
       Turn{Turn::Role::kUser, tentative_user_text_, clock_.Now(), event.event_id, false}});
}

void SessionMachine::Handle(TentativeAgentResponse&& event, Actions& actions) {
  tentative_agent_text_ = Clip(std::move(event.text));
  actions.transcript.push_back(
      {TranscriptUpdate::Kind::kTentative,
       Turn{Turn::Role::kAgent, tentative_agent_text_, clock_.Now(), std::nullopt, false}});
}

void SessionMachine::Handle(ClientToolCall&& event, Actions& actions) {
  ++tool_calls_;
  if (!options_.tools_enabled) {
    SendFrame(ClientToolResultMessage(event.tool_call_id, NoToolMessage(event.tool_name), true),
              actions);
    return;
  }
  if (pending_tools_.contains(event.tool_call_id)) {
    ++ignored_;  // a repeated call: the first one is being answered
    return;
  }
  if (pending_tools_.size() >= options_.max_pending_tool_calls) {
    SendFrame(ClientToolResultMessage(event.tool_call_id,
                                      "Client tool '" + event.tool_name +
                                          "' was not run: too many client tool calls in progress.",
                                      true),
              actions);
    return;
  }
  pending_tools_.emplace(event.tool_call_id, event.tool_name);
  actions.call_tool = std::move(event);
}

void SessionMachine::Handle(AgentToolResponse&& event, Actions& actions) {
  if (event.tool_name != "end_call") {
    ++ignored_;
    return;
  }
  BeginDrain({"agent_ended", "", std::nullopt}, actions);
}

void SessionMachine::Handle(ServerError&& event, Actions& actions) {
  (void)actions;
  event.error_type = Clip(std::move(event.error_type));
  event.message = Clip(std::move(event.message));
  event.reason = Clip(std::move(event.reason));
  server_error_ = std::move(event);
}

void SessionMachine::Handle(OtherEvent&& event, Actions& actions) {
  (void)event;
  (void)actions;
  ++ignored_;
}

// --- audio ----------------------------------------------------------------------------------

Actions SessionMachine::StartAudio(int capture_rate, int playback_rate, bool echo_cancellation) {
  Actions actions;
  if (finished_ || audio_ || !input_format_ || !output_format_) return actions;
  audio::pipeline::ConversationAudioOptions options = options_.audio;
  options.input_format = *input_format_;
  options.output_format = *output_format_;
  options.capture_rate = capture_rate;
  options.playback_rate = playback_rate;
  options.echo_cancellation = echo_cancellation;
  try {
    audio_ = std::make_unique<audio::pipeline::ConversationAudio>(options);
  } catch (const std::exception& e) {
    EndWith({"internal_error", std::string("audio pipeline: ") + e.what(), std::nullopt}, actions);
    return actions;
  }
  if (last_interrupt_id_) audio_->Interrupt(*last_interrupt_id_);
  for (auto& pending : pending_audio_) {
    if (!audio_->PushAgentAudio(pending.bytes, pending.event_id)) ++stale_audio_events_;
  }
  pending_audio_.clear();
  pending_audio_bytes_ = 0;
  if (draining_) {  // end_call came before the endpoints were open
    audio_->DrainThen([this] {
      drained_ = true;
      drained_at_ = clock_.Now();
    });
  }
  return actions;
}

Actions SessionMachine::Tick(audio::backends::AudioInput& input,
                             audio::backends::AudioOutput& output) {
  Actions actions;
  if (finished_ || !audio_) return actions;
  const auto scratch = Scratch();
  const auto budget = [&](int rate) {
    return static_cast<std::size_t>(rate) *
           static_cast<std::size_t>(std::max<std::int64_t>(1, options_.max_tick_audio.count())) /
           1000;
  };
  // Playback first: the echo canceller must see what the speaker gets before the capture.
  std::size_t left = budget(output.sample_rate());
  while (left > 0) {
    const std::size_t n = std::min({output.WritableFrames(), scratch.size(), left});
    if (n == 0) break;
    const auto block = scratch.first(n);
    audio_->ReadPlayback(block);
    output.Write(block);
    left -= n;
  }
  // Then the capture, and the chunks it completed.
  const bool sending = can_send() && !draining_;
  const int capture_rate = input.sample_rate();
  left = budget(capture_rate);
  while (left > 0) {
    const std::size_t want = std::min(scratch.size(), left);
    const std::size_t m = input.Read(scratch.first(want));
    if (m > 0 && sending) audio_->WriteCapture(scratch.first(m));
    left -= m;
    if (m < want) break;
  }
  if (sending && input_format_) {
    // How far the chunks trail the capture just before this tick sends: the chunk being
    // filled plus how long a complete chunk waited for its tick. (The uplink counts the
    // capture it was given, which is only while sending.)
    const auto captured = audio_->uplink().stats().captured_samples;
    const double lag_ms =
        1000.0 * (static_cast<double>(captured) / static_cast<double>(capture_rate) -
                  static_cast<double>(chunked_bytes_) /
                      static_cast<double>(input_format_->BytesPerSecond()));
    user_lag_max_ms_ = std::max(user_lag_max_ms_, lag_ms);
  }
  const auto send_chunk = [&](std::span<const std::uint8_t> chunk) {
    actions.send.push_back({UserAudioChunkMessage(chunk), true, chunk.size()});
    sent_bytes_ += chunk.size();
    chunked_bytes_ += chunk.size();
    ++user_chunks_sent_;
  };
  for (auto chunk = audio_->NextUserChunk(); !chunk.empty(); chunk = audio_->NextUserChunk()) {
    if (sending) send_chunk(chunk);
  }
  if (sending && !chunks_aligned_ && options_.audio.chunk_early.count() > 0) {
    // Ticks divide the chunk (the engine's default): the first tick sends what it captured, so
    // that every chunk after it ends on a tick instead of up to half a tick before one.
    chunks_aligned_ = true;
    if (const auto rest = audio_->TakeUserRest(); !rest.empty()) send_chunk(rest);
  }
  // Endpoint failures end the session (the output first: it decides what the user heard).
  const auto& failed = output.error() ? output.error() : input.error();
  if (failed) {
    EndWith({std::string(failed->CodeName()), failed->detail, std::nullopt}, actions);
    return actions;
  }
  if (draining_ && !end_) {
    const auto now = clock_.Now();
    const bool heard =
        drained_ && output.QueuedFrames() == 0 && now - drained_at_ >= output.latency();
    if (heard || now - drain_started_ >= options_.drain_timeout) {
      EndReason reason = *drain_reason_;
      if (!heard) reason.detail = "the last audio was not completely played out";
      EndWith(std::move(reason), actions);
    }
  }
  return actions;
}

void SessionMachine::Warm(unsigned stage) const {
  switch (stage) {
    case 0: {
      // (Not &clock_: that is the clock's address, read from this object.)
      const auto* first = reinterpret_cast<const char*>(&socket_open_);
      const auto* end = reinterpret_cast<const char*>(&user_lag_max_ms_ + 1);
      core::PrefetchLines(first, static_cast<std::size_t>(end - first));
      core::Prefetch(&options_.max_tick_audio);
      core::Prefetch(&input_format_);
      core::Prefetch(&end_);
      break;
    }
    case 1:
      if (audio_) audio_->Warm(0);
      break;
    case 2:
      if (audio_) audio_->Warm(1);
      break;
    default:
      break;
  }
}

void SessionMachine::BeginDrain(EndReason reason, Actions& actions) {
  if (draining_ || end_) return;
  if (!audio_ && !metadata_received_) {  // nothing can be played without the formats
    EndWith(std::move(reason), actions);
    return;
  }
  draining_ = true;
  drain_reason_ = std::move(reason);
  drain_started_ = clock_.Now();
  status_ = Status::kEnding;
  if (audio_) {
    audio_->DrainThen([this] {
      drained_ = true;
      drained_at_ = clock_.Now();
    });
  }
}

// --- tools, deadlines, control ---------------------------------------------------------------

Actions SessionMachine::ToolResult(const std::string& tool_call_id, std::string_view result,
                                   bool is_error) {
  Actions actions;
  if (finished_ || pending_tools_.erase(tool_call_id) == 0) return actions;
  if (can_send()) SendFrame(ClientToolResultMessage(tool_call_id, result, is_error), actions);
  return actions;
}

Actions SessionMachine::ToolTimedOut(const std::string& tool_call_id) {
  Actions actions;
  if (finished_) return actions;
  const auto it = pending_tools_.find(tool_call_id);
  if (it == pending_tools_.end()) return actions;
  const std::string message = "Client tool '" + it->second + "' did not answer within " +
                              std::to_string(options_.tool_timeout.count()) + " ms.";
  pending_tools_.erase(it);
  if (can_send()) SendFrame(ClientToolResultMessage(tool_call_id, message, true), actions);
  return actions;
}

Actions SessionMachine::MetadataDeadline() {
  Actions actions;
  if (finished_ || metadata_received_ || end_) return actions;
  EndWith({"protocol_error",
           "no conversation_initiation_metadata within " +
               std::to_string(options_.metadata_timeout.count()) + " ms",
           std::nullopt},
          actions);
  return actions;
}

Actions SessionMachine::SendClientMessage(std::string frame, bool& accepted) {
  Actions actions;
  accepted = !finished_ && !end_ && metadata_received_ && can_send();
  if (accepted) SendFrame(std::move(frame), actions);
  return actions;
}

Actions SessionMachine::Stop() {
  Actions actions;
  if (finished_) return actions;
  stop_requested_ = true;
  if (end_) return actions;  // already closing
  if (draining_) {
    // End with the drain's reason (the agent did hang up), without waiting for the playout.
    draining_ = false;
    EndWith(*drain_reason_, actions);
    return actions;
  }
  EndWith({"stopped", "", std::nullopt}, actions);
  return actions;
}

Actions SessionMachine::Fail(EndReason reason) {
  Actions actions;
  if (finished_) return actions;
  if (end_) {
    // Already closing: a failure to close (e.g. the transport refused) finishes it.
    if (!socket_open_) Finish(actions);
    return actions;
  }
  draining_ = false;
  EndWith(std::move(reason), actions);
  return actions;
}

void SessionMachine::CountDroppedChunk(std::size_t audio_bytes) {
  if (user_chunks_sent_ > 0) --user_chunks_sent_;
  ++user_chunks_dropped_;
  sent_bytes_ -= std::min<std::uint64_t>(sent_bytes_, audio_bytes);
}

// --- helpers --------------------------------------------------------------------------------

void SessionMachine::SendFrame(std::string text, Actions& actions) {
  if (!can_send()) return;
  actions.send.push_back({std::move(text), false, 0});
}

void SessionMachine::AddTurn(Turn turn, Actions& actions) {
  actions.transcript.push_back({TranscriptUpdate::Kind::kTurn, turn});
  transcript_.push_back(std::move(turn));
  while (transcript_.size() > std::max<std::size_t>(1, options_.max_transcript_turns)) {
    transcript_.pop_front();
  }
}

void SessionMachine::EndWith(EndReason reason, Actions& actions) {
  if (finished_) return;
  if (!end_) end_ = std::move(reason);
  status_ = Status::kEnding;
  if (socket_open_) {
    if (!close_requested_) {
      close_requested_ = true;
      actions.close = CloseRequest{
          1000, stop_requested_ && end_->code == "stopped" ? std::string(kStopReason) : end_->code};
    }
    return;
  }
  Finish(actions);
}

void SessionMachine::Finish(Actions& actions) {
  if (finished_) return;
  finished_ = true;
  status_ = Status::kEnded;
  end_time_ = clock_.Now();
  if (!end_) end_ = EndReason{"internal_error", "ended without a reason", std::nullopt};
  if (!end_->close_code && close_code_) end_->close_code = close_code_;
  pending_audio_.clear();
  pending_audio_bytes_ = 0;
  pending_tools_.clear();
  actions.finished = true;
}

std::string SessionMachine::Clip(std::string text) const {
  if (text.size() <= options_.max_text_bytes) return text;
  std::size_t cut = options_.max_text_bytes;
  // Do not split a UTF-8 sequence: back up over continuation bytes.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
    --cut;
  text.resize(cut);
  return text;
}

SessionStats SessionMachine::Stats() const {
  SessionStats stats;
  stats.session_id = identity_.session_id;
  stats.agent_id = identity_.agent_id;
  stats.input = identity_.input;
  stats.output = identity_.output;
  stats.status = status_;
  stats.conversation_id = conversation_id_;
  if (output_format_) stats.agent_output_audio_format = output_format_->Name();
  if (input_format_) stats.user_input_audio_format = input_format_->Name();
  stats.start_time = start_time_;
  stats.end_time = end_time_;
  const auto until = end_time_ ? *end_time_ : clock_.Now();
  stats.duration =
      std::max(std::chrono::milliseconds(0),
               std::chrono::duration_cast<std::chrono::milliseconds>(until - start_time_));
  if (input_format_) {
    stats.audio_seconds_sent =
        static_cast<double>(sent_bytes_) / static_cast<double>(input_format_->BytesPerSecond());
  }
  if (output_format_) {
    stats.audio_seconds_received = static_cast<double>(received_bytes_) /
                                   static_cast<double>(output_format_->BytesPerSecond());
  }
  if (audio_) {
    const auto& jitter = audio_->downlink().stats();
    stats.audio_seconds_played = static_cast<double>(jitter.played_samples) /
                                 static_cast<double>(audio_->downlink().playback_rate());
    stats.underruns = jitter.underruns;
  }
  stats.user_audio_lag_max_ms = user_lag_max_ms_;
  stats.user_chunks_sent = user_chunks_sent_;
  stats.user_chunks_dropped = user_chunks_dropped_;
  stats.audio_events = audio_events_;
  stats.stale_audio_events = stale_audio_events_;
  stats.interruptions = interruptions_;
  stats.pings_answered = pings_answered_;
  stats.last_ping_ms = last_ping_ms_;
  stats.tool_calls = tool_calls_;
  stats.malformed_messages = malformed_;
  stats.ignored_events = ignored_;
  stats.transcript.assign(transcript_.begin(), transcript_.end());
  stats.tentative_user_text = tentative_user_text_;
  stats.tentative_agent_text = tentative_agent_text_;
  stats.end_reason = end_;
  return stats;
}

}  // namespace callgate::conversation
