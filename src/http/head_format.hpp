// Internal to http/'s writers (response_head.cpp, request_head.cpp, server.cpp): the pieces of
// HTTP/1.1 heads and chunked bodies they share. Pure; no Beast.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <string>
#include <string_view>

namespace callgate::http::detail {

// RFC 9110 §5.6.2 token characters, as a table: every field name of every head is checked.
inline constexpr auto kTokenChars = [] {
  std::array<bool, 256> table{};
  for (char c = '0'; c <= '9'; ++c)
    table[static_cast<unsigned char>(c)] = true;
  for (char c = 'a'; c <= 'z'; ++c)
    table[static_cast<unsigned char>(c)] = true;
  for (char c = 'A'; c <= 'Z'; ++c)
    table[static_cast<unsigned char>(c)] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~"))
    table[static_cast<unsigned char>(c)] = true;
  return table;
}();

inline bool IsTokenChar(char c) {
  return kTokenChars[static_cast<unsigned char>(c)];
}

inline bool IsToken(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), IsTokenChar);
}

// A field that cannot split the head: its name a token, its value without CR or LF.
inline bool SafeField(std::string_view name, std::string_view value) {
  return IsToken(name) && value.find_first_of("\r\n") == std::string_view::npos;
}

inline void AppendDecimal(std::string& out, std::size_t n) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
  out.append(digits, end);
}

inline void AppendField(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

// The size line that starts a chunk of HTTP/1.1 chunked coding: the size in hex, CRLF. Its data
// then follows, and CRLF; the last chunk is the one of size 0.
struct ChunkSizeLine {
  char bytes[20];
  std::size_t size;
  std::string_view view() const { return {bytes, size}; }
};

inline ChunkSizeLine FormatChunkSize(std::size_t n) {
  ChunkSizeLine line{};
  char* end = std::to_chars(line.bytes, line.bytes + sizeof line.bytes - 2, n, 16).ptr;
  end[0] = '\r';
  end[1] = '\n';
  line.size = static_cast<std::size_t>(end + 2 - line.bytes);
  return line;
}

}  // namespace callgate::http::detail
