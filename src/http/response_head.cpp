#include "http/response_head.hpp"

#include "http/head_format.hpp"

#include "core/strings.hpp"

#include <algorithm>

namespace callgate::http {
namespace {

using detail::AppendDecimal;
using detail::AppendField;
using detail::SafeField;

// RFC 9110 §15 (and 429 from RFC 6585): the phrases Beast wrote. Clients ignore the phrase.
struct ReasonPhrase {
  int status;
  std::string_view phrase;
};
constexpr ReasonPhrase kReasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Payload Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Entity"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

std::string_view Reason(int status) {
  for (const auto& [code, phrase] : kReasons) {
    if (code == status) return phrase;
  }
  return "Unknown";
}

}  // namespace

bool StatusHasBody(int status) {
  return status >= 200 && status != 204 && status != 304;
}

void AppendResponseHead(std::string& out, int status, const Headers& headers,
                        std::optional<std::size_t> content_length,
                        const ResponseHeadFields& fields) {
  out.append(fields.version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  AppendDecimal(out, static_cast<std::size_t>(std::clamp(status, 100, 999)));
  out.push_back(' ');
  out.append(Reason(status));
  out.append("\r\n");

  for (const auto& [name, value] : headers.All()) {
    if (core::EqualsIgnoreCase(name, "Content-Length") ||
        core::EqualsIgnoreCase(name, "Transfer-Encoding") ||
        core::EqualsIgnoreCase(name, "Connection") ||
        (!fields.server.empty() && core::EqualsIgnoreCase(name, "Server")) ||
        (!fields.date.empty() && core::EqualsIgnoreCase(name, "Date")) ||
        (!fields.request_id.empty() && core::EqualsIgnoreCase(name, "X-Request-Id")) ||
        !SafeField(name, value)) {
      continue;
    }
    AppendField(out, name, value);
  }
  if (!fields.server.empty() && SafeField("Server", fields.server)) {
    AppendField(out, "Server", fields.server);
  }
  if (!fields.date.empty()) AppendField(out, "Date", fields.date);
  if (!fields.request_id.empty() && SafeField("X-Request-Id", fields.request_id)) {
    AppendField(out, "X-Request-Id", fields.request_id);
  }
  if (fields.version == 10 && fields.keep_alive) {
    AppendField(out, "Connection", "keep-alive");
  } else if (fields.version != 10 && !fields.keep_alive) {
    AppendField(out, "Connection", "close");
  }
  if (fields.chunked && StatusHasBody(status)) {
    AppendField(out, "Transfer-Encoding", "chunked");
  } else if (content_length && StatusHasBody(status)) {
    out.append("Content-Length: ");
    AppendDecimal(out, *content_length);
    out.append("\r\n");
  }
  out.append("\r\n");
}

}  // namespace callgate::http
