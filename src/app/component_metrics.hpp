// The components' own counts on /metrics (metrics::Registry::AddCollected): read when the page
// is rendered, so the hot paths (the webhook inbox, the session engine) update nothing extra.
// Every component passed must outlive the server's last /metrics answer.
#pragma once

namespace callgate::calls {
class StatusRefresher;
}
namespace callgate::conversation {
class Engine;
class TransportFactory;
}  // namespace callgate::conversation
namespace callgate::metrics {
class Registry;
}
namespace callgate::store {
class Database;
}
namespace callgate::webhook {
class Inbox;
class Reconciler;
}  // namespace callgate::webhook

namespace callgate::app {

struct Components {
  const webhook::Inbox& inbox;
  const webhook::Reconciler* reconciler;  // null when reconciliation is off
  const calls::StatusRefresher& refresher;
  const conversation::Engine& engine;
  const conversation::TransportFactory& transports;
  const store::Database& database;
};

void AddComponentMetrics(metrics::Registry& registry, const Components& components);

}  // namespace callgate::app
