// The `device` / `device:NAME` endpoints: a microphone or speakers through PortAudio, and the
// device list behind `callgate audio devices`.
//
// A device is opened at its default (native) sample rate, 16-bit, mono when the device allows
// it (else stereo, mixed down on capture and duplicated on playback inside the callback). The
// stream runs in PortAudio's callback mode. The callback, on PortAudio's real-time thread,
// never locks, allocates or blocks: it only copies between the device's buffer and a lock-free
// single-producer/single-consumer ring (SpscRing), and bumps atomic counters.
//   input:  callback -> ring -> Read() on the owner's thread; a full ring drops the newest
//           capture and counts overflow_frames.
//   output: Write() on the owner's thread -> ring -> callback; an empty ring plays silence
//           and counts underrun_frames (once Write() has been called at least once).
// WritableFrames() keeps the output ring filled to `output_buffer` (so the owner's tick must
// come more often than that), never more than the ring holds.
//
// Failures are errors with code audio_device_unavailable, never crashes: no device, no such
// name, an ambiguous name, a device without channels in that direction, PortAudio unable to
// initialise, open or start it (detail: PortAudio's text). After Start, a device is declared
// lost when PortAudio finishes the stream on its own (its finished callback) or when no
// callback has run for `stall_timeout` by the injected clock.
//
// PortAudio is a process-global C library whose set-up functions are not thread-safe:
// initialisation, device queries, opening, starting, stopping and closing streams are
// serialised behind one mutex (the module's only global, mirroring the library's own state),
// and each endpoint holds one reference of PortAudio's initialisation count. On first use the
// ALSA and JACK libraries' stderr diagnostics are silenced process-wide: on a host without a
// sound card they print dozens of lines per device scan; the failures still reach callers
// through PortAudio's results. Opening, Start() and Stop() block (device probing, draining): call
// them off the I/O threads. Read(), Write(), WritableFrames() and CheckHealth() never block.
#pragma once

#include "audio/backends/backend.hpp"
#include "core/clock.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace callgate::audio::backends {

struct DeviceInfo {
  int index = -1;  // PortAudio's device index, valid for this scan only
  std::string name;
  std::string host_api;  // "ALSA", "JACK Audio Connection Kit", ...
  int max_input_channels = 0;
  int max_output_channels = 0;
  int default_sample_rate = 0;
  bool default_input = false;
  bool default_output = false;

  friend bool operator==(const DeviceInfo&, const DeviceInfo&) = default;
};

// Every device PortAudio sees now (possibly none). Errors: audio_device_unavailable when
// PortAudio cannot initialise.
Result<std::vector<DeviceInfo>> ListDevices();

// One line per device, for `callgate audio devices`:
//   "  2  USB Mic (ALSA)  in 1  out 0  48000 Hz  [default input]"
// or "no audio devices found" when the list is empty.
std::string FormatDeviceList(const std::vector<DeviceInfo>& devices);

struct DeviceOptions {
  // Capacity of the ring between the callback and the owner, each direction.
  std::chrono::milliseconds ring{500};
  // Output: WritableFrames() keeps this much queued ahead of the device.
  std::chrono::milliseconds output_buffer{60};
  // No callback for this long after Start() means the device is lost.
  std::chrono::milliseconds stall_timeout{2000};
  // Asked of PortAudio; 0 means the device's default low latency.
  std::chrono::milliseconds suggested_latency{0};
};

// `name` empty: the default device. Otherwise an exact device name, else a case-insensitive
// substring matching exactly one device with channels in that direction.
Result<std::unique_ptr<AudioInput>> OpenInputDevice(std::string_view name,
                                                    const DeviceOptions& options,
                                                    const core::Clock& clock);
Result<std::unique_ptr<AudioOutput>> OpenOutputDevice(std::string_view name,
                                                      const DeviceOptions& options,
                                                      const core::Clock& clock);

}  // namespace callgate::audio::backends
