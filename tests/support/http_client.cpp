#include "support/http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <utility>

namespace callgate::testing {

std::string HttpResponse::Header(const std::string& lower_name) const {
  const auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

bool HttpResponse::Closes() const {
  std::string value = Header("connection");
  std::transform(value.begin(), value.end(), value.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return value == "close";
}

TcpConnection::TcpConnection(std::uint16_t port) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd_);
    fd_ = -1;
    return;
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

TcpConnection::TcpConnection(std::uint16_t port, const TlsClientOptions& tls)
    : TcpConnection(port) {
  if (fd_ < 0) return;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  ssl_ctx_ = ctx;
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(ctx, tls.ca_file.c_str(), nullptr) != 1) {
    Close();
    return;
  }
  SSL* ssl = SSL_new(ctx);
  ssl_ = ssl;
  SSL_set_fd(ssl, fd_);
  // SNI (SSL_set_tlsext_host_name is a macro with a C-style cast).
  SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
           const_cast<char*>(tls.server_name.c_str()));
  SSL_set1_host(ssl, tls.server_name.c_str());
  if (SSL_connect(ssl) != 1) Close();
}

TcpConnection::~TcpConnection() {
  Close();
  if (ssl_ctx_ != nullptr) SSL_CTX_free(static_cast<SSL_CTX*>(ssl_ctx_));
}

TcpConnection::TcpConnection(TcpConnection&& other) noexcept
    : fd_(other.fd_),
      ssl_(other.ssl_),
      ssl_ctx_(other.ssl_ctx_),
      buffer_(std::move(other.buffer_)) {
  other.fd_ = -1;
  other.ssl_ = nullptr;
  other.ssl_ctx_ = nullptr;
}

void TcpConnection::Close() {
  if (ssl_ != nullptr) SSL_free(static_cast<SSL*>(ssl_));
  ssl_ = nullptr;
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

bool TcpConnection::Send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ssl_ != nullptr ? SSL_write(static_cast<SSL*>(ssl_), bytes.data(),
                                                  static_cast<int>(bytes.size()))
                                      : send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool TcpConnection::Fill(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0 || fd_ < 0) return false;
  const bool buffered = ssl_ != nullptr && SSL_pending(static_cast<SSL*>(ssl_)) > 0;
  pollfd pfd{fd_, POLLIN, 0};
  if (!buffered && poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return false;
  char chunk[16384];
  const ssize_t n = ssl_ != nullptr ? SSL_read(static_cast<SSL*>(ssl_), chunk, sizeof chunk)
                                    : recv(fd_, chunk, sizeof chunk, 0);
  if (n <= 0) return false;
  buffer_.append(chunk, static_cast<std::size_t>(n));
  return true;
}

std::optional<HttpResponse> TcpConnection::Read(std::chrono::milliseconds timeout,
                                                bool head_request) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!Fill(deadline)) return std::nullopt;
  }
  HttpResponse response;
  const std::string head = buffer_.substr(0, end);
  buffer_.erase(0, end + 4);
  std::size_t line_end = head.find("\r\n");
  const std::string status_line = head.substr(0, line_end);
  if (status_line.size() < 12) return std::nullopt;
  response.status = std::atoi(status_line.c_str() + 9);
  while (line_end != std::string::npos) {
    const std::size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string line =
        head.substr(start, line_end == std::string::npos ? std::string::npos : line_end - start);
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    response.headers[name] = value;
  }
  if (head_request || response.status < 200 || response.status == 204 || response.status == 304) {
    return response;
  }
  if (response.Header("transfer-encoding") == "chunked") {
    while (true) {
      std::size_t crlf;
      while ((crlf = buffer_.find("\r\n")) == std::string::npos) {
        if (!Fill(deadline)) return std::nullopt;
      }
      const std::size_t size = std::strtoul(buffer_.c_str(), nullptr, 16);
      while (buffer_.size() < crlf + 2 + size + 2) {
        if (!Fill(deadline)) return std::nullopt;
      }
      response.body += buffer_.substr(crlf + 2, size);
      buffer_.erase(0, crlf + 2 + size + 2);
      if (size == 0) break;
    }
    return response;
  }
  const std::size_t length = std::strtoul(response.Header("content-length").c_str(), nullptr, 10);
  while (buffer_.size() < length) {
    if (!Fill(deadline)) return std::nullopt;
  }
  response.body = buffer_.substr(0, length);
  buffer_.erase(0, length);
  return response;
}

