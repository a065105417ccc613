#include "audio/backends/backend.hpp"

#include <stdexcept>

namespace callgate::audio::backends {

std::string_view BackendError::CodeName() const {
  switch (code) {
    case Code::kFileError:
      return "audio_file_error";
    case Code::kDeviceUnavailable:
      break;
  }
  return "audio_device_unavailable";
}

std::string BackendError::ToString() const {
  return std::string(CodeName()) + ": " + detail;
}

void throw_exception_from_error(const BackendError& error, const boost::source_location&) {
  throw std::runtime_error(error.ToString());
}

void Endpoint::Fail(BackendError error) {
  if (error_) return;
  error_ = std::move(error);
  if (on_error_) {
    // Moved out first: the handler may Stop() us, and runs at most once.
    ErrorHandler handler = std::move(on_error_);
    on_error_ = nullptr;
    handler(*error_);
  }
}

}  // namespace callgate::audio::backends
