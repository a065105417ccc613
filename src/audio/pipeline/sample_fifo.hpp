// A first-in first-out queue of int16 samples for one thread: a ring that grows (by doubling)
// only when a push does not fit, so a pipeline in steady state stops allocating once it has
// seen its largest backlog. Callers bound the size themselves (JitterBuffer drops the oldest
// samples past its maximum before pushing). Not thread-safe. Errors: std::bad_alloc only.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/prefetch.hpp"

namespace callgate::audio::pipeline {

class SampleFifo {
 public:
  explicit SampleFifo(std::size_t initial_capacity = 1024)
      : buffer_(std::bit_ceil(std::max<std::size_t>(initial_capacity, 16))) {}

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::size_t capacity() const { return buffer_.size(); }

  void Push(std::span<const std::int16_t> samples) {
    if (size_ + samples.size() > buffer_.size()) Grow(size_ + samples.size());
    const std::size_t mask = buffer_.size() - 1;
    const std::size_t start = (head_ + size_) & mask;
    const std::size_t first = std::min(samples.size(), buffer_.size() - start);
    std::copy_n(samples.data(), first, buffer_.data() + start);
    std::copy_n(samples.data() + first, samples.size() - first, buffer_.data());
    size_ += samples.size();
  }

  // Removes up to out.size() of the oldest samples into `out`; returns how many.
  std::size_t Pop(std::span<std::int16_t> out) {
    const std::size_t n = std::min(out.size(), size_);
    const std::size_t first = std::min(n, buffer_.size() - head_);
    std::copy_n(buffer_.data() + head_, first, out.data());
    std::copy_n(buffer_.data(), n - first, out.data() + first);
    Discard(n);
    return n;
  }

  // Drops up to `n` of the oldest samples; returns how many.
  std::size_t Discard(std::size_t n) {
    n = std::min(n, size_);
    head_ = (head_ + n) & (buffer_.size() - 1);
    size_ -= n;
    if (size_ == 0) head_ = 0;
    return n;
  }

  void Clear() { Discard(size_); }

  // Prefetches where the next Pop() starts reading and the next Push() starts writing.
  void Warm() const {
    core::Prefetch(buffer_.data() + head_);
    core::Prefetch(buffer_.data() + ((head_ + size_) & (buffer_.size() - 1)));
  }

 private:
  void Grow(std::size_t needed) {
    std::vector<std::int16_t> bigger(std::bit_ceil(needed));
    const std::size_t n = size_;
    Pop(std::span(bigger.data(), n));
    buffer_.swap(bigger);
    head_ = 0;
    size_ = n;
  }

  std::vector<std::int16_t> buffer_;  // size is a power of two
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace callgate::audio::pipeline
