// The request line and header block of every request the upstream client writes, and the framing
// around its body: the client sends head, body and RequestBodyEnd() in one gather write. Beast's
// request serializer walked a buffer sequence of a dozen pieces per request (about 6% of the
// user-space instructions of a proxied GET). The rules are the ones Beast's `prepare_payload`
// and `chunked` applied:
//  - `Host`, then `User-Agent` (the client's, unless the caller gave one), then the caller's
//    fields in their order, except those the client owns: Host, Content-Length and
//    Transfer-Encoding (the framing);
//  - `Transfer-Encoding: chunked` when `chunked` is set (the body goes as one chunk, then the last
//    chunk); otherwise `Content-Length` when there is a body, or for a method that carries one
//    (POST, PUT, PATCH: `Content-Length: 0`), and no framing field at all otherwise (a GET).
// A caller's field whose name or value could split the head (CR, LF, a name that is not a token)
// is left out rather than written.
#pragma once

#include "http/message.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace callgate::http {

struct RequestHeadFields {
  std::string_view method;      // a token: GET, POST, ...
  std::string_view target;      // origin form: /path?query
  std::string_view host;        // the Host field: host[:port]
  std::string_view user_agent;  // the default User-Agent; none when empty
  bool chunked = false;         // the body goes as chunked coding (no Content-Length)
};

// Appends the head (request line, fields, the blank line) and, for a chunked non-empty body, its
// chunk's size line. False, with nothing appended, when the method is not a token or the target
// is empty or holds a control character or space: such a request cannot be written.
bool AppendRequestHead(std::string& out, const RequestHeadFields& fields, const Headers& headers,
                       std::size_t body_size);

// What follows the body on the wire: the end of its chunk and the last chunk when chunked,
// nothing otherwise.
std::string_view RequestBodyEnd(bool chunked, std::size_t body_size);

}  // namespace callgate::http
