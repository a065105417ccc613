#include "app/listen.hpp"

#include "http/server.hpp"
#include "net/runtime.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>

namespace callgate::app {

bool WritePortFile(const std::string& path, std::uint16_t port) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    if (!out || !(out << port << '\n') || !out.flush()) return false;
  }
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  return !ec;
}

std::optional<std::uint16_t> ListenWithGracefulStop(net::Runtime& runtime, http::Server& server,
                                                    const std::string& port_file,
                                                    std::chrono::milliseconds grace,
                                                    StopHooks* hooks) {
  // SIGINT and SIGTERM are caught before the port is announced: a supervisor (or a test) that
  // stops the service as soon as the port file appears gets a graceful stop, not the default
  // action of the signal (exit 143). A signal that arrives before Run() waits in Asio's queue.
  auto signals_seen = std::make_shared<std::atomic<int>>(0);
  runtime.OnStopSignal([&runtime, &server, grace, signals_seen, hooks](int signal_number) {
    if (signals_seen->fetch_add(1) > 0) {
      spdlog::warn("second signal: stopping now");
      runtime.Stop();
      return;
    }
    spdlog::info("received {}, finishing requests in flight (up to {} ms)",
                 signal_number == SIGINT ? "SIGINT" : "SIGTERM", grace.count());
    server.Shutdown(grace, [&runtime, hooks] {
      if (hooks == nullptr || !hooks->before_stop) {
        runtime.Stop();
        return;
      }
      hooks->thread = std::thread([&runtime, hooks] {
        hooks->before_stop();
        runtime.Stop();
      });
    });
  });
  std::uint16_t port = 0;
  try {
    port = server.Listen();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return std::nullopt;
  }
  if (!port_file.empty() && !WritePortFile(port_file, port)) {
    spdlog::critical("cannot write the port file {}", port_file);
    return std::nullopt;
  }
  return port;
}

}  // namespace callgate::app
