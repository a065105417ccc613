#include "metrics/latency.hpp"

#include <algorithm>
#include <cmath>

namespace callgate::metrics {
namespace {

// The bounds of the buckets after the first ([0, 100 ns]): 100 ns * 2^(i / 8), rounded up.
const std::array<std::int64_t, LatencyHistogram::kSubBuckets * LatencyHistogram::kDoublings>&
Bounds() {
  static const auto bounds = [] {
    std::array<std::int64_t, LatencyHistogram::kSubBuckets * LatencyHistogram::kDoublings> out{};
    for (std::size_t i = 0; i < out.size(); ++i) {
      const double exponent =
          static_cast<double>(i + 1) / static_cast<double>(LatencyHistogram::kSubBuckets);
      out[i] = static_cast<std::int64_t>(
          std::ceil(static_cast<double>(LatencyHistogram::kFirstBoundNs) * std::exp2(exponent)));
    }
    return out;
  }();
  return bounds;
}

}  // namespace

std::size_t LatencyHistogram::BucketOf(std::int64_t ns) {
  if (ns <= kFirstBoundNs) return 0;
  const auto& bounds = Bounds();
  const auto it = std::lower_bound(bounds.begin(), bounds.end(), ns);
  if (it == bounds.end()) return kBuckets - 1;
  return 1 + static_cast<std::size_t>(it - bounds.begin());
}

std::int64_t LatencyHistogram::UpperBoundNs(std::size_t bucket) {
  if (bucket == 0) return kFirstBoundNs;
  return Bounds()[std::min(bucket, kBuckets - 1) - 1];
}

void LatencyHistogram::Record(std::chrono::nanoseconds latency) {
  const std::int64_t ns = std::max<std::int64_t>(0, latency.count());
  buckets_[BucketOf(ns)].fetch_add(1, std::memory_order_relaxed);
  std::int64_t seen = max_ns_.load(std::memory_order_relaxed);
  while (ns > seen && !max_ns_.compare_exchange_weak(seen, ns, std::memory_order_relaxed)) {
  }
}

LatencySummary LatencyHistogram::Summarize() const {
  std::array<std::uint64_t, kBuckets> counts{};
  LatencySummary summary;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    counts[i] = buckets_[i].load(std::memory_order_relaxed);
    summary.count += counts[i];
  }
  if (summary.count == 0) return summary;
  const std::int64_t max_ns = max_ns_.load(std::memory_order_relaxed);
  const auto percentile = [&](double fraction) {
    // The smallest bucket whose cumulative count reaches ceil(fraction * count).
    const auto rank = static_cast<std::uint64_t>(
        std::max(1.0, std::ceil(fraction * static_cast<double>(summary.count))));
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      cumulative += counts[i];
      if (cumulative >= rank) {
        return std::chrono::nanoseconds(
            std::min(UpperBoundNs(i), std::max<std::int64_t>(max_ns, kFirstBoundNs)));
      }
    }
    return std::chrono::nanoseconds(max_ns);
  };
  summary.p50 = percentile(0.50);
  summary.p90 = percentile(0.90);
  summary.p99 = percentile(0.99);
  summary.p999 = percentile(0.999);
  summary.max = std::chrono::nanoseconds(max_ns);
  return summary;
}

void LatencyHistogram::Reset() {
  for (auto& bucket : buckets_)
    bucket.store(0, std::memory_order_relaxed);
  max_ns_.store(0, std::memory_order_relaxed);
}

}  // namespace callgate::metrics
