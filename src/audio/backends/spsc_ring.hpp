// A bounded lock-free ring buffer for exactly one producer thread and one consumer thread: the
// bridge between PortAudio's real-time callback and the endpoint's owner.
//
// Push() and Pop() never lock, allocate or block; they move as much as fits (or is there) with
// at most two memcpy-like copies. Capacity is fixed at construction (rounded up to a power of
// two); the buffer is allocated then and never again.
//
// Thread safety: Push()/FreeSpace() from the producer thread only, Pop()/Discard() from the
// consumer thread only, Size()/capacity() from either (Size() is a snapshot). Positions are
// free-running counters: the producer publishes with a release store of `head_`, the consumer
// with a release store of `tail_`, each reading the other's with acquire.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <memory>
#include <span>
#include <type_traits>

namespace callgate::audio::backends {

template <class T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>, "SpscRing copies elements as bytes");
  static_assert(std::atomic<std::size_t>::is_always_lock_free, "needs lock-free counters");

 public:
  explicit SpscRing(std::size_t min_capacity)
      : capacity_(std::bit_ceil(std::max<std::size_t>(min_capacity, 2))),
        mask_(capacity_ - 1),
        buffer_(std::make_unique<T[]>(capacity_)) {}

  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  std::size_t capacity() const { return capacity_; }

  std::size_t Size() const {
    const std::size_t head = head_.load(std::memory_order_acquire);
    const std::size_t tail = tail_.load(std::memory_order_acquire);
    return head - tail;
  }

  // Producer.
  std::size_t FreeSpace() const {
    return capacity_ -
           (head_.load(std::memory_order_relaxed) - tail_.load(std::memory_order_acquire));
  }

  // Producer: appends as many of `items` as fit; returns how many.
  std::size_t Push(std::span<const T> items) {
    const std::size_t head = head_.load(std::memory_order_relaxed);
    const std::size_t tail = tail_.load(std::memory_order_acquire);
    const std::size_t n = std::min(items.size(), capacity_ - (head - tail));
    const std::size_t start = head & mask_;
    const std::size_t first = std::min(n, capacity_ - start);
    std::copy_n(items.data(), first, buffer_.get() + start);
    std::copy_n(items.data() + first, n - first, buffer_.get());
    head_.store(head + n, std::memory_order_release);
    return n;
  }

  // Consumer: removes up to out.size() items into `out`; returns how many.
  std::size_t Pop(std::span<T> out) {
    const std::size_t tail = tail_.load(std::memory_order_relaxed);
    const std::size_t head = head_.load(std::memory_order_acquire);
    const std::size_t n = std::min(out.size(), head - tail);
    const std::size_t start = tail & mask_;
    const std::size_t first = std::min(n, capacity_ - start);
    std::copy_n(buffer_.get() + start, first, out.data());
    std::copy_n(buffer_.get(), n - first, out.data() + first);
    tail_.store(tail + n, std::memory_order_release);
    return n;
  }

  // Consumer: drops up to `n` of the oldest items; returns how many.
  std::size_t Discard(std::size_t n) {
    const std::size_t tail = tail_.load(std::memory_order_relaxed);
    const std::size_t head = head_.load(std::memory_order_acquire);
    n = std::min(n, head - tail);
    tail_.store(tail + n, std::memory_order_release);
    return n;
  }

 private:
  const std::size_t capacity_;
  const std::size_t mask_;
  std::unique_ptr<T[]> buffer_;
  // On separate cache lines: each is written by one thread and read by the other.
  alignas(64) std::atomic<std::size_t> head_{0};  // items ever pushed
  alignas(64) std::atomic<std::size_t> tail_{0};  // items ever popped or discarded
};

}  // namespace callgate::audio::backends
