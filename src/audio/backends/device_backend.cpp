#include "audio/backends/device_backend.hpp"

#include "audio/backends/spsc_ring.hpp"
#include "core/strings.hpp"

#include <portaudio.h>
#if defined(CALLGATE_HAVE_ALSA)
#include <alsa/asoundlib.h>
#endif
#if defined(CALLGATE_HAVE_JACK)
#include <jack/jack.h>
#endif

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdarg>
#include <mutex>
#include <sstream>

namespace callgate::audio::backends {
namespace {

// PortAudio's own state is process-global and its set-up calls are not thread-safe.
std::mutex& PortAudioMutex() {
  static std::mutex mutex;
  return mutex;
}

#if defined(CALLGATE_HAVE_ALSA)
void SilentAlsa(const char*, int, const char*, int, const char*, ...) {}
#endif
#if defined(CALLGATE_HAVE_JACK)
void SilentJack(const char*) {}
#endif

void QuietHostLibraries() {
  static std::once_flag once;
  std::call_once(once, [] {
#if defined(CALLGATE_HAVE_ALSA)
    snd_lib_error_set_handler(&SilentAlsa);
#endif
#if defined(CALLGATE_HAVE_JACK)
    jack_set_error_function(&SilentJack);
    jack_set_info_function(&SilentJack);
#endif
  });
}

BackendError Unavailable(std::string detail) {
  return BackendError{BackendError::Code::kDeviceUnavailable, std::move(detail)};
}

bool IContains(std::string_view haystack, std::string_view needle) {
  const auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                              [](char a, char b) {
                                return std::tolower(static_cast<unsigned char>(a)) ==
                                       std::tolower(static_cast<unsigned char>(b));
                              });
  return it != haystack.end();
}

// One reference of PortAudio's initialisation count, released on destruction.
class PortAudioRef {
 public:
  PortAudioRef() = default;
  PortAudioRef(const PortAudioRef&) = delete;
  PortAudioRef& operator=(const PortAudioRef&) = delete;
  ~PortAudioRef() {
    if (initialized_) {
      const std::lock_guard lock(PortAudioMutex());
      Pa_Terminate();
    }
  }

  // With PortAudioMutex() held.
  std::optional<BackendError> InitLocked() {
    QuietHostLibraries();
    const PaError err = Pa_Initialize();
    if (err != paNoError) {
      return Unavailable(std::string("PortAudio cannot initialise: ") + Pa_GetErrorText(err));
    }
    initialized_ = true;
    return std::nullopt;
  }

