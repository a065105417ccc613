// net::PostBatch / net::Defer: hand-offs collected per executor while a batch is open.
#include "net/post_batch.hpp"

#include "net/defer.hpp"

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace callgate::net {
namespace {

namespace asio = boost::asio;

TEST(PostBatchTest, WithoutABatchEachDeferIsItsOwnHandler) {
  asio::io_context context;
  std::vector<int> ran;
  Defer(context.get_executor(), [&] { ran.push_back(1); });
  Defer(context.get_executor(), [&] { ran.push_back(2); });
  EXPECT_EQ(context.poll_one(), 1u);
  EXPECT_EQ(ran, (std::vector<int>{1}));
  EXPECT_EQ(context.poll(), 1u);
  EXPECT_EQ(ran, (std::vector<int>{1, 2}));
}

TEST(PostBatchTest, ABatchPostsOneHandlerPerExecutorWhenItCloses) {
  asio::io_context first;
  asio::io_context second;
  std::vector<std::string> ran;
  {
    const PostBatch batch;
    Defer(first.get_executor(), [&] { ran.push_back("a1"); });
    Defer(second.get_executor(), [&] { ran.push_back("b1"); });
    // Move-only work is carried as it is.
    Defer(first.get_executor(),
          [&, owned = std::make_unique<int>(2)] { ran.push_back("a" + std::to_string(*owned)); });
    Defer(second.get_executor(), [&] { ran.push_back("b2"); });
    Defer(first.get_executor(), [&] { ran.push_back("a3"); });
    // Nothing is handed over while the batch is open.
    EXPECT_EQ(first.poll(), 0u);
    EXPECT_EQ(second.poll(), 0u);
    first.restart();
    second.restart();
  }
  EXPECT_TRUE(ran.empty());
  // One handler per executor runs that executor's tasks in the order they were given.
  EXPECT_EQ(first.poll_one(), 1u);
  EXPECT_EQ(ran, (std::vector<std::string>{"a1", "a2", "a3"}));
  EXPECT_EQ(first.poll(), 0u);
  EXPECT_EQ(second.poll_one(), 1u);
  EXPECT_EQ(ran, (std::vector<std::string>{"a1", "a2", "a3", "b1", "b2"}));
}

TEST(PostBatchTest, ANestedBatchJoinsTheOpenOne) {
  asio::io_context context;
  std::vector<int> ran;
  {
    const PostBatch outer;
    {
      const PostBatch inner;
      Defer(context.get_executor(), [&] { ran.push_back(1); });
    }
    EXPECT_EQ(context.poll(), 0u) << "the inner batch handed nothing over";
    context.restart();
    Defer(context.get_executor(), [&] { ran.push_back(2); });
  }
  EXPECT_EQ(context.poll_one(), 1u);
  EXPECT_EQ(ran, (std::vector<int>{1, 2}));
  // The thread has no batch open any more.
  context.restart();
  Defer(context.get_executor(), [&] { ran.push_back(3); });
  Defer(context.get_executor(), [&] { ran.push_back(4); });
  EXPECT_EQ(context.poll_one(), 1u);
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3}));
}

TEST(PostBatchTest, ATaskThatThrowsDoesNotStopTheOthers) {
  asio::io_context context;
  std::vector<int> ran;
  {
    const PostBatch batch;
    Defer(context.get_executor(), [&] { ran.push_back(1); });
    Defer(context.get_executor(), [] { throw std::runtime_error("task failed"); });
    Defer(context.get_executor(), [&] { ran.push_back(3); });
  }
  EXPECT_THROW(context.poll(), std::runtime_error);
  EXPECT_EQ(ran, (std::vector<int>{1, 3}));
}

}  // namespace
}  // namespace callgate::net
