#include "app/sim_app.hpp"

#include "app/listen.hpp"

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "http/dispatcher.hpp"
#include "http/server.hpp"
#include "metrics/registry.hpp"
#include "net/asio_scheduler.hpp"
#include "net/runtime.hpp"
#include "sim/agent/conversation_service.hpp"
#include "sim/simulator.hpp"
#include "sim/webhooks.hpp"
#include "upstream/http_client.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <thread>

namespace callgate::app {

namespace {

// "bad_signature" or "withhold=3"; false when malformed.
bool ParseWebhookFault(const std::string& text, sim::WebhookFaultMode& mode, int& count) {
  const auto equals = text.find('=');
  const auto parsed = sim::ParseWebhookFaultMode(text.substr(0, equals));
  count = 1;
  if (equals != std::string::npos) {
    try {
      count = std::stoi(text.substr(equals + 1));
    } catch (const std::exception&) {
      count = 0;
    }
  }
  if (!parsed || count < 1) return false;
  mode = *parsed;
  return true;
}

}  // namespace

// Everything `callgate sim` runs, built from the command; members in construction order.
struct SimulatorHost::Parts {
  core::ScaledClock clock;
  core::SystemClock wall_clock;  // webhook signatures carry real time, whatever the scale
  net::AsioScheduler scheduler;
  sim::Simulator simulator;
  sim::ConversationService conversations;
  std::unique_ptr<upstream::HttpClient> webhook_client;
  sim::WebhookSender webhooks;
  http::Router router;
  http::Dispatcher dispatcher;
  metrics::Registry registry;
  http::Server server;

  Parts(const SimCommand& command, net::Runtime& runtime, sim::SimOptions options,
        sim::WebhookOptions webhook, std::unique_ptr<upstream::HttpClient> client)
      : clock(command.time_scale),
        scheduler(runtime),
        simulator(WithClock(std::move(options)), clock, scheduler),
        conversations(
            simulator, scheduler,
            {.ping_interval = std::chrono::milliseconds(command.ping_interval_ms),
             .inactivity_timeout = std::chrono::milliseconds(command.inactivity_timeout_ms),
             .speech_speed = command.speech_speed,
             .turns = command.turns,
             .reject_with_http = command.reject_websocket_with_http,
             .interruption_with_reason = command.interruption_with_reason}),
        webhook_client(std::move(client)),
        webhooks(std::move(webhook), simulator, *webhook_client, scheduler, wall_clock),
        dispatcher(router, Routes()),
        server(runtime, dispatcher, registry,
               {.host = command.host,
                .port = command.port,
                .server_name = "uvicorn",  // as the real API answers
                .tls_cert_file = command.tls_cert_file,
                .tls_key_file = command.tls_key_file,
                .websocket_max_message_bytes = 16 * 1024 * 1024}) {}

  sim::SimOptions WithClock(sim::SimOptions options) {
    options.advance_clock = [this](std::chrono::seconds by) { clock.Advance(by); };
    return options;
  }

