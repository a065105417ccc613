// A connection's deadlines on one lazily armed timer. Internal to the I/O translation units
// (http/server.cpp, upstream/beast_client.cpp): includes Asio.
//
// Beast's basic_stream arms a timer around every read and write it is given an expiry for and
// cancels it when the operation completes: a timerfd_settime and a cancelled wait, its handler
// run, per operation, several per keep-alive request. Here a phase (waiting for a request,
// reading its head, writing the answer, an upstream exchange) only stores its deadline. The one
// timer stays armed for the earliest deadline it was given; when it fires it acts if the current
// deadline has passed and otherwise re-arms itself for it. A keep-alive connection's deadlines
// keep moving later, so it costs a timer operation per timeout period, not per request. Set()
// re-arms at once only for a deadline earlier than the armed one. Expiry is exact either way.
//
// Single-threaded: every call, and `expire`, runs on the executor given to the constructor (the
// connection's I/O thread). The owner may be destroyed while a wait is pending: the wait's
// handler only holds a weak reference to the state, which the Watchdog alone owns (destroying
// it destroys the timer, which cancels the wait).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

namespace callgate::net {

class Watchdog {
 public:
  using Clock = std::chrono::steady_clock;

  // `expire` runs (on `executor`) once a deadline given to Set has passed without a later Set or
  // a Clear; it should cancel or close what the phase waits for.
  Watchdog(const boost::asio::any_io_executor& executor, std::function<void()> expire)
      : core_(std::make_shared<Core>(executor, std::move(expire))) {}
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void Set(Clock::time_point deadline) {
    Core& core = *core_;
    core.deadline = deadline;
    core.fired = false;
    if (deadline < core.armed_for) Arm(core_, deadline);
  }
  template <class Rep, class Period>
  void SetAfter(std::chrono::duration<Rep, Period> timeout) {
    Set(Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout));
  }
  // No deadline (the timer, if armed, will find nothing to do). `fired()` is kept; it is also
  // returned, for the phase that just ended: `const bool timed_out = watchdog.Clear();`.
  bool Clear() {
    core_->deadline = Clock::time_point::max();
    return core_->fired;
  }
  // Whether the last deadline set passed (and `expire` ran) before Set or Clear was called again.
  bool fired() const { return core_->fired; }

 private:
  struct Core {
    Core(const boost::asio::any_io_executor& executor, std::function<void()> on_expire)
        : timer(executor), expire(std::move(on_expire)) {}
    boost::asio::steady_timer timer;
    std::function<void()> expire;
    Clock::time_point deadline = Clock::time_point::max();
    Clock::time_point armed_for = Clock::time_point::max();
    std::uint64_t generation = 0;  // of the pending wait: a superseded wait's handler does nothing
    bool fired = false;
  };

  static void Arm(const std::shared_ptr<Core>& core, Clock::time_point at) {
    core->armed_for = at;
    const std::uint64_t generation = ++core->generation;
    core->timer.expires_at(at);  // a pending wait completes with operation_aborted
    core->timer.async_wait(
        [weak = std::weak_ptr<Core>(core), generation](const boost::system::error_code& ec) {
          if (ec) return;
          auto alive = weak.lock();
          if (!alive || alive->generation != generation) return;
          alive->armed_for = Clock::time_point::max();
          if (alive->deadline == Clock::time_point::max()) return;
          if (Clock::now() < alive->deadline) {
            Arm(alive, alive->deadline);
            return;
          }
          alive->deadline = Clock::time_point::max();
          alive->fired = true;
          alive->expire();
        });
  }

  std::shared_ptr<Core> core_;
};

}  // namespace callgate::net
