// LatencyHistogram: the distribution behind the latency quantiles on /metrics.
#include "metrics/latency.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace callgate::metrics {
namespace {

using namespace std::chrono_literals;

TEST(LatencyHistogramTest, EmptySummaryIsZero) {
  LatencyHistogram histogram;
  const auto summary = histogram.Summarize();
  EXPECT_EQ(summary.count, 0u);
  EXPECT_EQ(summary.p50, 0ns);
  EXPECT_EQ(summary.max, 0ns);
}

TEST(LatencyHistogramTest, BucketsAreLogSpacedAndContainTheirValues) {
  EXPECT_EQ(LatencyHistogram::BucketOf(0), 0u);
  EXPECT_EQ(LatencyHistogram::BucketOf(100), 0u);
  EXPECT_EQ(LatencyHistogram::BucketOf(101), 1u);
  EXPECT_EQ(LatencyHistogram::UpperBoundNs(LatencyHistogram::kSubBuckets), 200);  // a doubling
  for (std::int64_t ns : {1, 150, 999, 1000, 12'345, 1'000'000, 987'654'321}) {
    const auto bucket = LatencyHistogram::BucketOf(ns);
    EXPECT_GE(LatencyHistogram::UpperBoundNs(bucket), ns) << ns;
    if (bucket > 0) {
      EXPECT_LT(LatencyHistogram::UpperBoundNs(bucket - 1), ns) << ns;
    }
    // Within 9% (8 buckets per doubling).
    EXPECT_LE(static_cast<double>(LatencyHistogram::UpperBoundNs(bucket)),
              std::max(100.0, static_cast<double>(ns) * 1.091))
        << ns;
  }
  // Beyond the last bound: the last bucket.
  EXPECT_EQ(LatencyHistogram::BucketOf(std::int64_t{1} << 62),
            LatencyHistogram::BucketOf(std::int64_t{1} << 61));
}

TEST(LatencyHistogramTest, PercentilesAndMax) {
  LatencyHistogram histogram;
  for (int i = 1; i <= 1000; ++i)
    histogram.Record(std::chrono::microseconds(i));  // 1 us .. 1 ms, uniform
  const auto summary = histogram.Summarize();
  EXPECT_EQ(summary.count, 1000u);
  EXPECT_EQ(summary.max, 1ms);
  const auto near = [](std::chrono::nanoseconds value, std::chrono::nanoseconds expected) {
    const double ratio = static_cast<double>(value.count()) / static_cast<double>(expected.count());
    return ratio >= 1.0 && ratio <= 1.1;  // the bucket's upper bound: at most 9% above
  };
  EXPECT_TRUE(near(summary.p50, 500us)) << summary.p50.count();
  EXPECT_TRUE(near(summary.p90, 900us)) << summary.p90.count();
  EXPECT_TRUE(near(summary.p99, 990us)) << summary.p99.count();
  EXPECT_LE(summary.p999, summary.max);
  EXPECT_LE(summary.p50, summary.p90);
  EXPECT_LE(summary.p90, summary.p99);
}

TEST(LatencyHistogramTest, NegativeCountsAsZeroAndResetClears) {
  LatencyHistogram histogram;
  histogram.Record(-5ns);
  auto summary = histogram.Summarize();
  EXPECT_EQ(summary.count, 1u);
  EXPECT_EQ(summary.max, 0ns);
  histogram.Reset();
  EXPECT_EQ(histogram.Summarize().count, 0u);
}

TEST(LatencyHistogramTest, ConcurrentRecordsAreAllCounted) {
  LatencyHistogram histogram;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&histogram, t] {
      for (int i = 0; i < 10'000; ++i)
        histogram.Record(std::chrono::nanoseconds(100 * (t + 1) + i));
    });
  }
  for (auto& thread : threads)
    thread.join();
  const auto summary = histogram.Summarize();
  EXPECT_EQ(summary.count, 40'000u);
  EXPECT_EQ(summary.max, std::chrono::nanoseconds(400 + 9'999));
}

}  // namespace
}  // namespace callgate::metrics
