// Fuzz target: the .env parser. Beyond "no crash", it checks the parser's contract: every key
// it returns is a valid variable name, and an error names a line of the input.
#include "config/config.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

// libFuzzer's entry point (declared here: -Wmissing-declarations).
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = callgate::config::ParseDotenv(text, "fuzz.env");
  if (parsed.has_value()) {
    for (const auto& [key, value] : *parsed) {
      if (key.empty()) std::abort();
      const char first = key.front();
      if (!((first >= 'A' && first <= 'Z') || (first >= 'a' && first <= 'z') || first == '_')) {
        std::abort();
      }
    }
  } else if (parsed.error().variable.rfind("fuzz.env:", 0) != 0) {
    std::abort();  // an error always names the file and the line
  }
  return 0;
}
