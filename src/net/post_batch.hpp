// Hand-offs to the I/O threads, coalesced while one thread answers many requests at once.
//
// The webhook inbox's database thread answers a whole group commit in one go, each answer going
// to the I/O thread that owns its connection. Handed over one by one, every answer can wake its
// I/O thread again (an epoll interrupt and a context switch), and the woken thread then competes
// with the database thread for the core while the rest of the batch waits. While a PostBatch is
// open on a thread, hand-offs made through net::Defer (net/defer.hpp) are collected per executor
// instead; closing the outermost PostBatch posts each executor one handler that runs its tasks in
// the order they were given. A nested PostBatch joins the open one. Asio-free, so that the
// composition root can open one around code that knows nothing of Asio.
#pragma once

namespace callgate::net {

class PostBatch {
 public:
  PostBatch();
  ~PostBatch();  // posts what was collected, also during stack unwinding
  PostBatch(const PostBatch&) = delete;
  PostBatch& operator=(const PostBatch&) = delete;

 private:
  bool outermost_;
};

}  // namespace callgate::net
