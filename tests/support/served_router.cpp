#include "support/served_router.hpp"

#include <future>

namespace callgate::testing {

ServedRouter::ServedRouter(net::Runtime& runtime, const http::Dispatcher& dispatcher,
                           http::ServerOptions options)
    : runtime_(runtime), server_(runtime, dispatcher, registry_, std::move(options)) {
  port_ = server_.Listen();
  server_.Start();
  thread_ = std::thread([this] { runtime_.Run(); });
}

ServedRouter::~ServedRouter() {
  Stop();
}

void ServedRouter::Stop(std::chrono::milliseconds grace) {
  if (!thread_.joinable()) return;
  auto stopped = std::make_shared<std::promise<void>>();
  server_.Shutdown(grace, [this, stopped] {
    runtime_.Stop();
    stopped->set_value();
  });
  stopped->get_future().wait_for(grace + std::chrono::seconds(10));
  Join();
}

void ServedRouter::Join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace callgate::testing
