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

TEST(Registry, CollectedFamiliesAreReadAtEachRender) {
  Registry registry;
  std::uint64_t stored = 3;
  double pending = 0.5;
  registry.AddCollected("x_events_total", "Events by result", Kind::kCounter, {"result"}, [&] {
    return std::vector<Sample>{{{"stored"}, static_cast<double>(stored)}, {{"busy"}, 0}};
  });
  registry.AddCollectedValue("x_pending", "Pending", Kind::kGauge, [&] { return pending; });
  std::string text = registry.Render();
  EXPECT_NE(text.find("# HELP x_events_total Events by result\n# TYPE x_events_total counter\n"
                      "x_events_total{result=\"stored\"} 3\nx_events_total{result=\"busy\"} 0\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE x_pending gauge\nx_pending 0.5\n"), std::string::npos) << text;
  stored = 1'234'567'891;  // whole numbers in full, not rounded to 9 digits
  pending = 2;
  text = registry.Render();
  EXPECT_NE(text.find("x_events_total{result=\"stored\"} 1234567891\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nx_pending 2\n"), std::string::npos) << text;
}

TEST(Registry, ACollectorMayUseTheRegistry) {
  // Called without the registry's lock: a collector that takes it (here, by adding a family)
  // must not deadlock.
  Registry registry;
  int calls = 0;
  registry.AddCollected("x_inner", "Inner", Kind::kGauge, {}, [&] {
    if (++calls == 1) registry.AddGauge("x_added", "Added by the collector", {});
    return std::vector<Sample>{{{}, 1}};
  });
  const std::string text = registry.Render();
  EXPECT_EQ(calls, 1);
  EXPECT_NE(text.find("\nx_inner 1\n"), std::string::npos) << text;
  EXPECT_NE(registry.Render().find("\nx_added 0\n"), std::string::npos);
}

}  // namespace
}  // namespace callgate::metrics
