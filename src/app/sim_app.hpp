// `callgate sim`: the ElevenLabs simulator as a process of its own, on the same HTTP server as
// the gateway, with the real API's error shapes and `server: uvicorn`.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace callgate::net {
class Runtime;
}  // namespace callgate::net
namespace callgate::http {
class Server;
}  // namespace callgate::http
namespace callgate::sim {
class WebhookSender;
}  // namespace callgate::sim

namespace callgate::app {

struct SimCommand {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8100;
  std::string api_key;  // empty = generate one and print it
  std::string tls_cert_file;
  std::string tls_key_file;
  double time_scale = 1.0;
  std::vector<std::string> callees;  // "+15551234567=busy"
  int ring_secs = 3;
  int talk_secs = 20;
  int processing_secs = 5;
  unsigned io_threads = 0;  // 0 = one per core
  // The conversation WebSocket's scripted agent.
  int ping_interval_ms = 2000;
  int inactivity_timeout_ms = 60000;
  double speech_speed = 1.0;
  int turns = 3;
  bool reject_websocket_with_http = false;
  bool interruption_with_reason = false;
  std::string port_file;
  // Post-call webhooks (sim/webhooks.hpp). Also settable later through /_sim/webhooks/config.
  std::string webhook_url;
  std::string webhook_secret;
  std::vector<std::string> webhook_events{"transcript", "call_initiation_failure"};
  bool webhook_retries = false;
  std::string webhook_ca_file;  // trusted for an https:// webhook URL, besides the system store
  std::vector<std::string> webhook_faults;  // "bad_signature" or "withhold=3"
};

// The simulator's components on a given runtime: what `callgate sim` runs alone and what
// `callgate demo` runs next to the gateway.
class SimulatorHost {
 public:
  // nullptr after printing what is wrong with the command (exit_code 2). The API key must be
  // set (RunSimulator generates one when the flag is absent).
  static std::unique_ptr<SimulatorHost> Create(const SimCommand& command, net::Runtime& runtime,
                                               int& exit_code);
  ~SimulatorHost();
  SimulatorHost(const SimulatorHost&) = delete;
  SimulatorHost& operator=(const SimulatorHost&) = delete;

  http::Server& server();  // Listen() it, then Start() the host
  sim::WebhookSender& webhooks();
  void Start();  // the server and the webhook sender

 private:
  SimulatorHost();
  struct Parts;
  std::unique_ptr<Parts> parts_;
};

// Runs until SIGINT/SIGTERM. Returns 0 after a graceful stop, 1 when it cannot start, 2 for a
// bad option (printed).
int RunSimulator(const SimCommand& command);

}  // namespace callgate::app
