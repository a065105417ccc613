// net::Runtime: one io_context per I/O thread; work started on an I/O thread stays there.
#include "net/runtime.hpp"

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace callgate::net {
namespace {

namespace asio = boost::asio;

TEST(RuntimeTest, NextContextTakesEveryThreadInTurn) {
  Runtime runtime(3);
  std::set<asio::io_context*> seen;
  for (int i = 0; i < 6; ++i)
    seen.insert(&runtime.next_context());
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_EQ(runtime.io_threads(), 3u);
}

TEST(RuntimeTest, ZeroThreadsMeansOne) {
  Runtime runtime(0);
  EXPECT_EQ(runtime.io_threads(), 1u);
  EXPECT_EQ(&runtime.next_context(), &runtime.next_context());
}

// On an I/O thread, context() is that thread's own: what a handler starts runs on its thread.
TEST(RuntimeTest, ContextOnAnIoThreadIsItsOwn) {
  Runtime runtime(2);
  std::mutex mutex;
  std::vector<bool> same;  // one entry per lane: the nested post ran on the posting thread
  std::atomic<int> left{2};
  for (int lane = 0; lane < 2; ++lane) {
    asio::io_context& context = runtime.next_context();
    asio::post(context, [&runtime, &context, &mutex, &same, &left] {
      EXPECT_EQ(&runtime.context(), &context);
      const auto poster = std::this_thread::get_id();
      asio::post(runtime.context(), [&runtime, &mutex, &same, &left, poster] {
        {
          std::lock_guard lock(mutex);
          same.push_back(std::this_thread::get_id() == poster);
        }
        if (--left == 0) runtime.Stop();
      });
    });
  }
  runtime.Run();
  ASSERT_EQ(same.size(), 2u);
  EXPECT_TRUE(same[0]);
  EXPECT_TRUE(same[1]);
}

// The lanes really are separate threads.
TEST(RuntimeTest, LanesRunOnDifferentThreads) {
  Runtime runtime(2);
  std::mutex mutex;
  std::set<std::thread::id> threads;
  std::atomic<int> left{2};
  for (int lane = 0; lane < 2; ++lane) {
    asio::post(runtime.next_context(), [&] {
      {
        std::lock_guard lock(mutex);
        threads.insert(std::this_thread::get_id());
      }
      if (--left == 0) runtime.Stop();
    });
  }
  runtime.Run();
  EXPECT_EQ(threads.size(), 2u);
}

// Two threads calling Run() (two test servers sharing a runtime): each io_context is still run by
// one thread only, since connections rely on that instead of strands.
TEST(RuntimeTest, ConcurrentRunsNeverShareAContext) {
  Runtime runtime(2);
  std::mutex mutex;
  std::set<std::pair<asio::io_context*, std::thread::id>> ran_on;
  std::atomic<int> left{200};
  std::thread second([&] { runtime.Run(); });
  for (int i = 0; i < 200; ++i) {
    asio::io_context& context = runtime.next_context();
    asio::post(context, [&, ctx = &context] {
      {
        std::lock_guard lock(mutex);
        ran_on.emplace(ctx, std::this_thread::get_id());
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // let another thread try
      if (--left == 0) runtime.Stop();
    });
  }
  runtime.Run();
  second.join();
  EXPECT_EQ(left, 0);
  EXPECT_EQ(ran_on.size(), 2u) << "each of the two contexts on exactly one thread";
}

// StopWhenIdle: work one lane posts to another after that one ran dry still runs before Run()
// returns.
TEST(RuntimeTest, StopWhenIdleRunsWhatALaneAddsForAnother) {
  Runtime runtime(2);
  asio::io_context& first = runtime.next_context();
  asio::io_context& second = runtime.next_context();
  std::atomic<bool> late_ran{false};
  runtime.StopWhenIdle();
  asio::post(first, [&] {
    // Give the second lane time to find itself without work and return.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    asio::post(second, [&] { late_ran = true; });
  });
  runtime.Run();
  EXPECT_TRUE(late_ran);
}

TEST(RuntimeTest, StopAbandonsPendingWork) {
  Runtime runtime(1);
  std::atomic<int> ran{0};
  asio::post(runtime.next_context(), [&] {
    ++ran;
    runtime.Stop();
    asio::post(runtime.context(), [&] { ++ran; });
  });
  runtime.Run();
  EXPECT_EQ(ran, 1);
}

}  // namespace
}  // namespace callgate::net
