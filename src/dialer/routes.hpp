// The dialer connector (the second original service's contract): a dialer such as n8n starts a
// live conversation between this host's audio endpoints and an ElevenLabs agent.
//
//   POST   /webhook/initiate-call   {"agent_id"?, "session_id"?, "metadata"?,
//                                    "dynamic_variables"?, "conversation_config_override"?}
//          202 {"session_id","status":"starting","agent_id","metadata"} at once; the
//          conversation runs in the background (conversation::Engine). agent_id falls back to
//          ELEVENLABS_AGENT_ID; a session_id still running is a 409; a busy audio device is a
//          409 (only one session can own a physical device); too many sessions a 503.
//   GET    /webhook/sessions        {"sessions":[...]}: the running ones, then the most recent
//                                   ended ones (from the store)
//   GET    /webhook/sessions/{id}   status, conversation id, formats, times, audio seconds,
//                                   pings, transcript so far, end reason, metadata
//   DELETE /webhook/sessions/{id}   ends a running session cleanly (close 1000): 202
// Every route requires an API key (X-API-Key, checked in constant time by the dispatcher).
// Ended sessions are written to the store with their transcript.
#pragma once

#include "audio/backends/spec.hpp"
#include "conversation/engine.hpp"
#include "dialer/session_store.hpp"
#include "http/router.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace callgate::dialer {

struct DialerOptions {
  std::string default_agent_id;         // ELEVENLABS_AGENT_ID
  audio::backends::BackendSpec input;   // AUDIO_INPUT
  audio::backends::BackendSpec output;  // AUDIO_OUTPUT
  std::size_t max_metadata_bytes = 16 * 1024;
  std::size_t recent_sessions = 50;  // ended sessions listed by GET /webhook/sessions
};

class Dialer {
 public:
  Dialer(conversation::Engine& engine, SessionStore& store, DialerOptions options);
  void AddRoutes(http::Router& router);

 private:
  struct Running {
    std::shared_ptr<conversation::Session> session;
    boost::json::object metadata;
  };
  void Initiate(http::Request request, http::Responder responder);
  void List(http::Request request, http::Responder responder);
  void Show(http::Request request, http::Responder responder);
  void End(http::Request request, http::Responder responder);
  static boost::json::object Render(const conversation::SessionStats& stats,
                                    const boost::json::object& metadata);

  conversation::Engine& engine_;
  SessionStore& store_;
  DialerOptions options_;
  // Shared with on_done callbacks, which may run after a request handler returned.
  struct Shared {
    std::mutex mutex;
    std::map<std::string, Running> running;
  };
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
};

}  // namespace callgate::dialer
