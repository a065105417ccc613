// Load generator for the webhook inbox (issue 5; bench/webhook_load.sh drives it).
//
// Posts signed `post_call_transcription` events of realistic size (5.6 KB: the GET-conversation
// shape with a 20-turn transcript) over keep-alive connections, one request in flight per
// connection (a closed loop, like wrk), and measures every request from the first byte sent to
// the last byte of its response. Any answer but 200, or a connection error, fails the run.
//
// Every request carries a unique conversation id (the inbox deduplicates by type + conversation
// id, and a duplicate would be answered 200 without being stored): "conv_<tag><12 digits>", the
// digits a process-wide counter. Each connection owns one copy of the whole request; the next
// request is made by overwriting the counter digits and the 64 hex digits of the signature in
// place, so building a request costs no allocation. Signatures are computed BEFORE the clock
// starts, for counters 0..presign-1 (all threads in parallel, callgate::webhook::Sign over
// "t.body", one timestamp for the run, well inside the 30-minute tolerance); a request beyond the
// pre-signed range is signed on the fly and counted, with the time it took, so the report shows
// whether signing could have limited the generator.
//
// Open loop (--rate R): the same requests, R per second at even intervals whatever the answers
// (as wrk2 and bench/rate_load.cpp do): each leaves on an idle connection when it is due, or
// waits for one, and its latency counts from when it was due, so a slow answer delays the
// requests behind it and they count it (no coordinated omission). The report adds how late the
// generator itself sent them.
//
// Baseline (--baseline): the same generator against a handler that only answers 200, served by
// callgate's real HTTP server (http::Server, Router, Dispatcher; a POST route with
// BodyKind::kRaw) started in this process on 127.0.0.1, port 0. In-process rather than a second
// `callgate serve`-like process because it needs no route in callgate for the purpose and runs
// exactly the server code the gateway runs (same I/O thread count, default one per core, as
// IO_THREADS=0), and the generator and the server share the machine's cores either way. It
// answers a body of the gateway's shape and size, so only the inbox's work differs. The server
// is set up here rather than with tests/support's ServedRouter, which only exists in builds with
// CALLGATE_BUILD_TESTS=ON.
//
// Output: a human-readable summary, then one machine-readable line starting with "RESULT".
// Exit status: 0 on success, 1 when any answer was not 200 or a connection failed, 2 on usage.
#include "core/logging.hpp"
#include "http/dispatcher.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "metrics/registry.hpp"
#include "net/runtime.hpp"
#include "webhook/signature.hpp"

#include "load_options.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using callgate::bench::Connect;
using callgate::bench::NearestRank;
using callgate::bench::ParseNumber;
using callgate::bench::ParseUrl;
using callgate::bench::Resolve;
using callgate::bench::Target;
using callgate::bench::UsageError;

using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kCounterDigits = 12;
constexpr std::size_t kHexDigits = 64;
constexpr std::string_view kDefaultPath = "/api/webhooks/elevenlabs";

struct Options {
  std::string url;
  bool baseline = false;
  unsigned server_threads = 0;  // baseline server's I/O threads; 0 = one per core
  unsigned connections = 64;
  unsigned threads = 2;
  double seconds = 10;
  double warmup = 1;
  std::string secret = "bench-webhook-secret";
  unsigned turns = 20;
  std::uint64_t presign = 0;  // 0 = 40,000 per second of run (warm-up included)
  std::string tag;            // conversation id prefix; default from the clock
  std::string label;
  bool print_request = false;  // print the first request and exit
  double rate = 0;             // requests per second offered (open loop); 0 = closed loop
};

[[noreturn]] void Usage(const std::string& error) {
  std::fprintf(stderr,
               "webhook_load: %s\n"
               "usage: webhook_load (--url http://127.0.0.1:PORT/path | --baseline)\n"
               "         [--connections 64] [--threads 2] [--seconds 10] [--warmup 1]\n"
               "         [--secret S] [--turns 20] [--presign N] [--tag T] [--label L]\n"
               "         [--server-threads N]   (baseline server; 0 = one per core)\n"
               "         [--rate R]             (open loop: R requests per second offered)\n"
               "         [--print-request]      (print the first request, signed, and exit)\n",
               error.c_str());
  std::exit(2);
}