 private:
  bool initialized_ = false;
};

// With PortAudioMutex() held and PortAudio initialised.
std::vector<DeviceInfo> ScanLocked() {
  std::vector<DeviceInfo> devices;
  const PaDeviceIndex count = Pa_GetDeviceCount();
  const PaDeviceIndex default_in = Pa_GetDefaultInputDevice();
  const PaDeviceIndex default_out = Pa_GetDefaultOutputDevice();
  for (PaDeviceIndex i = 0; i < count; ++i) {
    const PaDeviceInfo* info = Pa_GetDeviceInfo(i);
    if (info == nullptr) continue;
    const PaHostApiInfo* api = Pa_GetHostApiInfo(info->hostApi);
    devices.push_back(DeviceInfo{
        .index = i,
        .name = info->name != nullptr ? info->name : "",
        .host_api = api != nullptr && api->name != nullptr ? api->name : "",
        .max_input_channels = info->maxInputChannels,
        .max_output_channels = info->maxOutputChannels,
        .default_sample_rate = static_cast<int>(std::lround(info->defaultSampleRate)),
        .default_input = i == default_in,
        .default_output = i == default_out,
    });
  }
  return devices;
}

std::string NameList(const std::vector<const DeviceInfo*>& devices) {
  if (devices.empty()) return "none";
  std::string out;
  for (std::size_t i = 0; i < devices.size(); ++i) {
    if (i == 8) {
      out += ", ... (" + std::to_string(devices.size() - i) + " more)";
      break;
    }
    if (i > 0) out += ", ";
    out += core::SingleQuoted(devices[i]->name);
  }
  return out;
}

// With PortAudioMutex() held and PortAudio initialised.
Result<DeviceInfo> FindDeviceLocked(std::string_view name, bool input) {
  const char* direction = input ? "input" : "output";
  const std::vector<DeviceInfo> devices = ScanLocked();
  const auto channels = [input](const DeviceInfo& d) {
    return input ? d.max_input_channels : d.max_output_channels;
  };
  std::vector<const DeviceInfo*> usable;
  for (const DeviceInfo& d : devices) {
    if (channels(d) > 0) usable.push_back(&d);
  }
  const std::string found = "PortAudio found " + std::to_string(devices.size()) + " device(s); " +
                            direction + " devices: " + NameList(usable);
  if (name.empty()) {
    for (const DeviceInfo& d : devices) {
      if ((input ? d.default_input : d.default_output) && channels(d) > 0) return d;
    }
    return Unavailable(std::string("no default audio ") + direction + " device (" + found + ")");
  }
  for (const DeviceInfo& d : devices) {
    if (d.name == name) {
      if (channels(d) > 0) return d;
      return Unavailable("audio device " + core::SingleQuoted(name) + " has no " + direction +
                         " channels (" + found + ")");
    }
  }
  std::vector<const DeviceInfo*> matches;
  for (const DeviceInfo* d : usable) {
    if (IContains(d->name, name)) matches.push_back(d);
  }
  if (matches.size() == 1) return *matches.front();
  if (matches.size() > 1) {
    return Unavailable("audio " + std::string(direction) + " device name " +
                       core::SingleQuoted(name) + " is ambiguous: it matches " + NameList(matches));
  }
  return Unavailable("no audio " + std::string(direction) + " device named " +
                     core::SingleQuoted(name) + " (" + found + ")");
}

std::size_t RingSamples(int rate, std::chrono::milliseconds ms) {
  return static_cast<std::size_t>(
      std::max<std::int64_t>(1024, static_cast<std::int64_t>(rate) * ms.count() / 1000));
}

constexpr std::size_t kBlock = 256;  // frames mixed at a time for stereo devices (on the stack)

// One PortAudio stream in one direction, with the ring between its callback and the owner, the
// callback's counters and the health checks. DeviceInput and DeviceOutput wrap it. It is the
// user data of both PortAudio callbacks, so it must not move while the stream is open (it lives
// inside a heap-allocated endpoint).
class DeviceStream {
 public:
  DeviceStream(bool input, const DeviceOptions& options, const core::Clock& clock)
      : input_(input), options_(options), clock_(clock) {}
  DeviceStream(const DeviceStream&) = delete;
  DeviceStream& operator=(const DeviceStream&) = delete;
  ~DeviceStream() { Close(); }

  // Finds the device, opens the stream at its default rate and allocates the ring.
  std::optional<BackendError> Open(std::string_view name) {
    const std::lock_guard lock(PortAudioMutex());
    if (auto error = pa_.InitLocked()) return error;
    Result<DeviceInfo> device = FindDeviceLocked(name, input_);
    if (!device) return device.error();
    info_ = *device;
    rate_ = info_.default_sample_rate;
    const PaDeviceInfo* pa_info = Pa_GetDeviceInfo(info_.index);
    if (pa_info == nullptr || rate_ < 1000 || rate_ > 384000) {
      return Unavailable("audio device " + core::SingleQuoted(info_.name) +
                         " reports no usable sample rate (" + std::to_string(rate_) + " Hz)");
    }
    PaStreamParameters params{};
    params.device = info_.index;
    params.sampleFormat = paInt16;
    params.suggestedLatency =
        options_.suggested_latency.count() > 0
            ? static_cast<double>(options_.suggested_latency.count()) / 1000.0
            : (input_ ? pa_info->defaultLowInputLatency : pa_info->defaultLowOutputLatency);
    const int max_channels = input_ ? info_.max_input_channels : info_.max_output_channels;
    channels_ = std::min(max_channels, 2);
    for (int candidate = 1; candidate <= std::min(max_channels, 2); ++candidate) {
      params.channelCount = candidate;
      if (Pa_IsFormatSupported(input_ ? &params : nullptr, input_ ? nullptr : &params, rate_) ==
          paFormatIsSupported) {
        channels_ = candidate;
        break;
      }
    }
    params.channelCount = channels_;
    ring_ = std::make_unique<SpscRing<std::int16_t>>(RingSamples(rate_, options_.ring));
    target_ = std::min(ring_->capacity(), RingSamples(rate_, options_.output_buffer));
    PaStream* stream = nullptr;
    const PaError err =
        Pa_OpenStream(&stream, input_ ? &params : nullptr, input_ ? nullptr : &params, rate_,
                      paFramesPerBufferUnspecified, paNoFlag,
                      input_ ? &DeviceStream::InputCallback : &DeviceStream::OutputCallback, this);
    if (err != paNoError) {
      return Unavailable("cannot open audio device " + core::SingleQuoted(info_.name) + " for " +
                         (input_ ? "capture" : "playback") + " at " + std::to_string(rate_) +
                         " Hz: " + Pa_GetErrorText(err));
    }
    stream_ = stream;
    Pa_SetStreamFinishedCallback(stream_, &DeviceStream::Finished);
    if (const PaStreamInfo* si = Pa_GetStreamInfo(stream_); si != nullptr) {
      latency_ = std::chrono::microseconds(
          std::llround((input_ ? si->inputLatency : si->outputLatency) * 1e6));
    }
    return std::nullopt;
  }

