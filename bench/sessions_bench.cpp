// Benchmark (issues 3 and 6): many concurrent live conversations between callgate's session
// engine (null audio endpoints: silence sent in real time, agent audio played into nothing) and
// a running `callgate sim`. Reports, for N sessions over S seconds:
//   - the engine's CPU per session-second (this process: getrusage),
//   - the simulator's CPU per session-second (its /proc/<pid>/stat, when --sim-pid is given),
//   - memory per session (this process's RSS growth / N),
//   - how far behind real time the user audio reached the simulator (the simulator's per-session
//     byte count against the audio time elapsed; 50 ms chunks, so ~50 ms is "on time"),
//   - ping round trips answered, send-queue drops and playback underruns from the engine,
//   - the time from an `audio` event read off the socket to its samples being in the playback
//     buffer (Engine::audio_event_latency(): the agent's greetings, at the start of the run).
// Baseline in the same run: the same process idle for S seconds (its CPU is the floor).
// Usage: sessions_bench --url http://127.0.0.1:PORT --api-key KEY [--sessions 100]
//                       [--seconds 20] [--sim-pid PID] [--ramp 200 (sessions started per second;
//                       0 = all at once)] [--io-threads 2] [--lanes 0 (TransportOptions::lanes)]
//                       [--chunk-ms 50 (user audio per user_audio_chunk, AUDIO_CHUNK_MS)]
// (bench/sessions.sh starts the simulator and runs a series.) Not part of `make test`.
#include "audio/backends/monotonic_clock.hpp"
#include "audio/backends/spec.hpp"
#include "conversation/engine.hpp"
#include "conversation/transport.hpp"
#include "core/clock.hpp"
#include "core/worker.hpp"
#include "net/asio_scheduler.hpp"
#include "net/runtime.hpp"
#include "upstream/elevenlabs.hpp"
#include "upstream/http_client.hpp"

#include <spdlog/spdlog.h>

#include <sys/resource.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace callgate;
using Clock = std::chrono::steady_clock;

double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

