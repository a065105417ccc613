// TickerGroup: the shared tick of the transports of one lane. Pure: the tests pass the time.
#include "conversation/ticker_group.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace callgate::conversation {
namespace {

using namespace std::chrono_literals;
using TimePoint = TickerGroup::TimePoint;

TimePoint At(std::chrono::milliseconds ms) {
  return TimePoint(std::chrono::duration_cast<TickerGroup::Duration>(ms));
}

TEST(TickerGroupTest, EmptyGroupHasNothingDue) {
  TickerGroup group;
  EXPECT_EQ(group.size(), 0u);
  EXPECT_FALSE(group.NextDue().has_value());
  EXPECT_EQ(group.RunDue(At(1000ms)), 0u);
}

TEST(TickerGroupTest, TickersOfOnePeriodFireTogetherOnAlignedInstants) {
  TickerGroup group;
  std::vector<std::string> calls;
  group.Add(
      20ms, [&] { calls.push_back("a"); }, At(1003ms));
  group.Add(
      20ms, [&] { calls.push_back("b"); }, At(1017ms));
  ASSERT_TRUE(group.NextDue().has_value());
  EXPECT_EQ(*group.NextDue(), At(1020ms));  // the first multiple of 20 ms after both
  EXPECT_EQ(group.RunDue(At(1019ms)), 0u);
  EXPECT_TRUE(calls.empty());
  EXPECT_EQ(group.RunDue(At(1020ms)), 2u);
  EXPECT_EQ(calls, (std::vector<std::string>{"a", "b"}));  // in the order added
  EXPECT_EQ(*group.NextDue(), At(1040ms));
}

TEST(TickerGroupTest, AnInstantExactlyNowIsNotDueAgain) {
  TickerGroup group;
  int n = 0;
  group.Add(
      20ms, [&] { ++n; }, At(1020ms));
  EXPECT_EQ(*group.NextDue(), At(1040ms));  // strictly after the time it was added
  EXPECT_EQ(group.RunDue(At(1020ms)), 0u);
  EXPECT_EQ(n, 0);
}

TEST(TickerGroupTest, LateRoundSkipsMissedTicksAndKeepsThePhase) {
  TickerGroup group;
  int n = 0;
  group.Add(
      20ms, [&] { ++n; }, At(0ms));
  EXPECT_EQ(group.RunDue(At(95ms)), 1u);  // 20, 40, 60, 80 were due: one call, not four
  EXPECT_EQ(n, 1);
  EXPECT_EQ(*group.NextDue(), At(100ms));
  EXPECT_EQ(group.RunDue(At(100ms)), 1u);
  EXPECT_EQ(n, 2);
}

TEST(TickerGroupTest, SlotsSpreadGroupsOverThePeriod) {
  TickerGroup first(0, 4), third(2, 4);
  first.Add(
      20ms, [] {}, At(1001ms));
  third.Add(
      20ms, [] {}, At(1001ms));
  EXPECT_EQ(*first.NextDue(), At(1020ms));
  EXPECT_EQ(*third.NextDue(), At(1010ms));  // 10 ms into each period
}

TEST(TickerGroupTest, DifferentPeriodsKeepTheirOwnSchedules) {
  TickerGroup group;
  int fast = 0, slow = 0;
  group.Add(
      10ms, [&] { ++fast; }, At(0ms));
  group.Add(
      30ms, [&] { ++slow; }, At(0ms));
  for (int ms = 10; ms <= 60; ms += 10)
    group.RunDue(At(std::chrono::milliseconds(ms)));
  EXPECT_EQ(fast, 6);
  EXPECT_EQ(slow, 2);
}

TEST(TickerGroupTest, PeriodBelowOneMillisecondIsRaised) {
  TickerGroup group;
  int n = 0;
  group.Add(
      0ms, [&] { ++n; }, At(0ms));
  EXPECT_EQ(*group.NextDue(), At(1ms));
}

TEST(TickerGroupTest, RemoveStopsATicker) {
  TickerGroup group;
  int a = 0, b = 0;
  const auto id = group.Add(
      20ms, [&] { ++a; }, At(0ms));
  group.Add(
      20ms, [&] { ++b; }, At(0ms));
  EXPECT_NE(id, 0u);
  EXPECT_TRUE(group.Remove(id));
  EXPECT_FALSE(group.Remove(id));
  EXPECT_FALSE(group.Remove(12345));
  EXPECT_EQ(group.size(), 1u);
  group.RunDue(At(20ms));
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 1);
}