  std::optional<BackendError> Start() {
    if (started_) return std::nullopt;
    const std::lock_guard lock(PortAudioMutex());
    stopping_.store(true);  // the callback is not running: reset the ring from this side
    ring_->Discard(ring_->Size());
    primed_.store(false, std::memory_order_relaxed);
    finished_.store(false);
    stopping_.store(false);
    const PaError err = Pa_StartStream(stream_);
    if (err != paNoError) {
      return Unavailable("cannot start audio device " + core::SingleQuoted(info_.name) + ": " +
                         Pa_GetErrorText(err));
    }
    started_ = true;
    seen_callbacks_ = callbacks_.load(std::memory_order_relaxed);
    last_progress_ = clock_.Now();
    return std::nullopt;
  }

  void Stop() {
    if (!started_) return;
    started_ = false;
    const std::lock_guard lock(PortAudioMutex());
    stopping_.store(true);
    Pa_StopStream(stream_);
  }

  void Close() {
    if (stream_ == nullptr) return;
    const std::lock_guard lock(PortAudioMutex());
    stopping_.store(true);
    Pa_CloseStream(stream_);  // stops the stream first if it is running
    stream_ = nullptr;
    started_ = false;
  }

  // A lost device: PortAudio finished the stream on its own, or the callbacks stopped.
  std::optional<BackendError> Check() {
    if (!started_) return std::nullopt;
    if (finished_.load(std::memory_order_acquire) && !stopping_.load()) {
      return Unavailable("audio device " + core::SingleQuoted(info_.name) +
                         " stopped: PortAudio ended the stream (device lost?)");
    }
    const std::uint64_t callbacks = callbacks_.load(std::memory_order_relaxed);
    const core::SystemTime now = clock_.Now();
    if (callbacks != seen_callbacks_) {
      seen_callbacks_ = callbacks;
      last_progress_ = now;
    } else if (now - last_progress_ > options_.stall_timeout) {
      const auto silent_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(now - last_progress_).count();
      return Unavailable("audio device " + core::SingleQuoted(info_.name) +
                         " stopped delivering audio: no callback for " + std::to_string(silent_ms) +
                         " ms");
    }
    return std::nullopt;
  }

  // Owner side of the ring.
  std::size_t Read(std::span<std::int16_t> out) { return ring_->Pop(out); }
  std::size_t Write(std::span<const std::int16_t> samples) {
    primed_.store(true, std::memory_order_relaxed);
    return ring_->Push(samples);
  }
  std::size_t Queued() const { return ring_ ? ring_->Size() : 0; }
  std::size_t Target() const { return target_; }

  std::string Describe() const {
    return "device " + core::SingleQuoted(info_.name) + " @ " + std::to_string(rate_) + " Hz, " +
           std::to_string(channels_) + " ch";
  }
  int rate() const { return rate_; }
  std::chrono::microseconds latency() const { return latency_; }
  std::uint64_t overflow_frames() const { return overflow_.load(std::memory_order_relaxed); }
  std::uint64_t underrun_frames() const { return underrun_.load(std::memory_order_relaxed); }