double PidCpuSeconds(int pid) {
  if (pid <= 0) return -1;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(text.substr(close + 2));
  std::vector<std::string> values;
  for (std::string field; fields >> field;)
    values.push_back(field);
  // values[0] is field 3 (state); utime and stime are fields 14 and 15.
  if (values.size() < 13) return -1;
  const long utime = std::stol(values[11]);
  const long stime = std::stol(values[12]);
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

long RssKb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

// GET on the simulator through the same client (control routes need no key).
std::optional<boost::json::value> GetJson(upstream::HttpClient& http, const std::string& url) {
  std::promise<upstream::HttpOutcome> promise;
  auto future = promise.get_future();
  http.Send({.url = url},
            [&](upstream::HttpOutcome outcome) { promise.set_value(std::move(outcome)); });
  auto outcome = future.get();
  auto* response = std::get_if<upstream::HttpResponse>(&outcome);
  if (response == nullptr || response->status != 200) return std::nullopt;
  boost::system::error_code ec;
  auto value = boost::json::parse(response->body, ec);
  if (ec) return std::nullopt;
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  std::string url, key;
  int sessions = 100, seconds = 20, sim_pid = 0, io_threads = 2, lanes = 0, ramp = 200;
  int chunk_ms = 0;  // 0: the engine's default (AUDIO_CHUNK_MS, 50)
  int tick_ms = 0;   // 0: the engine's default (AUDIO_TICK_MS)
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--url")
      url = argv[i + 1];
    else if (flag == "--api-key")
      key = argv[i + 1];
    else if (flag == "--sessions")
      sessions = std::stoi(argv[i + 1]);
    else if (flag == "--seconds")
      seconds = std::stoi(argv[i + 1]);
    else if (flag == "--sim-pid")
      sim_pid = std::stoi(argv[i + 1]);
    else if (flag == "--io-threads")
      io_threads = std::stoi(argv[i + 1]);
    else if (flag == "--lanes")
      lanes = std::stoi(argv[i + 1]);
    else if (flag == "--ramp")
      ramp = std::stoi(argv[i + 1]);
    else if (flag == "--chunk-ms")
      chunk_ms = std::stoi(argv[i + 1]);
    else if (flag == "--tick-ms")
      tick_ms = std::stoi(argv[i + 1]);
  }
  if (url.empty() || key.empty() || sessions < 1 || seconds < 2) {
    std::fprintf(stderr,
                 "usage: sessions_bench --url URL --api-key KEY [--sessions N] "
                 "[--seconds S] [--sim-pid PID]\n");
    return 2;
  }

  spdlog::set_level(spdlog::level::warn);
  net::Runtime runtime(static_cast<unsigned>(std::max(1, io_threads)));
  std::thread io([&] { runtime.Run(); });
  net::AsioScheduler scheduler(runtime);
  core::SystemClock wall;
  audio::backends::MonotonicClock audio_clock;
  auto http = upstream::MakeHttpClient(runtime, {});
  upstream::ElevenLabsClient api(
      *http, scheduler, wall,
      {.base_url = url, .api_key = key, .timeout = std::chrono::seconds(30)});
  auto transports = conversation::MakeWebSocketTransportFactory(
      runtime, {.lanes = static_cast<std::size_t>(std::max(0, lanes))});
  core::Worker worker("audio", 65536);

  // Baseline: this process with its runtime, idle.
  const double idle_cpu0 = ProcessCpuSeconds();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const double idle_cpu_per_s = (ProcessCpuSeconds() - idle_cpu0) / 2.0;

  int exit_code = 0;
  {
    conversation::EngineOptions options;
    options.max_sessions = static_cast<std::size_t>(sessions) + 1;
    if (chunk_ms > 0) options.session.audio.chunk = std::chrono::milliseconds(chunk_ms);
    if (tick_ms > 0) options.tick = std::chrono::milliseconds(tick_ms);
    conversation::Engine engine({api, *transports, worker, wall, audio_clock}, options);
    std::vector<std::shared_ptr<conversation::Session>> handles;
    const long rss0 = RssKb();
    const auto ramp_start = Clock::now();
    for (int i = 0; i < sessions; ++i) {
      if (ramp > 0) {
        std::this_thread::sleep_until(
            ramp_start +
            std::chrono::microseconds(static_cast<std::int64_t>(i) * 1'000'000 / ramp));
      }
      conversation::SessionRequest request;
      request.session_id = "bench_" + std::to_string(i);
      request.agent_id = "agent_sim_default";
      request.input = *audio::backends::ParseBackendSpec("null");
      request.output = *audio::backends::ParseBackendSpec("null");
      request.initiation.dynamic_variables = {{"purpose", "a benchmark"}};
      auto started = engine.Start(std::move(request));
      if (auto* error = std::get_if<conversation::StartError>(&started)) {
        std::fprintf(stderr, "session %d refused: %s\n", i, error->message.c_str());
        return 1;
      }
      handles.push_back(std::get<std::shared_ptr<conversation::Session>>(started));
    }
    // Wait until every session is active (or has ended), then measure a steady window.
    const auto ready_deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < ready_deadline) {
      const auto active = std::count_if(handles.begin(), handles.end(), [](const auto& h) {
        const auto status = h->Stats().status;
        return status == conversation::Status::kActive || status == conversation::Status::kEnded;
      });
      if (active == sessions) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    const double cpu0 = ProcessCpuSeconds();
    const double sim_cpu0 = PidCpuSeconds(sim_pid);
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    const double window = std::chrono::duration<double>(Clock::now() - t0).count();
    const double cpu = ProcessCpuSeconds() - cpu0 - idle_cpu_per_s * window;
    const double sim_cpu = sim_pid > 0 ? PidCpuSeconds(sim_pid) - sim_cpu0 : -1;
    const long rss = RssKb();

    // Lateness: audio seconds the engine has sent vs what the simulator has received, and vs
    // the wall time each session has been active.
    double worst_lag_ms = 0, total_lag_ms = 0;
    int measured = 0, ended = 0;
    double capture_lag_worst_ms = 0, capture_lag_total_ms = 0;
    int capture_lag_sessions = 0;
    std::uint64_t dropped = 0, underruns = 0, pings = 0;
    std::int64_t sim_late_chunks = 0, sim_max_late_ms = 0;
    std::map<std::string, int> end_reasons;
    for (const auto& handle : handles) {
      const auto stats = handle->Stats();
      if (stats.status == conversation::Status::kEnded) {
        ++ended;
        ++end_reasons[stats.end_reason ? stats.end_reason->ToString() : "?"];
        continue;
      }
      dropped += stats.user_chunks_dropped;
      underruns += stats.underruns;
      capture_lag_worst_ms = std::max(capture_lag_worst_ms, stats.user_audio_lag_max_ms);
      capture_lag_total_ms += stats.user_audio_lag_max_ms;
      ++capture_lag_sessions;
      pings += stats.pings_answered;
      const auto sim =
          GetJson(*http, url + "/_sim/conversations/" + stats.conversation_id + "/websocket");
      if (!sim) continue;
      if (const auto* late = sim->as_object().if_contains("agent_audio_late_chunks")) {
        sim_late_chunks += late->to_number<std::int64_t>();
        sim_max_late_ms =
            std::max(sim_max_late_ms, sim->at("agent_audio_max_late_ms").to_number<std::int64_t>());
      }
      const double received_s =
          static_cast<double>(sim->at("user_audio_bytes").to_number<std::int64_t>()) / 32000.0;
      const double elapsed_s = std::chrono::duration<double>(wall.Now() - stats.start_time).count();
      // The session sends from activation, a little after start_time: lag is bounded below by
      // the connection set-up; report it against the audio the engine says it sent as well.
      const double sent_s = handle->Stats().audio_seconds_sent;
      const double lag_ms = std::max(0.0, (sent_s - received_s) * 1000.0);
      worst_lag_ms = std::max(worst_lag_ms, lag_ms);
      total_lag_ms += lag_ms;
      ++measured;
      (void)elapsed_s;
    }
    const double session_seconds = static_cast<double>(sessions) * window;
    std::printf("sessions %d, window %.1f s, ended early %d\n", sessions, window, ended);
    for (const auto& [reason, count] : end_reasons)
      std::printf("  ended: %d x %s\n", count, reason.c_str());
    std::printf("engine CPU: %.3f ms per session-second (idle baseline %.3f ms/s subtracted)\n",
                cpu * 1000.0 / session_seconds, idle_cpu_per_s * 1000.0);
    if (sim_cpu >= 0) {
      std::printf("simulator CPU: %.3f ms per session-second\n",
                  sim_cpu * 1000.0 / session_seconds);
    }
    std::printf("engine memory: %.1f KB per session (RSS %ld -> %ld KB)\n",
                static_cast<double>(rss - rss0) / sessions, rss0, rss);
    std::printf(
        "user audio sent but not yet received by the simulator: mean %.1f ms, worst %.1f ms "
        "(%d sessions measured)\n",
        measured ? total_lag_ms / measured : 0.0, worst_lag_ms, measured);
    std::printf(
        "user audio behind its capture before each send (chunk being filled + wait for the "
        "tick): per-session worst, mean %.1f ms, max %.1f ms\n",
        capture_lag_sessions ? capture_lag_total_ms / capture_lag_sessions : 0.0,
        capture_lag_worst_ms);
    std::printf("pings answered %llu, send-queue drops %llu, playback underruns %llu\n",
                static_cast<unsigned long long>(pings), static_cast<unsigned long long>(dropped),
                static_cast<unsigned long long>(underruns));
    // Whose fault an underrun is: agent audio the simulator itself sent late (its timers or
    // its lock; counted over the sessions' lifetimes, like the underruns).
    std::printf("agent audio chunks the simulator sent >= 50 ms late: %lld (worst %lld ms)\n",
                static_cast<long long>(sim_late_chunks), static_cast<long long>(sim_max_late_ms));
    const auto latency = engine.audio_event_latency();
    const auto us = [](std::chrono::nanoseconds ns) {
      return static_cast<double>(ns.count()) / 1e3;
    };
    std::printf(
        "audio event read -> samples in the playback buffer: %llu events, p50 %.1f us, p90 %.1f "
        "us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n",
        static_cast<unsigned long long>(latency.count), us(latency.p50), us(latency.p90),
        us(latency.p99), us(latency.p999), us(latency.max));
    // The audio clock's own delay: how late the lanes' rounds of ticks began (the whole run).
    const auto late = transports->tick_lateness();
    std::printf(
        "tick rounds started late by: %llu rounds, p50 %.1f us, p99 %.1f us, p99.9 %.1f us, "
        "max %.1f us\n",
        static_cast<unsigned long long>(late.count), us(late.p50), us(late.p99), us(late.p999),
        us(late.max));
    if (ended > 0 || dropped > 0) exit_code = 1;
    engine.Shutdown(std::chrono::seconds(10));
  }
  runtime.Stop();
  io.join();
  return exit_code;
}
