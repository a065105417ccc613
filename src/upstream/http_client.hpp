// An HTTP/1.1 client for calls leaving callgate: to ElevenLabs (or the simulator), to webhook
// forwarding targets, and from the simulator to a webhook receiver.
//
// The interface is pure (no Asio/Beast types) so that the modules using it compile quickly and
// can be tested with a fake; MakeHttpClient() returns the Beast implementation
// (beast_client.cpp), which runs on the process's net::Runtime:
//   - a keep-alive connection pool per scheme://host:port, bounded, with idle connections that
//     the peer has closed detected before reuse;
//   - HTTPS with certificate and host-name verification against the system CA store, plus an
//     optional CA bundle (how tests trust the simulator's certificate), and SNI;
//   - a connect timeout and a total timeout per request, so a caller is never left hanging;
//   - a bound on the response size.
//
// Every request ends with exactly one call of its callback, on an I/O thread: either a response
// (any status) or a failure that says whether the request may have reached the server. That
// distinction is what makes retrying a non-idempotent POST safe or not.
#pragma once

#include "http/message.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <variant>

namespace callgate::net {
class Runtime;
}  // namespace callgate::net

namespace callgate::upstream {

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // absolute: http(s)://host[:port]/path?query
  http::Headers headers;
  std::string body;
  bool chunked = false;                  // send the body with Transfer-Encoding: chunked
  std::chrono::milliseconds timeout{0};  // total, from the call; 0 = the client's default
  std::size_t max_response_bytes = 0;    // 0 = the client's default
};

struct HttpResponse {
  int status = 0;
  http::Headers headers;
  std::string body;
};

struct HttpFailure {
  enum class Kind {
    kInvalidUrl,        // not an absolute http(s) URL
    kResolve,           // the host name does not resolve
    kConnect,           // refused, unreachable, or no connection within the connect timeout
    kTls,               // handshake or certificate/host-name verification failed
    kTimeout,           // the total timeout expired after the connection was made
    kConnectionLost,    // reset or closed before a complete response
    kBadResponse,       // not HTTP, or a malformed response
    kResponseTooLarge,  // over max_response_bytes
  };
  Kind kind = Kind::kConnect;
  std::string message;  // human-readable, names the host; never contains header values
  // False when the request provably never reached the server (it was not completely written):
  // retrying it cannot repeat its effect. True otherwise, including on a timeout after sending.
  bool request_sent = false;
};

const char* ToString(HttpFailure::Kind kind);

using HttpOutcome = std::variant<HttpResponse, HttpFailure>;
using HttpCallback = std::function<void(HttpOutcome)>;

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // Thread-safe. `done` runs exactly once, on an I/O thread (unless the runtime is stopped first).
  virtual void Send(HttpRequest request, HttpCallback done) = 0;
};

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds request_timeout{10'000};  // the default total timeout
  // Pooled connections idle longer than this are closed rather than reused (servers close idle
  // keep-alive connections themselves: uvicorn after 5 s).
  std::chrono::milliseconds idle_timeout{4'000};
  std::size_t max_idle_per_host = 128;
  std::size_t max_response_bytes = 16 * 1024 * 1024;
  std::string ca_file;  // PEM bundle trusted in addition to the system store; empty = none
  std::string user_agent = "callgate";
};

// The Beast implementation on `runtime`'s io_context. Destroy it before the runtime.
std::unique_ptr<HttpClient> MakeHttpClient(net::Runtime& runtime, HttpClientOptions options);

}  // namespace callgate::upstream
