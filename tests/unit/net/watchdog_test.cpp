// net::Watchdog: a connection's deadlines on one lazily armed timer.
#include "net/watchdog.hpp"

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <thread>

namespace callgate::net {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = Watchdog::Clock;

struct Expiries {
  int count = 0;
  Clock::time_point last;
};

// A watchdog on an io_context the test runs itself; io.run() returns once nothing is pending.
class WatchdogTest : public ::testing::Test {
 protected:
  asio::io_context io;
  Expiries expiries;
  std::unique_ptr<Watchdog> watchdog = std::make_unique<Watchdog>(io.get_executor(), [this] {
    ++expiries.count;
    expiries.last = Clock::now();
  });
};

TEST_F(WatchdogTest, ExpiresOnceTheDeadlinePasses) {
  const auto deadline = Clock::now() + 20ms;
  watchdog->Set(deadline);
  EXPECT_FALSE(watchdog->fired());
  io.run();  // returns once nothing is pending: after the expiry
  EXPECT_EQ(expiries.count, 1);
  EXPECT_GE(expiries.last, deadline);
  EXPECT_TRUE(watchdog->fired());
  EXPECT_TRUE(watchdog->Clear()) << "Clear tells the phase that ended whether it timed out";
  EXPECT_TRUE(watchdog->fired());
  watchdog->SetAfter(1h);
  EXPECT_FALSE(watchdog->fired()) << "a new deadline starts afresh";
  EXPECT_FALSE(watchdog->Clear());
}

// The timer armed for the first deadline finds a later one and waits for that instead.
TEST_F(WatchdogTest, ALaterDeadlineDefersTheExpiry) {
  watchdog->Set(Clock::now() + 10ms);
  Clock::time_point later;
  asio::steady_timer moved(io, 5ms);
  moved.async_wait([&](const boost::system::error_code&) {
    later = Clock::now() + 40ms;
    watchdog->Set(later);
  });
  io.run();
  EXPECT_EQ(expiries.count, 1);
  EXPECT_GE(expiries.last, later);
}

TEST_F(WatchdogTest, ClearedMeansNoExpiry) {
  watchdog->SetAfter(10ms);
  EXPECT_FALSE(watchdog->Clear());
  io.run();  // the armed timer fires, finds no deadline and is not re-armed
  EXPECT_EQ(expiries.count, 0);
  EXPECT_FALSE(watchdog->fired());
}

// A deadline earlier than the armed one re-arms the timer at once.
TEST_F(WatchdogTest, AnEarlierDeadlineReArms) {
  const auto far = Clock::now() + 1h;
  watchdog->Set(far);
  watchdog->Clear();
  const auto near = Clock::now() + 10ms;
  watchdog->Set(near);
  io.run();  // would wait an hour for the first arming
  EXPECT_EQ(expiries.count, 1);
  EXPECT_GE(expiries.last, near);
  EXPECT_LT(expiries.last, far);
}

// The owner may go while the timer waits: nothing runs for it afterwards (ASan would see a use
// after free).
TEST_F(WatchdogTest, DestroyedWhileArmedIsQuiet) {
  watchdog->SetAfter(1ms);
  asio::post(io, [&] { watchdog.reset(); });
  io.run();
  EXPECT_EQ(expiries.count, 0);
}

// The timer has fired, its handler queued, when the owner goes: the handler must not touch it.
// The reactor runs first in the queue (it was queued when the timer was armed), finds the
// expired timer and queues its handler behind the posted reset.
TEST_F(WatchdogTest, DestroyedAfterTheTimerFiredIsQuiet) {
  watchdog->SetAfter(1ms);
  std::this_thread::sleep_for(5ms);
  asio::post(io, [&] { watchdog.reset(); });
  io.run();
  EXPECT_EQ(expiries.count, 0);
}

}  // namespace
}  // namespace callgate::net
