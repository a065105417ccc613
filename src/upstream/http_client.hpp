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
//
// SendStreamed() answers as soon as the status and headers are in; the body is then pulled by the
// consumer, one bounded chunk at a time (HttpClientOptions::stream_chunk_bytes), through an
// http::BodyStream (see http/message.hpp for its contract). Nothing more is read from the socket
// until the consumer asks, so a slow consumer slows the upstream down (TCP backpressure) and
// memory stays bounded whatever the body's size. The connection goes back to the pool only once
// the body was read to its end; dropping the stream earlier closes it.
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
  // Send(): 0 = the client's default. SendStreamed(): 0 = no limit on the total (memory is bounded
  // by the chunk size anyway); otherwise a longer body fails (announced: before it is read).
  std::size_t max_response_bytes = 0;
  // SendStreamed(): `timeout` covers the connection, the request and the response head; then
  // each body chunk must arrive within this. 0 = `timeout` (or the client's default).
  std::chrono::milliseconds read_timeout{0};
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

// The head of a response whose body is still on the wire.
struct HttpStreamedResponse {
  int status = 0;
  http::Headers headers;
  // Never null. Chunks of at most HttpClientOptions::stream_chunk_bytes; Next() answers on an I/O
  // thread. Length() is the Content-Length when the server sent one (0 for a response without a
  // body: HEAD, 204, 304), nullopt for a chunked or close-delimited body. A kError chunk says
  // "<HttpFailure kind>: <what>", e.g. "timeout: no body data from host:443 within 10000 ms",
  // "bad_response: truncated response from host:443", "response_too_large: ...". Release it
  // before the runtime is destroyed (its destructor posts the connection's release there).
  std::shared_ptr<http::BodyStream> body;
};

using HttpStreamedOutcome = std::variant<HttpStreamedResponse, HttpFailure>;
using HttpStreamedCallback = std::function<void(HttpStreamedOutcome)>;

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // Thread-safe. `done` runs exactly once, on an I/O thread (unless the runtime is stopped first).
  virtual void Send(HttpRequest request, HttpCallback done) = 0;
  // Thread-safe. `done` runs exactly once, on an I/O thread, when the response head is in (or the
  // request failed before that). The default implementation (for fakes) reads the whole body
  // with Send() and serves it from memory.
  virtual void SendStreamed(HttpRequest request, HttpStreamedCallback done);
};

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds request_timeout{10'000};  // the default total timeout
  // Pooled connections idle longer than this are closed rather than reused (servers close idle
  // keep-alive connections themselves: uvicorn after 5 s).
  std::chrono::milliseconds idle_timeout{4'000};
  std::size_t max_idle_per_host = 128;
  std::size_t max_response_bytes = 16 * 1024 * 1024;  // Send() only; see HttpRequest
  std::size_t stream_chunk_bytes = 64 * 1024;         // the largest chunk SendStreamed() hands out
  std::string ca_file;  // PEM bundle trusted in addition to the system store; empty = none
  std::string user_agent = "callgate";
};

// The Beast implementation on `runtime`'s io_context. Destroy it before the runtime.
std::unique_ptr<HttpClient> MakeHttpClient(net::Runtime& runtime, HttpClientOptions options);

}  // namespace callgate::upstream
