#include "net/runtime.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <optional>
#include <thread>
#include <vector>

namespace callgate::net {

namespace asio = boost::asio;

struct Runtime::Impl {
  explicit Impl(unsigned threads)
      : io_threads(threads == 0 ? 1 : threads),
        context(static_cast<int>(io_threads)),
        work(asio::make_work_guard(context)),
        signals(context) {}

  void WaitForSignal() {
    signals.async_wait([this](const boost::system::error_code& ec, int signal_number) {
      if (ec) return;
      if (on_signal) on_signal(signal_number);
      WaitForSignal();
    });
  }

  unsigned io_threads;
  asio::io_context context;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  asio::signal_set signals;
  std::function<void(int)> on_signal;
};

Runtime::Runtime(unsigned io_threads) : impl_(std::make_unique<Impl>(io_threads)) {}
Runtime::~Runtime() {
  Stop();
}

asio::io_context& Runtime::context() {
  return impl_->context;
}
unsigned Runtime::io_threads() const {
  return impl_->io_threads;
}

void Runtime::OnStopSignal(std::function<void(int)> on_signal) {
  impl_->on_signal = std::move(on_signal);
  impl_->signals.add(SIGINT);
  impl_->signals.add(SIGTERM);
  impl_->WaitForSignal();
}

void Runtime::Run() {
  std::vector<std::thread> threads;
  threads.reserve(impl_->io_threads - 1);
  for (unsigned i = 1; i < impl_->io_threads; ++i) {
    threads.emplace_back([this] { impl_->context.run(); });
  }
  impl_->context.run();
  for (auto& thread : threads)
    thread.join();
}

void Runtime::StopWhenIdle() {
  impl_->work.reset();
  // The signal wait is work too: it would keep Run() from ever returning.
  asio::post(impl_->context, [impl = impl_.get()] {
    boost::system::error_code ignored;
    impl->signals.cancel(ignored);
  });
}

void Runtime::Stop() {
  impl_->work.reset();
  impl_->context.stop();
}

}  // namespace callgate::net
