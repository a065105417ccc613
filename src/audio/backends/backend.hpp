// Audio endpoints of a live conversation: where the user's audio comes from (AudioInput, a
// microphone or its stand-in) and where the agent's audio goes (AudioOutput, speakers or theirs).
//
// Samples are mono signed 16-bit PCM (`std::int16_t`, host order) at the endpoint's own
// sample_rate(): a device runs at its native rate, a file input at the file's rate, a file
// output or null endpoint at the rate it was opened with. Converting to and from the agent's
// wire formats is the pipeline's job (audio/pipeline/), not the endpoint's.
//
// Pull model, driven by the owner (the session engine's timer): nothing here calls the owner
// back except the error handler, and only from inside the owner's own calls.
//   tick:  n = output.WritableFrames();  downlink.Read(buf[0..n]);  output.Write(buf[0..n]);
//          m = input.Read(buf);           uplink.Write(buf[0..m]);   send uplink chunks
// Endpoints that stand in for hardware (file, null) keep real time with an injected
// core::Clock: Read() returns the samples due since Start(), WritableFrames() the samples a
// speaker would have played by now. Devices are paced by their own hardware clock.
//
// Lifecycle: a factory (factory.hpp) opens the endpoint (checks the device or file, so errors
// come early); Start() begins the stream; Stop() ends it and is idempotent; the destructor
// stops. Read() returns 0 and Write() drops everything unless started and healthy.
//
// Thread safety: one owner thread at a time (e.g. the session's strand); no two methods of one
// endpoint may run concurrently. A device endpoint also has PortAudio's callback thread inside,
// which only touches lock-free single-producer/single-consumer rings and atomics. Distinct
// endpoints are independent. The core::Clock given to a factory must outlive the endpoint.
//
// Errors: Start() returns the error that prevented starting. A failure after Start (the device
// was unplugged or stopped delivering audio, a write to the output file failed) is latched:
// error() returns it from then on, and the handler set with SetErrorHandler() runs once, on the
// owner's thread, from inside the Read()/Write()/WritableFrames()/CheckHealth() call that
// noticed it. The handler may call Stop() but must not destroy the endpoint.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <boost/system/result.hpp>

namespace callgate::audio::backends {

// Why an endpoint cannot work. `code` is a stable machine-readable reason, suitable as a
// session's end reason; `detail` is one line for humans and logs (device names and paths, never
// audio).
struct BackendError {
  enum class Code {
    kDeviceUnavailable,  // "audio_device_unavailable": missing, busy, failing or lost device
    kFileError,          // "audio_file_error": cannot open, read or write the file
  };
  Code code = Code::kDeviceUnavailable;
  std::string detail;

  std::string_view CodeName() const;
  std::string ToString() const;  // "<code name>: <detail>"
  friend bool operator==(const BackendError&, const BackendError&) = default;
};

// Lets Result<T>::value() compile; throws std::runtime_error(error.ToString()).
[[noreturn]] void throw_exception_from_error(  // NOLINT(readability-identifier-naming)
    const BackendError& error, const boost::source_location& location);

template <class T>
using Result = boost::system::result<T, BackendError>;

// Counters an endpoint keeps; all zero for endpoints that cannot lose samples.
struct EndpointStats {
  std::uint64_t frames = 0;           // delivered by Read() / accepted by Write()
  std::uint64_t overflow_frames = 0;  // input: captured but dropped because the owner lagged
  std::uint64_t underrun_frames = 0;  // output: the device played silence for lack of samples
  std::uint64_t dropped_frames = 0;   // output: Write() beyond the buffer's space
};

// What Input and Output share: identity, lifecycle and the error latch.
class Endpoint {
 public:
  using ErrorHandler = std::function<void(const BackendError&)>;

  virtual ~Endpoint() = default;
  Endpoint() = default;
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  // "device", "file" or "null".
  virtual std::string_view kind() const = 0;
  // For logs: "device 'USB Mic' @ 48000 Hz", "file:/tmp/in.wav @ 16000 Hz".
  virtual std::string Describe() const = 0;
  virtual int sample_rate() const = 0;

  virtual std::optional<BackendError> Start() = 0;
  virtual void Stop() = 0;
  bool started() const { return started_; }

  // Checks for a failure without moving audio (e.g. on a timer while nothing is played);
  // returns error().
  virtual const std::optional<BackendError>& CheckHealth() { return error_; }
  const std::optional<BackendError>& error() const { return error_; }
  void SetErrorHandler(ErrorHandler handler) { on_error_ = std::move(handler); }

  virtual EndpointStats stats() const { return {}; }

 protected:
  // Latches the first error and calls the handler once. Implementations call it last in the
  // public method that noticed the failure, with their state consistent.
  void Fail(BackendError error);
  bool started_ = false;

 private:
  std::optional<BackendError> error_;
  ErrorHandler on_error_;
};

class AudioInput : public Endpoint {
 public:
  // Copies up to out.size() captured samples into `out`; returns how many. Never blocks (a
  // file input reads a little from the page cache). 0 when nothing is due yet, when stopped and
  // after an error.
  virtual std::size_t Read(std::span<std::int16_t> out) = 0;
  // True once a finite source is exhausted (a file input that now only produces silence).
  virtual bool exhausted() const { return false; }
};

class AudioOutput : public Endpoint {
 public:
  // How many samples the output wants now: for a device, what keeps its buffer at the target
  // fill; for file and null, the samples a speaker would have played since Start() and not yet
  // been given. 0 when stopped or failed. After the owner stalled this can be large (a file
  // output wants the whole gap, as silence or audio): move it in bounded blocks.
  virtual std::size_t WritableFrames() = 0;
  // Queues samples for playback; returns how many were accepted (a device drops what does not
  // fit and counts it; file and null accept everything).
  virtual std::size_t Write(std::span<const std::int16_t> samples) = 0;
  // Samples accepted but not yet played (the device's ring); 0 for file and null.
  virtual std::size_t QueuedFrames() const { return 0; }
  // Extra delay between a sample leaving the ring and being heard (device output latency).
  // After the last Write, wait until QueuedFrames() == 0 and then this long before Stop() to
  // let the last words be heard.
  virtual std::chrono::microseconds latency() const { return std::chrono::microseconds{0}; }
};

}  // namespace callgate::audio::backends
