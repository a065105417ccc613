#include "sim/python_json.hpp"

#include <cctype>

namespace callgate::sim {
namespace {

bool IsValidUtf8(std::string_view text) {
  std::size_t i = 0;
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  while (i < text.size()) {
    const unsigned c = byte(i);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t extra = 0;
    unsigned low = 0x80, high = 0xBF;  // allowed range of the first continuation byte
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      if (c == 0xE0) low = 0xA0;   // no overlong forms
      if (c == 0xED) high = 0x9F;  // no UTF-16 surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      if (c == 0xF0) low = 0x90;
      if (c == 0xF4) high = 0x8F;  // nothing above U+10FFFF
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;  // truncated sequence
    if (byte(i + 1) < low || byte(i + 1) > high) return false;
    for (std::size_t k = 2; k <= extra; ++k) {
      if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return false;
    }
    i += extra + 1;
  }
  return true;
}

// Thrown inside the scanner to unwind to CheckPythonJson.
struct DecodeFailure {
  std::size_t byte_pos;
  const char* msg;
};
struct TooDeep {};

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  void Document() {
    std::size_t end = SkipWs(0);
    end = Value(end, 0);
    end = SkipWs(end);
    if (end != s_.size()) throw DecodeFailure{end, "Extra data"};
  }

 private:
  static bool IsWs(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
  static bool IsDigit(char c) { return c >= '0' && c <= '9'; }
  char At(std::size_t i) const { return i < s_.size() ? s_[i] : '\0'; }
  bool Has(std::size_t i) const { return i < s_.size(); }

  std::size_t SkipWs(std::size_t i) const {
    while (Has(i) && IsWs(s_[i]))
      ++i;
    return i;
  }

  // scan_once: returns the end of the value starting at `i`; "Expecting value" when none does.
  std::size_t Value(std::size_t i, std::size_t depth) {
    if (!Has(i)) throw DecodeFailure{i, "Expecting value"};
    const char c = s_[i];
    if (c == '"') return String(i + 1);
    if (c == '{') return Object(i + 1, depth + 1);
    if (c == '[') return Array(i + 1, depth + 1);
    if (c == 'n' && s_.substr(i, 4) == "null") return i + 4;
    if (c == 't' && s_.substr(i, 4) == "true") return i + 4;
    if (c == 'f' && s_.substr(i, 5) == "false") return i + 5;
    return Number(i);
  }

  std::size_t Number(std::size_t start) {
    std::size_t i = start;
    if (At(i) == '-') ++i;
    if (At(i) >= '1' && At(i) <= '9') {
      while (IsDigit(At(i)))
        ++i;
    } else if (At(i) == '0') {
      ++i;
    } else {
      throw DecodeFailure{start, "Expecting value"};
    }
    if (At(i) == '.' && IsDigit(At(i + 1))) {
      i += 2;
      while (IsDigit(At(i)))
        ++i;
    }
    if (At(i) == 'e' || At(i) == 'E') {
      std::size_t e = i + 1;
      if (At(e) == '+' || At(e) == '-') ++e;
      if (IsDigit(At(e))) {
        while (IsDigit(At(e)))
          ++e;
        i = e;
      }  // else: the exponent is not part of the number (Python backtracks)
    }
    return i;
  }

  // `i` is just past the opening quote.
  std::size_t String(std::size_t i) {
    const std::size_t begin = i - 1;
    while (true) {
      if (!Has(i)) throw DecodeFailure{begin, "Unterminated string starting at"};
      const auto c = static_cast<unsigned char>(s_[i]);
      if (c == '"') return i + 1;
      if (c < 0x20) throw DecodeFailure{i, "Invalid control character at"};
      if (c != '\\') {
        ++i;
        continue;
      }
      const std::size_t next = i + 1;
      if (!Has(next)) throw DecodeFailure{begin, "Unterminated string starting at"};
      const char esc = s_[next];
      if (esc != 'u') {
        static constexpr std::string_view kSimple = "\"\\/bfnrt";
        if (kSimple.find(esc) == std::string_view::npos) {
          throw DecodeFailure{i, "Invalid \\escape"};
        }
        i = next + 1;
        continue;
      }
      const std::size_t digits = next + 1;
      if (digits + 4 >= s_.size()) throw DecodeFailure{next, "Invalid \\uXXXX escape"};
      for (std::size_t k = digits; k < digits + 4; ++k) {
        if (!std::isxdigit(static_cast<unsigned char>(s_[k]))) {
          throw DecodeFailure{next, "Invalid \\uXXXX escape"};
        }
      }
      i = digits + 4;
    }
  }

  std::size_t Object(std::size_t end, std::size_t depth) {
    if (depth > kMaxJsonDepth) throw TooDeep{};
    end = SkipWs(end);
    if (At(end) == '}' && Has(end)) return end + 1;
    if (At(end) != '"' || !Has(end)) {
      throw DecodeFailure{end, "Expecting property name enclosed in double quotes"};
    }
    ++end;
    while (true) {
      end = String(end);
      end = SkipWs(end);
      if (!Has(end) || s_[end] != ':') throw DecodeFailure{end, "Expecting ':' delimiter"};
      end = SkipWs(end + 1);
      end = Value(end, depth);
      end = SkipWs(end);
      const char next = At(end);
      const bool present = Has(end);
      ++end;
      if (present && next == '}') return end;
      if (!present || next != ',') throw DecodeFailure{end - 1, "Expecting ',' delimiter"};
      end = SkipWs(end);
      if (!Has(end) || s_[end] != '"') {
        throw DecodeFailure{end, "Expecting property name enclosed in double quotes"};
      }
      ++end;
    }
  }

  std::size_t Array(std::size_t end, std::size_t depth) {
    if (depth > kMaxJsonDepth) throw TooDeep{};
    end = SkipWs(end);
    if (Has(end) && s_[end] == ']') return end + 1;
    while (true) {
      end = Value(end, depth);
      end = SkipWs(end);
      const bool present = Has(end);
      const char next = At(end);
      ++end;
      if (present && next == ']') return end;
      if (!present || next != ',') throw DecodeFailure{end - 1, "Expecting ',' delimiter"};
      end = SkipWs(end);
    }
  }

  std::string_view s_;
};

std::size_t CharIndex(std::string_view text, std::size_t byte_pos) {
  std::size_t chars = 0;
  for (std::size_t i = 0; i < byte_pos && i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++chars;
  }
  return chars;
}

}  // namespace

PythonJsonResult CheckPythonJson(std::string_view text) {
  PythonJsonResult result;
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  if (!IsValidUtf8(text)) {
    result.verdict = PythonJsonVerdict::kUnreadable;
    return result;
  }
  try {
    Scanner(text).Document();
  } catch (const DecodeFailure& failure) {
    result.verdict = PythonJsonVerdict::kDecodeError;
    result.error = {CharIndex(text, failure.byte_pos), failure.msg};
  } catch (const TooDeep&) {
    result.verdict = PythonJsonVerdict::kUnreadable;
  }
  return result;
}

}  // namespace callgate::sim
