#include "audio/backends/spec.hpp"

#include "core/strings.hpp"

#include <cctype>
#include <stdexcept>

namespace callgate::audio::backends {
namespace {

constexpr std::string_view kExpected = "expected device, device:NAME, file:PATH or null";

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0)
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0)
    s.remove_suffix(1);
  return s;
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

SpecError Error(std::string message) {
  return SpecError{std::move(message)};
}

}  // namespace

std::string BackendSpec::ToString() const {
  switch (kind) {
    case Kind::kDevice:
      return target.empty() ? "device" : "device:" + target;
    case Kind::kFile:
      return "file:" + target;
    case Kind::kNull:
      break;
  }
  return "null";
}

void throw_exception_from_error(const SpecError& error, const boost::source_location&) {
  throw std::invalid_argument(error.message);
}

boost::system::result<BackendSpec, SpecError> ParseBackendSpec(std::string_view text) {
  const std::string_view value = Trim(text);
  if (value.empty()) {
    return Error("empty audio endpoint: " + std::string(kExpected));
  }
  const std::size_t colon = value.find(':');
  const std::string_view keyword = value.substr(0, colon);
  const bool has_argument = colon != std::string_view::npos;
  const std::string_view argument = has_argument ? value.substr(colon + 1) : std::string_view{};

  if (IEquals(keyword, "device")) {
    if (has_argument && Trim(argument).empty()) {
      return Error(
          "device: needs a device name (device:NAME); use device for the default "
          "device, got " +
          core::SingleQuoted(text));
    }
    return BackendSpec{BackendSpec::Kind::kDevice, std::string(argument)};
  }
  if (IEquals(keyword, "file")) {
    if (!has_argument || argument.empty()) {
      return Error("file needs a path (file:PATH), got " + core::SingleQuoted(text));
    }
    return BackendSpec{BackendSpec::Kind::kFile, std::string(argument)};
  }
  if (IEquals(keyword, "null")) {
    if (has_argument) return Error("null takes no argument, got " + core::SingleQuoted(text));
    return BackendSpec{BackendSpec::Kind::kNull, ""};
  }
  return Error("unknown audio endpoint " + core::SingleQuoted(text) + ": " +
               std::string(kExpected));
}

bool UseEchoCancellation(EchoCancellationMode mode, const BackendSpec& input,
                         const BackendSpec& output) {
  switch (mode) {
    case EchoCancellationMode::kOn:
      return true;
    case EchoCancellationMode::kOff:
      return false;
    case EchoCancellationMode::kAuto:
      break;
  }
  return input.kind == BackendSpec::Kind::kDevice && output.kind == BackendSpec::Kind::kDevice;
}

}  // namespace callgate::audio::backends
