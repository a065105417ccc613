#include "metrics/registry.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace callgate::metrics {
namespace {

std::string EscapeLabel(const std::string& value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string LabelText(const std::vector<std::string>& names, const Labels& values,
                      const std::string& extra_name = {}, const std::string& extra_value = {}) {
  std::string text;
  for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) {
    text += text.empty() ? "{" : ",";
    text += names[i] + "=\"" + EscapeLabel(values[i]) + "\"";
  }
  if (!extra_name.empty()) {
    text += text.empty() ? "{" : ",";
    text += extra_name + "=\"" + extra_value + "\"";
  }
  if (!text.empty()) text += "}";
  return text;
}

std::string FormatDouble(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Whole numbers (collected counters) in full: %.9g would round 1234567891 to 1.23456789e+09.
  if (std::nearbyint(value) == value && std::fabs(value) < 9.0e15) {
    return std::to_string(static_cast<long long>(value));
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", value);
  return buf;
}

void Header(std::string& out, const std::string& name, const std::string& help, const char* type) {
  out += "# HELP " + name + " " + help + "\n";
  out += "# TYPE " + name + " " + type + "\n";
}

template <class Metric>
void Header(std::string& out, const Family<Metric>& family, const char* type) {
  Header(out, family.name(), family.help(), type);
}

}  // namespace

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), buckets_(new std::atomic<std::uint64_t>[bounds->size() + 1]) {
  for (std::size_t i = 0; i <= bounds_->size(); ++i)
    buckets_[i] = 0;
}

void Histogram::Observe(double value) {
  const auto it = std::lower_bound(bounds_->begin(), bounds_->end(), value);
  buckets_[static_cast<std::size_t>(it - bounds_->begin())].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  const double nanos = value * 1e9;
  sum_nanos_.fetch_add(nanos > 0 ? static_cast<std::uint64_t>(nanos) : 0,
                       std::memory_order_relaxed);
}

std::vector<std::uint64_t> Histogram::CumulativeCounts() const {
  std::vector<std::uint64_t> counts(bounds_->size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_->size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    counts[i] = running;
  }
  return counts;
}

double Histogram::Sum() const {
  return static_cast<double>(sum_nanos_.load(std::memory_order_relaxed)) / 1e9;
}
std::uint64_t Histogram::Count() const {
  return count_.load(std::memory_order_relaxed);
}

template <class Metric>
Metric& Family<Metric>::WithLabels(const Labels& values) {
  std::lock_guard lock(mutex_);
  auto& slot = children_[values];
  if (!slot) {
    if constexpr (std::is_same_v<Metric, Histogram>) {
      slot = std::make_unique<Histogram>(&bounds_);
    } else {
      slot = std::make_unique<Metric>();
    }
  }
  return *slot;
}

template <class Metric>
std::vector<std::pair<Labels, const Metric*>> Family<Metric>::Children() const {
  std::lock_guard lock(mutex_);
  std::vector<std::pair<Labels, const Metric*>> out;
  out.reserve(children_.size());
  for (const auto& [labels, metric] : children_)
    out.emplace_back(labels, metric.get());
  return out;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

Family<Counter>& Registry::AddCounter(std::string name, std::string help,
                                      std::vector<std::string> labels) {
  std::lock_guard lock(mutex_);
  counters_.push_back(
      std::make_unique<Family<Counter>>(std::move(name), std::move(help), std::move(labels)));
  return *counters_.back();
}

Family<Gauge>& Registry::AddGauge(std::string name, std::string help,
                                  std::vector<std::string> labels) {
  std::lock_guard lock(mutex_);
  gauges_.push_back(
      std::make_unique<Family<Gauge>>(std::move(name), std::move(help), std::move(labels)));
  return *gauges_.back();
}

Family<Histogram>& Registry::AddHistogram(std::string name, std::string help,
                                          std::vector<std::string> labels,
                                          std::vector<double> bounds) {
  std::sort(bounds.begin(), bounds.end());
  std::lock_guard lock(mutex_);
  histograms_.push_back(std::make_unique<Family<Histogram>>(std::move(name), std::move(help),
                                                            std::move(labels), std::move(bounds)));
  return *histograms_.back();
}

void Registry::AddInfo(std::string name, std::string help,
                       std::vector<std::pair<std::string, std::string>> labels) {
  std::vector<std::string> names;
  Labels values;
  for (auto& [k, v] : labels) {
    names.push_back(k);
    values.push_back(v);
  }
  std::string text = "# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n" + name +
                     LabelText(names, values) + " 1\n";
  std::lock_guard lock(mutex_);
  infos_.emplace_back(std::move(name), std::move(text));
}

void Registry::AddCollected(std::string name, std::string help, Kind kind,
                            std::vector<std::string> label_names,
                            std::function<std::vector<Sample>()> collect) {
  auto collected = std::make_shared<const Collected>(Collected{
      std::move(name), std::move(help), kind, std::move(label_names), std::move(collect)});
  std::lock_guard lock(mutex_);
  collected_.push_back(std::move(collected));
}

void Registry::AddCollectedValue(std::string name, std::string help, Kind kind,
                                 std::function<double()> read) {
  AddCollected(std::move(name), std::move(help), kind, {}, [read = std::move(read)] {
    return std::vector<Sample>{{{}, read()}};
  });
}

std::string Registry::Render() const {
  std::string out = RenderOwned();
  std::vector<std::shared_ptr<const Collected>> collected;
  {
    std::lock_guard lock(mutex_);
    collected = collected_;
  }
  for (const auto& family : collected) {
    Header(out, family->name, family->help, family->kind == Kind::kCounter ? "counter" : "gauge");
    for (const Sample& sample : family->collect()) {
      out += family->name + LabelText(family->label_names, sample.labels) + " " +
             FormatDouble(sample.value) + "\n";
    }
  }
  return out;
}

std::string Registry::RenderOwned() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, text] : infos_)
    out += text;
  for (const auto& family : counters_) {
    Header(out, *family, "counter");
    for (const auto& [labels, counter] : family->Children()) {
      out += family->name() + LabelText(family->label_names(), labels) + " " +
             std::to_string(counter->Value()) + "\n";
    }
  }
  for (const auto& family : gauges_) {
    Header(out, *family, "gauge");
    const auto children = family->Children();
    if (children.empty() && family->label_names().empty()) out += family->name() + " 0\n";
    for (const auto& [labels, gauge] : children) {
      out += family->name() + LabelText(family->label_names(), labels) + " " +
             std::to_string(gauge->Value()) + "\n";
    }
  }
  for (const auto& family : histograms_) {
    Header(out, *family, "histogram");
    for (const auto& [labels, histogram] : family->Children()) {
      const auto counts = histogram->CumulativeCounts();
      for (std::size_t i = 0; i < counts.size(); ++i) {
        const double bound = i < family->bounds().size() ? family->bounds()[i] : INFINITY;
        out += family->name() + "_bucket" +
               LabelText(family->label_names(), labels, "le", FormatDouble(bound)) + " " +
               std::to_string(counts[i]) + "\n";
      }
      const std::string label_text = LabelText(family->label_names(), labels);
      out += family->name() + "_sum" + label_text + " " + FormatDouble(histogram->Sum()) + "\n";
      out +=
          family->name() + "_count" + label_text + " " + std::to_string(histogram->Count()) + "\n";
    }
  }
  return out;
}

const std::vector<double>& LatencyBuckets() {
  static const std::vector<double> kBuckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                            0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                            1.0,    2.5,     5.0,    10.0};
  return kBuckets;
}

}  // namespace callgate::metrics
