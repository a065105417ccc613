// `callgate demo`: the gateway wired to a built-in ElevenLabs simulator in the same process, so
// that a first run shows the whole flow with no account and nothing leaving the machine. The
// simulator gets a generated API key, the gateway a generated API key (printed) unless API_KEYS
// is set, post-call webhooks are signed with a generated secret and sent back to the gateway,
// and the exact commands to try each feature are printed.
#pragma once

#include "config/config.hpp"

#include <cstdint>
#include <string>

namespace callgate::app {

struct DemoOptions {
  double time_scale = 5.0;     // simulated seconds per real second: a call lasts ~6 s
  std::uint16_t sim_port = 0;  // 0 = any free port
  std::string port_file;       // the gateway's bound port, as for serve
};

// Runs until SIGINT/SIGTERM; the exit code as for Serve.
int RunDemo(config::Config config, const DemoOptions& options);

}  // namespace callgate::app
