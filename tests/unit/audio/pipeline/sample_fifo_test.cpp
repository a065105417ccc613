#include "audio/pipeline/sample_fifo.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <random>

namespace callgate::audio::pipeline {
namespace {

TEST(SampleFifo, MatchesADequeUnderRandomPushesPopsAndDiscards) {
  SampleFifo fifo(16);
  std::deque<std::int16_t> model;
  std::mt19937 rng(5);
  std::int16_t next = 0;
  for (int step = 0; step < 20000; ++step) {
    const int op = static_cast<int>(rng() % 3);
    const std::size_t n = rng() % 50;
    if (op == 0) {
      std::vector<std::int16_t> in(n);
      for (auto& s : in) {
        s = next++;
        model.push_back(s);
      }
      fifo.Push(in);
    } else if (op == 1) {
      std::vector<std::int16_t> out(n, -1);
      const std::size_t got = fifo.Pop(out);
      ASSERT_EQ(got, std::min(n, model.size()));
      for (std::size_t i = 0; i < got; ++i) {
        ASSERT_EQ(out[i], model.front());
        model.pop_front();
      }
    } else {
      const std::size_t dropped = fifo.Discard(n);
      ASSERT_EQ(dropped, std::min(n, model.size()));
      model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(dropped));
    }
    ASSERT_EQ(fifo.size(), model.size());
  }
}

TEST(SampleFifo, GrowsToThePowerOfTwoThatFitsAndKeepsOrder) {
  SampleFifo fifo(16);
  EXPECT_EQ(fifo.capacity(), 16u);
  std::vector<std::int16_t> a(10, 1);
  std::vector<std::int16_t> b(10, 2);
  fifo.Push(a);
  std::vector<std::int16_t> out(5);
  fifo.Pop(out);  // head is now in the middle: the growth must unwrap
  fifo.Push(b);
  fifo.Push(b);
  EXPECT_EQ(fifo.size(), 25u);
  EXPECT_EQ(fifo.capacity(), 32u);
  std::vector<std::int16_t> all(25);
  fifo.Pop(all);
  EXPECT_EQ(std::count(all.begin(), all.begin() + 5, 1), 5);
  EXPECT_EQ(std::count(all.begin() + 5, all.end(), 2), 20);
}

}  // namespace
}  // namespace callgate::audio::pipeline