TEST(TickerGroupTest, TickMayRemoveItselfWithoutBeingDestroyedWhileItRuns) {
  TickerGroup group;
  auto alive = std::make_shared<int>(0);
  std::weak_ptr<int> watch = alive;
  TickerGroup::Id id = 0;
  int calls = 0;
  bool captured_alive_during_call = false;
  id = group.Add(
      20ms,
      [&, alive] {
        ++calls;
        group.Remove(id);
        captured_alive_during_call = !watch.expired() && *alive == 0;
      },
      At(0ms));
  alive.reset();
  EXPECT_FALSE(watch.expired());  // held by the callback
  group.RunDue(At(20ms));
  EXPECT_TRUE(captured_alive_during_call);
  EXPECT_TRUE(watch.expired());  // destroyed after the round
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(group.size(), 0u);
  EXPECT_FALSE(group.NextDue().has_value());
  group.RunDue(At(40ms));
  EXPECT_EQ(calls, 1);
}

TEST(TickerGroupTest, TickMayRemoveALaterTickerOfTheSameRound) {
  TickerGroup group;
  int b = 0;
  TickerGroup::Id second = 0;
  group.Add(
      20ms, [&] { group.Remove(second); }, At(0ms));
  second = group.Add(
      20ms, [&] { ++b; }, At(0ms));
  group.RunDue(At(20ms));
  EXPECT_EQ(b, 0);
  EXPECT_EQ(group.size(), 1u);
}

TEST(TickerGroupTest, TickerAddedDuringARoundStartsAfterIt) {
  TickerGroup group;
  int added_calls = 0;
  int adds = 0;
  TickerGroup::Id self = 0;
  self = group.Add(
      20ms,
      [&] {
        // Replace itself, as StartTicker() from inside a tick does.
        group.Remove(self);
        ++adds;
        self = group.Add(
            20ms, [&] { ++added_calls; }, At(20ms));
      },
      At(0ms));
  EXPECT_EQ(group.RunDue(At(20ms)), 1u);
  EXPECT_EQ(adds, 1);
  EXPECT_EQ(added_calls, 0);  // not in the round that added it
  EXPECT_EQ(group.size(), 1u);
  EXPECT_EQ(*group.NextDue(), At(40ms));
  EXPECT_EQ(group.RunDue(At(40ms)), 1u);
  EXPECT_EQ(added_calls, 1);
  EXPECT_EQ(adds, 1);
}

TEST(TickerGroupTest, TickerAddedAndRemovedInTheSameRoundNeverRuns) {
  TickerGroup group;
  int added_calls = 0;
  group.Add(
      20ms,
      [&] {
        const auto id = group.Add(
            20ms, [&] { ++added_calls; }, At(20ms));
        group.Remove(id);
      },
      At(0ms));
  group.RunDue(At(20ms));
  EXPECT_EQ(group.size(), 1u);
  group.RunDue(At(40ms));
  EXPECT_EQ(added_calls, 0);
}

TEST(TickerGroupTest, NestedRunDueDoesNothing) {
  TickerGroup group;
  int n = 0;
  std::size_t nested = 99;
  group.Add(
      20ms,
      [&] {
        ++n;
        nested = group.RunDue(At(100ms));
      },
      At(0ms));
  group.RunDue(At(20ms));
  EXPECT_EQ(n, 1);
  EXPECT_EQ(nested, 0u);
}