Options ParseOptions(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--baseline") {
      options.baseline = true;
      continue;
    }
    if (arg == "--print-request") {
      options.print_request = true;
      continue;
    }
    if (i + 1 >= argc) Usage("missing value for " + std::string(arg));
    const std::string_view value = argv[++i];
    if (arg == "--url") {
      options.url = value;
    } else if (arg == "--server-threads") {
      options.server_threads = ParseNumber<unsigned>(arg, value);
    } else if (arg == "--connections") {
      options.connections = ParseNumber<unsigned>(arg, value);
    } else if (arg == "--threads") {
      options.threads = ParseNumber<unsigned>(arg, value);
    } else if (arg == "--seconds") {
      options.seconds = ParseNumber<double>(arg, value);
    } else if (arg == "--warmup") {
      options.warmup = ParseNumber<double>(arg, value);
    } else if (arg == "--secret") {
      options.secret = value;
    } else if (arg == "--turns") {
      options.turns = ParseNumber<unsigned>(arg, value);
    } else if (arg == "--presign") {
      options.presign = ParseNumber<std::uint64_t>(arg, value);
    } else if (arg == "--tag") {
      options.tag = value;
    } else if (arg == "--label") {
      options.label = value;
    } else if (arg == "--rate") {
      options.rate = ParseNumber<double>(arg, value);
    } else {
      Usage("unknown option " + std::string(arg));
    }
  }
  if (options.baseline == !options.url.empty()) Usage("give exactly one of --url and --baseline");
  if (options.connections == 0 || options.threads == 0)
    Usage("connections and threads must be > 0");
  options.threads = std::min(options.threads, options.connections);
  if (options.seconds <= 0 || options.warmup < 0) Usage("seconds must be > 0, warmup >= 0");
  if (options.rate < 0) Usage("rate must be >= 0");
  if (options.presign == 0) {
    options.presign = static_cast<std::uint64_t>((options.seconds + options.warmup) * 40'000);
  }
  if (options.tag.empty()) {
    // Unique per run, so that runs against the same database never collide.
    const auto micros =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
    char tag[24];
    std::snprintf(tag, sizeof tag, "%010" PRIx64 "_", micros & std::uint64_t{0xffffffffff});
    options.tag = tag;
  }
  if (options.label.empty()) options.label = options.baseline ? "baseline" : options.url;
  return options;
}

// ---------------------------------------------------------------------------------------------
// The request: a post_call_transcription event as ElevenLabs sends it (the GET-conversation
// shape under "data"), with a placeholder for the counter digits.

boost::json::object Turn(unsigned index, std::int64_t time) {
  // Ten distinct lines a side, so a 20-turn transcript repeats none: a store that compresses
  // payloads sees what a real call gives it, not a text made of copies.
  static constexpr const char* kAgent[] = {
      "Hi, this is Ava from Northwind Dental about your Tuesday visit.",
      "No problem at all. Would later this week work for you instead?",
      "I can do Thursday at ten thirty or Friday at two. Which suits?",
      "Thursday at ten thirty it is. Is the number ending 4471 right?",
      "It's the six-month check-up and a cleaning with Dr. Patel.",
      "About forty minutes. Please bring your new insurance card.",
      "Yes, the car park behind the clinic is free for patients.",
      "Of course, I've noted that you'd prefer an afternoon next time.",
      "Great. You'll get a text reminder the day before. Anything else?",
      "You're welcome. See you on Thursday. Goodbye!"};
  static constexpr const char* kUser[] = {
      "Oh hi. Actually I can't make Tuesday anymore.",
      "Maybe. Thursday morning would be better, if there's anything.",
      "Thursday, please. The earlier slot is perfect for me.",
      "Yes, that's my number. What is the visit for again?",
      "Right, I'd forgotten. How long will it take?",
      "Okay, I changed providers in March. Is parking still free?",
      "Good to know. Could the next one be in the afternoon?",
      "Thanks, mornings are hard with the school run.",
      "No, that's all, thanks for calling.",
      "Bye now."};
  const bool agent = index % 2 == 0;
  const char* message = agent ? kAgent[(index / 2) % 10] : kUser[(index / 2) % 10];
  return {{"role", agent ? "agent" : "user"},
          {"message", message},
          {"tool_calls", nullptr},
          {"tool_results", nullptr},
          {"feedback", nullptr},
          {"time_in_call_secs", time},
          {"interrupted", false},
          {"conversation_turn_metrics", nullptr}};
}

struct Template {
  std::string request;       // headers + body
  std::size_t counter_at;    // offset of the counter digits in `request`
  std::size_t signature_at;  // offset of the 64 hex digits of v0= in `request`
  std::size_t body_at;       // offset of the body in `request`
  std::size_t body_bytes = 0;
  std::int64_t timestamp = 0;
};

