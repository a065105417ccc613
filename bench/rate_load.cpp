// An open-loop HTTP/1.1 load generator (wrk2-style) for latency below saturation (issue 4;
// bench/gateway_conversation.sh drives it).
//
// A closed-loop generator such as wrk sends the next request as soon as the previous answer is
// in: a slow answer delays the requests behind it, so they are never measured as slow
// ("coordinated omission"), and with the generator and the servers on the same few cores the
// offered load is whatever saturates them. Here the requests follow a fixed schedule instead:
// --rate requests per second in total, spread evenly over --connections keep-alive connections
// (connection i sends at start + i/rate + k*connections/rate). A connection has at most one
// request in flight (no pipelining); when an answer comes late, the requests due meanwhile wait
// and are sent back to back once it is in. Every latency is measured from the request's
// INTENDED send time to the last byte of its answer, so time spent queued behind a slow answer
// counts, as in wrk2. The service time (from the actual send) and the scheduling lag (actual -
// intended, for requests sent on time, i.e. the generator's own wake-up delay, which is part of
// every latency) are reported too.
//
// Only requests whose intended time falls in the measurement window (after --warmup) count.
// After the window the generator waits for those still due or in flight (at most --drain
// seconds); any not answered by then are reported as "unfinished". Any answer outside 2xx, a
// connection error or an answer without Content-Length fails the run (exit status 1).
//
// Plain sockets and epoll, one thread per --threads (connections split between them), a
// timerfd per thread for the schedule (timer slack set to 1 us). No callgate code.
//
// Output: a human-readable summary, then one line starting with "RESULT" (key=value, times in
// milliseconds) for scripts.
#include "load_options.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
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

using Clock = std::chrono::steady_clock;
using Nanos = std::int64_t;

Nanos NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

struct Options {
  std::string url;
  std::vector<std::string> headers;
  double rate = 1000;
  unsigned connections = 64;
  unsigned threads = 1;
  double seconds = 10;
  double warmup = 1;
  double drain = 5;
  std::string label;
  std::string trace;  // file for one "intended_ms latency_ms" line per counted request
};

[[noreturn]] void Usage(const std::string& error) {
  std::fprintf(stderr,
               "rate_load: %s\n"
               "usage: rate_load --url http://HOST:PORT/path --rate REQ_PER_S\n"
               "         [-H 'Name: value']... [--connections 64] [--threads 1]\n"
               "         [--seconds 10] [--warmup 1] [--drain 5] [--label L] [--trace FILE]\n",
               error.c_str());
  std::exit(2);
}

Options ParseOptions(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc) Usage("missing value for " + std::string(arg));
    const std::string_view value = argv[++i];
    if (arg == "--url") {
      options.url = value;
    } else if (arg == "-H" || arg == "--header") {
      options.headers.emplace_back(value);
    } else if (arg == "--rate") {
      options.rate = ParseNumber<double>(arg, value);
    } else if (arg == "--connections") {
      options.connections = ParseNumber<unsigned>(arg, value);
    } else if (arg == "--threads") {
      options.threads = ParseNumber<unsigned>(arg, value);
    } else if (arg == "--seconds") {
      options.seconds = ParseNumber<double>(arg, value);
    } else if (arg == "--warmup") {
      options.warmup = ParseNumber<double>(arg, value);
    } else if (arg == "--drain") {
      options.drain = ParseNumber<double>(arg, value);
    } else if (arg == "--trace") {
      options.trace = value;
    } else if (arg == "--label") {
      options.label = value;
    } else {
      Usage("unknown option " + std::string(arg));
    }
  }
  if (options.url.empty()) Usage("--url is required");
  if (options.rate <= 0) Usage("--rate must be > 0");
  if (options.connections == 0 || options.threads == 0)
    Usage("connections and threads must be > 0");
  options.threads = std::min(options.threads, options.connections);
  if (options.seconds <= 0 || options.warmup < 0 || options.drain < 0)
    Usage("seconds must be > 0, warmup and drain >= 0");
  if (options.label.empty()) options.label = options.url;
  return options;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

// Incremental reader of one HTTP/1.1 response with a Content-Length body.
struct ResponseReader {
  std::string buffer;
  std::size_t header_end = 0;  // index just past "\r\n\r\n"; 0 while the head is incomplete
  std::size_t body_length = 0;
  int status = 0;

  void Reset() {
    buffer.clear();
    header_end = 0;
    body_length = 0;
    status = 0;
  }

