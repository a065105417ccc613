#include "http/request_head.hpp"

#include "http/head_format.hpp"

#include "core/strings.hpp"

#include <algorithm>

namespace callgate::http {
namespace {

bool IsOriginTarget(std::string_view target) {
  return !target.empty() && std::none_of(target.begin(), target.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

bool CarriesBody(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH";
}

}  // namespace

bool AppendRequestHead(std::string& out, const RequestHeadFields& fields, const Headers& headers,
                       std::size_t body_size) {
  if (!detail::IsToken(fields.method) || !IsOriginTarget(fields.target)) return false;
  out.append(fields.method);
  out.push_back(' ');
  out.append(fields.target);
  out.append(" HTTP/1.1\r\n");
  detail::AppendField(out, "Host", fields.host);

  if (!headers.Get("User-Agent") && !fields.user_agent.empty() &&
      detail::SafeField("User-Agent", fields.user_agent)) {
    detail::AppendField(out, "User-Agent", fields.user_agent);
  }
  for (const auto& [name, value] : headers.All()) {
    if (core::EqualsIgnoreCase(name, "Host") || core::EqualsIgnoreCase(name, "Content-Length") ||
        core::EqualsIgnoreCase(name, "Transfer-Encoding") || !detail::SafeField(name, value)) {
      continue;
    }
    detail::AppendField(out, name, value);
  }
  if (fields.chunked) {
    detail::AppendField(out, "Transfer-Encoding", "chunked");
  } else if (body_size > 0 || CarriesBody(fields.method)) {
    out.append("Content-Length: ");
    detail::AppendDecimal(out, body_size);
    out.append("\r\n");
  }
  out.append("\r\n");
  if (fields.chunked && body_size > 0) out.append(detail::FormatChunkSize(body_size).view());
  return true;
}

std::string_view RequestBodyEnd(bool chunked, std::size_t body_size) {
  if (!chunked) return {};
  return body_size > 0 ? std::string_view("\r\n0\r\n\r\n") : std::string_view("0\r\n\r\n");
}

}  // namespace callgate::http
