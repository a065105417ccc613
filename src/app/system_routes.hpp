// Liveness, readiness and metrics: GET /healthz, GET /readyz, GET /metrics.
#pragma once

#include "http/router.hpp"

namespace callgate::metrics {
class Registry;
}  // namespace callgate::metrics
namespace callgate::store {
class Database;
}  // namespace callgate::store

namespace callgate::app {

// /readyz answers 200 only when the database answers a query on its own thread (the
// configuration was validated before the server started, so reaching here means it is valid).
void AddSystemRoutes(http::Router& router, metrics::Registry& registry, store::Database& database);

}  // namespace callgate::app
