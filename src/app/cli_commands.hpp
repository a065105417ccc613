// The one-shot CLI commands. `call` and `conversations` talk to ElevenLabs (or the simulator)
// directly with the service's configuration; `webhooks replay` asks a running gateway.
// Each returns the process exit code: 0 success, 1 the upstream or the gateway refused or
// failed (the reason is printed), 2 a usage error.
#pragma once

#include "config/config.hpp"

#include <string>
#include <vector>

namespace callgate::app {

struct CallCommand {
  std::string to_number;
  std::string prompt;
  std::string agent_id;                // empty = ELEVENLABS_AGENT_ID
  std::vector<std::string> variables;  // "name=value" dynamic variables
  bool wait = false;                   // follow the call to its end and print the transcript
  int wait_timeout_secs = 900;
  int poll_interval_ms = 2000;
};
int RunCall(const config::Config& config, const CallCommand& command);

struct ConversationsCommand {
  std::string action;  // "list" | "show" | "audio"
  std::string conversation_id;
  std::string output;  // audio: file to write ("-" = stdout); default <id>.mp3
  int page_size = 20;
  std::string cursor;
  std::string agent_id;
};
int RunConversations(const config::Config& config, const ConversationsCommand& command);

struct WebhooksCommand {
  std::string action;  // "replay"
  std::string event_id;
  std::string gateway_url;  // default http://127.0.0.1:<PORT>
};
int RunWebhooks(const config::Config& config, const WebhooksCommand& command);

// `callgate talk`: a live conversation with an agent from the terminal (microphone and
// speakers by default, or file:/null endpoints), the transcript shown as it happens; Ctrl-C
// ends it cleanly (close 1000).
struct TalkCommand {
  std::string agent_id;                // empty = ELEVENLABS_AGENT_ID
  std::string input;                   // empty = AUDIO_INPUT
  std::string output;                  // empty = AUDIO_OUTPUT
  std::vector<std::string> variables;  // "name=value"
};
int RunTalk(const config::Config& config, const TalkCommand& command);

// `callgate audio devices`: the PortAudio devices, for AUDIO_INPUT=device:NAME.
int RunAudioDevices();

}  // namespace callgate::app
