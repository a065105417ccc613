// The text form of an audio endpoint, as in AUDIO_INPUT / AUDIO_OUTPUT:
//   "device"       the default device (PortAudio's default input or output)
//   "device:NAME"  the device named NAME (exact name, else a unique case-insensitive substring)
//   "file:PATH"    input: a WAV/FLAC file played in real time, then silence;
//                  output: a WAV file written as the conversation goes
//   "null"         silence in, output discarded
// The keywords are case-insensitive and surrounding whitespace is ignored; NAME and PATH are
// kept verbatim (a path may contain ':' and spaces). Pure, thread-safe; errors are values.
#pragma once

#include <string>
#include <string_view>

#include <boost/system/result.hpp>

namespace callgate::audio::backends {

struct BackendSpec {
  enum class Kind { kDevice, kFile, kNull };
  Kind kind = Kind::kNull;
  std::string target;  // device name (empty = default device) or file path; empty for null

  // The canonical text: "device", "device:NAME", "file:PATH", "null". Parses back to itself.
  std::string ToString() const;
  friend bool operator==(const BackendSpec&, const BackendSpec&) = default;
};

// What is wrong with a spec, in one line naming the accepted forms, e.g.
// "unknown audio endpoint 'pulse': expected device, device:NAME, file:PATH or null".
struct SpecError {
  std::string message;
  friend bool operator==(const SpecError&, const SpecError&) = default;
};

// Lets Result<T>::value() compile; throws std::invalid_argument(error.message).
[[noreturn]] void throw_exception_from_error(  // NOLINT(readability-identifier-naming)
    const SpecError& error, const boost::source_location& location);

boost::system::result<BackendSpec, SpecError> ParseBackendSpec(std::string_view text);

// Echo cancellation is worth its cost only when a microphone can hear a loudspeaker: with the
// `auto` setting it is on exactly when both endpoints are devices.
enum class EchoCancellationMode { kAuto, kOn, kOff };
bool UseEchoCancellation(EchoCancellationMode mode, const BackendSpec& input,
                         const BackendSpec& output);

}  // namespace callgate::audio::backends
