#include "sim/agent/session.hpp"

#include "audio/codec.hpp"
#include "core/ids.hpp"
#include "sim/simulator.hpp"

#include <openssl/evp.h>

#include <boost/json.hpp>

#include <algorithm>
#include <cstdio>

namespace callgate::sim::agent {
namespace {

namespace json = boost::json;

constexpr std::size_t kMaxListEntries = 1000;  // transcript, updates, tool results, feedback
constexpr std::size_t kMaxTextBytes = 4096;    // texts kept in the statistics

void PushBounded(json::array& list, json::value value) {
  if (list.size() >= kMaxListEntries) list.erase(list.begin());
  list.push_back(std::move(value));
}

std::string Clip(std::string_view text) {
  return std::string(text.substr(0, kMaxTextBytes));
}

}  // namespace

// Incremental SHA-256 over the decoded user audio, in arrival order.
struct Session::Sha256 {
  struct Free {
    void operator()(EVP_MD_CTX* context) const noexcept { EVP_MD_CTX_free(context); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> ctx{EVP_MD_CTX_new()};
  Sha256() { EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr); }
  void Update(std::span<const std::uint8_t> bytes) {
    EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size());
  }
  std::string Hex() const {
    std::unique_ptr<EVP_MD_CTX, Free> copy{EVP_MD_CTX_new()};
    EVP_MD_CTX_copy_ex(copy.get(), ctx.get());
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_DigestFinal_ex(copy.get(), digest, &size);
    std::string hex;
    char byte[3];
    for (unsigned int i = 0; i < size; ++i) {
      std::snprintf(byte, sizeof byte, "%02x", digest[i]);
      hex += byte;
    }
    return hex;
  }
};

Session::Session(SessionDependencies deps, SessionSettings settings)
    : deps_(std::move(deps)), settings_(std::move(settings)), sha_(std::make_unique<Sha256>()) {
  if (settings_.agent != nullptr) {
    if (auto in = audio::ParseFormat(settings_.agent->input_format)) input_format_ = *in;
    if (auto out = audio::ParseFormat(settings_.agent->output_format)) output_format_ = *out;
  }
  last_activity_ = deps_.clock.Now();
}

Session::~Session() = default;

void Session::OnOpen(std::shared_ptr<http::WebSocketConnection> connection) {
  std::lock_guard lock(mutex_);
  connection_ = std::move(connection);
  if (phase_ == Phase::kEnded) {  // Shutdown() came first
    connection_->Close(1001, "server shutting down");
    return;
  }
  if (settings_.refusal) {
    FailLocked(1008, settings_.refusal->error_type, settings_.refusal->message);
    return;
  }
  last_activity_ = deps_.clock.Now();
  ScheduleInactivityCheck(settings_.options.inactivity_timeout);
}

void Session::OnText(std::string_view text) {
  std::lock_guard lock(mutex_);
  if (phase_ == Phase::kEnded) return;
  if (phase_ == Phase::kActive && ParseUserAudioChunkInto(text, audio_scratch_)) {
    HandleAudioLocked(audio_scratch_);
    return;
  }
  ParsedMessage parsed = ParseClientMessage(text);
  if (!parsed.message) {
    FailLocked(1008, parsed.error.error_type, parsed.error.message);
    return;
  }
  ClientMessage& message = *parsed.message;
  if (phase_ == Phase::kAwaitingInit) {
    if (message.kind != ClientKind::kInit) {
      FailLocked(1008, "invalid_message",
                 "The first message must be conversation_initiation_client_data");
      return;
    }
    HandleInitLocked(message);
    return;
  }
  switch (message.kind) {
    case ClientKind::kUserAudioChunk:
      HandleAudioLocked(message.audio);
      break;
    case ClientKind::kInit:
      break;  // a repeated initiation changes nothing
    case ClientKind::kPong: {
      const auto now = deps_.clock.Now();
      for (auto& ping : pings_) {
        if (ping.event_id != message.event_id || ping.pong_received) continue;
        ping.pong_received = true;
        const auto rtt = std::chrono::duration_cast<std::chrono::milliseconds>(now - ping.sent);
        ping.latency_ms = std::max<std::int64_t>(0, rtt.count());
        last_rtt_ms_ = ping.latency_ms;
        break;
      }
      break;
    }
    case ClientKind::kClientToolResult: {
      const auto& object = message.json;
      json::object record{{"tool_call_id", Clip(message.text)},
                          {"result", object.at("result")},
                          {"is_error", object.at("is_error")},
                          {"timed_out", false},
                          {"expected", awaiting_tool_call_id_ == message.text}};
      PushBounded(tool_results_, std::move(record));
      if (awaiting_tool_call_id_ == message.text) {
        awaiting_tool_call_id_.reset();
        client_tool_done_ = true;
        if (turn_) {
          reply_owed_ = true;
        } else {
          StartReplyLocked();
        }
      }
      break;
    }
    case ClientKind::kContextualUpdate: {
      json::object record{{"text", Clip(message.text)}};
      if (const auto* id = message.json.if_contains("context_id")) record["context_id"] = *id;
      PushBounded(contextual_updates_, std::move(record));
      break;
    }
    case ClientKind::kUserMessage:
    case ClientKind::kMultimodalMessage:
      ActivityLocked();
      if (vad_ && vad_->speaking()) {
        pending_user_text_ = Clip(message.text);  // the transcript of the turn being spoken
      } else {
        UserTurnCompleteLocked(Clip(message.text));
      }
      break;
    case ClientKind::kUserActivity:
      ActivityLocked();
      break;
    case ClientKind::kFeedback:
      PushBounded(feedback_,
                  json::object{{"event_id", message.event_id},
                               {"score", message.json.contains("score") ? message.json.at("score")
                                                                        : json::value(nullptr)}});
      break;
    case ClientKind::kMcpToolApprovalResult:
      break;
  }
}

void Session::OnClose(std::uint16_t code, std::string_view reason) {
  bool notify = false;
  {
    std::lock_guard lock(mutex_);
    if (close_.is_null()) {
      close_ = json::object{{"code", code}, {"reason", Clip(reason)}, {"by", "client"}};
    }
    EndConversationLocked(code == 1006 ? "Client disconnected without a close frame."
                                       : "Client ended the conversation.");
    phase_ = Phase::kEnded;
    ++turn_generation_;
    turn_.reset();
    connection_.reset();
    notify = !finished_;
    finished_ = true;
  }
  if (notify && deps_.on_finished) deps_.on_finished(settings_.session_id);
}

void Session::Shutdown() {
  bool notify = false;
  {
    std::lock_guard lock(mutex_);
    if (phase_ != Phase::kEnded) CloseLocked(1001, "server shutting down", "Simulator stopped.");
    notify = !finished_;
    finished_ = true;
  }
  if (notify && deps_.on_finished) deps_.on_finished(settings_.session_id);
}

std::string Session::conversation_id() const {
  std::lock_guard lock(mutex_);
  return conversation_id_;
}

json::object Session::Stats() const {
  std::lock_guard lock(mutex_);
  json::object stats;
  stats["session_id"] = settings_.session_id;
  stats["conversation_id"] =
      conversation_id_.empty() ? json::value(nullptr) : json::value(conversation_id_);
  stats["agent_id"] = settings_.agent_id;
  stats["active"] = phase_ != Phase::kEnded;
  stats["init_message"] = init_message_;
  stats["formats"] = json::object{{"user_input_audio_format", input_format_.Name()},
                                  {"agent_output_audio_format", output_format_.Name()}};
  json::array pings;
  for (const auto& ping : pings_) {
    pings.push_back(json::object{
        {"event_id", ping.event_id},
        {"sent_unix_ms", ping.sent_unix_ms},
        {"pong_received", ping.pong_received},
        {"latency_ms", ping.latency_ms ? json::value(*ping.latency_ms) : json::value(nullptr)}});
  }
  stats["pings"] = std::move(pings);
  stats["user_audio_bytes"] = user_audio_bytes_;
  stats["user_audio_sha256"] = sha_->Hex();
  json::object events;
  for (const auto& [type, count] : events_sent_)
    events[type] = count;
  stats["events_sent"] = std::move(events);
  stats["events_total"] = events_total_;
  stats["agent_audio_bytes"] = agent_audio_bytes_;
  stats["agent_audio_late_chunks"] = agent_audio_late_chunks_;
  stats["agent_audio_max_late_ms"] = agent_audio_max_late_ms_;
  stats["transcript"] = transcript_;
  stats["contextual_updates"] = contextual_updates_;
  stats["tool_results"] = tool_results_;
  stats["feedback"] = feedback_;
  stats["close"] = close_;
  return stats;
}

// --- sending and closing ------------------------------------------------------------------

void Session::SendLocked(std::string_view type, std::string frame) {
  if (phase_ == Phase::kEnded || !connection_) return;
  connection_->SendText(std::move(frame));
  ++events_sent_[std::string(type)];
  ++events_total_;
  const auto& fault = settings_.fault;
  if (fault && events_total_ >= fault->after_events) {
    if (fault->drop) {
      connection_->Abort();
      close_ = json::object{{"code", 1006}, {"reason", "simulated drop"}, {"by", "server"}};
      EndConversationLocked("Simulated connection drop.");
      phase_ = Phase::kEnded;
      ++turn_generation_;
    } else {
      CloseLocked(static_cast<std::uint16_t>(fault->close_code), "simulated fault",
                  "Simulated fault.");
    }
  }
}

void Session::FailLocked(int code, std::string_view error_type, std::string_view message) {
  SendLocked("error", ErrorEvent(code, message, error_type));
  if (phase_ == Phase::kEnded) return;  // a fault fired on that event
  CloseLocked(static_cast<std::uint16_t>(code), std::string(error_type),
              "Error: " + std::string(error_type));
}

void Session::CloseLocked(std::uint16_t code, std::string reason, std::string termination) {
  if (phase_ == Phase::kEnded) return;
  close_ = json::object{{"code", code}, {"reason", reason}, {"by", "server"}};
  if (connection_) connection_->Close(code, std::move(reason));
  EndConversationLocked(std::move(termination));
  phase_ = Phase::kEnded;
  ++turn_generation_;  // stops the audio timers
}

void Session::EndConversationLocked(std::string termination) {
  if (conversation_id_.empty() || conversation_ended_) return;
  conversation_ended_ = true;
  turn_.reset();
  deps_.simulator.EndWebSocketConversation(conversation_id_, std::move(termination));
}

// --- initiation ---------------------------------------------------------------------------

void Session::HandleInitLocked(const ClientMessage& message) {
  init_message_ = message.json;
  const AgentConfig& agent = *settings_.agent;
  if (auto error = CheckInitiation(message.json, agent.allow_overrides)) {
    FailLocked(1008, error->error_type, error->message);
    return;
  }
  auto start = deps_.simulator.BeginWebSocketConversation(settings_.agent_id, message.json);
  if (!start) {
    FailLocked(1008, "value_error", "Agent not found");
    return;
  }
  conversation_id_ = start->conversation_id;
  if (!start->missing_variables.empty()) {
    std::string names;
    for (const auto& name : start->missing_variables)
      names += (names.empty() ? "" : ", ") + name;
    FailLocked(1008, "missing_dynamic_variable", "Missing required dynamic variables: " + names);
    return;
  }
  language_ = start->language.empty() ? "en" : start->language;
  if (const auto* vars = message.json.if_contains("dynamic_variables");
      vars != nullptr && vars->is_object()) {
    const auto& object = vars->as_object();
    if (const auto* purpose = object.if_contains("purpose"); purpose && purpose->is_string()) {
      purpose_ = Clip(purpose->as_string());
    }
    if (const auto* tool = object.if_contains("sim_client_tool"); tool && tool->is_string()) {
      client_tool_name_ = Clip(tool->as_string());
    }
  }
  phase_ = Phase::kActive;
  vad_.emplace(input_format_.sample_rate,
               audio::VadOptions{.threshold_dbfs = settings_.options.vad_threshold_dbfs});
  SendLocked("conversation_initiation_metadata",
             MetadataEvent(conversation_id_, output_format_.Name(), input_format_.Name()));
  ActivityLocked();
  SchedulePing();
  if (!start->first_message.empty()) StartTurnLocked(start->first_message, false);
}

// --- listening ----------------------------------------------------------------------------

void Session::HandleAudioLocked(std::span<const std::uint8_t> bytes) {
  sha_->Update(bytes);
  user_audio_bytes_ += static_cast<std::int64_t>(bytes.size());
  std::vector<std::int16_t> samples;
  if (input_format_.encoding == audio::AudioFormat::Encoding::kPcm16 && !carry_ &&
      bytes.size() % 2 == 0) {
    samples = audio::DecodePcm16Le(bytes);  // whole samples, nothing carried: no copy first
  } else if (input_format_.encoding == audio::AudioFormat::Encoding::kPcm16) {
    std::vector<std::uint8_t> joined;
    joined.reserve(bytes.size() + 1);
    if (carry_) joined.push_back(*carry_);
    joined.insert(joined.end(), bytes.begin(), bytes.end());
    carry_.reset();
    if (joined.size() % 2 == 1) {
      carry_ = joined.back();
      joined.pop_back();
    }
    samples = audio::DecodePcm16Le(joined);
  } else {
    samples = audio::DecodeMulaw(bytes);
  }
  const double rate = input_format_.sample_rate;
  const auto tentative_samples = static_cast<std::int64_t>(
      rate * static_cast<double>(settings_.options.tentative_interval.count()) / 1000.0);
  for (const auto& event : vad_->Feed(samples)) {
    if (phase_ == Phase::kEnded) return;
    if (event.type == audio::VadEvent::Type::kSpeechStart) {
      speech_start_ = event.sample_offset;
      next_tentative_ = event.sample_offset + std::max<std::int64_t>(1, tentative_samples);
      ActivityLocked();
      if (turn_ && turn_->event_id >= 0) InterruptLocked();
    } else {
      const double secs = static_cast<double>(event.sample_offset - speech_start_) / rate;
      std::string text = pending_user_text_
                             ? std::move(*pending_user_text_)
                             : SimulatedUserText(settings_.options.user_transcript_style, secs);
      pending_user_text_.reset();
      ActivityLocked();
      UserTurnCompleteLocked(std::move(text));
    }
  }
  if (phase_ == Phase::kEnded || !vad_->speaking()) return;
  ActivityLocked();
  while (vad_->samples_fed() >= next_tentative_) {
    if (user_event_id_ < 0) user_event_id_ = NextEventId();
    const double secs = static_cast<double>(next_tentative_ - speech_start_) / rate;
    SendLocked(
        "tentative_user_transcript",
        TentativeUserTranscriptEvent(
            SimulatedUserText(settings_.options.user_transcript_style, secs), user_event_id_));
    next_tentative_ += std::max<std::int64_t>(1, tentative_samples);
  }
}

void Session::UserTurnCompleteLocked(std::string text) {
  if (phase_ != Phase::kActive) return;
  if (user_event_id_ < 0) user_event_id_ = NextEventId();
  SendLocked("user_transcript", UserTranscriptEvent(text, user_event_id_));
  user_event_id_ = -1;
  if (phase_ != Phase::kActive) return;
  deps_.simulator.AppendTranscript(conversation_id_, "user", text);
  PushBounded(transcript_, json::object{{"role", "user"}, {"message", text}});
  last_user_text_ = std::move(text);
  if (awaiting_tool_call_id_) return;  // the reply follows the tool result
  if (!client_tool_name_.empty() && !client_tool_done_) {
    const std::string id = core::NewId("toolcall");
    json::object parameters{{"user_transcript", last_user_text_}};
    SendLocked("client_tool_call",
               ClientToolCallEvent(client_tool_name_, id, parameters, NextEventId()));
    awaiting_tool_call_id_ = id;
    std::weak_ptr<Session> weak = weak_from_this();
    deps_.scheduler.After(settings_.options.client_tool_timeout, [weak, id] {
      if (auto self = weak.lock()) self->OnToolTimeout(id);
    });
    return;
  }
  if (turn_) {
    reply_owed_ = true;
  } else {
    StartReplyLocked();
  }
}

void Session::OnToolTimeout(std::string tool_call_id) {
  std::lock_guard lock(mutex_);
  if (phase_ != Phase::kActive || awaiting_tool_call_id_ != tool_call_id) return;
  awaiting_tool_call_id_.reset();
  client_tool_done_ = true;
  PushBounded(tool_results_, json::object{{"tool_call_id", tool_call_id},
                                          {"result", nullptr},
                                          {"is_error", true},
                                          {"timed_out", true},
                                          {"expected", true}});
  if (turn_) {
    reply_owed_ = true;
  } else {
    StartReplyLocked();
  }
}

void Session::ActivityLocked() {
  last_activity_ = deps_.clock.Now();
}

// --- speaking -----------------------------------------------------------------------------

void Session::StartReplyLocked() {
  ++reply_index_;
  const int turns = std::max(1, settings_.options.turns);
  StartTurnLocked(ScriptLine(reply_index_, turns, purpose_), reply_index_ >= turns);
}

void Session::StartTurnLocked(std::string text, bool last) {
  const std::uint64_t generation = ++turn_generation_;
  turn_ = Turn{.generation = generation, .text = text, .last = last};
  std::weak_ptr<Session> weak = weak_from_this();
  const bool queued = deps_.speak(std::move(text), output_format_.sample_rate, language_,
                                  [weak, generation](std::vector<std::int16_t> samples) {
                                    if (auto self = weak.lock()) {
                                      self->OnSynthesized(generation, std::move(samples));
                                    }
                                  });
  if (!queued) FailLocked(1002, "tts_cascade_error", "Speech synthesis is unavailable");
}

void Session::OnSynthesized(std::uint64_t generation, std::vector<std::int16_t> samples) {
  std::lock_guard lock(mutex_);
  if (phase_ != Phase::kActive || !turn_ || turn_->generation != generation) return;
  if (samples.empty()) {
    FailLocked(1002, "tts_cascade_error", "Speech synthesis failed");
    return;
  }
  turn_->audio = audio::Encode(output_format_, samples);
  turn_->event_id = NextEventId();
  SendLocked("agent_response", AgentResponseEvent(turn_->text, turn_->event_id));
  if (phase_ != Phase::kActive) return;
  // The transcript gets the turn when it starts, as the real one orders turns by start time.
  deps_.simulator.AppendTranscript(conversation_id_, "agent", turn_->text);
  PushBounded(transcript_, json::object{{"role", "agent"}, {"message", turn_->text}});
  SendChunkLocked();
}

void Session::SendChunkLocked() {
  if (phase_ != Phase::kActive || !turn_) return;
  const std::size_t sample_bytes = output_format_.BytesPerSample();
  std::size_t chunk = output_format_.BytesPerSecond() *
                      static_cast<std::size_t>(settings_.options.audio_chunk.count()) / 1000;
  chunk = std::max(sample_bytes, chunk / sample_bytes * sample_bytes);
  const std::size_t n = std::min(chunk, turn_->audio.size() - turn_->sent);
  const auto now = deps_.clock.Now();
  if (turn_->chunks == 0) {
    turn_->paced_from = now;
  } else {  // how late this chunk goes out (the timer's lateness and the lock's wait)
    const auto late = std::chrono::duration_cast<std::chrono::milliseconds>(
        now - (turn_->paced_from + ChunkPeriod() * turn_->chunks));
    agent_audio_max_late_ms_ = std::max(agent_audio_max_late_ms_, late.count());
    if (late >= kLateChunk) ++agent_audio_late_chunks_;
  }
  ++turn_->chunks;
  const std::string encoded = Base64Encode(turn_->audio.data() + turn_->sent, n);
  turn_->sent += n;
  agent_audio_bytes_ += static_cast<std::int64_t>(n);
  SendLocked("audio", AudioEvent(encoded, turn_->event_id));
  if (phase_ != Phase::kActive || !turn_) return;
  std::weak_ptr<Session> weak = weak_from_this();
  const std::uint64_t generation = turn_->generation;
  // After the last chunk the turn lasts one more chunk's playing time: the user still hears it.
  const bool more = turn_->sent < turn_->audio.size();
  deps_.scheduler.After(NextChunkDelay(), [weak, generation, more] {
    if (auto self = weak.lock()) {
      if (more) {
        self->OnChunkTimer(generation);
      } else {
        self->OnTurnEndTimer(generation);
      }
    }
  });
}

void Session::OnChunkTimer(std::uint64_t generation) {
  std::lock_guard lock(mutex_);
  if (phase_ != Phase::kActive || !turn_ || turn_->generation != generation) return;
  SendChunkLocked();
}

void Session::OnTurnEndTimer(std::uint64_t generation) {
  std::lock_guard lock(mutex_);
  if (phase_ != Phase::kActive || !turn_ || turn_->generation != generation) return;
  FinishTurnLocked();
}

void Session::FinishTurnLocked() {
  Turn turn = std::move(*turn_);
  turn_.reset();
  ActivityLocked();  // the inactivity timeout counts from the end of the agent's turn
  if (turn.last) {
    SendLocked("agent_tool_response", AgentToolResponseEvent("end_call", core::NewId("end_call"),
                                                             "system", false, true, NextEventId()));
    CloseLocked(1000, "", "end_call tool was called.");
    return;
  }
  if (reply_owed_) {
    reply_owed_ = false;
    StartReplyLocked();
  }
}

void Session::InterruptLocked() {
  Turn turn = std::move(*turn_);
  turn_.reset();
  ++turn_generation_;  // the turn's timers find nothing to do
  const double fraction = static_cast<double>(turn.sent) /
                          static_cast<double>(std::max<std::size_t>(1, turn.audio.size()));
  std::string spoken = TruncateSpoken(turn.text, fraction);
  SendLocked("interruption",
             InterruptionEvent(turn.event_id, settings_.options.interruption_with_reason));
  SendLocked("agent_response_correction",
             AgentResponseCorrectionEvent(turn.text, spoken, turn.event_id));
  // Both transcripts (these statistics and the REST conversation) keep what was spoken.
  deps_.simulator.AmendLastAgentTurn(conversation_id_, spoken);
  for (auto it = transcript_.rbegin(); it != transcript_.rend(); ++it) {
    auto& entry = it->as_object();
    if (entry.at("role") == "agent") {
      entry["message"] = spoken;
      entry["interrupted"] = true;
      break;
    }
  }
  // An interrupted goodbye is said again after the user's turn: reply_index_ stays past turns.
}

std::chrono::microseconds Session::ChunkPeriod() const {
  const double speed = settings_.options.speech_speed > 0 ? settings_.options.speech_speed : 1.0;
  const auto us = static_cast<std::int64_t>(
      static_cast<double>(settings_.options.audio_chunk.count()) * 1000.0 / speed);
  return std::chrono::microseconds(std::max<std::int64_t>(1000, us));
}

// The wait until the next chunk (or, after the last, the end of the turn) is due: chunk k at
// paced_from + k * period. Timers fire late (more so with many sessions on a busy machine);
// waiting a whole period after each late wake-up would let the lateness add up over a turn
// and send the agent's speech slower than real time, running the client's playback buffer dry
// mid-utterance. A wake-up late by more than a second (the process was stalled) restarts the
// schedule from now rather than sending the backlog at once.
std::chrono::milliseconds Session::NextChunkDelay() {
  const auto period = ChunkPeriod();
  const auto now = deps_.clock.Now();
  auto due = turn_->paced_from + period * turn_->chunks;
  if (now - due > std::chrono::seconds(1)) {
    turn_->paced_from = now - period * (turn_->chunks - 1);
    due = now + period;
  }
  const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(due - now);
  return std::clamp(wait, std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(period));
}

// --- timers -------------------------------------------------------------------------------

void Session::SchedulePing() {
  std::weak_ptr<Session> weak = weak_from_this();
  deps_.scheduler.After(settings_.options.ping_interval, [weak] {
    if (auto self = weak.lock()) self->OnPingTimer();
  });
}

void Session::OnPingTimer() {
  std::lock_guard lock(mutex_);
  if (phase_ != Phase::kActive) return;
  const std::int64_t id = NextEventId();
  if (pings_.size() >= std::max<std::size_t>(1, settings_.options.max_pings_kept)) {
    pings_.pop_front();
  }
  pings_.push_back({.event_id = id, .sent_unix_ms = UnixMs(), .sent = deps_.clock.Now()});
  SendLocked("ping", PingEvent(id, last_rtt_ms_));
  if (phase_ == Phase::kActive) SchedulePing();
}

void Session::ScheduleInactivityCheck(std::chrono::milliseconds delay) {
  std::weak_ptr<Session> weak = weak_from_this();
  deps_.scheduler.After(std::max(delay, std::chrono::milliseconds(1)), [weak] {
    if (auto self = weak.lock()) self->OnInactivityTimer();
  });
}

void Session::OnInactivityTimer() {
  std::lock_guard lock(mutex_);
  if (phase_ == Phase::kEnded) return;
  const auto timeout = settings_.options.inactivity_timeout;
  if (turn_ || awaiting_tool_call_id_) {  // the agent is busy: the user is not idle
    last_activity_ = deps_.clock.Now();
    ScheduleInactivityCheck(timeout);
    return;
  }
  const auto idle =
      std::chrono::duration_cast<std::chrono::milliseconds>(deps_.clock.Now() - last_activity_);
  if (idle >= timeout) {
    FailLocked(1002, "transport_receive_timeout", "No user input was received in time");
    return;
  }
  ScheduleInactivityCheck(timeout - idle);
}

std::int64_t Session::UnixMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deps_.clock.Now().time_since_epoch())
      .count();
}

}  // namespace callgate::sim::agent