Template BuildTemplate(const Options& options, const Target& target) {
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  const std::string placeholder = "conv_" + options.tag + std::string(kCounterDigits, '#');
  boost::json::array transcript;
  std::int64_t time = 0;
  for (unsigned i = 0; i < options.turns; ++i) {
    transcript.push_back(Turn(i, time));
    time += 4 + (i * 7) % 5;
  }
  const boost::json::object data{
      {"agent_id", "agent_8f0b2c5e4d3a1f7e9c6b"},
      {"agent_name", "Northwind Dental reminders"},
      {"conversation_id", placeholder},
      {"status", "done"},
      {"user_id", nullptr},
      {"transcript", std::move(transcript)},
      {"metadata",
       {{"start_time_unix_secs", now - 120},
        {"accepted_time_unix_secs", now - 118},
        {"call_duration_secs", time},
        {"cost", time * 10},
        {"termination_reason", "Call ended by remote party"},
        {"error", nullptr},
        {"main_language", "en"},
        {"text_only", false},
        {"conversation_initiation_source", "twilio"},
        {"timezone", nullptr},
        {"phone_call",
         {{"type", "twilio"},
          {"direction", "outbound"},
          {"phone_number_id", "phnum_3c1d7a9e0b4f2e6d8a5c"},
          {"agent_number", "+15550100200"},
          {"external_number", "+15551234471"},
          {"stream_sid", "MZ5d2f8b0c6a9e4b1d7f3a2c8e0b6d4f1a"},
          {"call_sid", "CA9b4e2d7f1c8a3e6b0d5f2a9c7e4b1d8f"}}}}},
      {"analysis",
       {{"evaluation_criteria_results", boost::json::object{}},
        {"data_collection_results", boost::json::object{}},
        {"call_successful", "success"},
        {"transcript_summary",
         "The patient could not attend the Tuesday appointment and rebooked for Thursday at "
         "10:30. The phone number on file was confirmed and a reminder text will be sent."},
        {"call_summary_title", "Appointment moved to Thursday"}}},
      {"conversation_initiation_client_data",
       {{"conversation_config_override", boost::json::object{}},
        {"custom_llm_extra_body", boost::json::object{}},
        {"user_id", nullptr},
        {"source_info", {{"source", "twilio"}, {"version", nullptr}}},
        {"dynamic_variables", {{"patient_name", "Jordan"}, {"clinic", "Northwind Dental"}}}}},
      {"has_audio", true},
      {"has_user_audio", false},
      {"has_response_audio", false},
      {"has_auxiliary_audio", false}};
  const boost::json::object event{
      {"type", "post_call_transcription"}, {"event_timestamp", now}, {"data", data}};
  const std::string body = boost::json::serialize(event);

  Template t;
  t.timestamp = now;
  t.body_bytes = body.size();
  const std::string signature_placeholder = std::string(kHexDigits, '0');
  t.request = "POST " + target.path + " HTTP/1.1\r\nHost: " + target.host + ":" +
              std::to_string(target.port) +
              "\r\nUser-Agent: callgate-webhook-load\r\nContent-Type: application/json\r\n"
              "Content-Length: " +
              std::to_string(body.size()) + "\r\n" +
              std::string(callgate::webhook::kSignatureHeader) + ": t=" + std::to_string(now) +
              ",v0=";
  t.signature_at = t.request.size();
  t.request += signature_placeholder + "\r\n\r\n";
  t.body_at = t.request.size();
  t.request += body;
  t.counter_at = t.request.find(placeholder, t.body_at);
  if (t.counter_at == std::string::npos) throw std::logic_error("placeholder lost");
  t.counter_at += placeholder.size() - kCounterDigits;
  return t;
}

void WriteCounter(char* at, std::uint64_t counter) {
  for (std::size_t i = kCounterDigits; i-- > 0;) {
    at[i] = static_cast<char>('0' + counter % 10);
    counter /= 10;
  }
}

// Writes counter's signature into request[signature_at..+64) (request's counter already set).
void SignInPlace(std::string& request, const Template& t, const std::string& secret) {
  const std::string header =
      callgate::webhook::Sign(secret, t.timestamp, std::string_view(request).substr(t.body_at));
  const auto v0 = header.find("v0=");
  std::memcpy(request.data() + t.signature_at, header.data() + v0 + 3, kHexDigits);
}

