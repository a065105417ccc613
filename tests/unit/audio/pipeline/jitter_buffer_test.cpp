#include "audio/pipeline/jitter_buffer.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <numeric>
#include <stdexcept>
#include <vector>

namespace callgate::audio::pipeline {
namespace {

// At 8 kHz: 80 ms = 640 samples, 10 ms = 80, 5 ms = 40.
constexpr int kRate = 8000;
constexpr std::size_t kBlock = 80;

JitterBufferOptions Options() {
  return {.sample_rate = kRate,
          .prebuffer = std::chrono::milliseconds(80),
          .max_buffer = std::chrono::milliseconds(1000),
          .fade = std::chrono::milliseconds(5)};
}

// 1, 2, 3, ... (never 0, so audio and silence are told apart sample by sample).
std::vector<std::int16_t> Ramp(std::size_t n, int start = 1) {
  std::vector<std::int16_t> x(n);
  for (std::size_t i = 0; i < n; ++i)
    x[i] = static_cast<std::int16_t>((start + static_cast<int>(i)) % 30000 + 1);
  return x;
}

std::vector<std::int16_t> ReadBlock(JitterBuffer& jb, std::size_t n = kBlock) {
  std::vector<std::int16_t> out(n, -1);
  jb.Read(out);
  return out;
}

bool AllZero(const std::vector<std::int16_t>& x) {
  return std::all_of(x.begin(), x.end(), [](std::int16_t s) { return s == 0; });
}

TEST(JitterBuffer, PlaysAfterAPlayoutDelayCountedFromTheFirstSample) {
  JitterBuffer jb(Options());  // prebuffer: 640 samples
  const auto audio = Ramp(1000);
  jb.Push(std::span(audio).first(100), 1);
  std::vector<std::int16_t> out;
  for (int i = 0; i < 8; ++i) {  // blocks of 100: the delay ends inside the 7th
    const auto block = ReadBlock(jb, 100);
    out.insert(out.end(), block.begin(), block.end());
    if (i == 2) jb.Push(std::span(audio).subspan(100), 1);
  }
  std::vector<std::int16_t> expected(640, 0);
  expected.insert(expected.end(), audio.begin(), audio.begin() + 160);
  EXPECT_EQ(out, expected);
  EXPECT_TRUE(jb.playing());
  EXPECT_EQ(jb.stats().silence_samples, 640u);
  EXPECT_EQ(jb.stats().played_samples, 160u);
}

TEST(JitterBuffer, AudioArrivingInRealTimeWithJitterNeverRunsDry) {
  JitterBuffer jb(Options());  // 80 ms of playout delay
  // 100 ms events (800 samples), each due every 10 blocks of 10 ms, each 0..60 ms late.
  const int lateness[] = {0, 3, 6, 1, 5, 0, 6, 2, 4, 6, 0, 1, 6, 6, 3, 0, 5, 2, 6, 1};
  int next_event = 0;
  for (int block = 0; block < 250; ++block) {
    while (next_event < 20 && block == next_event * 10 + lateness[next_event]) {
      jb.Push(Ramp(800), 1);
      ++next_event;
    }
    ReadBlock(jb);
  }
  EXPECT_EQ(next_event, 20);
  EXPECT_EQ(jb.stats().played_samples, 20u * 800u);
  EXPECT_EQ(jb.stats().run_dry, 1u) << "only at the very end";
  EXPECT_EQ(jb.stats().underruns, 0u);
}

TEST(JitterBuffer, AShortReplyIsPlayedAfterWaitingOnePrebuffer) {
  JitterBuffer jb(Options());
  const auto audio = Ramp(200);
  jb.Push(audio, 1);
  // 640 samples of waiting = 8 blocks of silence; the 9th block starts the audio.
  for (int i = 0; i < 8; ++i) {
    EXPECT_TRUE(AllZero(ReadBlock(jb))) << "block " << i;
  }
  const auto block = ReadBlock(jb);
  EXPECT_EQ(std::vector<std::int16_t>(block.begin(), block.end()),
            std::vector<std::int16_t>(audio.begin(), audio.begin() + kBlock));
}

TEST(JitterBuffer, RunningDryPlaysSilenceAndCountsAnUnderrunOnlyInsideOneEvent) {
  JitterBuffer jb(Options());
  jb.Push(Ramp(700), 1);
  const auto count_audio = [&](int blocks) {
    std::size_t audio = 0;
    for (int i = 0; i < blocks; ++i) {
      const auto block = ReadBlock(jb);
      audio += static_cast<std::size_t>(
          std::count_if(block.begin(), block.end(), [](std::int16_t s) { return s != 0; }));
    }
    return audio;
  };
  EXPECT_EQ(count_audio(20), 700u);  // 640 waiting, 700 playing, 260 dry
  EXPECT_EQ(jb.stats().run_dry, 1u);
  EXPECT_FALSE(jb.playing());
  EXPECT_EQ(jb.stats().silence_samples, 20 * kBlock - 700);

  // More audio of the same event after running dry: a gap inside one utterance.
  jb.Push(Ramp(700), 1);
  EXPECT_EQ(jb.stats().underruns, 1u);
  // Played again after a new playout delay.
  EXPECT_EQ(count_audio(8), 0u);
  EXPECT_EQ(count_audio(12), 700u);
  EXPECT_EQ(jb.stats().run_dry, 2u);

  // A new event after running dry is a new turn, not an underrun.
  jb.Push(Ramp(700), 2);
  EXPECT_EQ(jb.stats().underruns, 1u);
}

TEST(JitterBuffer, NeverHoldsMoreThanTheMaximumAndDropsTheOldest) {
  JitterBuffer jb(Options());  // max 1000 ms = 8000 samples
  const auto audio = Ramp(20000);
  jb.Push(std::span(audio).first(5000), 1);
  jb.Push(std::span(audio).subspan(5000), 1);
  EXPECT_EQ(jb.buffered_samples(), 8000u);
  EXPECT_EQ(jb.buffered(), std::chrono::seconds(1));
  EXPECT_EQ(jb.stats().overflow_samples, 12000u);
  EXPECT_EQ(jb.stats().overflow_events, 1u);
  const auto block = ReadBlock(jb, 720);  // 640 of playout delay, then the audio
  EXPECT_EQ(block[640], audio[12000]) << "the newest audio is kept";

  // One push larger than the maximum keeps only its end.
  JitterBuffer jb2(Options());
  jb2.Push(audio, 1);
  EXPECT_EQ(jb2.buffered_samples(), 8000u);
  EXPECT_EQ(ReadBlock(jb2, 720)[640], audio[12000]);
}

TEST(JitterBuffer, InterruptFlushesEverythingBehindAShortFade) {
  JitterBuffer jb(Options());
  std::vector<std::int16_t> loud(4000, 20000);
  jb.Push(loud, 3);
  ReadBlock(jb, 720);  // 640 of playout delay, then 80 played
  ASSERT_TRUE(jb.playing());
  jb.Interrupt(3);
  EXPECT_EQ(jb.buffered_samples(), 40u) << "only the 5 ms fade is left";
  EXPECT_EQ(jb.stats().flushed_samples, 4000u - kBlock - 40u);

  const auto after = ReadBlock(jb, 200);
  // The fade: strictly decreasing from just under the level to near zero, then silence.
  for (std::size_t i = 1; i < 40; ++i) {
    EXPECT_LT(after[i], after[i - 1]) << i;
  }
  EXPECT_GT(after[0], 19000);
  EXPECT_LT(after[39], 20000 / 40 + 1);
  EXPECT_TRUE(std::all_of(after.begin() + 40, after.end(), [](std::int16_t s) { return s == 0; }));
  EXPECT_EQ(jb.stats().interruptions, 1u);
}

TEST(JitterBuffer, InterruptBeforePlaybackFlushesWithoutFade) {
  JitterBuffer jb(Options());
  jb.Push(Ramp(300), 1);  // below the prebuffer: not playing yet
  jb.Interrupt(1);
  EXPECT_EQ(jb.buffered_samples(), 0u);
  EXPECT_EQ(jb.stats().flushed_samples, 300u);
  for (int i = 0; i < 10; ++i)
    EXPECT_TRUE(AllZero(ReadBlock(jb)));
}

TEST(JitterBuffer, AudioNotNewerThanTheInterruptionIsDropped) {
  JitterBuffer jb(Options());
  jb.Interrupt(7);
  EXPECT_FALSE(jb.Accepts(6));
  EXPECT_FALSE(jb.Accepts(7));
  EXPECT_TRUE(jb.Accepts(8));
  EXPECT_FALSE(jb.Push(Ramp(1000), 7));
  EXPECT_FALSE(jb.Push(Ramp(500), 2));
  EXPECT_EQ(jb.buffered_samples(), 0u);
  EXPECT_EQ(jb.stats().stale_events, 2u);
  EXPECT_EQ(jb.stats().stale_samples, 1500u);
  EXPECT_TRUE(jb.Push(Ramp(1000), 8));
  EXPECT_EQ(jb.buffered_samples(), 1000u);
  // An older interruption does not lower the bar.
  jb.Interrupt(3);
  EXPECT_EQ(jb.last_interrupt_id(), 7);
  EXPECT_FALSE(jb.Accepts(5));
}

TEST(JitterBuffer, DrainCallbackRunsAtOnceWhenEmpty) {
  JitterBuffer jb(Options());
  int calls = 0;
  jb.DrainThen([&] { ++calls; });
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(jb.draining());
}

TEST(JitterBuffer, DrainPlaysTheRestWithoutPrebufferAndCallsBackOnTheLastSample) {
  JitterBuffer jb(Options());
  const auto audio = Ramp(300);  // below the prebuffer
  jb.Push(audio, 1);
  int calls = 0;
  jb.DrainThen([&] { ++calls; });
  EXPECT_EQ(calls, 0);
  EXPECT_TRUE(jb.draining());
  jb.Push(Ramp(100, 301), 1);  // arrives before the drain completes: played too
  std::vector<std::int16_t> played;
  for (int i = 0; i < 5; ++i) {  // 400 samples = 5 blocks; the 5th empties the buffer
    const auto block = ReadBlock(jb);
    EXPECT_EQ(calls, i == 4 ? 1 : 0) << "block " << i;
    played.insert(played.end(), block.begin(), block.end());
  }
  EXPECT_EQ(played, Ramp(400)) << "no prebuffer wait while draining";
  ReadBlock(jb);
  EXPECT_EQ(calls, 1) << "the callback runs once";
}

TEST(JitterBuffer, AnInterruptionCompletesAPendingDrain) {
  JitterBuffer jb(Options());
  jb.Push(Ramp(2000), 1);
  int calls = 0;
  jb.DrainThen([&] { ++calls; });
  jb.Interrupt(1);  // not playing yet: flushed with no fade
  EXPECT_EQ(calls, 1);
}

TEST(JitterBuffer, RejectsInvalidOptions) {
  EXPECT_THROW(JitterBuffer({.sample_rate = 500}), std::invalid_argument);
  EXPECT_THROW(JitterBuffer({.sample_rate = 8000,
                             .prebuffer = std::chrono::milliseconds(200),
                             .max_buffer = std::chrono::milliseconds(100)}),
               std::invalid_argument);
  EXPECT_THROW(JitterBuffer({.sample_rate = 8000, .fade = std::chrono::milliseconds(-1)}),
               std::invalid_argument);
}

}  // namespace
}  // namespace callgate::audio::pipeline
