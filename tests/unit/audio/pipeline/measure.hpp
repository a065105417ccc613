// Measurements for the pipeline tests, on top of unit/audio/signal.hpp.
#pragma once

#include "unit/audio/signal.hpp"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <numbers>
#include <span>
#include <vector>

namespace callgate::audio::testing {

// The largest step between neighbouring samples. For a clean sine of amplitude A and frequency
// f at rate r it is at most 2*pi*f*A/r; a click (a lost, repeated or zeroed stretch at a chunk
// boundary) makes it much larger.
inline int MaxStep(std::span<const std::int16_t> x) {
  int worst = 0;
  for (std::size_t i = 1; i < x.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<int>(x[i]) - x[i - 1]));
  return worst;
}

inline double SineMaxStep(double hz, double amplitude, int rate) {
  return 2.0 * std::numbers::pi * hz * amplitude / rate;
}

// The longest run of exact zeros: a gap in a tone.
inline std::size_t LongestZeroRun(std::span<const std::int16_t> x) {
  std::size_t best = 0;
  std::size_t run = 0;
  for (std::int16_t s : x) {
    run = s == 0 ? run + 1 : 0;
    best = std::max(best, run);
  }
  return best;
}

// The middle of a signal, away from filter ramps at both ends.
inline std::span<const std::int16_t> Middle(std::span<const std::int16_t> x, double edge = 0.1) {
  const auto cut = static_cast<std::size_t>(static_cast<double>(x.size()) * edge);
  return x.subspan(cut, x.size() - 2 * cut);
}

inline double EnergyDb(std::span<const std::int16_t> x) {
  double sum = 0.0;
  for (std::int16_t s : x)
    sum += static_cast<double>(s) * s;
  return 10.0 * std::log10(sum + 1e-9);
}

}  // namespace callgate::audio::testing
