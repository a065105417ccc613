#include "audio/pipeline/conversation_audio.hpp"

#include "audio/codec.hpp"
#include "audio/speech.hpp"  // Tone
#include "unit/audio/pipeline/allocation_counter.hpp"
#include "unit/audio/pipeline/measure.hpp"

#include <gtest/gtest.h>

#include <random>

namespace callgate::audio::pipeline {
namespace {

using testing::EnergyDb;

// One simulated session: the agent speaks (events of 100 ms), the speaker's output reaches the
// microphone as an echo (delay + attenuation), and the uplink's chunks are collected.
struct Loop {
  std::vector<std::int16_t> user_audio;  // decoded uplink chunks
};

Loop RunLoop(ConversationAudio& audio, int device_rate, double seconds,
             std::span<const std::uint8_t> agent_wire, std::size_t agent_event_bytes) {
  Loop loop;
  const std::size_t tick = static_cast<std::size_t>(device_rate) / 100;  // 10 ms
  const std::size_t delay = static_cast<std::size_t>(device_rate) * 40 / 1000;
  std::vector<std::int16_t> speaker;  // everything played, for the echo path
  std::vector<std::int16_t> buf(tick);
  std::vector<std::int16_t> mic(tick);
  std::size_t sent = 0;
  const auto ticks = static_cast<std::size_t>(seconds * 100);
  const AudioFormat input = audio.uplink().format();
  for (std::size_t t = 0; t < ticks; ++t) {
    if (t % 10 == 0 && sent < agent_wire.size()) {  // one event per 100 ms, in real time
      const std::size_t n = std::min(agent_event_bytes, agent_wire.size() - sent);
      audio.PushAgentAudio(agent_wire.subspan(sent, n), 1);
      sent += n;
    }
    audio.ReadPlayback(buf);
    speaker.insert(speaker.end(), buf.begin(), buf.end());
    for (std::size_t i = 0; i < tick; ++i) {
      const std::size_t at = t * tick + i;
      mic[i] = at >= delay ? static_cast<std::int16_t>(speaker[at - delay] * 0.5) : 0;
    }
    audio.WriteCapture(mic);
    for (auto chunk = audio.NextUserChunk(); !chunk.empty(); chunk = audio.NextUserChunk()) {
      const auto samples = Decode(input, chunk);
      loop.user_audio.insert(loop.user_audio.end(), samples.begin(), samples.end());
    }
  }
  return loop;
}

std::vector<std::uint8_t> AgentSpeech(const AudioFormat& format, double seconds) {
  // Noise-like speech stand-in, so the echo canceller has a broadband signal to learn from.
  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0.0, 5000.0);
  std::vector<std::int16_t> x(static_cast<std::size_t>(seconds * format.sample_rate));
  double lp = 0.0;
  for (auto& s : x) {
    lp = 0.6 * lp + 0.4 * noise(rng);
    s = static_cast<std::int16_t>(std::clamp(lp, -32767.0, 32767.0));
  }
  return Encode(format, x);
}

TEST(ConversationAudio, EchoCancellationKeepsTheAgentOutOfTheUplink) {
  const AudioFormat input = *ParseFormat("pcm_16000");
  const AudioFormat output = *ParseFormat("pcm_44100");
  const std::vector<std::uint8_t> speech = AgentSpeech(output, 8.0);
  const std::size_t event = output.BytesPerSecond() / 10;

  double user_db[2] = {0.0, 0.0};
  for (bool aec : {false, true}) {
    ConversationAudio audio({.input_format = input,
                             .output_format = output,
                             .capture_rate = 48000,
                             .playback_rate = 48000,
                             .echo_cancellation = aec});
    const Loop loop = RunLoop(audio, 48000, 8.0, speech, event);
    ASSERT_GT(loop.user_audio.size(), 7u * 16000u);
    // The last 3 seconds, once the filter has converged.
    user_db[aec ? 1 : 0] = EnergyDb(std::span(loop.user_audio).last(3 * 16000));
    EXPECT_EQ(audio.downlink().stats().underruns, 0u);
  }
  EXPECT_GT(user_db[0] - user_db[1], 20.0) << "echo heard by the agent, with vs without AEC";
}

TEST(ConversationAudio, SteadyStateAllocatesNothing) {
  const AudioFormat input = *ParseFormat("ulaw_8000");
  const AudioFormat output = *ParseFormat("pcm_22050");
  const std::vector<std::uint8_t> speech = AgentSpeech(output, 12.0);
  for (bool aec : {false, true}) {
    ConversationAudio audio({.input_format = input,
                             .output_format = output,
                             .capture_rate = 44100,
                             .playback_rate = 48000,
                             .echo_cancellation = aec});
    const std::size_t event = output.BytesPerSecond() / 10;
    // Warm-up: every scratch buffer reaches its working size.
    std::vector<std::int16_t> buf(480);
    std::vector<std::int16_t> mic(441);
    std::size_t sent = 0;
    std::size_t chunks = 0;
    const auto tick = [&](std::size_t t) {
      if (t % 10 == 0 && sent + event <= speech.size()) {
        audio.PushAgentAudio(std::span(speech).subspan(sent, event), static_cast<int>(t / 500));
        sent += event;
      }
      audio.ReadPlayback(buf);
      for (std::size_t i = 0; i < mic.size(); ++i)
        mic[i] = static_cast<std::int16_t>(buf[i] / 3);
      audio.WriteCapture(mic);
      for (auto c = audio.NextUserChunk(); !c.empty(); c = audio.NextUserChunk())
        ++chunks;
    };
    std::size_t t = 0;
    for (; t < 200; ++t)
      tick(t);
    const std::uint64_t before = testing::AllocationCount();
    for (; t < 1100; ++t)
      tick(t);
    EXPECT_EQ(testing::AllocationCount() - before, 0u) << (aec ? "with" : "without") << " AEC";
    EXPECT_GT(chunks, 200u);
  }
}

}  // namespace
}  // namespace callgate::audio::pipeline