 private:
  // PortAudio's real-time thread: no locks, no allocation, no blocking.
  static int InputCallback(const void* input, void*, unsigned long frames,
                           const PaStreamCallbackTimeInfo*, PaStreamCallbackFlags, void* user) {
    auto& self = *static_cast<DeviceStream*>(user);
    self.callbacks_.fetch_add(1, std::memory_order_relaxed);
    const auto* in = static_cast<const std::int16_t*>(input);
    if (in == nullptr) return paContinue;
    std::size_t pushed = 0;
    if (self.channels_ == 1) {
      pushed = self.ring_->Push(std::span(in, frames));
    } else {
      const auto channels = static_cast<std::size_t>(self.channels_);
      std::array<std::int16_t, kBlock> block{};
      for (std::size_t done = 0; done < frames;) {
        const std::size_t n = std::min<std::size_t>(kBlock, frames - done);
        for (std::size_t f = 0; f < n; ++f) {
          const std::int16_t* frame = in + (done + f) * channels;
          block[f] = static_cast<std::int16_t>((frame[0] + frame[1]) / 2);
        }
        pushed += self.ring_->Push(std::span(block.data(), n));
        done += n;
      }
    }
    if (pushed < frames) self.overflow_.fetch_add(frames - pushed, std::memory_order_relaxed);
    return paContinue;
  }

  static int OutputCallback(const void*, void* output, unsigned long frames,
                            const PaStreamCallbackTimeInfo*, PaStreamCallbackFlags, void* user) {
    auto& self = *static_cast<DeviceStream*>(user);
    self.callbacks_.fetch_add(1, std::memory_order_relaxed);
    auto* out = static_cast<std::int16_t*>(output);
    if (out == nullptr) return paContinue;
    std::size_t got = 0;
    if (self.channels_ == 1) {
      got = self.ring_->Pop(std::span(out, frames));
      std::fill(out + got, out + frames, std::int16_t{0});
    } else {
      const auto channels = static_cast<std::size_t>(self.channels_);
      std::array<std::int16_t, kBlock> block{};
      for (std::size_t done = 0; done < frames;) {
        const std::size_t want = std::min<std::size_t>(kBlock, frames - done);
        const std::size_t n = self.ring_->Pop(std::span(block.data(), want));
        std::fill(block.begin() + static_cast<std::ptrdiff_t>(n),
                  block.begin() + static_cast<std::ptrdiff_t>(want), std::int16_t{0});
        for (std::size_t f = 0; f < want; ++f) {
          std::int16_t* frame = out + (done + f) * channels;
          std::fill_n(frame, channels, block[f]);
        }
        got += n;
        done += want;
      }
    }
    if (got < frames && self.primed_.load(std::memory_order_relaxed)) {
      self.underrun_.fetch_add(frames - got, std::memory_order_relaxed);
    }
    return paContinue;
  }

  static void Finished(void* user) {
    static_cast<DeviceStream*>(user)->finished_.store(true, std::memory_order_release);
  }

  bool input_;
  DeviceOptions options_;
  const core::Clock& clock_;
  PortAudioRef pa_;
  PaStream* stream_ = nullptr;
  DeviceInfo info_;
  int rate_ = 0;
  int channels_ = 1;
  std::chrono::microseconds latency_{0};
  std::unique_ptr<SpscRing<std::int16_t>> ring_;
  std::size_t target_ = 0;
  bool started_ = false;
  // Shared with the callbacks.
  std::atomic<std::uint64_t> callbacks_{0};
  std::atomic<std::uint64_t> overflow_{0};
  std::atomic<std::uint64_t> underrun_{0};
  std::atomic<bool> primed_{false};
  std::atomic<bool> finished_{false};
  std::atomic<bool> stopping_{false};
  // Owner-side watchdog.
  std::uint64_t seen_callbacks_ = 0;
  core::SystemTime last_progress_{};
};

// What a device input and a device output share: the stream's lifecycle and its health check
// (a device that stopped calling back, or reported an error, fails the endpoint).
template <class Direction>
class DeviceEndpoint : public Direction {
 public:
  DeviceEndpoint(bool input, const DeviceOptions& options, const core::Clock& clock)
      : stream_(input, options, clock) {}

