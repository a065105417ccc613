#include "app/system_routes.hpp"

#include "http/dispatcher.hpp"
#include "metrics/registry.hpp"
#include "store/database.hpp"

#include <boost/json.hpp>

namespace callgate::app {

void AddSystemRoutes(http::Router& router, metrics::Registry& registry, store::Database& database) {
  router.Add("GET", "/healthz", [](http::Request, http::Responder responder) {
    responder.Send(http::Response::Json(200, {{"status", "ok"}}));
  });

  router.Add("GET", "/readyz", [&database](http::Request request, http::Responder responder) {
    const bool queued = database.Post([responder](sqlite3* db) {
      const bool ok = store::Database::Ping(db);
      responder.Send(http::Response::Json(
          ok ? 200 : 503, {{"status", ok ? "ready" : "not_ready"},
                           {"checks", {{"config", "ok"}, {"storage", ok ? "ok" : "failing"}}}}));
    });
    if (!queued) {
      http::Response busy = http::ErrorResponse(
          503, "storage_busy", "the database queue is full or closing", request.request_id);
      busy.headers.Set("Retry-After", "1");
      responder.Send(std::move(busy));
    }
  });

  router.Add("GET", "/metrics", [&registry](http::Request, http::Responder responder) {
    responder.Send(
        http::Response::Text(200, registry.Render(), "text/plain; version=0.0.4; charset=utf-8"));
  });
}

}  // namespace callgate::app
