// Small ASCII string helpers shared by the HTTP layer and the simulator.
#pragma once

#include <string>
#include <string_view>

namespace callgate::core {

// Lower-cases ASCII letters; other bytes are kept.
std::string AsciiLower(std::string_view text);

// Equal but for the case of ASCII letters (header names, tokens).
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// `text` in single quotes, for names in messages: 'USB Mic'.
std::string SingleQuoted(std::string_view text);

// Without leading and trailing whitespace (std::isspace in the C locale).
std::string_view TrimWhitespace(std::string_view text);

}  // namespace callgate::core
