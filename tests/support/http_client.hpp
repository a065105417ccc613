// Test support: a deliberately simple blocking HTTP/1.1 client over a raw TCP socket, so tests
// can send exactly the bytes they mean (partial requests, pipelining, oversized headers) and read
// exactly what the server wrote.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace callgate::testing {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string Header(const std::string& lower_name) const;
  bool Closes() const;  // "Connection: close"
};

// TLS for the test client: the server's certificate must chain to `ca_file` and match
// `server_name` (host-name verification), as a real client would check.
struct TlsClientOptions {
  std::string ca_file;
  std::string server_name = "localhost";
};

class TcpConnection {
 public:
  explicit TcpConnection(std::uint16_t port);  // 127.0.0.1
  // Over TLS; connected() is false when the handshake or the verification fails.
  TcpConnection(std::uint16_t port, const TlsClientOptions& tls);
  ~TcpConnection();
  TcpConnection(TcpConnection&& other) noexcept;
  TcpConnection(const TcpConnection&) = delete;
  TcpConnection& operator=(const TcpConnection&) = delete;

  bool connected() const { return fd_ >= 0; }
  bool Send(std::string_view bytes);
  // Reads one response (Content-Length or chunked body; none for HEAD / 1xx / 204 / 304).
  std::optional<HttpResponse> Read(std::chrono::milliseconds timeout = std::chrono::seconds(10),
                                   bool head_request = false);
  // True when the peer closes the connection (read returns 0 or reset) within `timeout`.
  bool WaitClosed(std::chrono::milliseconds timeout);
  void Close();
  // Exactly `n` raw bytes (after any buffered ones), for protocols layered on the connection.
  bool ReadExact(std::size_t n, std::string& out, std::chrono::steady_clock::time_point deadline);
  // Every raw byte (buffered ones first) until the peer closes the connection (EOF or reset) or
  // `timeout` passes; `closed` (optional) says which. For responses cut mid-body.
  std::string ReadUntilClosed(std::chrono::milliseconds timeout, bool* closed = nullptr);

 private:
  bool Fill(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  void* ssl_ = nullptr;  // SSL*, when over TLS
  void* ssl_ctx_ = nullptr;
  std::string buffer_;
};

// Builds "METHOD target HTTP/1.1" with Host and the given headers; adds Content-Length for a body.
std::string BuildRequest(std::string_view method, std::string_view target,
                         const std::vector<std::pair<std::string, std::string>>& headers = {},
                         std::string_view body = {}, bool content_length = true);

// One request on a fresh connection.
std::optional<HttpResponse> Fetch(
    std::uint16_t port, std::string_view method, std::string_view target,
    const std::vector<std::pair<std::string, std::string>>& headers = {},
    std::string_view body = {});

// A self-signed certificate for CN=localhost with subjectAltName localhost and 127.0.0.1 (or
// `subject_alt_name`), made with the openssl command-line tool (independent of the code under
// test).
struct TestCertificate {
  std::string cert_file;
  std::string key_file;
};
TestCertificate MakeTestCertificate(
    const std::string& directory,
    const std::string& subject_alt_name = "DNS:localhost,IP:127.0.0.1");

}  // namespace callgate::testing
