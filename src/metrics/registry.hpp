// A small Prometheus metrics registry: counters, gauges and histograms with labels, rendered in
// the Prometheus text exposition format (version 0.0.4).
//
// Families are created at start-up (by the composition root or a component's constructor) and
// live as long as the registry. Updating a metric is thread-safe and lock-free once the labelled
// child exists; looking a child up takes a mutex, so hot paths keep the child pointer.
// Components that keep counts of their own (the webhook inbox, the session engine) are read at
// rendering time instead, through AddCollected: nothing to update on their hot paths.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

namespace callgate::metrics {

using Labels = std::vector<std::string>;  // values, in the family's label-name order

class Counter {
 public:
  void Increment(std::uint64_t by = 1) { value_.fetch_add(by, std::memory_order_relaxed); }
  std::uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(std::int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void Add(std::int64_t by) { value_.fetch_add(by, std::memory_order_relaxed); }
  std::int64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

class Histogram {
 public:
  explicit Histogram(const std::vector<double>* bounds);
  void Observe(double value);
  // Cumulative counts per bound (+Inf last), the sum and the count.
  std::vector<std::uint64_t> CumulativeCounts() const;
  double Sum() const;
  std::uint64_t Count() const;

 private:
  const std::vector<double>* bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // one per bound, plus +Inf
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_nanos_{0};  // sum in units of 1e-9, exact for latencies
};

template <class Metric>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds = {})
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        bounds_(std::move(bounds)) {}

  // The child for these label values, created on first use. The reference stays valid.
  Metric& WithLabels(const Labels& values);
  Metric& Get() { return WithLabels({}); }

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  const std::vector<double>& bounds() const { return bounds_; }
  // Snapshot of (label values, metric) pairs for rendering.
  std::vector<std::pair<Labels, const Metric*>> Children() const;

 private:
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::map<Labels, std::unique_ptr<Metric>> children_;
};

// One value of a collected family (Registry::AddCollected).
struct Sample {
  Labels labels;  // in the family's label-name order
  double value = 0;
};

enum class Kind { kCounter, kGauge };

class Registry {
 public:
  Family<Counter>& AddCounter(std::string name, std::string help, std::vector<std::string> labels);
  Family<Gauge>& AddGauge(std::string name, std::string help, std::vector<std::string> labels);
  Family<Histogram>& AddHistogram(std::string name, std::string help,
                                  std::vector<std::string> labels, std::vector<double> bounds);
  // A gauge fixed at 1 whose labels carry information (e.g. callgate_build_info).
  void AddInfo(std::string name, std::string help,
               std::vector<std::pair<std::string, std::string>> labels);

  // A family whose samples `collect` returns at each Render(), called on the rendering thread
  // without the registry's lock held (it may take the component's own). What it reads must
  // outlive the rendering: the composition root registers components that outlive the server.
  void AddCollected(std::string name, std::string help, Kind kind,
                    std::vector<std::string> label_names,
                    std::function<std::vector<Sample>()> collect);
  // The same for a family of one value without labels.
  void AddCollectedValue(std::string name, std::string help, Kind kind,
                         std::function<double()> read);

  std::string Render() const;

 private:
  std::string RenderOwned() const;  // everything but the collected families

  struct Collected {
    std::string name;
    std::string help;
    Kind kind;
    std::vector<std::string> label_names;
    std::function<std::vector<Sample>()> collect;
  };

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Family<Counter>>> counters_;
  std::vector<std::unique_ptr<Family<Gauge>>> gauges_;
  std::vector<std::unique_ptr<Family<Histogram>>> histograms_;
  std::vector<std::pair<std::string, std::string>> infos_;  // rendered text per info metric
  std::vector<std::shared_ptr<const Collected>> collected_;
};

// Latency buckets in seconds, from 100 µs to 10 s.
const std::vector<double>& LatencyBuckets();

}  // namespace callgate::metrics
