#include "app/app.hpp"

#include "app/adapters.hpp"
#include "app/build_info.hpp"
#include "app/component_metrics.hpp"
#include "app/listen.hpp"
#include "app/system_routes.hpp"
#include "audio/backends/monotonic_clock.hpp"
#include "audio/backends/spec.hpp"
#include "calls/idempotency.hpp"
#include "calls/migrations.hpp"
#include "calls/outbound.hpp"
#include "calls/refresher.hpp"
#include "calls/routes.hpp"
#include "calls/sqlite_ledger.hpp"
#include "calls/upstream_status_source.hpp"
#include "conversation/engine.hpp"
#include "conversation/transport.hpp"
#include "conversations/routes.hpp"
#include "core/clock.hpp"
#include "core/worker.hpp"
#include "dialer/routes.hpp"
#include "dialer/session_store.hpp"
#include "http/dispatcher.hpp"
#include "http/server.hpp"
#include "metrics/registry.hpp"
#include "net/asio_scheduler.hpp"
#include "net/post_batch.hpp"
#include "net/runtime.hpp"
#include "store/database.hpp"
#include "upstream/elevenlabs.hpp"
#include "upstream/http_client.hpp"
#include "webhook/banner.hpp"
#include "webhook/forwarder.hpp"
#include "webhook/inbox.hpp"
#include "webhook/reconciler.hpp"
#include "webhook/routes.hpp"
#include "webhook/signature.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <vector>

namespace callgate::app {
namespace {

std::string Compiler() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("g++ ") + __VERSION__;
#else
  return "unknown";
#endif
}

}  // namespace

std::string VersionString() {
  return std::string("callgate ") + BuildVersion() + " (commit " + BuildCommit() + ", " +
         Compiler() + ")";
}

namespace {

// Every module's schema migrations (each owns a version range; see store/database.hpp).
std::vector<store::Migration> AllMigrations() {
  std::vector<store::Migration> all;
  for (const auto& migration : calls::Migrations())
    all.push_back(migration);
  for (const auto& migration : webhook::Migrations())
    all.push_back(migration);
  for (const auto& migration : dialer::Migrations())
    all.push_back(migration);
  return all;
}

std::vector<std::string> SplitSecrets(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    const auto begin = item.find_first_not_of(" \t");
    const auto end = item.find_last_not_of(" \t");
    if (begin != std::string::npos) out.push_back(item.substr(begin, end - begin + 1));
  }
  return out;
}

webhook::BannerMode BannerModeFor(const config::Config& config) {
  if (config.webhook_banner == "off") return webhook::BannerMode::kQuiet;
  if (config.webhook_banner == "json") return webhook::BannerMode::kJson;
  if (config.webhook_banner == "text") return webhook::BannerMode::kText;
  return config.environment == config::Environment::kProduction ? webhook::BannerMode::kJson
                                                                : webhook::BannerMode::kText;
}

}  // namespace

