// Reconciliation: ElevenLabs sends each post-call webhook once, so a delivery lost to an outage
// would leave a hole. When a call placed through callgate has ended upstream (the status
// refresher saw it) and, `delay` later, the inbox still has no post_call_transcription for its
// conversation, the Reconciler fetches the conversation (and its recording when it has one)
// through the API and stores them in the inbox as if the webhooks had arrived, with source
// "reconciliation" and verification "api". They then flow to the same sinks (ledger, banner,
// forwarding) as real webhooks. A webhook that arrives afterwards is a duplicate and is
// acknowledged, not stored twice.
//
// Thread-safe. Work waits on the injected scheduler; Stop() makes pending work do nothing.
#pragma once

#include "core/clock.hpp"
#include "core/scheduler.hpp"
#include "upstream/elevenlabs.hpp"
#include "webhook/inbox.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

namespace callgate::webhook {

struct ReconcilerOptions {
  std::chrono::milliseconds delay{std::chrono::minutes(5)};  // RECONCILE_AFTER_SECONDS
  bool fetch_audio = true;
  int max_attempts = 3;  // fetch failures are retried after `delay` again, this many times
};

struct ReconcilerStats {
  std::uint64_t scheduled = 0;
  std::uint64_t already_delivered = 0;  // the webhook had arrived: nothing to do
  std::uint64_t reconciled = 0;         // a transcription was fetched and stored
  std::uint64_t audio_reconciled = 0;
  std::uint64_t failed = 0;  // gave up after max_attempts
};

class Reconciler {
 public:
  Reconciler(Inbox& inbox, upstream::ElevenLabsApi& api, core::Clock& clock,
             core::Scheduler& scheduler, ReconcilerOptions options);
  ~Reconciler();
  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  // The conversation ended upstream: check it after `delay`.
  void Ended(std::string conversation_id);
  void Stop();
  ReconcilerStats stats() const;

 private:
  struct State;
  void Check(std::string conversation_id, int attempt);
  void Fetch(std::string conversation_id, int attempt);
  void Retry(std::string conversation_id, int attempt);

  Inbox& inbox_;
  upstream::ElevenLabsApi& api_;
  core::Clock& clock_;
  core::Scheduler& scheduler_;
  ReconcilerOptions options_;
  std::shared_ptr<State> state_;
};

}  // namespace callgate::webhook
