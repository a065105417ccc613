// Internal to the head writers (response_head.cpp, request_head.cpp): the pieces of an HTTP/1.1
// head they both write. Pure; no Beast.
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

}  // namespace callgate::http::detail
