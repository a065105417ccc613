// Opens the endpoint a BackendSpec names: the one place that knows the concrete backends.
//
//   auto spec = ParseBackendSpec(config_value);               // "device:USB", "file:a.wav", ...
//   auto input = OpenInput(*spec, {.sample_rate = 16000}, clock);
//   if (!input) end the session with input.error().CodeName(), log input.error().detail
//
// `sample_rate` is what a null endpoint or a file output runs at; give it the agent's format
// rate (from conversation_initiation_metadata) so that no resampling is needed on headless
// sessions. A device runs at its native rate and a file input at the file's rate, whatever is
// asked: read sample_rate() from the endpoint and build the pipeline from that.
//
// Blocking (device probing, file creation): call off the I/O threads. The clock paces file and
// null endpoints and drives the device watchdog; it must outlive the endpoint (MonotonicClock
// in production, core::ManualClock in tests). Errors as in backend.hpp; std::invalid_argument for
// a sample rate outside [1000, 384000].
#pragma once

#include "audio/backends/backend.hpp"
#include "audio/backends/device_backend.hpp"
#include "audio/backends/file_backend.hpp"
#include "audio/backends/spec.hpp"
#include "core/clock.hpp"

#include <chrono>
#include <memory>

namespace callgate::audio::backends {

inline constexpr int kDefaultEndpointRate = 16000;

struct InputOptions {
  int sample_rate = kDefaultEndpointRate;  // null only
  DeviceOptions device;
};

struct OutputOptions {
  int sample_rate = kDefaultEndpointRate;  // null and file
  std::chrono::milliseconds file_flush_interval = FileOutput::kDefaultFlushInterval;
  DeviceOptions device;
};

Result<std::unique_ptr<AudioInput>> OpenInput(const BackendSpec& spec, const InputOptions& options,
                                              const core::Clock& clock);
Result<std::unique_ptr<AudioOutput>> OpenOutput(const BackendSpec& spec,
                                                const OutputOptions& options,
                                                const core::Clock& clock);

}  // namespace callgate::audio::backends
