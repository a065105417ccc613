// The process's I/O runtime: one io_context per I/O thread, and signal handling.
//
// Threading model (written down once, here): each I/O thread runs an io_context of its own, so
// that a connection, its timers and the upstream requests it makes stay on one thread: a request
// answered on the thread that read it costs no cross-thread wake-up and no lock contention, the
// tail latency that a single io_context shared by every thread showed. Accepted connections and
// other long-lived work are spread over the threads in turn (next_context()). Exactly one thread
// runs each io_context, so its executor alone keeps a connection's or a request's handlers from
// running concurrently: they use it directly, without a strand (which costs a lock and a queue
// per handler). Run() keeps that true when called from several threads. Blocking work (SQLite,
// files, audio devices) never runs on these threads: it goes to core::Worker or a component's own
// thread, and answers by posting back. Only net/ and http/ translation units see Asio types; this
// header forward-declares io_context so its users stay cheap to compile.
#pragma once

#include <functional>
#include <memory>

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace callgate::net {

class Runtime {
 public:
  explicit Runtime(unsigned io_threads);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // On an I/O thread of this runtime: that thread's own io_context, so that work started from
  // a handler (an upstream request, a timer) stays on the thread. From any other thread: the
  // next io_context in turn.
  boost::asio::io_context& context();
  // The next io_context in turn, whichever thread asks: for spreading new long-lived work
  // (accepted connections, conversation lanes) over the threads.
  boost::asio::io_context& next_context();
  unsigned io_threads() const;

  // `on_signal(signal_number)` runs on an I/O thread each time SIGINT or SIGTERM arrives.
  // Call before Run().
  void OnStopSignal(std::function<void(int)> on_signal);

  // Runs one io_context on each of io_threads() threads, this one included; returns after
  // Stop(). Called from several threads at once (tests serving two routers on one runtime), one
  // runs the io_contexts and the others wait for it to return: a second thread never runs a
  // context that already has one.
  void Run();
  // Thread-safe; pending handlers are abandoned.
  void Stop();
  // Thread-safe: Run() returns once the handlers already queued (closing sockets, last
  // callbacks) have run and nothing else is pending. Stops waiting for signals.
  void StopWhenIdle();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace callgate::net
