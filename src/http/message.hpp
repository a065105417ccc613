// The HTTP request and response as handlers see them: plain values, no sockets, no Beast.
//
// The server (server.cpp) converts Beast messages to and from these types; handlers and the
// dispatcher work only with them, so they are unit-tested without a network.
//
// A response body is either a string (`Response::body`, the common case) or a BodyStream
// (`Response::stream`) that the server pulls chunk by chunk, for bodies too large to hold in
// memory (a recording proxied from ElevenLabs). The same BodyStream is what the upstream
// client hands out for a streamed response, so a proxy passes one to the other.
#pragma once

#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace callgate::http {

// Header fields in arrival order; names compare case-insensitively.
class Headers {
 public:
  std::optional<std::string_view> Get(std::string_view name) const;
  void Set(std::string name, std::string value);  // replaces every field of that name
  void Add(std::string name, std::string value);
  const std::vector<std::pair<std::string, std::string>>& All() const { return fields_; }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

struct Request {
  std::string method;  // "GET", upper case as received
  std::string target;  // raw request target, "/api/calls?status=done"
  std::string path;    // target without the query, still percent-encoded
  std::string query;   // raw query string without '?', may be empty
  Headers headers;
  std::string body;
  std::string remote_address;
  bool tls = false;        // arrived over HTTPS
  std::string request_id;  // from X-Request-Id when acceptable, otherwise generated

  // Filled by the dispatcher.
  std::map<std::string, std::string, std::less<>> path_params;  // percent-decoded
  std::optional<boost::json::value> json;  // parsed body, for routes that take JSON

  std::string_view PathParam(std::string_view name) const;
  // First value of a query parameter, percent-decoded ('+' is a space).
  std::optional<std::string> QueryParam(std::string_view name) const;
};

// One step of a streamed body: some bytes, the end, or a failure.
struct BodyChunk {
  enum class Kind { kData, kEnd, kError };
  Kind kind = Kind::kEnd;
  std::string data;   // kData: the next bytes (never empty)
  std::string error;  // kError: what went wrong, for logs (never sent to a client)

  static BodyChunk Data(std::string bytes);
  static BodyChunk End();
  static BodyChunk Error(std::string what);
};

// A body produced piece by piece and pulled by its one consumer, one chunk at a time: the
// producer is asked for more only once the previous chunk was used (written to the client), which
// is the backpressure from a slow reader to the source.
//
// Contract, for producers and consumers alike:
//  - Next() is not called again before its `done` ran, nor after a kEnd or kError chunk.
//  - `done` runs exactly once per Next(), from any thread, possibly inside Next() itself; Next()
//    itself must not block.
//  - Length(), when known, is the exact total: the data chunks add up to it. A consumer treats
//    a mismatch as a failure.
//  - The consumer may destroy its reference at any time, also while a Next() is outstanding (the
//    client went away, a timeout): the producer then releases what it holds (an upstream
//    connection is closed). An outstanding `done` may still run later, so it must own what it
//    touches.
class BodyStream {
 public:
  using NextCallback = std::function<void(BodyChunk)>;
  virtual ~BodyStream() = default;
  // The total number of bytes when known up front (sent as Content-Length), else nullopt (sent
  // with Transfer-Encoding: chunked).
  virtual std::optional<std::uint64_t> Length() const = 0;
  virtual void Next(NextCallback done) = 0;
};

// Serves `bytes` (shared, never copied whole) in chunks of at most `chunk_bytes`; Length() is its
// size. Answers inline. Thread-compatible (one consumer, as the contract says).
std::shared_ptr<BodyStream> MakeStringBodyStream(std::shared_ptr<const std::string> bytes,
                                                 std::size_t chunk_bytes = 64 * 1024);

// Pulls `stream` to its end and hands the bytes to `done`, or nullopt and the reason (the
// stream's error, or more than `max_bytes`). For small bodies (an error answer): each chunk is
// requested from the previous one's callback. `done` runs once, on the thread of the last chunk.
void ReadWholeBody(std::shared_ptr<BodyStream> stream, std::size_t max_bytes,
                   std::function<void(std::optional<std::string> bytes, std::string error)> done);

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  // When set, the body is this stream instead of `body` (which is then ignored). The server sends
  // Content-Length when stream->Length() is known, Transfer-Encoding: chunked otherwise, and
  // pulls the chunks one at a time from any thread's answers. A failure of the stream once the
  // headers are out cuts the connection: the client sees a truncated response. Shared only so
  // that a Response stays copyable; it has one consumer.
  std::shared_ptr<BodyStream> stream;
  // Fault injection (the simulator): drop the connection with a TCP reset, writing nothing.
  bool abort_connection = false;

  static Response Json(int status, const boost::json::value& value);
  // `json_text` must already be JSON (serialized elsewhere); sent as application/json.
  static Response JsonText(int status, std::string json_text);
  static Response Text(int status, std::string text,
                       std::string content_type = "text/plain; charset=utf-8");
  static Response Stream(int status, std::string content_type, std::shared_ptr<BodyStream> stream);
};

}  // namespace callgate::http