  // After appending bytes: 1 = complete, 0 = need more, -1 = malformed / unsupported.
  int Check(std::string& error) {
    if (header_end == 0) {
      const auto end = buffer.find("\r\n\r\n");
      if (end == std::string::npos) return buffer.size() > 64 * 1024 ? -1 : 0;
      header_end = end + 4;
      const std::string_view head(buffer.data(), end);
      if (!head.starts_with("HTTP/1.") || head.size() < 12) {
        error = "not an HTTP/1.x response";
        return -1;
      }
      status = ParseNumber<int>("status", head.substr(9, 3));
      bool have_length = false;
      std::size_t pos = head.find("\r\n");
      while (pos != std::string_view::npos) {
        const std::size_t start = pos + 2;
        const std::size_t next = head.find("\r\n", start);
        const std::string_view line =
            head.substr(start, next == std::string_view::npos ? head.size() - start : next - start);
        const auto colon = line.find(':');
        if (colon != std::string_view::npos) {
          const std::string_view name = line.substr(0, colon);
          std::string_view value = line.substr(colon + 1);
          while (!value.empty() && value.front() == ' ')
            value.remove_prefix(1);
          while (!value.empty() && value.back() == ' ')
            value.remove_suffix(1);
          if (IEquals(name, "content-length")) {
            body_length = ParseNumber<std::size_t>("Content-Length", value);
            have_length = true;
          } else if (IEquals(name, "transfer-encoding")) {
            error = "chunked answers are not supported";
            return -1;
          }
        }
        pos = next;
      }
      if (!have_length) {
        error = "an answer without Content-Length";
        return -1;
      }
    }
    if (buffer.size() < header_end + body_length) return 0;
    if (buffer.size() > header_end + body_length) {
      error = "bytes after the answer (no request was pipelined)";
      return -1;
    }
    return 1;
  }
};

struct Connection {
  int fd = -1;
  Nanos next_due = 0;          // intended time of the next request not yet sent
  Nanos current_intended = 0;  // of the request in flight
  Nanos current_sent = 0;
  bool in_flight = false;
  std::size_t written = 0;  // bytes of the request written so far
  ResponseReader reader;
};

struct Samples {
  std::vector<Nanos> latency;                  // intended -> answer
  std::vector<Nanos> service;                  // sent -> answer
  std::vector<Nanos> lag;                      // sent - intended, for requests sent on schedule
  std::vector<std::pair<Nanos, Nanos>> trace;  // (intended - window begin, latency) with --trace
  std::uint64_t ok = 0;
  std::uint64_t non_2xx = 0;
  std::uint64_t sent_late = 0;  // sent behind schedule because the connection was busy
  std::uint64_t unfinished = 0;
  std::string error;
};

struct Schedule {
  Nanos start = 0;         // first intended send time
  Nanos window_begin = 0;  // measurement window [begin, end) of intended times
  Nanos window_end = 0;
  Nanos interval = 0;  // between two requests of one connection
  Nanos give_up = 0;   // drain limit
};

class Worker {
 public:
  Worker(const std::string& request, std::vector<Connection> connections, const Schedule& schedule,
         bool tracing)
      : request_(request),
        connections_(std::move(connections)),
        schedule_(schedule),
        tracing_(tracing) {}

  void Run() {
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    timer_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (epoll_ < 0 || timer_ < 0) {
      samples_.error = std::string("epoll/timerfd: ") + std::strerror(errno);
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = ~std::uint64_t{0};
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, timer_, &ev);
    for (std::size_t i = 0; i < connections_.size(); ++i) {
      ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
      ev.data.u64 = i;
      ::epoll_ctl(epoll_, EPOLL_CTL_ADD, connections_[i].fd, &ev);
    }
    std::vector<epoll_event> events(connections_.size() + 1);
    while (samples_.error.empty()) {
      const Nanos now = NowNs();
      Nanos earliest = INT64_MAX;
      bool pending = false;
      for (std::size_t i = 0; i < connections_.size(); ++i) {
        Connection& c = connections_[i];
        if (c.in_flight) {
          pending = true;
          continue;
        }
        if (c.next_due >= schedule_.window_end) continue;  // its part of the schedule is done
        pending = true;
        if (c.next_due <= now) {
          Send(c, now);
        } else {
          earliest = std::min(earliest, c.next_due);
        }
      }
      if (!pending) break;
      if (now >= schedule_.give_up) {
        for (const Connection& c : connections_) {
          if (c.in_flight && c.current_intended >= schedule_.window_begin) ++samples_.unfinished;
          if (!c.in_flight && c.next_due < schedule_.window_end) {
            samples_.unfinished += static_cast<std::uint64_t>(
                (schedule_.window_end - std::max(c.next_due, schedule_.window_begin) +
                 schedule_.interval - 1) /
                schedule_.interval);
          }
        }
        break;
      }
      if (earliest != INT64_MAX)
        ArmTimer(std::min(earliest, schedule_.give_up));
      else
        ArmTimer(schedule_.give_up);
      const int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        samples_.error = std::string("epoll_wait: ") + std::strerror(errno);
        break;
      }
      for (int k = 0; k < n; ++k) {
        if (events[k].data.u64 == ~std::uint64_t{0}) {
          std::uint64_t expirations = 0;
          (void)!::read(timer_, &expirations, sizeof expirations);
          continue;
        }
        Connection& c = connections_[events[k].data.u64];
        if ((events[k].events & EPOLLOUT) != 0 && c.in_flight && c.written < request_.size()) {
          Flush(c);
        }
        if ((events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) Receive(c);
        if (!samples_.error.empty()) break;
      }
    }
    for (Connection& c : connections_)
      ::close(c.fd);
    ::close(timer_);
    ::close(epoll_);
  }