// The 64-hex signatures of counters 0..count-1, computed on `threads` threads.
std::vector<char> Presign(const Template& t, const std::string& secret, std::uint64_t count,
                          unsigned threads) {
  std::vector<char> signatures(count * kHexDigits);
  std::vector<std::thread> workers;
  for (unsigned w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      std::string request = t.request;
      for (std::uint64_t c = w; c < count; c += threads) {
        WriteCounter(request.data() + t.counter_at, c);
        SignInPlace(request, t, secret);
        std::memcpy(signatures.data() + c * kHexDigits, request.data() + t.signature_at,
                    kHexDigits);
      }
    });
  }
  for (auto& worker : workers)
    worker.join();
  return signatures;
}

// ---------------------------------------------------------------------------------------------
// The load: T threads, each an epoll loop over its share of the connections.

struct Shared {
  const Options& options;
  const Template& t;
  const std::vector<char>& signatures;
  sockaddr_in address{};
  SteadyClock::time_point start, measure_from, stop;
  std::atomic<std::uint64_t> next_counter{0};
};

struct ThreadStats {
  // Responses completed in the measured window; in the open loop, those due in it, each from
  // its intended send time (a request due while no connection was free counts its wait).
  std::vector<std::uint32_t> latencies_us;
  std::vector<std::uint32_t> lag_us;  // open loop: how late each request left (the generator)
  std::uint64_t ok_total = 0;         // every 200, warm-up and drain included
  std::uint64_t non200 = 0;
  std::uint64_t errors = 0;  // connection failures, unparsable responses, drain timeouts
  std::uint64_t reconnects = 0;
  std::uint64_t signed_live = 0;
  std::chrono::nanoseconds signing_time{0};
  std::map<int, std::uint64_t> statuses;  // non-200 statuses
  std::vector<std::string> samples;       // a few non-200 responses, for the report
  std::vector<std::string> error_messages;
};

struct Connection {
  int fd = -1;
  std::string request;
  std::size_t written = 0;
  bool in_flight = false;
  bool want_write = false;
  SteadyClock::time_point sent_at;
  std::string response;
};

double CpuSeconds(const rusage& usage) {
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

double ProcessCpuSeconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return CpuSeconds(usage);
}

