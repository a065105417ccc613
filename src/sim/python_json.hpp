// Where and why Python's json.loads would reject a request body, so the simulator's 422
// json_invalid errors carry the same position and message FastAPI sends
// ({"type":"json_invalid","loc":["body",<pos>],"msg":"JSON decode error","ctx":{"error":<msg>}}).
//
// Mirrors CPython's C scanner (Modules/_json.c, Python <= 3.12 messages): "Expecting value",
// "Expecting property name enclosed in double quotes", "Expecting ':' delimiter",
// "Expecting ',' delimiter", "Unterminated string starting at", "Invalid control character at",
// "Invalid \\escape", "Invalid \\uXXXX escape", "Extra data". Positions count characters (code
// points), as Python's JSONDecodeError.pos does; for ASCII bodies that is the byte offset.
// Deliberate difference: NaN/Infinity/-Infinity (which Python accepts) are reported as
// "Expecting value", because the simulator cannot represent them. Pure; thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace callgate::sim {

struct PythonJsonError {
  std::size_t pos = 0;  // in characters
  std::string msg;
};

enum class PythonJsonVerdict {
  kValid,
  kDecodeError,  // json.JSONDecodeError: FastAPI answers 422 json_invalid
  kUnreadable,   // not UTF-8, or nested too deep: FastAPI answers 400 "There was an error
                 // parsing the body"
};

struct PythonJsonResult {
  PythonJsonVerdict verdict = PythonJsonVerdict::kValid;
  PythonJsonError error;  // for kDecodeError
};

// `text` is the raw body. A leading UTF-8 BOM is skipped (json.loads on bytes does that).
PythonJsonResult CheckPythonJson(std::string_view text);

// Nesting deeper than this is refused as kUnreadable (Python would hit its recursion limit).
inline constexpr std::size_t kMaxJsonDepth = 256;

}  // namespace callgate::sim
