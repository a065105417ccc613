// net::Defer: asio::defer, or a place in the thread's open PostBatch (net/post_batch.hpp).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/defer.hpp>

#include <memory>
#include <utility>

namespace callgate::net {
namespace detail {

struct BatchedTask {
  virtual ~BatchedTask() = default;
  virtual void Run() = 0;
};

template <class Function>
struct BatchedTaskOf final : BatchedTask {
  explicit BatchedTaskOf(Function f) : function(std::move(f)) {}
  void Run() override { std::move(function)(); }
  Function function;
};

bool BatchOpen();  // on this thread
// Only while BatchOpen().
void AddToOpenBatch(const boost::asio::any_io_executor& executor,
                    std::unique_ptr<BatchedTask> task);

}  // namespace detail

// Runs `function` on `executor` later: with the other tasks for that executor when this thread
// has a PostBatch open, else through asio::defer.
template <class Function>
void Defer(const boost::asio::any_io_executor& executor, Function function) {
  if (detail::BatchOpen()) {
    detail::AddToOpenBatch(executor,
                           std::make_unique<detail::BatchedTaskOf<Function>>(std::move(function)));
    return;
  }
  boost::asio::defer(executor, std::move(function));
}

}  // namespace callgate::net
