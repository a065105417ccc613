#include "net/runtime.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include <atomic>
#include <csignal>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace callgate::net {

namespace asio = boost::asio;

namespace {

// The io_context the calling thread runs, when it is an I/O thread of some Runtime.
thread_local asio::io_context* current_context = nullptr;

// An io_context whose shutdown (destroying the handlers still queued) can be asked for before
// its destruction.
class LaneContext : public asio::io_context {
 public:
  using asio::io_context::io_context;
  void DestroyPendingHandlers() { shutdown(); }  // idempotent, like the destructor's own
};

struct Lane {
  // One thread per context: Asio takes the single-threaded path (no wake-up of another thread
  // when more handlers are queued).
  LaneContext context{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{
      asio::make_work_guard(context)};
};

}  // namespace

struct Runtime::Impl {
  explicit Impl(unsigned threads) : lanes(threads == 0 ? 1 : threads), signals(lanes[0].context) {}

  // A handler queued on one lane can own objects of another (a connection on one thread, the
  // server holding its acceptor on the other): every lane's queued handlers are destroyed while
  // all the lanes still exist, then the lanes themselves.
  ~Impl() {
    for (Lane& lane : lanes)
      lane.context.DestroyPendingHandlers();
  }

  void WaitForSignal() {
    signals.async_wait([this](const boost::system::error_code& ec, int signal_number) {
      if (ec) return;
      if (on_signal) on_signal(signal_number);
      WaitForSignal();
    });
  }

  bool Owns(const asio::io_context* context) const {
    for (const Lane& lane : lanes) {
      if (&lane.context == context) return true;
    }
    return false;
  }

  asio::io_context& Next() {
    return lanes[next.fetch_add(1, std::memory_order_relaxed) % lanes.size()].context;
  }

  static void RunLane(Lane& lane) {
    current_context = &lane.context;
    lane.context.run();
    current_context = nullptr;
  }

  std::vector<Lane> lanes;
  std::atomic<unsigned> next{0};
  std::atomic<bool> stopped{false};
  std::mutex running;  // held by the Run() that runs the lanes
  asio::signal_set signals;
  std::function<void(int)> on_signal;
};

Runtime::Runtime(unsigned io_threads) : impl_(std::make_unique<Impl>(io_threads)) {}
Runtime::~Runtime() {
  Stop();
}

asio::io_context& Runtime::context() {
  if (current_context != nullptr && impl_->Owns(current_context)) return *current_context;
  return impl_->Next();
}

asio::io_context& Runtime::next_context() {
  return impl_->Next();
}

unsigned Runtime::io_threads() const {
  return static_cast<unsigned>(impl_->lanes.size());
}

void Runtime::OnStopSignal(std::function<void(int)> on_signal) {
  impl_->on_signal = std::move(on_signal);
  impl_->signals.add(SIGINT);
  impl_->signals.add(SIGTERM);
  impl_->WaitForSignal();
}

void Runtime::Run() {
  const std::lock_guard one_run(impl_->running);
  std::vector<std::thread> threads;
  threads.reserve(impl_->lanes.size() - 1);
  for (std::size_t i = 1; i < impl_->lanes.size(); ++i) {
    threads.emplace_back([this, i] { Impl::RunLane(impl_->lanes[i]); });
  }
  Impl::RunLane(impl_->lanes[0]);
  for (auto& thread : threads)
    thread.join();
  // After StopWhenIdle, a lane that ran out of work first has returned; a handler of a lane that
  // finished later may still have posted to it (a socket closed on its thread, a last callback).
  // Run what was posted that way, lane by lane, until a whole pass runs nothing.
  for (bool ran = true; ran && !impl_->stopped;) {
    ran = false;
    for (Lane& lane : impl_->lanes) {
      if (impl_->stopped) break;
      lane.context.restart();
      current_context = &lane.context;
      ran = lane.context.run() > 0 || ran;
      current_context = nullptr;
    }
  }
}

void Runtime::StopWhenIdle() {
  for (Lane& lane : impl_->lanes)
    lane.work.reset();
  // The signal wait is work too: it would keep Run() from ever returning.
  asio::post(impl_->lanes[0].context, [impl = impl_.get()] {
    boost::system::error_code ignored;
    impl->signals.cancel(ignored);
  });
}

void Runtime::Stop() {
  impl_->stopped = true;
  for (Lane& lane : impl_->lanes) {
    lane.work.reset();
    lane.context.stop();
  }
}

}  // namespace callgate::net
