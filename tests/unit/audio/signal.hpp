// Measurements on test signals, written independently of the code under test.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>
#include <span>
#include <vector>

namespace callgate::audio::testing {

// Frequency of a (roughly) pure tone from its rising zero crossings, located to a fraction of a
// sample by linear interpolation. Returns 0 with fewer than two crossings.
inline double ZeroCrossingHz(std::span<const std::int16_t> x, int sample_rate) {
  double first = -1.0;
  double last = -1.0;
  int crossings = 0;
  for (std::size_t i = 1; i < x.size(); ++i) {
    if (x[i - 1] < 0 && x[i] >= 0) {
      const double at = static_cast<double>(i - 1) +
                        static_cast<double>(-x[i - 1]) / static_cast<double>(x[i] - x[i - 1]);
      if (crossings == 0) first = at;
      last = at;
      ++crossings;
    }
  }
  if (crossings < 2) return 0.0;
  return (crossings - 1) * static_cast<double>(sample_rate) / (last - first);
}

// Magnitude of the DFT of `x` at frequency `hz` (Goertzel-style direct sum, Hann window).
inline double DftMagnitude(std::span<const std::int16_t> x, int sample_rate, double hz) {
  double re = 0.0;
  double im = 0.0;
  const double n = static_cast<double>(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double t = static_cast<double>(i);
    const double window = 0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * t / (n - 1.0));
    const double phase = 2.0 * std::numbers::pi * hz * t / sample_rate;
    re += window * x[i] * std::cos(phase);
    im -= window * x[i] * std::sin(phase);
  }
  return std::hypot(re, im);
}

// The frequency in [lo, hi] with the largest DFT magnitude, searched on a 5 Hz grid and then
// refined to 0.1 Hz. Use a few thousand samples: the Hann main lobe is 4 * rate / n Hz wide,
// which must exceed the coarse step.
inline double DftPeakHz(std::span<const std::int16_t> x, int sample_rate, double lo, double hi) {
  double best = lo;
  double best_mag = -1.0;
  for (double f = lo; f <= hi; f += 5.0) {
    const double m = DftMagnitude(x, sample_rate, f);
    if (m > best_mag) {
      best_mag = m;
      best = f;
    }
  }
  const double centre = best;
  for (double f = centre - 5.0; f <= centre + 5.0; f += 0.1) {
    const double m = DftMagnitude(x, sample_rate, f);
    if (m > best_mag) {
      best_mag = m;
      best = f;
    }
  }
  return best;
}

inline double Rms(std::span<const std::int16_t> x) {
  if (x.empty()) return 0.0;
  double sum = 0.0;
  for (std::int16_t s : x)
    sum += static_cast<double>(s) * s;
  return std::sqrt(sum / static_cast<double>(x.size()));
}

inline std::vector<std::int16_t> Silence(std::size_t n) {
  return std::vector<std::int16_t>(n, 0);
}

inline void Append(std::vector<std::int16_t>& to, std::span<const std::int16_t> from) {
  to.insert(to.end(), from.begin(), from.end());
}

}  // namespace callgate::audio::testing