  Samples& samples() { return samples_; }

 private:
  void ArmTimer(Nanos at) {
    itimerspec spec{};
    spec.it_value.tv_sec = at / 1'000'000'000;
    spec.it_value.tv_nsec = at % 1'000'000'000;
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
    ::timerfd_settime(timer_, TFD_TIMER_ABSTIME, &spec, nullptr);
  }

  void Send(Connection& c, Nanos now) {
    c.current_intended = c.next_due;
    c.current_sent = now;
    c.next_due += schedule_.interval;
    c.in_flight = true;
    c.written = 0;
    c.reader.Reset();
    Flush(c);
  }

  void Flush(Connection& c) {
    while (c.written < request_.size()) {
      const ssize_t n =
          ::send(c.fd, request_.data() + c.written, request_.size() - c.written, MSG_NOSIGNAL);
      if (n > 0) {
        c.written += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n < 0 && errno == EINTR) continue;
      samples_.error = std::string("send: ") + std::strerror(errno);
      return;
    }
  }

  void Receive(Connection& c) {
    char chunk[16 * 1024];
    while (true) {
      const ssize_t n = ::recv(c.fd, chunk, sizeof chunk, 0);
      if (n > 0) {
        if (!c.in_flight) {
          samples_.error = "bytes from the server with no request in flight";
          return;
        }
        c.reader.buffer.append(chunk, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) {
        samples_.error = "the server closed a connection";
        return;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      samples_.error = std::string("recv: ") + std::strerror(errno);
      return;
    }
    if (!c.in_flight) return;
    const int state = c.reader.Check(samples_.error);
    if (state < 0) {
      if (samples_.error.empty()) samples_.error = "malformed answer";
      return;
    }
    if (state == 0) return;
    const Nanos done = NowNs();
    c.in_flight = false;
    const bool counted =
        c.current_intended >= schedule_.window_begin && c.current_intended < schedule_.window_end;
    if (c.reader.status < 200 || c.reader.status > 299) {
      ++samples_.non_2xx;
      samples_.error = "an answer with status " + std::to_string(c.reader.status);
      return;
    }
    if (counted) {
      ++samples_.ok;
      samples_.latency.push_back(done - c.current_intended);
      samples_.service.push_back(done - c.current_sent);
      if (tracing_) {
        samples_.trace.emplace_back(c.current_intended - schedule_.window_begin,
                                    done - c.current_intended);
      }
      if (c.current_sent - c.current_intended < schedule_.interval / 2) {
        samples_.lag.push_back(c.current_sent - c.current_intended);
      } else {
        ++samples_.sent_late;
      }
    }
    if (c.next_due <= done && c.next_due < schedule_.window_end) Send(c, done);
  }

  const std::string& request_;
  std::vector<Connection> connections_;
  Schedule schedule_;
  bool tracing_ = false;
  Samples samples_;
  int epoll_ = -1;
  int timer_ = -1;
};

// Milliseconds at percentile `p` (0-100), nearest rank.
double Percentile(const std::vector<Nanos>& sorted, double p) {
  return static_cast<double>(NearestRank(sorted, p / 100.0)) / 1e6;
}

int Run(const Options& options) {
  const Target target = ParseUrl(options.url, "/");
  std::string request = "GET " + target.path + " HTTP/1.1\r\nHost: " + target.host + ":" +
                        std::to_string(target.port) + "\r\n";
  for (const std::string& header : options.headers)
    request += header + "\r\n";
  request += "\r\n";

  const sockaddr_in address = Resolve(target);
  std::vector<Connection> all(options.connections);
  for (Connection& c : all) {
    c.fd = Connect(address);
    if (c.fd < 0) {
      throw std::runtime_error("cannot connect to " + target.host + ":" +
                               std::to_string(target.port) + ": " + std::strerror(errno));
    }
  }

  const auto interval = static_cast<Nanos>(1e9 * options.connections / options.rate);
  const auto spacing = static_cast<Nanos>(1e9 / options.rate);
  Schedule schedule;
  schedule.start = NowNs() + 50'000'000;  // 50 ms to start the threads
  schedule.window_begin = schedule.start + static_cast<Nanos>(options.warmup * 1e9);
  schedule.window_end = schedule.window_begin + static_cast<Nanos>(options.seconds * 1e9);
  schedule.interval = interval;
  schedule.give_up = schedule.window_end + static_cast<Nanos>(options.drain * 1e9);
  for (std::size_t i = 0; i < all.size(); ++i)
    all[i].next_due = schedule.start + static_cast<Nanos>(i) * spacing;

  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned t = 0; t < options.threads; ++t) {
    std::vector<Connection> mine;
    for (std::size_t i = t; i < all.size(); i += options.threads)
      mine.push_back(all[i]);
    workers.push_back(
        std::make_unique<Worker>(request, std::move(mine), schedule, !options.trace.empty()));
  }
  std::vector<std::thread> threads;
  for (auto& worker : workers) {
    threads.emplace_back([&worker] {
      ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
      worker->Run();
    });
  }
  for (auto& thread : threads)
    thread.join();

  Samples total;
  for (auto& worker : workers) {
    Samples& s = worker->samples();
    if (total.error.empty() && !s.error.empty()) total.error = s.error;
    total.ok += s.ok;
    total.non_2xx += s.non_2xx;
    total.sent_late += s.sent_late;
    total.unfinished += s.unfinished;
    total.latency.insert(total.latency.end(), s.latency.begin(), s.latency.end());
    total.service.insert(total.service.end(), s.service.begin(), s.service.end());
    total.lag.insert(total.lag.end(), s.lag.begin(), s.lag.end());
    total.trace.insert(total.trace.end(), s.trace.begin(), s.trace.end());
  }
  if (!options.trace.empty()) {  // in intended order, for looking at when the slow ones were
    std::sort(total.trace.begin(), total.trace.end());
    if (std::FILE* out = std::fopen(options.trace.c_str(), "w")) {
      for (const auto& [at, latency] : total.trace)
        std::fprintf(out, "%.3f %.3f\n", static_cast<double>(at) / 1e6,
                     static_cast<double>(latency) / 1e6);
      std::fclose(out);
    }
  }
  std::sort(total.latency.begin(), total.latency.end());
  std::sort(total.service.begin(), total.service.end());
  std::sort(total.lag.begin(), total.lag.end());
  const double achieved = static_cast<double>(total.ok) / options.seconds;
  const double max_ms = total.latency.empty() ? 0 : static_cast<double>(total.latency.back()) / 1e6;

  std::printf("%s: %.0f req/s offered on %u connections (%u thread(s)), %.1f s measured\n",
              options.label.c_str(), options.rate, options.connections, options.threads,
              options.seconds);
  std::printf("  answered %llu (%.0f req/s), sent behind schedule %llu, unfinished %llu\n",
              static_cast<unsigned long long>(total.ok), achieved,
              static_cast<unsigned long long>(total.sent_late),
              static_cast<unsigned long long>(total.unfinished));
  std::printf(
      "  latency from intended send: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms\n",
      Percentile(total.latency, 50), Percentile(total.latency, 90), Percentile(total.latency, 99),
      Percentile(total.latency, 99.9), max_ms);
  std::printf(
      "  service time (from actual send): p50 %.3f  p99 %.3f ms; "
      "generator lag p50 %.3f  p99 %.3f ms\n",
      Percentile(total.service, 50), Percentile(total.service, 99), Percentile(total.lag, 50),
      Percentile(total.lag, 99));
  std::printf(
      "RESULT label=%s rate=%.0f achieved=%.0f ok=%llu late=%llu unfinished=%llu p50_ms=%.3f "
      "p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f service_p50_ms=%.3f "
      "service_p99_ms=%.3f lag_p99_ms=%.3f error=%s\n",
      options.label.c_str(), options.rate, achieved, static_cast<unsigned long long>(total.ok),
      static_cast<unsigned long long>(total.sent_late),
      static_cast<unsigned long long>(total.unfinished), Percentile(total.latency, 50),
      Percentile(total.latency, 90), Percentile(total.latency, 99), Percentile(total.latency, 99.9),
      max_ms, Percentile(total.service, 50), Percentile(total.service, 99),
      Percentile(total.lag, 99), total.error.empty() ? "none" : "yes");
  if (!total.error.empty()) {
    std::fprintf(stderr, "rate_load: %s\n", total.error.c_str());
    return 1;
  }
  if (total.unfinished > 0) return 1;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    options = ParseOptions(argc, argv);
  } catch (const UsageError& e) {
    Usage(e.what());
  }
  try {
    return Run(options);
  } catch (const UsageError& e) {
    Usage(e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rate_load: %s\n", e.what());
    return 1;
  }
}
