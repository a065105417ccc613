#include "audio/backends/spsc_ring.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <thread>
#include <vector>

namespace callgate::audio::backends {
namespace {

TEST(SpscRing, CapacityIsRoundedUpToAPowerOfTwo) {
  EXPECT_EQ(SpscRing<std::int16_t>(1000).capacity(), 1024u);
  EXPECT_EQ(SpscRing<std::int16_t>(1024).capacity(), 1024u);
  EXPECT_EQ(SpscRing<std::int16_t>(0).capacity(), 2u);
}

TEST(SpscRing, MovesWhatFitsAndWrapsAround) {
  SpscRing<std::int16_t> ring(8);
  const std::vector<std::int16_t> a = {1, 2, 3, 4, 5, 6};
  EXPECT_EQ(ring.Push(a), 6u);
  std::vector<std::int16_t> out(4);
  EXPECT_EQ(ring.Pop(out), 4u);
  EXPECT_EQ(out, (std::vector<std::int16_t>{1, 2, 3, 4}));
  const std::vector<std::int16_t> b = {7, 8, 9, 10, 11, 12, 13};
  EXPECT_EQ(ring.Push(b), 6u) << "only the free space";
  EXPECT_EQ(ring.Size(), 8u);
  EXPECT_EQ(ring.FreeSpace(), 0u);
  std::vector<std::int16_t> all(10, -1);
  EXPECT_EQ(ring.Pop(all), 8u);
  EXPECT_EQ(std::vector<std::int16_t>(all.begin(), all.begin() + 8),
            (std::vector<std::int16_t>{5, 6, 7, 8, 9, 10, 11, 12}));
  EXPECT_EQ(ring.Pop(all), 0u);
  ring.Push(a);
  EXPECT_EQ(ring.Discard(100), 6u);
  EXPECT_EQ(ring.Size(), 0u);
}

// A producer and a consumer thread, in random chunk sizes: every value arrives once, in order.
TEST(SpscRing, TwoThreadsPassEveryValueInOrder) {
  SpscRing<std::uint32_t> ring(256);
  constexpr std::uint32_t kCount = 2'000'000;
  std::thread producer([&] {
    std::mt19937 rng(1);
    std::vector<std::uint32_t> chunk;
    std::uint32_t next = 0;
    while (next < kCount) {
      chunk.resize(std::min<std::uint32_t>(1 + rng() % 100, kCount - next));
      for (std::size_t i = 0; i < chunk.size(); ++i)
        chunk[i] = next + static_cast<std::uint32_t>(i);
      std::span<const std::uint32_t> rest(chunk);
      while (!rest.empty()) {
        rest = rest.subspan(ring.Push(rest));
        if (!rest.empty()) std::this_thread::yield();
      }
      next += static_cast<std::uint32_t>(chunk.size());
    }
  });
  std::mt19937 rng(2);
  std::vector<std::uint32_t> out(128);
  std::uint32_t expected = 0;
  std::uint64_t mismatches = 0;
  while (expected < kCount) {
    const std::size_t got = ring.Pop(std::span(out).first(1 + rng() % 128));
    for (std::size_t i = 0; i < got; ++i) {
      if (out[i] != expected) ++mismatches;
      ++expected;
    }
    if (got == 0) std::this_thread::yield();
  }
  producer.join();
  EXPECT_EQ(mismatches, 0u);
  EXPECT_EQ(ring.Size(), 0u);
}

}  // namespace
}  // namespace callgate::audio::backends
