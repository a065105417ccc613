#include "app/demo_app.hpp"

#include "app/app.hpp"
#include "app/sim_app.hpp"
#include "core/ids.hpp"
#include "http/server.hpp"
#include "net/runtime.hpp"
#include "sim/webhooks.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <thread>

namespace callgate::app {
namespace {

bool IsDefault(const config::Config& config, std::string_view name) {
  const auto it = config.sources.find(name);
  return it == config.sources.end() || it->second == config::Source::kDefault;
}

void PrintTryIt(const std::string& gateway, const std::string& key, const std::string& sim) {
  const std::string auth = "-H 'X-API-Key: " + key + "'";
  std::printf(
      "\n"
      "callgate demo: the gateway at %s, wired to a built-in ElevenLabs simulator at %s\n"
      "(no ElevenLabs account is used and nothing leaves this machine; calls last about 6 s).\n"
      "\n"
      "Gateway API key for this run (set API_KEYS to choose your own): %s\n"
      "\n"
      "Try it:\n"
      "  # place a call (the prompt reaches the agent as the variable `purpose`)\n"
      "  curl -sS -X POST %s/api/calls/outbound %s -H 'Content-Type: application/json' \\\n"
      "    -H 'Idempotency-Key: demo-1' \\\n"
      "    -d '{\"to_number\": \"+15551234567\", \"prompt\": \"Get parking ticket dismissed. "
      "Reference #12345.\"}'\n"
      "  # the call ledger (status moves queued -> initiated -> ... -> done)\n"
      "  curl -sS %s/api/calls %s\n"
      "  curl -sS %s/api/calls/CALL_ID %s\n"
      "  # the conversation: transcript and recording\n"
      "  curl -sS %s/api/conversations/CONVERSATION_ID %s\n"
      "  curl -sS -o call.mp3 %s/api/conversations/CONVERSATION_ID/audio %s\n"
      "  # a busy line and a callee who never answers\n"
      "  curl -sS -X POST %s/api/calls/outbound %s -H 'Content-Type: application/json' "
      "-d '{\"to_number\": \"+15550000486\", \"prompt\": \"busy\"}'\n"
      "  curl -sS -X POST %s/api/calls/outbound %s -H 'Content-Type: application/json' "
      "-d '{\"to_number\": \"+15550000404\", \"prompt\": \"no answer\"}'\n"
      "  # the signed post-call webhooks the simulator sent to the gateway\n"
      "  curl -sS %s/_sim/webhooks\n"
      "  # health and metrics\n"
      "  curl -sS %s/readyz; curl -sS %s/metrics\n"
      "\n"
      "With a real account: put ELEVENLABS_API_KEY, ELEVENLABS_AGENT_ID and\n"
      "ELEVENLABS_AGENT_PHONE_NUMBER_ID in .env (see env.example) and run `make run` again.\n"
      "Ctrl-C stops the demo.\n\n",
      gateway.c_str(), sim.c_str(), key.c_str(), gateway.c_str(), auth.c_str(), gateway.c_str(),
      auth.c_str(), gateway.c_str(), auth.c_str(), gateway.c_str(), auth.c_str(), gateway.c_str(),
      auth.c_str(), gateway.c_str(), auth.c_str(), gateway.c_str(), auth.c_str(), sim.c_str(),
      gateway.c_str(), gateway.c_str());
  std::fflush(stdout);
}

}  // namespace

int RunDemo(config::Config config, const DemoOptions& options) {
  SimCommand sim;
  sim.host = "127.0.0.1";
  sim.port = options.sim_port;
  sim.api_key = core::NewId("sk_demo");
  sim.time_scale = options.time_scale;
  sim.io_threads = 1;
  sim.callees = {"+15550000486=busy", "+15550000404=no-answer"};
  sim.webhook_secret = core::NewId("whsec_demo");
  sim.webhook_events = {"transcript", "audio", "call_initiation_failure"};

  net::Runtime sim_runtime(1);
  int exit_code = 0;
  auto host = SimulatorHost::Create(sim, sim_runtime, exit_code);
  if (!host) return exit_code;
  std::uint16_t sim_port = 0;
  try {
    sim_port = host->server().Listen();
  } catch (const std::exception& e) {
    spdlog::critical("demo: the simulator cannot listen: {}", e.what());
    return 1;
  }
  host->Start();
  std::thread sim_thread([&sim_runtime] { sim_runtime.Run(); });
  const std::string sim_url = "http://127.0.0.1:" + std::to_string(sim_port);

  // The gateway, pointed at the simulator. Real ElevenLabs settings are replaced, not used.
  config.elevenlabs_base_url = sim_url;
  config.elevenlabs_api_key = sim.api_key;
  config.elevenlabs_agent_id = "agent_sim_default";
  config.elevenlabs_agent_phone_number_id = "phnum_sim_twilio";
  config.elevenlabs_from_number.clear();
  config.elevenlabs_webhook_secret = sim.webhook_secret;
  config.elevenlabs_ca_file.clear();
  if (IsDefault(config, "HOST")) config.host = "127.0.0.1";
  if (IsDefault(config, "DATABASE_URL")) {
    // Demo calls are kept apart from a real ledger.
    const auto path = std::filesystem::path(config.database_path).parent_path() / "demo.db";
    config.database_path = path.string();
  }
  std::string key =
      config.api_keys.empty() ? core::NewId("gk_demo") : std::string("(your API_KEYS)");
  if (config.api_keys.empty()) config.api_keys.push_back(key);

  ServeOptions serve;
  serve.port_file = options.port_file;
  sim::WebhookSender& webhooks = host->webhooks();
  const std::string shown_host = config.host == "0.0.0.0" ? "127.0.0.1" : config.host;
  serve.on_listening = [&webhooks, &key, &sim_url, shown_host](std::uint16_t port) {
    const std::string gateway = "http://" + shown_host + ":" + std::to_string(port);
    webhooks.SetUrl(gateway + "/api/webhooks/elevenlabs");
    PrintTryIt(gateway, key, sim_url);
  };
  spdlog::info("demo: simulator on {} (time x{}), database {}", sim_url, options.time_scale,
               config.database_path);
  const int result = Serve(config, serve);

  sim_runtime.Stop();
  sim_thread.join();
  host.reset();
  return result;
}

}  // namespace callgate::app
