// What the load generators (rate_load, webhook_load) share when reading their command line: a
// number taken strictly, and an http:// URL taken apart. A bad value throws UsageError, which
// each tool turns into its usage message. And the one percentile definition both report with.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace callgate::bench {

struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// The whole of `text` as a T, or UsageError naming the option.
template <class T>
T ParseNumber(std::string_view name, std::string_view text) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    throw UsageError("bad value for " + std::string(name) + ": " + std::string(text));
  }
  return value;
}

struct Target {
  std::string host;
  std::uint16_t port = 0;
  std::string path;
};

// "http://HOST:PORT[/path]"; `default_path` when the URL has none.
inline Target ParseUrl(std::string_view url, std::string_view default_path) {
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme)) throw UsageError("only http:// URLs: " + std::string(url));
  url.remove_prefix(kScheme.size());
  Target target;
  const auto slash = url.find('/');
  const std::string_view authority = url.substr(0, slash);
  target.path =
      slash == std::string_view::npos ? std::string(default_path) : std::string(url.substr(slash));
  const auto colon = authority.rfind(':');
  if (colon == std::string_view::npos) {
    throw UsageError("the URL needs a port: " + std::string(url));
  }
  target.host = authority.substr(0, colon);
  target.port = ParseNumber<std::uint16_t>("port", authority.substr(colon + 1));
  return target;
}

// The nearest-rank percentile of sorted samples: the smallest sample with at least `fraction`
// (0..1] of the samples at or below it. Both generators report with this one definition.
template <class T>
T NearestRank(const std::vector<T>& sorted, double fraction) {
  if (sorted.empty()) return T{};
  const auto rank =
      static_cast<std::size_t>(std::ceil(fraction * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

}  // namespace callgate::bench
