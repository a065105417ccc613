// callgate: the command-line entry point. Parses flags with CLI11, loads the configuration
// (flags > environment > .env > defaults) and hands over to app/.
//
// Exit codes: 0 success, 1 a component failed at run time, 2 a usage or configuration error.
#include "app/app.hpp"
#include "app/cli_commands.hpp"
#include "app/demo_app.hpp"
#include "app/sim_app.hpp"
#include "config/config.hpp"
#include "core/logging.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace {

using callgate::config::Config;
using callgate::config::ConfigError;

constexpr int kExitUsage = 2;

// Flags that set configuration variables. Empty strings mean "not given on the command line".
struct ConfigFlags {
  std::string env_file;
  std::string host;
  std::string port;
  std::string log_level;
  std::string environment;
  std::string database_url;
  std::string data_dir;
  std::string io_threads;
  bool insecure_no_auth = false;
  std::vector<std::string> assignments;  // --set NAME=VALUE

  void Register(CLI::App& command) {
    command.add_option("--env-file", env_file,
                       "Read settings from this .env file (default ./.env)");
    command.add_option("--host", host, "HOST: address to listen on");
    command.add_option("--port", port, "PORT: TCP port (0 = any free port)");
    command.add_option("--log-level", log_level,
                       "LOG_LEVEL: trace|debug|info|warning|error|critical");
    command.add_option("--environment", environment, "ENVIRONMENT: development|production");
    command.add_option("--database-url", database_url, "DATABASE_URL: sqlite:PATH");
    command.add_option("--data-dir", data_dir, "DATA_DIR: where recordings and other files go");
    command.add_option("--io-threads", io_threads, "IO_THREADS: I/O threads (0 = one per core)");
    command.add_flag("--insecure-no-auth", insecure_no_auth,
                     "INSECURE_NO_AUTH: serve with no API_KEYS on a public address");
    command.add_option("-s,--set", assignments, "Set any setting: --set NAME=VALUE (repeatable)");
  }

  // Returns an error for a malformed --set.
  std::optional<ConfigError> ToMap(std::map<std::string, std::string, std::less<>>& flags) const {
    for (const std::string& assignment : assignments) {
      const auto equals = assignment.find('=');
      if (equals == std::string::npos || equals == 0) {
        return ConfigError{"--set", "expected NAME=VALUE, got '" + assignment.substr(0, equals) +
                                        "...' (the value is not shown)"};
      }
      flags[assignment.substr(0, equals)] = assignment.substr(equals + 1);
    }
    auto put = [&flags](const char* name, const std::string& value) {
      if (!value.empty()) flags[name] = value;
    };
    put("HOST", host);
    put("PORT", port);
    put("LOG_LEVEL", log_level);
    put("ENVIRONMENT", environment);
    put("DATABASE_URL", database_url);
    put("DATA_DIR", data_dir);
    put("IO_THREADS", io_threads);
    if (insecure_no_auth) flags["INSECURE_NO_AUTH"] = "true";
    return std::nullopt;
  }
};

int ConfigFailure(const ConfigError& error) {
  std::fprintf(stderr, "callgate: configuration error: %s\n", error.ToString().c_str());
  return kExitUsage;
}

// Loads the configuration, or prints the one error and returns the exit code in `exit_code`.
std::optional<Config> LoadConfig(const ConfigFlags& flags, int& exit_code) {
  callgate::config::Inputs inputs;
  if (auto error = flags.ToMap(inputs.flags)) {
    exit_code = ConfigFailure(*error);
    return std::nullopt;
  }
  const bool explicit_file = !flags.env_file.empty();
  inputs.dotenv_path = explicit_file ? flags.env_file : ".env";
  auto dotenv = callgate::config::ReadDotenvFile(inputs.dotenv_path, explicit_file);
  if (dotenv.has_error()) {
    exit_code = ConfigFailure(dotenv.error());
    return std::nullopt;
  }
  if (dotenv->empty() && !explicit_file) inputs.dotenv_path.clear();
  inputs.dotenv = std::move(*dotenv);
  inputs.environment = callgate::config::CaptureEnvironment();
  auto config = callgate::config::Load(inputs);
  if (config.has_error()) {
    exit_code = ConfigFailure(config.error());
    return std::nullopt;
  }
  return std::move(*config);
}

spdlog::level::level_enum SpdlogLevel(callgate::config::LogLevel level) {
  using callgate::config::LogLevel;
  switch (level) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarning:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
    case LogLevel::kCritical:
      return spdlog::level::critical;
  }
  return spdlog::level::info;
}

