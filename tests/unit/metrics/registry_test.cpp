#include "metrics/registry.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace callgate::metrics {
namespace {

TEST(Registry, RendersCountersWithHelpTypeAndLabels) {
  Registry registry;
  auto& requests = registry.AddCounter("x_requests_total", "Requests", {"route", "status"});
  requests.WithLabels({"/a", "200"}).Increment();
  requests.WithLabels({"/a", "200"}).Increment(2);
  requests.WithLabels({"/b\"q", "500"}).Increment();
  const std::string text = registry.Render();
  EXPECT_NE(text.find("# HELP x_requests_total Requests\n# TYPE x_requests_total counter\n"),
            std::string::npos);
  EXPECT_NE(text.find("x_requests_total{route=\"/a\",status=\"200\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("x_requests_total{route=\"/b\\\"q\",status=\"500\"} 1\n"), std::string::npos)
      << text;
}

TEST(Registry, GaugesAndInfo) {
  Registry registry;
  auto& open = registry.AddGauge("x_open", "Open things", {}).Get();
  open.Add(3);
  open.Add(-1);
  registry.AddInfo("x_build_info", "Build", {{"version", "1.2.3"}});
  const std::string text = registry.Render();
  EXPECT_NE(text.find("\nx_open 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("x_build_info{version=\"1.2.3\"} 1\n"), std::string::npos) << text;
}

TEST(Registry, HistogramBucketsAreCumulative) {
  Registry registry;
  auto& latency = registry.AddHistogram("x_seconds", "Latency", {"route"}, {0.1, 0.01, 1.0});
  auto& h = latency.WithLabels({"/a"});
  h.Observe(0.005);  // <= 0.01
  h.Observe(0.01);   // <= 0.01 (le is inclusive)
  h.Observe(0.5);    // <= 1
  h.Observe(7);      // +Inf
  EXPECT_EQ(h.CumulativeCounts(), (std::vector<std::uint64_t>{2, 2, 3, 4}));
  EXPECT_EQ(h.Count(), 4u);
  EXPECT_NEAR(h.Sum(), 7.515, 1e-6);
  const std::string text = registry.Render();
  EXPECT_NE(text.find("x_seconds_bucket{route=\"/a\",le=\"0.01\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("x_seconds_bucket{route=\"/a\",le=\"0.1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("x_seconds_bucket{route=\"/a\",le=\"1\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("x_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("x_seconds_count{route=\"/a\"} 4\n"), std::string::npos);
}

TEST(Registry, ConcurrentIncrementsAreNotLost) {
  Registry registry;
  auto& family = registry.AddCounter("x_total", "Total", {"t"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&family] {
      for (int i = 0; i < 10000; ++i)
        family.WithLabels({"same"}).Increment();
    });
  }
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(family.WithLabels({"same"}).Value(), 40000u);
}

}  // namespace
}  // namespace callgate::metrics