int Serve(const config::Config& config, const ServeOptions& options) {
  if (config.elevenlabs_webhook_secret.empty()) {
    if (config.environment == config::Environment::kProduction && !config.webhook_allow_unsigned) {
      spdlog::critical(
          "ELEVENLABS_WEBHOOK_SECRET is empty in production: anyone could post fake call "
          "results. Set it (ElevenLabs shows it when you create the webhook) or set "
          "WEBHOOK_ALLOW_UNSIGNED=true to accept the risk");
      return 2;
    }
    spdlog::warn(
        "ELEVENLABS_WEBHOOK_SECRET is empty: POST /api/webhooks/elevenlabs accepts UNSIGNED "
        "events (stored as unverified). Set the secret ElevenLabs gave you for the webhook");
  }
  // Declared first, destroyed last: queued database tasks still read the clock.
  core::SystemClock clock;
  metrics::Registry registry;
  registry.AddInfo(
      "callgate_build_info", "Build information; the value is always 1",
      {{"version", BuildVersion()}, {"commit", BuildCommit()}, {"compiler", Compiler()}});

  std::unique_ptr<store::Database> database;
  try {
    const auto migrations = AllMigrations();
    database = store::Database::Open(config.database_path, migrations);
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  spdlog::info("database {} open (schema version {})", config.database_path,
               database->schema_version());

  net::Runtime runtime(config.io_threads);
  net::AsioScheduler scheduler(runtime);

  // ElevenLabs: every upstream call goes through this client.
  std::unique_ptr<upstream::HttpClient> http_client;
  try {
    http_client = upstream::MakeHttpClient(
        runtime, {.ca_file = config.elevenlabs_ca_file,
                  .user_agent = std::string("callgate/") + BuildVersion()});
  } catch (const std::exception& e) {
    spdlog::critical("ELEVENLABS_CA_FILE: {}", e.what());
    return 1;
  }
  upstream::ElevenLabsClient elevenlabs(*http_client, scheduler, clock,
                                        {.base_url = config.elevenlabs_base_url,
                                         .api_key = config.elevenlabs_api_key,
                                         .timeout = config.upstream_timeout});
  if (config.elevenlabs_api_key.empty()) {
    spdlog::warn("ELEVENLABS_API_KEY is not set: calls to {} will be refused (401)",
                 config.elevenlabs_base_url);
  }

  // Calls: the ledger, exactly-once keys, the background status refresher, the routes.
  calls::SqliteCallLedger sqlite_ledger(*database, clock);
  // Set once the inbox exists; calls that end by polling are then reconciled.
  std::atomic<webhook::Reconciler*> reconciler{nullptr};
  ReconcilingLedger ledger(sqlite_ledger, [&reconciler](std::string conversation_id) {
    if (auto* r = reconciler.load()) r->Ended(std::move(conversation_id));
  });
  calls::IdempotencyStore idempotency(*database, clock, scheduler);
  calls::UpstreamStatusSource status_source(elevenlabs);
  calls::StatusRefresher refresher(ledger, status_source, clock, scheduler);
  calls::OutboundCalls outbound(elevenlabs, ledger, idempotency, &refresher,
                                {.default_agent_id = config.elevenlabs_agent_id,
                                 .agent_phone_number_id = config.elevenlabs_agent_phone_number_id,
                                 .from_number = config.elevenlabs_from_number});

  // Post-call webhooks: the durable inbox feeds the ledger, the terminal and the forwarder.
  HttpTransport forward_transport(*http_client, std::chrono::seconds(10));
  webhook::Forwarder forwarder(*database, forward_transport, clock, scheduler,
                               {.targets = config.forward_webhook_urls,
                                .secret = config.forward_webhook_secret,
                                .max_attempts = config.forward_webhook_max_attempts,
                                .stop_timeout = std::chrono::seconds(1)});
  LedgerSink ledger_sink(ledger);
  std::string shown_url_base = config.public_base_url;
  webhook::BannerSink banner(
      BannerModeFor(config),
      [json = BannerModeFor(config) == webhook::BannerMode::kJson](const std::string& text) {
        if (json) {
          spdlog::info("{}", text);
        } else {
          std::fwrite(text.data(), 1, text.size(), stdout);
          std::fflush(stdout);
        }
      },
      [&shown_url_base](std::string_view conversation_id) {
        return shown_url_base.empty() ? std::string()
                                      : shown_url_base + "/api/conversations/" +
                                            std::string(conversation_id) + "/audio";
      });
  std::unique_ptr<webhook::Inbox> inbox;
  try {
    inbox = std::make_unique<webhook::Inbox>(
        *database, clock,
        webhook::InboxOptions{.data_dir = config.data_dir,
                              .replay_window = config.webhook_max_age + config.webhook_max_future,
                              .answer_scope =
                                  [](const std::function<void()>& answer_all) {
                                    const net::PostBatch batch;
                                    answer_all();
                                  }},
        std::vector<webhook::EventSink*>{&ledger_sink, &banner, &forwarder});
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  forwarder.Start();
  std::unique_ptr<webhook::Reconciler> reconciler_owner;
  if (config.reconcile_after.count() > 0) {
    reconciler_owner = std::make_unique<webhook::Reconciler>(
        *inbox, elevenlabs, clock, scheduler,
        webhook::ReconcilerOptions{.delay = config.reconcile_after});
    reconciler = reconciler_owner.get();
  }

  // Live conversations (the dialer connector): the session engine over WebSockets, with the
  // audio endpoints from AUDIO_INPUT / AUDIO_OUTPUT opened on a worker thread.
  const auto input_spec = audio::backends::ParseBackendSpec(config.audio_input.ToString());
  const auto output_spec = audio::backends::ParseBackendSpec(config.audio_output.ToString());
  if (!input_spec || !output_spec) {
    spdlog::critical("AUDIO_INPUT/AUDIO_OUTPUT: {}",
                     !input_spec ? input_spec.error().message : output_spec.error().message);
    return 2;
  }
  auto transports =
      conversation::MakeWebSocketTransportFactory(runtime, {.ca_file = config.elevenlabs_ca_file});
  core::Worker audio_worker("audio", 256);
  audio::backends::MonotonicClock audio_clock;
  const conversation::EngineOptions engine_options = EngineOptionsFrom(config);
  conversation::Engine engine({elevenlabs, *transports, audio_worker, clock, audio_clock},
                              engine_options);
  dialer::SessionStore session_store(*database);
  dialer::Dialer dialer_routes(engine, session_store,
                               {.default_agent_id = config.elevenlabs_agent_id,
                                .input = *input_spec,
                                .output = *output_spec});

  AddComponentMetrics(registry, {.inbox = *inbox,
                                 .reconciler = reconciler_owner.get(),
                                 .refresher = refresher,
                                 .engine = engine,
                                 .transports = *transports,
                                 .database = *database});

  http::Router router;
  AddSystemRoutes(router, registry, *database);
  dialer_routes.AddRoutes(router);
  outbound.AddRoutes(router);
  calls::AddLedgerRoutes(router, ledger);
  webhook::Inbox& inbox_ref = *inbox;
  conversations::AddConversationRoutes(
      router, elevenlabs,
      {.public_base_url = config.public_base_url,
       // Recordings that arrived as post_call_audio are served from disk, off the I/O threads.
       .local_recording = [&inbox_ref](std::string conversation_id,
                                       std::function<void(std::optional<std::string>)> done) {
         const auto path = inbox_ref.RecordingPath(conversation_id);
         if (!path) {
           done(std::nullopt);
           return;
         }
         const bool queued = inbox_ref.Offload([path = *path, done] {
           std::ifstream file(path, std::ios::binary);
           std::string bytes((std::istreambuf_iterator<char>(file)),
                             std::istreambuf_iterator<char>());
           done(file.good() || file.eof() ? std::optional<std::string>(std::move(bytes))
                                          : std::nullopt);
         });
         if (!queued) done(std::nullopt);
       }});
  webhook::AddWebhookRoutes(
      router, *inbox, clock,
      {.verify = {.secrets = SplitSecrets(config.elevenlabs_webhook_secret),
                  .max_age = config.webhook_max_age,
                  .max_future = config.webhook_max_future,
                  .allow_body_only = config.webhook_allow_body_only_signature},
       .max_body_bytes = config.webhook_max_body_bytes,
       .forwarder = &forwarder});
  http::Dispatcher dispatcher(
      router, {.default_max_body_bytes = config.max_body_bytes, .api_keys = config.api_keys});

  http::Server server(runtime, dispatcher, registry,
                      {.host = config.host,
                       .port = config.port,
                       .max_header_bytes = config.max_header_bytes,
                       .header_timeout = config.header_timeout,
                       .idle_timeout = config.idle_timeout,
                       .body_timeout = config.body_timeout,
                       .server_name = std::string("callgate/") + BuildVersion()});
  // Live conversations end (close 1000, files completed) after the server drained and before
  // the runtime stops.
  StopHooks stop_hooks{.before_stop = [&engine] { engine.Shutdown(std::chrono::seconds(5)); }};
  const auto port = ListenWithGracefulStop(runtime, server, options.port_file,
                                           config.shutdown_grace, &stop_hooks);
  if (!port) return 1;
  if (shown_url_base.empty()) {
    const std::string host = config.host == "0.0.0.0" || config.host == "::" ? "127.0.0.1"
                             : config.host.find(':') != std::string::npos ? "[" + config.host + "]"
                                                                          : config.host;
    shown_url_base = "http://" + host + ":" + std::to_string(*port);
  }
  refresher.Start();
  if (reconciler.load() != nullptr) {
    // Calls that ended by polling shortly before a restart: their reconciliation timers were
    // lost with the process. Checking again is harmless (the inbox is looked at first).
    for (const auto status : {calls::CallStatus::kDone, calls::CallStatus::kFailed}) {
      sqlite_ledger.List(
          {.status = status, .limit = 100},
          [&reconciler](calls::LedgerResult<calls::CallPage> page) {
            auto* r = reconciler.load();
            if (!page || r == nullptr) return;
            for (const auto& call : page->calls) {
              if (call.source == calls::UpdateSource::kPoll && call.conversation_id) {
                r->Ended(*call.conversation_id);
              }
            }
          });
    }
  }
  if (options.on_listening) options.on_listening(*port);
  server.Start();
  const std::string shown_host =
      config.host.find(':') != std::string::npos ? "[" + config.host + "]" : config.host;
  spdlog::info("{} listening on http://{}:{} ({} I/O threads, {} environment)", VersionString(),
               shown_host, *port, runtime.io_threads(), config::ToString(config.environment));
  spdlog::info("upstream: {}", config.elevenlabs_base_url);
  if (config.api_keys.empty()) {
    spdlog::warn(
        "API_KEYS is empty: routes that place calls or read data are open to anyone who can "
        "reach {}:{}",
        shown_host, *port);
  }
  runtime.Run();

  // Reverse order: background work first, then storage.
  engine.Shutdown(std::chrono::milliseconds(0));  // already done unless the stop was abrupt
  reconciler = nullptr;
  if (reconciler_owner) reconciler_owner->Stop();
  inbox->Stop();
  forwarder.Stop();
  refresher.Stop();
  idempotency.Stop();
  database->Close();
  spdlog::info("stopped");
  return 0;
}

}  // namespace callgate::app
