#include "app/app.hpp"

#include "app/listen.hpp"
#include "app/system_routes.hpp"
#include "calls/idempotency.hpp"
#include "calls/migrations.hpp"
#include "calls/outbound.hpp"
#include "calls/refresher.hpp"
#include "calls/routes.hpp"
#include "calls/sqlite_ledger.hpp"
#include "calls/upstream_status_source.hpp"
#include "conversations/routes.hpp"
#include "core/clock.hpp"
#include "http/dispatcher.hpp"
#include "http/server.hpp"
#include "metrics/registry.hpp"
#include "net/asio_scheduler.hpp"
#include "net/runtime.hpp"
#include "store/database.hpp"
#include "upstream/elevenlabs.hpp"
#include "upstream/http_client.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#ifndef CALLGATE_VERSION
#define CALLGATE_VERSION "0.0.0"
#endif
#ifndef CALLGATE_GIT_COMMIT
#define CALLGATE_GIT_COMMIT "unknown"
#endif

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
  return std::string("callgate ") + CALLGATE_VERSION + " (commit " + CALLGATE_GIT_COMMIT + ", " +
         Compiler() + ")";
}

namespace {

// Every module's schema migrations (each owns a version range; see store/database.hpp).
std::vector<store::Migration> AllMigrations() {
  std::vector<store::Migration> all;
  for (const auto& migration : calls::Migrations())
    all.push_back(migration);
  return all;
}

}  // namespace

int Serve(const config::Config& config, const ServeOptions& options) {
  // Declared first, destroyed last: queued database tasks still read the clock.
  core::SystemClock clock;
  metrics::Registry registry;
  registry.AddInfo(
      "callgate_build_info", "Build information; the value is always 1",
      {{"version", CALLGATE_VERSION}, {"commit", CALLGATE_GIT_COMMIT}, {"compiler", Compiler()}});

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
                  .user_agent = std::string("callgate/") + CALLGATE_VERSION});
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
  calls::SqliteCallLedger ledger(*database, clock);
  calls::IdempotencyStore idempotency(*database, clock, scheduler);
  calls::UpstreamStatusSource status_source(elevenlabs);
  calls::StatusRefresher refresher(ledger, status_source, clock, scheduler);
  calls::OutboundCalls outbound(elevenlabs, ledger, idempotency, &refresher,
                                {.default_agent_id = config.elevenlabs_agent_id,
                                 .agent_phone_number_id = config.elevenlabs_agent_phone_number_id,
                                 .from_number = config.elevenlabs_from_number});

  http::Router router;
  AddSystemRoutes(router, registry, *database);
  outbound.AddRoutes(router);
  calls::AddLedgerRoutes(router, ledger);
  conversations::AddConversationRoutes(router, elevenlabs,
                                       {.public_base_url = config.public_base_url});
  http::Dispatcher dispatcher(
      router, {.default_max_body_bytes = config.max_body_bytes, .api_keys = config.api_keys});

  http::Server server(runtime, dispatcher, registry,
                      {.host = config.host,
                       .port = config.port,
                       .max_header_bytes = config.max_header_bytes,
                       .header_timeout = config.header_timeout,
                       .idle_timeout = config.idle_timeout,
                       .body_timeout = config.body_timeout,
                       .server_name = std::string("callgate/") + CALLGATE_VERSION});
  const auto port =
      ListenWithGracefulStop(runtime, server, options.port_file, config.shutdown_grace);
  if (!port) return 1;
  refresher.Start();
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
  refresher.Stop();
  idempotency.Stop();
  database->Close();
  spdlog::info("stopped");
  return 0;
}

}  // namespace callgate::app
