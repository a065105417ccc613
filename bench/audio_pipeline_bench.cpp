// CPU cost of the live-conversation audio pipeline (audio/pipeline/ConversationAudio), per
// session-second of real-time audio in both directions, against a baseline measured in the
// same run: copying the same audio with memcpy.
//
// Each scenario runs `--sessions` pipelines interleaved tick by tick (so their working sets
// compete for the caches as concurrent sessions would) for `--seconds` of audio each. A tick is
// 20 ms: the speaker's 20 ms are read from the downlink, the microphone's 20 ms are written to
// the uplink and its 50 ms chunks taken; the agent talks all the time, one 100 ms `audio` event
// every 5 ticks (the downlink's worst case). Base64 and JSON are not included (the session
// engine's work). Also reported: the wall time PushAgentAudio() takes (an `audio` event's
// samples from arrival to the playback buffer; median and 99th percentile, so it includes any
// preemption on a busy machine) and the heap in use per session.
//
//   audio_pipeline_bench [--sessions N] [--seconds S]
//
// Not a test: it prints figures and asserts nothing. Build it in Release.
#include "audio/codec.hpp"
#include "audio/format.hpp"
#include "audio/pipeline/conversation_audio.hpp"

#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

namespace {

using callgate::audio::AudioFormat;
using callgate::audio::ParseFormat;
using callgate::audio::pipeline::ConversationAudio;
using callgate::audio::pipeline::ConversationAudioOptions;

constexpr int kTickMs = 20;
constexpr int kTicksPerEvent = 5;  // 100 ms agent events

double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::size_t HeapInUse() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

std::vector<std::int16_t> Speechy(std::size_t n, int rate) {
  std::vector<std::int16_t> x(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / rate;
    x[i] = static_cast<std::int16_t>(6000.0 * std::sin(2 * std::numbers::pi * 220.0 * t) +
                                     3000.0 * std::sin(2 * std::numbers::pi * 1330.0 * t) *
                                         (0.5 + 0.5 * std::sin(2 * std::numbers::pi * 4.0 * t)));
  }
  return x;
}

struct Scenario {
  const char* name;
  const char* input_format;
  const char* output_format;
  int capture_rate;
  int playback_rate;
  bool echo_cancellation;
};

struct Result {
  double pipeline_cpu = 0;  // seconds
  double baseline_cpu = 0;
  double session_seconds = 0;
  double push_us_p50 = 0;
  double push_us_p99 = 0;
  double heap_per_session = 0;
  std::uint64_t chunks = 0;
};

Result Run(const Scenario& s, int sessions, int seconds) {
  const AudioFormat input = *ParseFormat(s.input_format);
  const AudioFormat output = *ParseFormat(s.output_format);
  const std::size_t capture_tick = static_cast<std::size_t>(s.capture_rate) * kTickMs / 1000;
  const std::size_t playback_tick = static_cast<std::size_t>(s.playback_rate) * kTickMs / 1000;
  const std::size_t event_bytes =
      output.BytesPerSecond() * static_cast<std::size_t>(kTickMs * kTicksPerEvent) / 1000;
  const std::size_t ticks = static_cast<std::size_t>(seconds) * 1000 / kTickMs;

  // Shared inputs: one second of microphone audio and one second of agent audio, looped.
  const std::vector<std::int16_t> mic =
      Speechy(static_cast<std::size_t>(s.capture_rate), s.capture_rate);
  const std::vector<std::uint8_t> agent = callgate::audio::Encode(
      output, Speechy(static_cast<std::size_t>(output.sample_rate), output.sample_rate));

  Result r;
  r.session_seconds = static_cast<double>(sessions) * seconds;

  // --- Pipeline ---
  const std::size_t heap_before = HeapInUse();
  std::vector<std::unique_ptr<ConversationAudio>> pipelines;
  for (int i = 0; i < sessions; ++i) {
    pipelines.push_back(std::make_unique<ConversationAudio>(
        ConversationAudioOptions{.input_format = input,
                                 .output_format = output,
                                 .capture_rate = s.capture_rate,
                                 .playback_rate = s.playback_rate,
                                 .echo_cancellation = s.echo_cancellation}));
  }
  std::vector<std::int16_t> speaker(playback_tick);
  std::vector<double> push_us;
  push_us.reserve(static_cast<std::size_t>(sessions) * (ticks / kTicksPerEvent + 1));
  std::uint64_t sink = 0;
  const double cpu0 = CpuSeconds();
  for (std::size_t t = 0; t < ticks; ++t) {
    const std::size_t mic_pos = (t * capture_tick) % (mic.size() - capture_tick);
    const std::size_t agent_pos =
        ((t / kTicksPerEvent) * event_bytes) % (agent.size() - event_bytes);
    for (auto& p : pipelines) {
      if (t % kTicksPerEvent == 0) {
        const auto start = std::chrono::steady_clock::now();
        p->PushAgentAudio(std::span(agent).subspan(agent_pos, event_bytes),
                          static_cast<std::int64_t>(t / 500));
        const double us =
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
                .count();
        push_us.push_back(us);
      }
      p->ReadPlayback(speaker);
      sink += static_cast<std::uint16_t>(speaker[playback_tick / 2]);
      p->WriteCapture(std::span(mic).subspan(mic_pos, capture_tick));
      for (auto chunk = p->NextUserChunk(); !chunk.empty(); chunk = p->NextUserChunk()) {
        sink += chunk[0];
        ++r.chunks;
      }
    }
  }
  r.pipeline_cpu = CpuSeconds() - cpu0;
  r.heap_per_session =
      static_cast<double>(HeapInUse() - heap_before) / static_cast<double>(sessions);
  std::sort(push_us.begin(), push_us.end());
  r.push_us_p50 = push_us[push_us.size() / 2];
  r.push_us_p99 = push_us[push_us.size() * 99 / 100];
  pipelines.clear();

  // --- Baseline: the same audio moved with memcpy, per session and tick ---
  std::vector<std::vector<std::int16_t>> play_buffers(static_cast<std::size_t>(sessions),
                                                      std::vector<std::int16_t>(playback_tick * 2));
  std::vector<std::vector<std::uint8_t>> up_buffers(
      static_cast<std::size_t>(sessions),
      std::vector<std::uint8_t>(capture_tick * 2 + event_bytes));
  const double cpu1 = CpuSeconds();
  for (std::size_t t = 0; t < ticks; ++t) {
    const std::size_t mic_pos = (t * capture_tick) % (mic.size() - capture_tick);
    const std::size_t agent_pos =
        ((t / kTicksPerEvent) * event_bytes) % (agent.size() - event_bytes);
    for (int i = 0; i < sessions; ++i) {
      auto& up = up_buffers[static_cast<std::size_t>(i)];
      auto& play = play_buffers[static_cast<std::size_t>(i)];
      if (t % kTicksPerEvent == 0) {
        std::memcpy(up.data() + capture_tick * 2, agent.data() + agent_pos, event_bytes);
      }
      std::memcpy(play.data(), up.data() + capture_tick * 2, playback_tick * 2 / 2);
      std::memcpy(up.data(), mic.data() + mic_pos, capture_tick * 2);
      sink += up[t % up.size()] + static_cast<std::uint16_t>(play[t % play.size()]);
    }
  }
  r.baseline_cpu = CpuSeconds() - cpu1;
  if (sink == 42) std::puts("");  // keep the work observable
  return r;
}

int Arg(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::max(1, std::atoi(argv[i + 1]));
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const int sessions = Arg(argc, argv, "--sessions", 200);
  const int seconds = Arg(argc, argv, "--seconds", 10);
  const Scenario scenarios[] = {
      {"headless pcm_16000/pcm_16000, endpoints 16k", "pcm_16000", "pcm_16000", 16000, 16000,
       false},
      {"headless ulaw_8000/ulaw_8000, endpoints 8k", "ulaw_8000", "ulaw_8000", 8000, 8000, false},
      {"headless pcm_16000/pcm_44100, endpoints 16k/44.1k", "pcm_16000", "pcm_44100", 16000, 44100,
       false},
      {"device pcm_16000/pcm_44100, devices 48k/48k", "pcm_16000", "pcm_44100", 48000, 48000,
       false},
      {"device + AEC pcm_16000/pcm_44100, devices 48k/48k", "pcm_16000", "pcm_44100", 48000, 48000,
       true},
  };
  std::printf(
      "audio pipeline: %d sessions x %d s of audio each, 20 ms ticks, agent talking all "
      "the time\n",
      sessions, seconds);
  std::printf("%-52s %12s %12s %8s %12s %8s %8s\n", "scenario", "ms CPU/ss", "memcpy ms/ss",
              "ratio", "push p50 us", "p99 us", "KB/sess");
  for (const Scenario& s : scenarios) {
    // AEC is for the one session that owns the devices: fewer sessions keep the run short.
    const int n = s.echo_cancellation ? std::max(1, sessions / 20) : sessions;
    const Result r = Run(s, n, seconds);
    const double per_ss = r.pipeline_cpu * 1000.0 / r.session_seconds;
    const double base_ss = r.baseline_cpu * 1000.0 / r.session_seconds;
    std::printf("%-52s %12.4f %12.4f %8.0f %12.1f %8.1f %8.1f\n", s.name, per_ss, base_ss,
                base_ss > 0 ? per_ss / base_ss : 0.0, r.push_us_p50, r.push_us_p99,
                r.heap_per_session / 1024.0);
  }
  std::printf(
      "ms CPU/ss: milliseconds of CPU per session-second (both directions); issue 6 "
      "aims below 0.5.\n");
  return 0;
}