  // Registers every route (the dispatcher is built right after, from the finished router).
  http::DispatchOptions Routes() {
    simulator.AddRoutes(router);
    conversations.AddRoutes(router);
    webhooks.AddRoutes(router);
    return {.render_error = simulator.ErrorRenderer(), .observer = simulator.Observer()};
  }
};

std::unique_ptr<SimulatorHost> SimulatorHost::Create(const SimCommand& command,
                                                     net::Runtime& runtime, int& exit_code) {
  exit_code = 2;
  sim::SimOptions options;
  options.api_key = command.api_key;
  if (command.time_scale <= 0 || command.time_scale > 10'000) {
    std::fprintf(stderr, "callgate sim: --time-scale must be between 0 and 10000, got %g\n",
                 command.time_scale);
    return nullptr;
  }
  for (const std::string& callee : command.callees) {
    const auto equals = callee.find('=');
    try {
      if (equals == std::string::npos) throw std::invalid_argument("no '='");
      options.callees[callee.substr(0, equals)] =
          sim::Simulator::ParseCallee(callee.substr(equals + 1));
    } catch (const std::invalid_argument&) {
      std::fprintf(stderr,
                   "callgate sim: --callee expects NUMBER=answer|busy|no-answer|fail, got '%s'\n",
                   callee.c_str());
      return nullptr;
    }
  }
  options.time_scale = command.time_scale;
  options.ring_secs = command.ring_secs;
  options.talk_secs = command.talk_secs;
  options.processing_secs = command.processing_secs;
  if (command.ping_interval_ms < 10 || command.inactivity_timeout_ms < 10 ||
      command.speech_speed <= 0 || command.turns < 1) {
    std::fprintf(
        stderr,
        "callgate sim: --ping-interval-ms and --inactivity-timeout-ms must be at least 10, "
        "--speech-speed above 0 and --turns at least 1\n");
    return nullptr;
  }
  sim::WebhookOptions webhook{.url = command.webhook_url,
                              .secret = command.webhook_secret,
                              .transcript = false,
                              .audio = false,
                              .initiation_failure = false,
                              .retries = command.webhook_retries};
  for (const std::string& event : command.webhook_events) {
    if (event == "transcript") {
      webhook.transcript = true;
    } else if (event == "audio") {
      webhook.audio = true;
    } else if (event == "call_initiation_failure") {
      webhook.initiation_failure = true;
    } else {
      std::fprintf(stderr,
                   "callgate sim: --webhook-event expects transcript, audio or "
                   "call_initiation_failure, got '%s'\n",
                   event.c_str());
      return nullptr;
    }
  }
  std::vector<std::pair<sim::WebhookFaultMode, int>> faults;
  for (const std::string& text : command.webhook_faults) {
    sim::WebhookFaultMode mode{};
    int count = 0;
    if (!ParseWebhookFault(text, mode, count)) {
      std::fprintf(stderr,
                   "callgate sim: --webhook-fault expects "
                   "bad_signature|stale_timestamp|unsigned|withhold[=COUNT], got '%s'\n",
                   text.c_str());
      return nullptr;
    }
    faults.emplace_back(mode, count);
  }
  std::unique_ptr<upstream::HttpClient> client;
  try {
    client = upstream::MakeHttpClient(
        runtime, {.ca_file = command.webhook_ca_file, .user_agent = "ElevenLabs-Simulator"});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "callgate sim: %s\n", e.what());
    return nullptr;
  }
  auto host = std::unique_ptr<SimulatorHost>(new SimulatorHost());
  host->parts_ = std::make_unique<Parts>(command, runtime, std::move(options), std::move(webhook),
                                         std::move(client));
  for (const auto& [mode, count] : faults)
    host->parts_->webhooks.AddFault(mode, count);
  exit_code = 0;
  return host;
}

SimulatorHost::SimulatorHost() = default;
SimulatorHost::~SimulatorHost() {
  if (parts_) parts_->webhooks.Stop();
}

http::Server& SimulatorHost::server() {
  return parts_->server;
}

sim::WebhookSender& SimulatorHost::webhooks() {
  return parts_->webhooks;
}

void SimulatorHost::Start() {
  parts_->server.Start();
  parts_->webhooks.Start();
}

int RunSimulator(const SimCommand& command) {
  SimCommand effective = command;
  if (effective.api_key.empty()) {
    effective.api_key = core::NewId("sk_sim");
    // A key made up for this local simulator, not a user's secret: it has to be shown so that
    // a gateway can be pointed at the simulator.
    std::printf("simulator API key (generated): %s\n", effective.api_key.c_str());
    std::fflush(stdout);
  }
  const unsigned threads = command.io_threads != 0
                               ? command.io_threads
                               : std::max(1U, std::thread::hardware_concurrency());
  net::Runtime runtime(threads);
  int exit_code = 0;
  auto host = SimulatorHost::Create(effective, runtime, exit_code);
  if (!host) return exit_code;
  const auto port =
      ListenWithGracefulStop(runtime, host->server(), command.port_file, std::chrono::seconds(5));
  if (!port) return 1;
  host->Start();
  const char* scheme = host->server().tls() ? "https" : "http";
  spdlog::info(
      "ElevenLabs simulator listening on {}://{}:{} (time x{}); point callgate at it "
      "with ELEVENLABS_BASE_URL={}://{}:{}",
      scheme, command.host, *port, command.time_scale, scheme, command.host, *port);
  if (!command.webhook_url.empty()) {
    spdlog::info("post-call webhooks go to {} ({})", command.webhook_url,
                 command.webhook_secret.empty() ? "unsigned" : "signed");
  }
  runtime.Run();
  host.reset();
  return 0;
}

}  // namespace callgate::app
