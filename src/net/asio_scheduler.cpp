#include "net/asio_scheduler.hpp"

#include "net/runtime.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>

namespace callgate::net {

void AsioScheduler::After(std::chrono::milliseconds delay, std::function<void()> task) {
  if (delay.count() <= 0) {
    boost::asio::post(runtime_.context(), std::move(task));
    return;
  }
  auto timer = std::make_shared<boost::asio::steady_timer>(runtime_.context(), delay);
  timer->async_wait([timer, task = std::move(task)](const boost::system::error_code& ec) {
    if (!ec) task();
  });
}

}  // namespace callgate::net