bool TcpConnection::ReadExact(std::size_t n, std::string& out,
                              std::chrono::steady_clock::time_point deadline) {
  while (buffer_.size() < n) {
    if (!Fill(deadline)) return false;
  }
  out = buffer_.substr(0, n);
  buffer_.erase(0, n);
  return true;
}

std::string TcpConnection::ReadUntilClosed(std::chrono::milliseconds timeout, bool* closed) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool ended = false;
  while (!ended && std::chrono::steady_clock::now() < deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    const bool buffered = ssl_ != nullptr && SSL_pending(static_cast<SSL*>(ssl_)) > 0;
    pollfd pfd{fd_, POLLIN, 0};
    if (!buffered && poll(&pfd, 1, static_cast<int>(std::max<long>(1, left.count()))) <= 0) {
      continue;
    }
    char chunk[16384];
    const ssize_t n = ssl_ != nullptr ? SSL_read(static_cast<SSL*>(ssl_), chunk, sizeof chunk)
                                      : recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<std::size_t>(n));
    } else {
      ended = true;  // EOF, reset, or a TLS stream that ended (cleanly or not)
    }
  }
  if (closed != nullptr) *closed = ended;
  return std::exchange(buffer_, std::string());
}

bool TcpConnection::WaitClosed(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd pfd{fd_, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(std::max<long>(1, left.count()))) <= 0) continue;
    char chunk[4096];
    const ssize_t n = ssl_ != nullptr ? SSL_read(static_cast<SSL*>(ssl_), chunk, sizeof chunk)
                                      : recv(fd_, chunk, sizeof chunk, 0);
    if (n == 0 || (n < 0 && (errno == ECONNRESET || ssl_ != nullptr))) return true;
    if (n > 0) buffer_.append(chunk, static_cast<std::size_t>(n));
  }
  return false;
}

std::string BuildRequest(std::string_view method, std::string_view target,
                         const std::vector<std::pair<std::string, std::string>>& headers,
                         std::string_view body, bool content_length) {
  std::string request = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\n";
  request += "Host: 127.0.0.1\r\n";
  for (const auto& [name, value] : headers)
    request += name + ": " + value + "\r\n";
  if (content_length && (!body.empty() || method == "POST")) {
    request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "\r\n";
  request += body;
  return request;
}

TestCertificate MakeTestCertificate(const std::string& directory,
                                    const std::string& subject_alt_name) {
  TestCertificate cert{directory + "/cert.pem", directory + "/key.pem"};
  const std::string command =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost"
      " -addext subjectAltName=" +
      subject_alt_name + " -keyout '" + cert.key_file + "' -out '" + cert.cert_file +
      "' >/dev/null 2>&1";
  if (std::system(command.c_str()) != 0) return {};  // NOLINT(concurrency-mt-unsafe)
  return cert;
}

std::optional<HttpResponse> Fetch(std::uint16_t port, std::string_view method,
                                  std::string_view target,
                                  const std::vector<std::pair<std::string, std::string>>& headers,
                                  std::string_view body) {
  TcpConnection connection(port);
  if (!connection.connected()) return std::nullopt;
  if (!connection.Send(BuildRequest(method, target, headers, body))) return std::nullopt;
  return connection.Read(std::chrono::seconds(10), method == "HEAD");
}

}  // namespace callgate::testing
