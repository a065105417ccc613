// The process's I/O runtime: one io_context run by N threads, and signal handling.
//
// Threading model (written down once, here): a single shared io_context is run by every I/O
// thread; each connection or session lives on its own strand of it, so its handlers never run
// concurrently and need no locks, while different connections use every core. Blocking work
// (SQLite, files, audio devices) never runs on these threads: it goes to core::Worker or a
// component's own thread. Only net/ and http/ translation units see Asio types; this header
// forward-declares io_context so its users stay cheap to compile.
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

  boost::asio::io_context& context();
  unsigned io_threads() const;

  // `on_signal(signal_number)` runs on an I/O thread each time SIGINT or SIGTERM arrives.
  // Call before Run().
  void OnStopSignal(std::function<void(int)> on_signal);

  // Runs the io_context on io_threads() threads, this one included; returns after Stop().
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