  std::optional<BackendError> Open(std::string_view name) { return stream_.Open(name); }

  std::string_view kind() const override { return "device"; }
  std::string Describe() const override { return stream_.Describe(); }
  int sample_rate() const override { return stream_.rate(); }

  std::optional<BackendError> Start() override {
    if (this->error()) return this->error();
    if (auto failed = stream_.Start()) return failed;
    this->started_ = true;
    return std::nullopt;
  }
  void Stop() override {
    this->started_ = false;
    stream_.Stop();
  }

  const std::optional<BackendError>& CheckHealth() override {
    if (this->started_ && !this->error()) {
      if (auto lost = stream_.Check()) this->Fail(std::move(*lost));
    }
    return this->error();
  }

 protected:
  DeviceStream stream_;
  std::uint64_t frames_ = 0;
};

class DeviceInput final : public DeviceEndpoint<AudioInput> {
 public:
  DeviceInput(const DeviceOptions& options, const core::Clock& clock)
      : DeviceEndpoint(true, options, clock) {}

  std::size_t Read(std::span<std::int16_t> out) override {
    if (!started_ || CheckHealth()) return 0;
    const std::size_t n = stream_.Read(out);
    frames_ += n;
    return n;
  }

  EndpointStats stats() const override {
    return {.frames = frames_, .overflow_frames = stream_.overflow_frames()};
  }
};

class DeviceOutput final : public DeviceEndpoint<AudioOutput> {
 public:
  DeviceOutput(const DeviceOptions& options, const core::Clock& clock)
      : DeviceEndpoint(false, options, clock) {}

  std::size_t WritableFrames() override {
    if (!started_ || CheckHealth()) return 0;
    const std::size_t queued = stream_.Queued();
    return queued < stream_.Target() ? stream_.Target() - queued : 0;
  }

  std::size_t Write(std::span<const std::int16_t> samples) override {
    if (!started_ || error()) return 0;
    const std::size_t n = stream_.Write(samples);
    dropped_ += samples.size() - n;
    frames_ += n;
    return n;
  }

  std::size_t QueuedFrames() const override { return stream_.Queued(); }
  std::chrono::microseconds latency() const override { return stream_.latency(); }

  EndpointStats stats() const override {
    return {.frames = frames_,
            .underrun_frames = stream_.underrun_frames(),
            .dropped_frames = dropped_};
  }

 private:
  std::uint64_t dropped_ = 0;
};

}  // namespace

Result<std::vector<DeviceInfo>> ListDevices() {
  PortAudioRef pa;
  const std::lock_guard lock(PortAudioMutex());
  if (auto error = pa.InitLocked()) return *error;
  return ScanLocked();
}

std::string FormatDeviceList(const std::vector<DeviceInfo>& devices) {
  if (devices.empty()) return "no audio devices found\n";
  std::ostringstream out;
  for (const DeviceInfo& d : devices) {
    out << "  " << d.index << "  " << d.name;
    if (!d.host_api.empty()) out << " (" << d.host_api << ")";
    out << "  in " << d.max_input_channels << "  out " << d.max_output_channels << "  "
        << d.default_sample_rate << " Hz";
    if (d.default_input && d.default_output) {
      out << "  [default input, default output]";
    } else if (d.default_input) {
      out << "  [default input]";
    } else if (d.default_output) {
      out << "  [default output]";
    }
    out << "\n";
  }
  return out.str();
}

Result<std::unique_ptr<AudioInput>> OpenInputDevice(std::string_view name,
                                                    const DeviceOptions& options,
                                                    const core::Clock& clock) {
  auto device = std::make_unique<DeviceInput>(options, clock);
  if (auto error = device->Open(name)) return *error;
  return std::unique_ptr<AudioInput>(std::move(device));
}

Result<std::unique_ptr<AudioOutput>> OpenOutputDevice(std::string_view name,
                                                      const DeviceOptions& options,
                                                      const core::Clock& clock) {
  auto device = std::make_unique<DeviceOutput>(options, clock);
  if (auto error = device->Open(name)) return *error;
  return std::unique_ptr<AudioOutput>(std::move(device));
}

}  // namespace callgate::audio::backends
