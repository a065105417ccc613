// A latency distribution that any number of threads record into without a lock: log-spaced
// buckets (8 per doubling, so a reported percentile is within 9% of the true value), from
// 100 ns up; larger values than the last bucket land in it. The conversation engine keeps one
// for the time from an `audio` event read off the socket to its samples being in the playback
// buffer (Engine::audio_event_latency()), the webhook inbox one for its group commits
// (Inbox::commit_latency()); /metrics shows their quantiles.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace callgate::metrics {

struct LatencySummary {
  std::uint64_t count = 0;
  // Upper bounds of the buckets holding the percentile (0 when count is 0); max is exact.
  std::chrono::nanoseconds p50{0}, p90{0}, p99{0}, p999{0}, max{0};
};

class LatencyHistogram {
 public:
  static constexpr std::size_t kSubBuckets = 8;  // per doubling
  static constexpr std::size_t kDoublings = 32;  // 100 ns * 2^32: about 7 minutes
  static constexpr std::int64_t kFirstBoundNs = 100;

  // Thread-safe, lock-free. Negative values count as 0.
  void Record(std::chrono::nanoseconds latency);
  // Thread-safe; a snapshot (records made meanwhile may be partly included).
  LatencySummary Summarize() const;
  void Reset();

  // The bucket of a latency and a bucket's upper bound (for tests).
  static std::size_t BucketOf(std::int64_t ns);
  static std::int64_t UpperBoundNs(std::size_t bucket);

 private:
  static constexpr std::size_t kBuckets = 1 + kSubBuckets * kDoublings;
  std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
  std::atomic<std::int64_t> max_ns_{0};
};

}  // namespace callgate::metrics
