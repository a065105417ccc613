// Many periodic callbacks driven by one timer: the shared audio tick of the session engine's
// transports (detail/ws_transport.cpp keeps one group per strand lane, so N sessions cost one
// timer wake-up per period instead of N). Pure: no clock, no timer, no thread; the owner passes
// the time, arms a single timer for NextDue() and calls RunDue() when it fires.
//
// Schedule: the instants of a ticker of period P are k * P + P * slot / slots on the
// steady clock (k an integer), so every ticker of the same period in one group fires together
// and groups with different slots are spread over the period. A ticker added at time t is
// first due at its first instant after t (within one period), then every P. A late RunDue()
// calls each due ticker once and moves it to its first instant after `now`: missed ticks are
// skipped, not bunched, and the phase is kept.
//
// Reentrancy: a tick may add or remove tickers (itself included). A ticker removed during a
// round before its turn is not called; its callback is destroyed after the round (never while
// it runs). A ticker added during a round is first due after `now`, so never in that round.
//
// Prefetching: a round over many tickers whose state is cold (a thousand sessions ticked 50 times
// a second evict each other from the cache) waits for memory at every ticker. A ticker may come
// with a Warmer; while the due ticker i runs, the group calls stage s of the due ticker
// i + kWarmStages - s (s = 0 .. kWarmStages - 1), so each ticker's memory is requested a few
// tickers ahead, one pointer hop per stage.
//
// Not thread-safe: one owner (a strand).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace callgate::conversation {

// A ticker's prefetching (see above). warm(object, stage) must only prefetch
// (core/prefetch.hpp), never change anything. Stage 0 may use only addresses computed from
// `object` (nothing of it is in the cache yet); stage s may read what stage s - 1 prefetched to
// prefetch what that points to. The group holds `object` as long as the ticker's callback, so
// the callback may use it through a plain pointer: a callback that owns a shared_ptr is too big
// for std::function's inline storage, and its heap block would be one more miss per tick.
struct TickWarmer {
  void (*warm)(const void* object, unsigned stage) = nullptr;
  std::shared_ptr<const void> object;
};

class TickerGroup {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;
  using Duration = Clock::duration;
  using Id = std::uint64_t;

  using Warmer = TickWarmer;
  static constexpr unsigned kWarmStages = 4;

  // This group's place among `slots` groups sharing a period (slot < slots).
  explicit TickerGroup(unsigned slot = 0, unsigned slots = 1);
  TickerGroup(const TickerGroup&) = delete;
  TickerGroup& operator=(const TickerGroup&) = delete;

  // A ticker calling `tick` every `period` (at least 1 ms). Returns its id (never 0).
  Id Add(Duration period, std::function<void()> tick, TimePoint now, Warmer warmer = {});
  // False when `id` is unknown or already removed.
  bool Remove(Id id);
  // Calls every ticker due at `now`, in the order they were added; returns how many ran.
  std::size_t RunDue(TimePoint now);
  // When the next ticker is due; nullopt when there is none.
  std::optional<TimePoint> NextDue() const;
  // Tickers not removed.
  std::size_t size() const { return live_; }

 private:
  struct Entry {
    Id id = 0;
    Duration period{};
    Duration offset{};  // of its instants within the period
    TimePoint due{};
    std::function<void()> tick;
    Warmer warmer;
    bool removed = false;
  };

  TimePoint FirstInstantAfter(const Entry& entry, TimePoint now) const;
  // The warm stages for the tickers after entries_[i] that are due at `now`.
  void WarmAhead(std::size_t i, TimePoint now) const;
  void Sweep();

  unsigned slot_;
  unsigned slots_;
  Id next_id_ = 1;
  std::size_t live_ = 0;
  bool running_ = false;        // inside RunDue
  bool swept_needed_ = false;   // removals during a round wait for its end
  std::vector<Entry> entries_;  // in the order added
  std::vector<Entry> added_;    // added during a round
};

}  // namespace callgate::conversation
