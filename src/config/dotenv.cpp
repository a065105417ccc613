// The .env reader. Errors name "<path>:<line>" and never quote a value: .env files hold secrets.
#include <array>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <system_error>

#include "config/config.hpp"

namespace callgate::config {
namespace {

using Map = std::map<std::string, std::string, std::less<>>;

constexpr std::string_view kBom = "\xEF\xBB\xBF";

bool IsBlank(char c) {
  return c == ' ' || c == '\t';
}

bool IsKeyStart(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

bool IsKeyChar(char c) {
  return IsKeyStart(c) || (c >= '0' && c <= '9') || c == '.';
}

bool IsValidKey(std::string_view key) {
  if (key.empty() || !IsKeyStart(key.front())) {
    return false;
  }
  for (const char c : key) {
    if (!IsKeyChar(c)) {
      return false;
    }
  }
  return true;
}

std::string_view TrimBlanks(std::string_view text) {
  while (!text.empty() && IsBlank(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && IsBlank(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

// The text of a line without its terminator ("\n" or "\r\n").
std::string_view LineAt(std::string_view text, std::size_t begin, std::size_t& next) {
  std::size_t end = text.find('\n', begin);
  next = end == std::string_view::npos ? text.size() : end + 1;
  if (end == std::string_view::npos) {
    end = text.size();
  }
  std::string_view line = text.substr(begin, end - begin);
  if (line.ends_with('\r')) {
    line.remove_suffix(1);
  }
  return line;
}

// Nothing but blanks, optionally followed by a comment.
bool IsBlankOrComment(std::string_view rest) {
  rest = TrimBlanks(rest);
  return rest.empty() || rest.front() == '#';
}

// An unquoted value ends at a '#' that follows a blank: "a#b" and "#b" keep their '#' (colour
// codes, URL fragments), "a #b" does not. `rest` starts right after the '=', blanks included.
std::string_view UnquotedValue(std::string_view rest) {
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '#' && i > 0 && IsBlank(rest[i - 1])) {
      rest = rest.substr(0, i);
      break;
    }
  }
  return TrimBlanks(rest);
}

class Parser {
 public:
  Parser(std::string_view text, std::string_view path) : text_(text), path_(path) {
    if (text_.starts_with(kBom)) {
      text_.remove_prefix(kBom.size());
    }
  }

  Result<Map> Run() {
    while (pos_ < text_.size()) {
      if (auto error = ParseLine()) {
        return *std::move(error);
      }
    }
    return std::move(values_);
  }

 private:
  ConfigError Error(int line, std::string message) const {
    return ConfigError{std::string(path_) + ":" + std::to_string(line), std::move(message)};
  }

  std::optional<ConfigError> ParseLine() {
    const int line_number = line_;
    std::size_t next = 0;
    const std::string_view line = LineAt(text_, pos_, next);
    pos_ = next;
    ++line_;

    std::string_view rest = TrimBlanks(line);
    if (rest.empty() || rest.front() == '#') {
      return std::nullopt;
    }
    if (rest.starts_with("export") && rest.size() > 6 && IsBlank(rest[6])) {
      rest = TrimBlanks(rest.substr(6));
    }
    const std::size_t equals = rest.find('=');
    if (equals == std::string_view::npos) {
      return Error(line_number, "expected KEY=VALUE");
    }
    const std::string_view key = TrimBlanks(rest.substr(0, equals));
    if (!IsValidKey(key)) {
      return Error(line_number,
                   "invalid variable name: it must start with a letter or '_' and contain only "
                   "letters, digits, '_' and '.'");
    }
    const std::string_view after_equals = rest.substr(equals + 1);
    const std::string_view value_text = TrimBlanks(after_equals);
    if (!value_text.empty() && (value_text.front() == '\'' || value_text.front() == '"')) {
      // Offset of the opening quote in the whole text: a quoted value may run past this line.
      const std::size_t quote = static_cast<std::size_t>(value_text.data() - text_.data());
      return ParseQuoted(std::string(key), quote, line_number);
    }
    values_[std::string(key)] = std::string(UnquotedValue(after_equals));
    return std::nullopt;
  }

  // Parses from the opening quote at `quote`, which is on line `line_number`; moves pos_ and
  // line_ past the line holding the closing quote.
  std::optional<ConfigError> ParseQuoted(std::string key, std::size_t quote, int line_number) {
    const char delimiter = text_[quote];
    const bool is_double = delimiter == '"';
    std::string value;
    std::size_t i = quote + 1;
    int line = line_number;
    bool closed = false;
    while (i < text_.size()) {
      const char c = text_[i];
      if (c == delimiter) {
        closed = true;
        ++i;
        break;
      }
      if (c == '\r' && i + 1 < text_.size() && text_[i + 1] == '\n') {
        ++i;  // a CRLF file: keep just the '\n' of a line break inside the value
        continue;
      }
      if (c == '\n') {
        ++line;
      }
      if (is_double && c == '\\' && i + 1 < text_.size()) {
        const char escaped = text_[i + 1];
        switch (escaped) {
          case 'n':
            value += '\n';
            break;
          case 'r':
            value += '\r';
            break;
          case 't':
            value += '\t';
            break;
          case '"':
          case '\\':
          case '$':
            value += escaped;
            break;
          default:
            // Unknown escapes stay as written, so a Windows path or a regex survives intact.
            value += '\\';
            if (escaped == '\n') {
              ++line;
            }
            value += escaped;
            break;
        }
        i += 2;
        continue;
      }
      value += c;
      ++i;
    }
    if (!closed) {
      return Error(line_number, is_double ? "unterminated double-quoted value (the quote opens on "
                                            "this line)"
                                          : "unterminated single-quoted value (the quote opens on "
                                            "this line)");
    }
    std::size_t next = 0;
    const std::string_view tail = LineAt(text_, i, next);
    if (!IsBlankOrComment(tail)) {
      return Error(line, "unexpected text after the closing quote (only a '# comment' may follow)");
    }
    pos_ = next;
    line_ = line + 1;
    values_[std::move(key)] = std::move(value);
    return std::nullopt;
  }

  std::string_view text_;
  std::string_view path_;
  std::size_t pos_ = 0;
  int line_ = 1;
  Map values_;
};

}  // namespace

Result<Map> ParseDotenv(std::string_view text, std::string_view path) {
  return Parser(text, path).Run();
}

Result<Map> ReadDotenvFile(const std::string& path, bool required) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (status.type() == std::filesystem::file_type::not_found) {
    if (!required) {
      return Map{};
    }
    return ConfigError{"--env-file", "file '" + path + "' does not exist"};
  }
  if (status.type() == std::filesystem::file_type::directory) {
    return ConfigError{path, "cannot read the .env file: it is a directory"};
  }
  struct Closer {
    void operator()(std::FILE* file) const { std::fclose(file); }
  };
  const std::unique_ptr<std::FILE, Closer> file(std::fopen(path.c_str(), "rb"));
  if (!file) {
    return ConfigError{path,
                       "cannot read the .env file: " + std::generic_category().message(errno)};
  }
  std::string text;
  std::array<char, 4096> buffer{};
  while (const std::size_t n = std::fread(buffer.data(), 1, buffer.size(), file.get())) {
    text.append(buffer.data(), n);
  }
  if (std::ferror(file.get()) != 0) {
    return ConfigError{path,
                       "cannot read the .env file: " + std::generic_category().message(errno)};
  }
  return ParseDotenv(text, path);
}

}  // namespace callgate::config
