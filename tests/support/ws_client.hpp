// Test support: a minimal RFC 6455 WebSocket client over TcpConnection (plain or TLS), written
// independently of the server code under test. Masks its frames, reassembles fragments, answers
// pings, and reports the close code it receives.
#pragma once

#include "support/http_client.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace callgate::testing {

class WsClient {
 public:
  struct Message {
    enum class Kind { kText, kBinary, kClose } kind = Kind::kText;
    std::string data;
    std::uint16_t close_code = 0;  // for kClose (1005 when the frame had no code)
  };

  // Performs the opening handshake on `target` ("/v1/convai/conversation?agent_id=...").
  // On refusal, handshake_status() is the HTTP status and handshake_response() the response.
  WsClient(std::uint16_t port, const std::string& target,
           const std::vector<std::pair<std::string, std::string>>& headers = {},
           std::optional<TlsClientOptions> tls = std::nullopt);

  bool open() const { return open_; }
  int handshake_status() const { return handshake_status_; }
  const HttpResponse& handshake_response() const { return handshake_; }

  bool SendText(const std::string& text);
  bool SendClose(std::uint16_t code, const std::string& reason = {});
  // The next text/binary/close message; pings are answered transparently.
  std::optional<Message> Read(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  bool WaitClosed(std::chrono::milliseconds timeout) {
    return !connection_.connected() || connection_.WaitClosed(timeout);
  }

 private:
  bool SendFrame(std::uint8_t opcode, const std::string& payload);
  bool ReadBytes(std::size_t n, std::string& out, std::chrono::steady_clock::time_point deadline);

  TcpConnection connection_;
  bool open_ = false;
  int handshake_status_ = 0;
  HttpResponse handshake_;
};

}  // namespace callgate::testing