class Worker {
 public:
  Worker(Shared& shared, unsigned first, unsigned count) : shared_(shared) {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) throw std::runtime_error("epoll_create1 failed");
    connections_.resize(count);
    for (unsigned i = 0; i < count; ++i) {
      Connection& c = connections_[i];
      c.request = shared_.t.request;
      c.response.reserve(4096);
      c.fd = Connect(shared_.address);
      if (c.fd < 0) {
        throw std::runtime_error("cannot connect connection " + std::to_string(first + i) + ": " +
                                 std::strerror(errno));
      }
      Watch(c, i);
    }
  }
  ~Worker() {
    for (auto& c : connections_) {
      if (c.fd >= 0) ::close(c.fd);
    }
    if (timer_ >= 0) ::close(timer_);
    ::close(epoll_);
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Open loop: this worker's share of the rate, as one request every `interval`.
  void SetRate(double per_second) {
    interval_ = std::chrono::duration_cast<SteadyClock::duration>(
        std::chrono::duration<double>(1.0 / per_second));
  }

  void Run() {
    const bool open_loop = interval_.count() > 0;
    if (open_loop) {
      next_due_ = shared_.start;
      for (std::uint32_t i = 0; i < connections_.size(); ++i)
        free_.push_back(i);
      // The schedule's clock: a timerfd at the next due time, 1 us of timer slack.
      ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
      timer_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
      if (timer_ < 0) throw std::runtime_error("timerfd_create failed");
      epoll_event event{};
      event.events = EPOLLIN;
      event.data.u32 = kTimerIndex;
      ::epoll_ctl(epoll_, EPOLL_CTL_ADD, timer_, &event);
    } else {
      for (auto& c : connections_)
        StartRequest(c);
    }
    const auto drain_deadline = shared_.stop + std::chrono::seconds(10);
    std::vector<epoll_event> events(256);
    for (;;) {
      if (open_loop) SendDue();
      const auto now = SteadyClock::now();
      if (now >= shared_.stop && in_flight_ == 0) break;
      if (now >= drain_deadline) {
        stats_.errors += in_flight_;
        stats_.error_messages.push_back("responses still missing 10 s after the end: " +
                                        std::to_string(in_flight_));
        break;
      }
      // Open loop: wake for the next due request (without a free connection, an answer wakes it).
      if (open_loop && next_due_ < shared_.stop && !free_.empty()) ArmTimer(next_due_);
      const int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 50);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error("epoll_wait failed");
      }
      for (int k = 0; k < n; ++k) {
        if (events[k].data.u32 == kTimerIndex) {
          std::uint64_t expirations = 0;
          (void)!::read(timer_, &expirations, sizeof expirations);
          continue;
        }
        Connection& c = connections_[events[k].data.u32];
        if (c.fd < 0) continue;
        if ((events[k].events & EPOLLOUT) != 0 && c.want_write) {
          if (!Write(c)) continue;
        }
        if ((events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) Read(c, events[k].data.u32);
      }
    }
    rusage usage{};
    ::getrusage(RUSAGE_THREAD, &usage);
    cpu_seconds_ = CpuSeconds(usage);
  }

  ThreadStats& stats() { return stats_; }
  double cpu_seconds() const { return cpu_seconds_; }

 private:
  void Watch(Connection& c, unsigned index) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u32 = index;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &event);
  }
  void Interest(Connection& c, bool write) {
    epoll_event event{};
    event.events = EPOLLIN | (write ? EPOLLOUT : 0u);
    event.data.u32 = static_cast<std::uint32_t>(&c - connections_.data());
    ::epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &event);
    c.want_write = write;
  }

  void Error(std::string message) {
    ++stats_.errors;
    if (stats_.error_messages.size() < 5) stats_.error_messages.push_back(std::move(message));
  }

  static constexpr std::uint32_t kTimerIndex = 0xffffffff;  // the timerfd's epoll tag

  void ArmTimer(SteadyClock::time_point at) {
    // steady_clock is CLOCK_MONOTONIC here, as the timerfd.
    const auto ns = std::max<std::int64_t>(
        1, std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count());
    itimerspec spec{};
    spec.it_value.tv_sec = ns / 1'000'000'000;
    spec.it_value.tv_nsec = ns % 1'000'000'000;
    ::timerfd_settime(timer_, TFD_TIMER_ABSTIME, &spec, nullptr);
  }

  // Open loop: every request due by now leaves on a free connection, oldest first, stamped with
  // its due time; those without a free connection wait for one (and count the wait).
  void SendDue() {
    auto now = SteadyClock::now();
    while (next_due_ <= now && next_due_ < shared_.stop && !free_.empty()) {
      Connection& c = connections_[free_.back()];
      free_.pop_back();
      if (c.fd < 0) continue;
      const auto due = next_due_;
      next_due_ += interval_;
      if (due >= shared_.measure_from) {
        stats_.lag_us.push_back(static_cast<std::uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(now - due).count()));
      }
      StartRequest(c, due);
      now = SteadyClock::now();
    }
  }

  void StartRequest(Connection& c, std::optional<SteadyClock::time_point> due = std::nullopt) {
    if (!due && SteadyClock::now() >= shared_.stop) return;
    const std::uint64_t counter = shared_.next_counter.fetch_add(1, std::memory_order_relaxed);
    WriteCounter(c.request.data() + shared_.t.counter_at, counter);
    if (counter < shared_.signatures.size() / kHexDigits) {
      std::memcpy(c.request.data() + shared_.t.signature_at,
                  shared_.signatures.data() + counter * kHexDigits, kHexDigits);
    } else {
      const auto begin = SteadyClock::now();
      SignInPlace(c.request, shared_.t, shared_.options.secret);
      stats_.signing_time += SteadyClock::now() - begin;
      ++stats_.signed_live;
    }
    c.written = 0;
    c.response.clear();
    c.in_flight = true;
    ++in_flight_;
    c.sent_at = due.value_or(SteadyClock::now());
    Write(c);
  }

  // False when the connection failed.
  bool Write(Connection& c) {
    while (c.written < c.request.size()) {
      const ssize_t n =
          ::send(c.fd, c.request.data() + c.written, c.request.size() - c.written, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          if (!c.want_write) Interest(c, true);
          return true;
        }
        Fail(c, std::string("send: ") + std::strerror(errno));
        return false;
      }
      c.written += static_cast<std::size_t>(n);
    }
    if (c.want_write) Interest(c, false);
    return true;
  }

  void Read(Connection& c, std::uint32_t index) {
    for (;;) {
      const ssize_t n = ::recv(c.fd, buffer_, sizeof buffer_, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        Fail(c, std::string("recv: ") + std::strerror(errno));
        return;
      }
      if (n == 0) {
        if (c.in_flight) {
          Fail(c, "the server closed the connection before answering");
        } else {
          Reopen(c, index);
        }
        return;
      }
      c.response.append(buffer_, static_cast<std::size_t>(n));
    }
    Parse(c, index);
  }

  void Parse(Connection& c, std::uint32_t index) {
    const auto head_end = c.response.find("\r\n\r\n");
    if (head_end == std::string::npos) return;
    if (!c.in_flight) {
      Fail(c, "a response nobody asked for");
      return;
    }
    std::string head = c.response.substr(0, head_end + 2);
    std::transform(head.begin(), head.end(), head.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    int status = 0;
    if (!head.starts_with("http/1.1 ") && !head.starts_with("http/1.0 ")) {
      Fail(c, "not an HTTP/1.x response");
      return;
    }
    std::from_chars(head.data() + 9, head.data() + std::min<std::size_t>(12, head.size()), status);
    if (head.find("\r\ntransfer-encoding:") != std::string::npos) {
      Fail(c, "chunked responses are not supported by this generator");
      return;
    }
    std::size_t length = 0;
    const auto cl = head.find("\r\ncontent-length:");
    if (cl != std::string::npos) {
      std::size_t at = cl + 17;
      while (at < head.size() && head[at] == ' ')
        ++at;
      std::from_chars(head.data() + at, head.data() + head.size(), length);
    }
    const std::size_t total = head_end + 4 + length;
    if (c.response.size() < total) return;
    if (c.response.size() > total) {
      Fail(c, "bytes after the response (nothing was pipelined)");
      return;
    }
    const auto now = SteadyClock::now();
    const bool open_loop = interval_.count() > 0;
    // Closed loop: answers in the window; open loop: requests due in it (answered after, maybe).
    const auto at = open_loop ? c.sent_at : now;
    if (at >= shared_.measure_from && at <= shared_.stop) {
      stats_.latencies_us.push_back(static_cast<std::uint32_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(now - c.sent_at).count()));
    }
    if (status == 200) {
      ++stats_.ok_total;
    } else {
      ++stats_.non200;
      ++stats_.statuses[status];
      if (stats_.samples.size() < 3) stats_.samples.push_back(c.response);
    }
    c.in_flight = false;
    --in_flight_;
    if (head.find("\r\nconnection: close") != std::string::npos) {
      Reopen(c, index);
      if (c.fd < 0) return;
    }
    if (open_loop) {
      free_.push_back(index);
    } else {
      StartRequest(c);
    }
  }

  void Close(Connection& c) {
    if (c.fd >= 0) ::close(c.fd);  // also leaves the epoll set
    c.fd = -1;
    c.want_write = false;
    if (c.in_flight) {
      c.in_flight = false;
      --in_flight_;
    }
  }

  // A lost request: counted as an error; the connection is reopened while the run lasts.
  void Fail(Connection& c, std::string message) {
    Error(std::move(message));
    const auto index = static_cast<std::uint32_t>(&c - connections_.data());
    Close(c);
    if (SteadyClock::now() < shared_.stop) {
      Reopen(c, index);
      if (c.fd < 0) return;
      if (interval_.count() > 0) {
        free_.push_back(index);
      } else {
        StartRequest(c);
      }
    }
  }

  void Reopen(Connection& c, std::uint32_t index) {
    Close(c);
    ++stats_.reconnects;
    c.fd = Connect(shared_.address);
    if (c.fd < 0) {
      Error(std::string("reconnect: ") + std::strerror(errno));
      return;
    }
    Watch(c, index);
  }

  Shared& shared_;
  int epoll_ = -1;
  std::vector<Connection> connections_;
  std::size_t in_flight_ = 0;
  // Open loop only: the period between requests, the next one's due time, idle connections.
  SteadyClock::duration interval_{0};
  SteadyClock::time_point next_due_;
  std::vector<std::uint32_t> free_;
  int timer_ = -1;
  ThreadStats stats_;
  double cpu_seconds_ = 0;
  char buffer_[64 * 1024];
};

