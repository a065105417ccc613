// The status line and header block of every response the server writes, whole or streamed.
//
// Formatted into one buffer (a whole answer's is written with its body in one gather write):
// Beast's serializer allocated a node per field and walked a buffer sequence of several dozen
// pieces per answer (about 10% of an I/O thread's time on a proxied GET). The rules are the ones
// Beast's `prepare_payload` and `keep_alive` applied:
//  - the handler's fields in their order, except those the server owns: Content-Length,
//    Transfer-Encoding and Connection (the framing), Server and Date, and X-Request-Id when the
//    server has an id to send;
//  - Content-Length: `content_length` when set (the GET body's length for a HEAD answer), none
//    for a status without a body (1xx, 204, 304: RFC 9110 §8.6); `Transfer-Encoding: chunked`
//    instead when `chunked` is set (a streamed body of unknown length);
//  - `Connection: close` on an HTTP/1.1 answer that ends its connection, `Connection:
//    keep-alive` on an HTTP/1.0 answer that keeps it.
// A field whose name or value could split the head (CR, LF, or a name that is not a token) is
// left out rather than written: no handler value can inject a header or a second response.
#pragma once

#include "http/message.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace callgate::http {

struct ResponseHeadFields {
  unsigned version = 11;  // 10 or 11, as Beast numbers them
  bool keep_alive = true;
  std::string_view server;      // the Server field; none when empty
  std::string_view date;        // the Date field; none when empty
  std::string_view request_id;  // X-Request-Id; the handler's own, if any, when empty
  bool chunked = false;         // the body follows in HTTP/1.1 chunks (no Content-Length)
};

// Appends the head (status line, fields, the blank line) to `out`.
void AppendResponseHead(std::string& out, int status, const Headers& headers,
                        std::optional<std::size_t> content_length,
                        const ResponseHeadFields& fields);

// Whether a response with this status carries a body (RFC 9110 §6.4.1: not 1xx, 204, 304).
bool StatusHasBody(int status);

}  // namespace callgate::http