TEST(TickerGroupTest, ClockNearItsEpoch) {
  TickerGroup group(1, 2);
  group.Add(
      20ms, [] {}, TimePoint(-std::chrono::milliseconds(35)));
  // Instants are 10 + 20k ms: the first after -35 ms is -30 ms.
  EXPECT_EQ(*group.NextDue(), TimePoint(-std::chrono::milliseconds(30)));
}

// The warm stages of a round: a log of "tick <name>" and "warm <name> <stage>" lines.
struct WarmLog {
  std::vector<std::string> lines;
};

struct Warmed {
  WarmLog* log;
  std::string name;
};

void WarmInto(const void* object, unsigned stage) {
  const auto* warmed = static_cast<const Warmed*>(object);
  warmed->log->lines.push_back("warm " + warmed->name + " " + std::to_string(stage));
}

TickerGroup::Id AddWarmed(TickerGroup& group, WarmLog& log, const std::string& name,
                          std::chrono::milliseconds period, TimePoint now) {
  return group.Add(period, [&log, name] { log.lines.push_back("tick " + name); }, now,
                   {&WarmInto, std::make_shared<Warmed>(Warmed{&log, name})});
}

TEST(TickerGroupTest, WarmStagesRunAheadOfEachTickInOrder) {
  static_assert(TickerGroup::kWarmStages == 4);
  TickerGroup group;
  WarmLog log;
  for (const char* name : {"a", "b", "c", "d", "e"})
    AddWarmed(group, log, name, 20ms, At(0ms));
  EXPECT_EQ(group.RunDue(At(20ms)), 5u);
  // While ticker i runs (just before its tick), stage 3 of i+1, 2 of i+2, 1 of i+3, 0 of i+4.
  const std::vector<std::string> expected{"warm e 0", "warm d 1", "warm c 2", "warm b 3",
                                          "tick a",                                      //
                                          "warm e 1", "warm d 2", "warm c 3", "tick b",  //
                                          "warm e 2", "warm d 3", "tick c",              //
                                          "warm e 3", "tick d",                          //
                                          "tick e"};
  EXPECT_EQ(log.lines, expected);
}

TEST(TickerGroupTest, TickersNotDueOrRemovedAreNotWarmed) {
  TickerGroup group;
  WarmLog log;
  AddWarmed(group, log, "a", 20ms, At(0ms));
  AddWarmed(group, log, "slow", 100ms, At(0ms));  // due at 100 ms only
  const auto gone = AddWarmed(group, log, "gone", 20ms, At(0ms));
  group.Add(
      20ms, [&] { log.lines.push_back("tick plain"); }, At(0ms));  // no warmer
  ASSERT_TRUE(group.Remove(gone));
  EXPECT_EQ(group.RunDue(At(20ms)), 2u);
  EXPECT_EQ(log.lines, (std::vector<std::string>{"tick a", "tick plain"}));
}

TEST(TickerGroupTest, TheGroupHoldsTheWarmedObjectUntilTheTickerIsGone) {
  TickerGroup group;
  auto object = std::make_shared<int>(7);
  std::weak_ptr<int> watch = object;
  int ticks = 0;
  const int* raw = object.get();
  TickerGroup::Id id = 0;
  id = group.Add(20ms,
                 [&] {
                   ticks += *raw;     // the plain pointer stays valid while the ticker exists,
                   group.Remove(id);  // even once the tick removed itself during its round
                   EXPECT_FALSE(watch.expired());
                 },
                 At(0ms), {[](const void*, unsigned) {}, std::move(object)});
  EXPECT_FALSE(watch.expired());
  EXPECT_EQ(group.RunDue(At(20ms)), 1u);
  EXPECT_EQ(ticks, 7);
  EXPECT_TRUE(watch.expired());  // released with the callback, after the round
}

}  // namespace
}  // namespace callgate::conversation