// The baseline: callgate's HTTP server with one POST route that answers 200 at once, with a
// body of the gateway's shape and size ({"status":"stored","event_id":"evt_<28 hex>"}).
class BaselineServer {
 public:
  explicit BaselineServer(unsigned threads)
      : runtime_(threads != 0 ? threads : std::max(1u, std::thread::hardware_concurrency())),
        dispatcher_(router_, {.default_max_body_bytes = 1024 * 1024}) {
    router_.Add("POST", std::string(kDefaultPath),
                [](callgate::http::Request, callgate::http::Responder responder) {
                  responder.Send(callgate::http::Response::Json(
                      200, {{"status", "stored"}, {"event_id", "evt_019a5c3e2b1f8d4e6a7c9b0d"}}));
                },
                {.body = callgate::http::BodyKind::kRaw, .max_body_bytes = 64u * 1024 * 1024});
    server_ = std::make_unique<callgate::http::Server>(
        runtime_, dispatcher_, registry_,
        callgate::http::ServerOptions{.host = "127.0.0.1", .port = 0});
    port_ = server_->Listen();
    server_->Start();
    thread_ = std::thread([this] { runtime_.Run(); });
  }
  ~BaselineServer() {
    auto stopped = std::make_shared<std::promise<void>>();
    server_->Shutdown(std::chrono::seconds(2), [this, stopped] {
      runtime_.Stop();
      stopped->set_value();
    });
    stopped->get_future().wait_for(std::chrono::seconds(12));
    thread_.join();
  }
  BaselineServer(const BaselineServer&) = delete;
  BaselineServer& operator=(const BaselineServer&) = delete;