int PrintConfig(const Config& config) {
  std::printf("# callgate configuration (.env file: %s)\n",
              config.dotenv_path.empty() ? "none" : config.dotenv_path.c_str());
  std::printf("%-34s %-40s %s\n", "SETTING", "VALUE", "SOURCE");
  for (const auto& setting : callgate::config::Describe(config)) {
    std::printf("%-34s %-40s %s\n", setting.name.c_str(),
                setting.value.empty() ? "\"\"" : setting.value.c_str(),
                std::string(callgate::config::ToString(setting.source)).c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{
      "callgate: a gateway between your automations, phones and desks and ElevenLabs "
      "Conversational AI agents"};
  cli.require_subcommand(1);
  cli.set_version_flag("--version", callgate::app::VersionString());

  ConfigFlags serve_flags;
  std::string port_file;
  bool loopback_if_no_keys = false;
  CLI::App* serve = cli.add_subcommand("serve", "Run the HTTP service");
  serve_flags.Register(*serve);
  serve->add_option("--port-file", port_file,
                    "Write the bound port to this file once listening (useful with --port 0)");
  serve->add_flag("--loopback-if-no-keys", loopback_if_no_keys,
                  "With no API_KEYS on a public HOST, listen on 127.0.0.1 instead of refusing "
                  "(used by `make run`)");
  bool quiet = false;
  serve->add_flag("-q,--quiet", quiet, "No webhook banners on the terminal (WEBHOOK_BANNER=off)");
  bool demo_if_unconfigured = false;
  serve->add_flag("--demo-if-no-elevenlabs-key", demo_if_unconfigured,
                  "With no ELEVENLABS_API_KEY, run `demo` (the built-in simulator) instead "
                  "(used by `make run`)");

  ConfigFlags demo_flags;
  callgate::app::DemoOptions demo_options;
  CLI::App* demo = cli.add_subcommand(
      "demo", "Run the gateway wired to a built-in ElevenLabs simulator (no account needed)");
  demo_flags.Register(*demo);
  demo->add_option("--time-scale", demo_options.time_scale, "Simulated seconds per real second")
      ->capture_default_str();
  demo->add_option("--sim-port", demo_options.sim_port, "The simulator's port (0 = any)")
      ->capture_default_str();
  demo->add_option("--port-file", demo_options.port_file,
                   "Write the gateway's bound port to this file once listening");

  ConfigFlags config_flags;
  CLI::App* config_cmd =
      cli.add_subcommand("config",
                         "Print the effective configuration and where each value "
                         "came from (secrets redacted)");
  config_flags.Register(*config_cmd);

  callgate::app::SimCommand sim_command;
  std::string sim_log_level = "info";
  CLI::App* sim = cli.add_subcommand(
      "sim", "Run the ElevenLabs simulator (the Conversational AI API, for development and tests)");
  sim->add_option("--host", sim_command.host, "Address to listen on")->capture_default_str();
  sim->add_option("--port", sim_command.port, "TCP port (0 = any free port)")
      ->capture_default_str();
  sim->add_option("--api-key", sim_command.api_key,
                  "The only xi-api-key accepted (default: generated and printed)");
  sim->add_option("--tls-cert", sim_command.tls_cert_file, "Serve HTTPS with this PEM certificate");
  sim->add_option("--tls-key", sim_command.tls_key_file, "... and this PEM private key");
  sim->add_option("--time-scale", sim_command.time_scale,
                  "Simulated seconds per real second (calls ring, talk and end faster)")
      ->capture_default_str();
  sim->add_option("--callee", sim_command.callees,
                  "How a number behaves: NUMBER=answer|busy|no-answer|fail (repeatable)");
  sim->add_option("--ring-secs", sim_command.ring_secs, "Simulated ringing time")
      ->capture_default_str();
  sim->add_option("--talk-secs", sim_command.talk_secs, "Simulated call length")
      ->capture_default_str();
  sim->add_option("--processing-secs", sim_command.processing_secs,
                  "Simulated post-call processing time")
      ->capture_default_str();
  sim->add_option("--io-threads", sim_command.io_threads, "I/O threads (0 = one per core)");
  sim->add_option("--port-file", sim_command.port_file,
                  "Write the bound port to this file once listening");
  sim->add_option("--ping-interval-ms", sim_command.ping_interval_ms,
                  "Conversation WebSocket: interval between ping events")
      ->capture_default_str();
  sim->add_option("--inactivity-timeout-ms", sim_command.inactivity_timeout_ms,
                  "Conversation WebSocket: no user input for this long closes with 1002")
      ->capture_default_str();
  sim->add_option("--speech-speed", sim_command.speech_speed,
                  "Agent audio pace relative to real time (2 = twice as fast)")
      ->capture_default_str();
  sim->add_option("--turns", sim_command.turns, "Agent replies before it ends the call")
      ->capture_default_str();
  sim->add_flag("--reject-websocket-with-http", sim_command.reject_websocket_with_http,
                "Refuse bad WebSocket authorisation with HTTP 403 instead of close 1008");
  sim->add_flag("--interruption-with-reason", sim_command.interruption_with_reason,
                "Send interruption_event as {reason} (an older documented form)");
  sim->add_option("--webhook-url", sim_command.webhook_url,
                  "POST post-call webhooks here when conversations end");
  sim->add_option("--webhook-secret", sim_command.webhook_secret,
                  "HMAC secret for ElevenLabs-Signature (or CALLGATE_SIM_WEBHOOK_SECRET)")
      ->envname("CALLGATE_SIM_WEBHOOK_SECRET");
  sim->add_option("--webhook-event", sim_command.webhook_events,
                  "Events to send: transcript, audio, call_initiation_failure (repeatable)")
      ->capture_default_str();
  sim->add_flag("--webhook-retries", sim_command.webhook_retries,
                "Retry failed transcription webhooks on the documented schedule");
  sim->add_option("--webhook-ca-file", sim_command.webhook_ca_file,
                  "PEM CA bundle to trust for an https:// webhook URL");
  sim->add_option("--webhook-fault", sim_command.webhook_faults,
                  "bad_signature|stale_timestamp|unsigned|withhold[=COUNT] for the next events");
  sim->add_option("--log-level", sim_log_level, "trace|debug|info|warning|error|critical")
      ->capture_default_str();

  ConfigFlags call_flags;
  callgate::app::CallCommand call_command;
  CLI::App* call = cli.add_subcommand(
      "call", "Place an outbound call through ElevenLabs and print its conversation id");
  call_flags.Register(*call);
  call->add_option("to_number", call_command.to_number, "E.164 number, e.g. +15551234567")
      ->required();
  call->add_option("prompt", call_command.prompt,
                   "What the call is about (dynamic variable purpose)")
      ->required();
  call->add_option("--agent-id", call_command.agent_id, "Agent (default ELEVENLABS_AGENT_ID)");
  call->add_option("--var", call_command.variables, "Dynamic variable NAME=VALUE (repeatable)");
  call->add_flag("--wait", call_command.wait,
                 "Follow the call to its end and print the transcript");
  call->add_option("--wait-timeout", call_command.wait_timeout_secs, "Seconds --wait waits at most")
      ->capture_default_str();

  ConfigFlags conversations_flags;
  callgate::app::ConversationsCommand conversations_command;
  CLI::App* conversations =
      cli.add_subcommand("conversations", "List, show or download ElevenLabs conversations");
  conversations_flags.Register(*conversations);
  conversations->require_subcommand(1);
  CLI::App* conversations_list = conversations->add_subcommand("list", "Recent conversations");
  conversations_list->add_option("--page-size", conversations_command.page_size, "1 to 100")
      ->capture_default_str();
  conversations_list->add_option("--cursor", conversations_command.cursor, "Next page's cursor");
  conversations_list->add_option("--agent-id", conversations_command.agent_id, "Only this agent");
  CLI::App* conversations_show =
      conversations->add_subcommand("show", "A conversation and its readable transcript");
  conversations_show->add_option("id", conversations_command.conversation_id)->required();
  CLI::App* conversations_audio =
      conversations->add_subcommand("audio", "Download a conversation's recording (MP3)");
  conversations_audio->add_option("id", conversations_command.conversation_id)->required();
  conversations_audio->add_option("-o,--output", conversations_command.output,
                                  "File to write (default ID.mp3; - for stdout)");

  ConfigFlags webhooks_flags;
  callgate::app::WebhooksCommand webhooks_command;
  CLI::App* webhooks = cli.add_subcommand("webhooks", "Stored post-call webhook events");
  webhooks_flags.Register(*webhooks);
  webhooks->require_subcommand(1);
  CLI::App* webhooks_replay = webhooks->add_subcommand(
      "replay", "Forward a stored event again to FORWARD_WEBHOOK_URLS (asks the running gateway)");
  webhooks_replay->add_option("id", webhooks_command.event_id, "Event id (evt_...)")->required();
  webhooks_replay->add_option("--gateway", webhooks_command.gateway_url,
                              "Gateway base URL (default http://127.0.0.1:PORT)");

  ConfigFlags talk_flags;
  callgate::app::TalkCommand talk_command;
  CLI::App* talk = cli.add_subcommand(
      "talk", "Talk with an agent from this terminal (microphone and speakers, or files)");
  talk_flags.Register(*talk);
  talk->add_option("--agent-id", talk_command.agent_id, "Agent (default ELEVENLABS_AGENT_ID)");
  talk->add_option("--input", talk_command.input,
                   "device, device:NAME, file:PATH or null (default AUDIO_INPUT)");
  talk->add_option("--output", talk_command.output,
                   "device, device:NAME, file:PATH or null (default AUDIO_OUTPUT)");
  talk->add_option("--var", talk_command.variables, "Dynamic variable NAME=VALUE (repeatable)");

  CLI::App* audio_cmd = cli.add_subcommand("audio", "Audio devices");
  audio_cmd->require_subcommand(1);
  CLI::App* audio_devices =
      audio_cmd->add_subcommand("devices", "List the audio devices (for AUDIO_INPUT=device:NAME)");

  cli.add_subcommand("version", "Print the version")->callback([] {
    std::printf("%s\n", callgate::app::VersionString().c_str());
  });

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = cli.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }

  callgate::core::SetupLogging(spdlog::level::info, callgate::core::LogFormat::kText);
  int exit_code = 0;

  if (config_cmd->parsed()) {
    auto config = LoadConfig(config_flags, exit_code);
    return config ? PrintConfig(*config) : exit_code;
  }

  if (sim->parsed()) {
    const auto level = spdlog::level::from_str(sim_log_level == "warning" ? "warn" : sim_log_level);
    if (level == spdlog::level::off && sim_log_level != "off") {
      std::fprintf(stderr, "callgate sim: unknown --log-level '%s'\n", sim_log_level.c_str());
      return kExitUsage;
    }
    callgate::core::SetupLogging(level, callgate::core::LogFormat::kText);
    return callgate::app::RunSimulator(sim_command);
  }

  if (talk->parsed()) {
    auto config = LoadConfig(talk_flags, exit_code);
    if (!config) return exit_code;
    callgate::core::SetupLogging(spdlog::level::warn, callgate::core::LogFormat::kText);
    return callgate::app::RunTalk(*config, talk_command);
  }
  if (audio_devices->parsed()) return callgate::app::RunAudioDevices();

  if (call->parsed()) {
    auto config = LoadConfig(call_flags, exit_code);
    if (!config) return exit_code;
    callgate::core::SetupLogging(spdlog::level::warn, callgate::core::LogFormat::kText);
    return callgate::app::RunCall(*config, call_command);
  }
  if (conversations->parsed()) {
    auto config = LoadConfig(conversations_flags, exit_code);
    if (!config) return exit_code;
    callgate::core::SetupLogging(spdlog::level::warn, callgate::core::LogFormat::kText);
    conversations_command.action = conversations_list->parsed()   ? "list"
                                   : conversations_show->parsed() ? "show"
                                                                  : "audio";
    return callgate::app::RunConversations(*config, conversations_command);
  }
  if (webhooks->parsed()) {
    auto config = LoadConfig(webhooks_flags, exit_code);
    if (!config) return exit_code;
    callgate::core::SetupLogging(spdlog::level::warn, callgate::core::LogFormat::kText);
    webhooks_command.action = "replay";
    return callgate::app::RunWebhooks(*config, webhooks_command);
  }

  if (demo->parsed()) {
    auto config = LoadConfig(demo_flags, exit_code);
    if (!config) return exit_code;
    if (demo_options.time_scale <= 0 || demo_options.time_scale > 10'000) {
      std::fprintf(stderr, "callgate demo: --time-scale must be between 0 and 10000\n");
      return kExitUsage;
    }
    callgate::core::SetupLogging(SpdlogLevel(config->log_level), callgate::core::LogFormat::kText);
    return callgate::app::RunDemo(std::move(*config), demo_options);
  }

  if (serve->parsed()) {
    if (quiet) serve_flags.assignments.push_back("WEBHOOK_BANNER=off");
    auto config = LoadConfig(serve_flags, exit_code);
    if (!config) return exit_code;
    if (demo_if_unconfigured && config->elevenlabs_api_key.empty()) {
      callgate::core::SetupLogging(SpdlogLevel(config->log_level),
                                   callgate::core::LogFormat::kText);
      spdlog::info(
          "no ELEVENLABS_API_KEY configured: starting the demo with the built-in "
          "simulator");
      return callgate::app::RunDemo(std::move(*config), {.port_file = port_file});
    }
    if (auto insecure = callgate::config::CheckServeSecurity(*config)) {
      if (!loopback_if_no_keys) {
        std::fprintf(stderr, "callgate: refusing to start: %s\n", insecure->ToString().c_str());
        return kExitUsage;
      }
      config->host = "127.0.0.1";
    }
    callgate::core::SetupLogging(SpdlogLevel(config->log_level),
                                 config->environment == callgate::config::Environment::kProduction
                                     ? callgate::core::LogFormat::kJson
                                     : callgate::core::LogFormat::kText);
    if (loopback_if_no_keys && config->host == "127.0.0.1" && config->api_keys.empty()) {
      spdlog::warn(
          "no API_KEYS configured: listening on 127.0.0.1 only; set API_KEYS to serve "
          "other hosts");
    }
    return callgate::app::Serve(*config, {.port_file = port_file});
  }
  return 0;
}
