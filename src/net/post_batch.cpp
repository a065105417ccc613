#include "net/post_batch.hpp"

#include "net/defer.hpp"

#include <boost/asio/post.hpp>

#include <exception>
#include <vector>

namespace callgate::net {
namespace {

using Tasks = std::vector<std::unique_ptr<detail::BatchedTask>>;

struct OpenBatch {
  // Few executors per batch (one per I/O thread): a linear search beats a map.
  std::vector<std::pair<boost::asio::any_io_executor, Tasks>> by_executor;
};

thread_local OpenBatch* t_open = nullptr;

// Runs every task, even when one throws; the first exception goes on to the io_context's run()
// as a lone handler's would.
void RunAll(Tasks& tasks) {
  std::exception_ptr first;
  for (auto& task : tasks) {
    try {
      task->Run();
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
}

}  // namespace

namespace detail {

bool BatchOpen() {
  return t_open != nullptr;
}

void AddToOpenBatch(const boost::asio::any_io_executor& executor,
                    std::unique_ptr<BatchedTask> task) {
  for (auto& [target, tasks] : t_open->by_executor) {
    if (target == executor) {
      tasks.push_back(std::move(task));
      return;
    }
  }
  Tasks tasks;
  tasks.push_back(std::move(task));
  t_open->by_executor.emplace_back(executor, std::move(tasks));
}

}  // namespace detail

PostBatch::PostBatch() : outermost_(t_open == nullptr) {
  if (outermost_) t_open = new OpenBatch;
}

PostBatch::~PostBatch() {
  if (!outermost_) return;
  std::unique_ptr<OpenBatch> batch(t_open);
  t_open = nullptr;
  for (auto& [executor, tasks] : batch->by_executor) {
    boost::asio::post(executor, [tasks = std::move(tasks)]() mutable { RunAll(tasks); });
  }
}

}  // namespace callgate::net