  std::uint16_t port() const { return port_; }
  unsigned threads() const { return runtime_.io_threads(); }

 private:
  callgate::net::Runtime runtime_;
  callgate::http::Router router_;
  callgate::http::Dispatcher dispatcher_;
  callgate::metrics::Registry registry_;
  std::unique_ptr<callgate::http::Server> server_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// Milliseconds at `fraction` (0..1) of the microsecond samples, nearest rank.
double Percentile(const std::vector<std::uint32_t>& sorted, double fraction) {
  return NearestRank(sorted, fraction) / 1000.0;
}

int Run(const Options& options) {
  std::unique_ptr<BaselineServer> baseline;
  std::string url = options.url;
  if (options.baseline) {
    baseline = std::make_unique<BaselineServer>(options.server_threads);
    url = "http://127.0.0.1:" + std::to_string(baseline->port()) + std::string(kDefaultPath);
  }
  const Target target = ParseUrl(url, kDefaultPath);
  const Template t = BuildTemplate(options, target);

  if (options.print_request) {
    std::string request = t.request;
    WriteCounter(request.data() + t.counter_at, 0);
    SignInPlace(request, t, options.secret);
    std::fwrite(request.data(), 1, request.size(), stdout);
    std::printf("\n");
    return 0;
  }

  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const auto presign_begin = SteadyClock::now();
  const std::vector<char> signatures = Presign(t, options.secret, options.presign, cores);
  const double presign_seconds =
      std::chrono::duration<double>(SteadyClock::now() - presign_begin).count();

  Shared shared{.options = options, .t = t, .signatures = signatures};
  shared.address = Resolve(target);
  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned w = 0, first = 0; w < options.threads; ++w) {
    const unsigned count =
        options.connections / options.threads + (w < options.connections % options.threads);
    workers.push_back(std::make_unique<Worker>(shared, first, count));
    if (options.rate > 0) {
      workers.back()->SetRate(options.rate * count / static_cast<double>(options.connections));
    }
    first += count;
  }

  const double process_cpu_before = ProcessCpuSeconds();
  std::printf("%s: %s\n", options.label.c_str(), url.c_str());
  if (baseline) {
    std::printf("  baseline server: callgate http::Server in this process, %u I/O threads\n",
                baseline->threads());
  }
  std::printf(
      "  body %zu bytes (request %zu), %u turns; %u connections on %u threads; warm-up %.1f s, "
      "measured %.1f s\n",
      t.body_bytes, t.request.size(), options.turns, options.connections, options.threads,
      options.warmup, options.seconds);
  if (options.rate > 0) {
    std::printf("  open loop: %.0f requests per second offered, each timed from when it was due\n",
                options.rate);
  }
  std::printf("  pre-signed %" PRIu64
              " requests before the clock started, in %.2f s (%.1f us each"
              " on %u threads)\n",
              options.presign, presign_seconds,
              presign_seconds * 1e6 * cores / static_cast<double>(options.presign), cores);
  std::fflush(stdout);

