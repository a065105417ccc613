#include "app/app.hpp"

#include "app/listen.hpp"
#include "app/system_routes.hpp"
#include "http/dispatcher.hpp"
#include "http/server.hpp"
#include "metrics/registry.hpp"
#include "net/runtime.hpp"
#include "store/database.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

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

int Serve(const config::Config& config, const ServeOptions& options) {
  metrics::Registry registry;
  registry.AddInfo(
      "callgate_build_info", "Build information; the value is always 1",
      {{"version", CALLGATE_VERSION}, {"commit", CALLGATE_GIT_COMMIT}, {"compiler", Compiler()}});

  std::unique_ptr<store::Database> database;
  try {
    database = store::Database::Open(config.database_path);
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  spdlog::info("database {} open (schema version {})", config.database_path,
               database->schema_version());

  http::Router router;
  AddSystemRoutes(router, registry, *database);
  http::Dispatcher dispatcher(
      router, {.default_max_body_bytes = config.max_body_bytes, .api_keys = config.api_keys});

  net::Runtime runtime(config.io_threads);
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
  server.Start();
  const std::string shown_host =
      config.host.find(':') != std::string::npos ? "[" + config.host + "]" : config.host;
  spdlog::info("{} listening on http://{}:{} ({} I/O threads, {} environment)", VersionString(),
               shown_host, *port, runtime.io_threads(), config::ToString(config.environment));
  if (config.api_keys.empty()) {
    spdlog::warn(
        "API_KEYS is empty: routes that place calls or read data are open to anyone who can "
        "reach {}:{}",
        shown_host, *port);
  }
  runtime.Run();

  database->Close();
  spdlog::info("stopped");
  return 0;
}

}  // namespace callgate::app
