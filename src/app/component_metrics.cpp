#include "app/component_metrics.hpp"

#include "calls/refresher.hpp"
#include "conversation/engine.hpp"
#include "metrics/registry.hpp"
#include "store/database.hpp"
#include "webhook/inbox.hpp"
#include "webhook/reconciler.hpp"

#include <chrono>
#include <functional>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace callgate::app {
namespace {

using metrics::Kind;
using metrics::Sample;

double Seconds(std::chrono::nanoseconds value) {
  return std::chrono::duration<double>(value).count();
}

double Count(std::uint64_t value) {
  return static_cast<double>(value);
}

// A gauge family of p50, p99 and the max (as quantile 1) of a latency distribution, in seconds.
void AddLatency(metrics::Registry& registry, std::string name, const std::string& help,
                std::function<metrics::LatencySummary()> read) {
  registry.AddCollected(
      std::move(name), help + ": quantiles (upper bounds of their histogram buckets; 1 is the max)",
      Kind::kGauge, {"quantile"}, [read = std::move(read)] {
        const metrics::LatencySummary latency = read();
        return std::vector<Sample>{{{"0.5"}, Seconds(latency.p50)},
                                   {{"0.99"}, Seconds(latency.p99)},
                                   {{"1"}, Seconds(latency.max)}};
      });
}

// One sample per (label value, count).
std::vector<Sample> ByLabel(std::initializer_list<std::pair<const char*, std::uint64_t>> counts) {
  std::vector<Sample> samples;
  samples.reserve(counts.size());
  for (const auto& [label, count] : counts)
    samples.push_back({{label}, Count(count)});
  return samples;
}

}  // namespace

void AddComponentMetrics(metrics::Registry& registry, const Components& components) {
  const webhook::Inbox& inbox = components.inbox;
  registry.AddCollected(
      "callgate_webhook_events_total",
      "Post-call webhook deliveries by outcome: stored (on disk before the 200), duplicate "
      "(already stored: 200, not stored again), busy (503), failed (500)",
      Kind::kCounter, {"result"}, [&inbox] {
        const webhook::InboxStats stats = inbox.stats();
        return ByLabel({{"stored", stats.stored},
                        {"duplicate", stats.duplicates},
                        {"busy", stats.busy},
                        {"failed", stats.failed}});
      });
  registry.AddCollectedValue("callgate_webhook_commits_total",
                             "Database transactions that stored webhook events (group commits)",
                             Kind::kCounter, [&inbox] { return Count(inbox.stats().batches); });
  registry.AddCollectedValue("callgate_webhook_events_waiting",
                             "Webhook deliveries accepted and not yet answered (being stored)",
                             Kind::kGauge, [&inbox] { return Count(inbox.stats().waiting); });
  if (const webhook::Reconciler* reconciler = components.reconciler) {
    registry.AddCollected(
        "callgate_webhook_reconciliations_total",
        "Ended calls checked for a missing post-call webhook, by outcome: already_delivered, "
        "reconciled (the transcription fetched and stored), audio_reconciled, failed",
        Kind::kCounter, {"result"}, [reconciler] {
          const webhook::ReconcilerStats stats = reconciler->stats();
          return ByLabel({{"already_delivered", stats.already_delivered},
                          {"reconciled", stats.reconciled},
                          {"audio_reconciled", stats.audio_reconciled},
                          {"failed", stats.failed}});
        });
  }

  const calls::StatusRefresher& refresher = components.refresher;
  registry.AddCollectedValue(
      "callgate_calls_followed", "Placed calls whose status is being refreshed from ElevenLabs now",
      Kind::kGauge, [&refresher] { return Count(refresher.stats().tracked); });
  registry.AddCollected("callgate_call_status_fetches_total",
                        "Conversation status fetches of the call refresher, by outcome (ok, error)",
                        Kind::kCounter, {"result"}, [&refresher] {
                          const calls::RefresherStats stats = refresher.stats();
                          return ByLabel({{"ok", stats.fetches}, {"error", stats.fetch_errors}});
                        });

  const conversation::Engine& engine = components.engine;
  registry.AddCollectedValue("callgate_sessions_active",
                             "Live conversations (dialer sessions) running now", Kind::kGauge,
                             [&engine] { return Count(engine.active()); });
  AddLatency(registry, "callgate_webhook_commit_seconds",
             "Group commits of webhook events, each from its BEGIN to its COMMIT's fsync "
             "returning (every webhook's 200 waits for one)",
             [&inbox] { return inbox.commit_latency(); });
  AddLatency(registry, "callgate_session_audio_event_seconds",
             "From an agent audio event read off the WebSocket to its samples in the playback "
             "buffer, over all sessions",
             [&engine] { return engine.audio_event_latency(); });
  const conversation::TransportFactory& transports = components.transports;
  AddLatency(registry, "callgate_session_tick_lateness_seconds",
             "How late the audio clock's rounds of ticks started (a busy or starved machine "
             "delays the user audio by as much)",
             [&transports] { return transports.tick_lateness(); });

  const store::Database& database = components.database;
  registry.AddCollected(
      "callgate_database_checkpoints_total",
      "SQLite WAL checkpoints: background (its own thread) or forced (inside a commit, when "
      "the WAL grew past its bound)",
      Kind::kCounter, {"where"}, [&database] {
        const store::Database::CheckpointStats stats = database.checkpoint_stats();
        return ByLabel({{"background", stats.background}, {"forced", stats.forced}});
      });
}

}  // namespace callgate::app