  shared.start = SteadyClock::now();
  shared.measure_from = shared.start + std::chrono::duration_cast<SteadyClock::duration>(
                                           std::chrono::duration<double>(options.warmup));
  shared.stop = shared.measure_from + std::chrono::duration_cast<SteadyClock::duration>(
                                          std::chrono::duration<double>(options.seconds));
  std::vector<std::thread> threads;
  std::vector<std::string> failures(workers.size());
  for (std::size_t w = 0; w < workers.size(); ++w) {
    threads.emplace_back([&, w] {
      try {
        workers[w]->Run();
      } catch (const std::exception& e) {
        failures[w] = e.what();
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  const double process_cpu = ProcessCpuSeconds() - process_cpu_before;
  for (const auto& failure : failures) {
    if (!failure.empty()) {
      std::fprintf(stderr, "webhook_load: %s\n", failure.c_str());
      return 1;
    }
  }

  ThreadStats all;
  double generator_cpu = 0;
  for (auto& worker : workers) {
    ThreadStats& s = worker->stats();
    all.latencies_us.insert(all.latencies_us.end(), s.latencies_us.begin(), s.latencies_us.end());
    all.lag_us.insert(all.lag_us.end(), s.lag_us.begin(), s.lag_us.end());
    all.ok_total += s.ok_total;
    all.non200 += s.non200;
    all.errors += s.errors;
    all.reconnects += s.reconnects;
    all.signed_live += s.signed_live;
    all.signing_time += s.signing_time;
    for (const auto& [status, n] : s.statuses)
      all.statuses[status] += n;
    all.samples.insert(all.samples.end(), s.samples.begin(), s.samples.end());
    all.error_messages.insert(all.error_messages.end(), s.error_messages.begin(),
                              s.error_messages.end());
    generator_cpu += worker->cpu_seconds();
  }
  std::sort(all.latencies_us.begin(), all.latencies_us.end());
  const double rps = static_cast<double>(all.latencies_us.size()) / options.seconds;
  const double p50 = Percentile(all.latencies_us, 0.50);
  const double p90 = Percentile(all.latencies_us, 0.90);
  const double p99 = Percentile(all.latencies_us, 0.99);
  const double max = all.latencies_us.empty() ? 0 : all.latencies_us.back() / 1000.0;
  const double elapsed = options.warmup + options.seconds;

  std::printf("  %.0f req/s  p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms\n", rps, p50, p90,
              p99, max);
  std::sort(all.lag_us.begin(), all.lag_us.end());
  const double lag99 = Percentile(all.lag_us, 0.99);
  if (options.rate > 0) {
    std::printf("  generator: requests left p50 %.3f ms, p99 %.3f ms after they were due\n",
                Percentile(all.lag_us, 0.50), lag99);
  }
  std::printf("  answers: %" PRIu64 " x 200 (warm-up and drain included), %" PRIu64
              " other, %" PRIu64 " errors, %" PRIu64 " reconnects\n",
              all.ok_total, all.non200, all.errors, all.reconnects);
  std::printf("  generator CPU %.2f s over %.1f s (%.0f%% of one core); signed on the fly: %" PRIu64
              " (%.3f s)\n",
              generator_cpu, elapsed, 100 * generator_cpu / elapsed, all.signed_live,
              std::chrono::duration<double>(all.signing_time).count());
  if (baseline) {
    // This process's CPU less the generator threads': the in-process baseline server's.
    const double server_cpu = process_cpu - generator_cpu;
    std::printf("  baseline server CPU %.2f s (%.0f us per request)\n", server_cpu,
                1e6 * server_cpu / static_cast<double>(std::max<std::uint64_t>(1, all.ok_total)));
  }
  std::printf(
      "RESULT label=%s rps=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
      "ok_total=%" PRIu64 " non200=%" PRIu64 " errors=%" PRIu64
      " body_bytes=%zu "
      "signed_live=%" PRIu64 " generator_cpu_s=%.2f lag_p99_ms=%.3f\n",
      options.label.c_str(), rps, p50, p90, p99, max, all.ok_total, all.non200, all.errors,
      t.body_bytes, all.signed_live, generator_cpu, lag99);
  std::fflush(stdout);

  if (all.non200 == 0 && all.errors == 0) return 0;
  std::fprintf(stderr,
               "webhook_load: FAILED: %" PRIu64 " answers were not 200, %" PRIu64
               " requests failed\n",
               all.non200, all.errors);
  for (const auto& [status, n] : all.statuses) {
    std::fprintf(stderr, "  status %d: %" PRIu64 "\n", status, n);
  }
  for (const auto& sample : all.samples)
    std::fprintf(stderr, "  --- %s\n", sample.c_str());
  for (const auto& message : all.error_messages) {
    std::fprintf(stderr, "  error: %s\n", message.c_str());
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    options = ParseOptions(argc, argv);
  } catch (const UsageError& e) {
    Usage(e.what());
  }
  // As LOG_LEVEL=warning for the gateway: no per-request access log in either run.
  callgate::core::SetupLogging(spdlog::level::warn, callgate::core::LogFormat::kText);
  try {
    return Run(options);
  } catch (const UsageError& e) {
    Usage(e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "webhook_load: %s\n", e.what());
    return 1;
  }
}
