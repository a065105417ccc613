#include "audio/backends/factory.hpp"

#include "audio/backends/null_backend.hpp"

namespace callgate::audio::backends {

Result<std::unique_ptr<AudioInput>> OpenInput(const BackendSpec& spec, const InputOptions& options,
                                              const core::Clock& clock) {
  switch (spec.kind) {
    case BackendSpec::Kind::kDevice:
      return OpenInputDevice(spec.target, options.device, clock);
    case BackendSpec::Kind::kFile: {
      auto file = FileInput::Open(spec.target, clock);
      if (!file) return file.error();
      return std::unique_ptr<AudioInput>(std::move(*file));
    }
    case BackendSpec::Kind::kNull:
      break;
  }
  return std::unique_ptr<AudioInput>(std::make_unique<NullInput>(options.sample_rate, clock));
}

Result<std::unique_ptr<AudioOutput>> OpenOutput(const BackendSpec& spec,
                                                const OutputOptions& options,
                                                const core::Clock& clock) {
  switch (spec.kind) {
    case BackendSpec::Kind::kDevice:
      return OpenOutputDevice(spec.target, options.device, clock);
    case BackendSpec::Kind::kFile: {
      auto file =
          FileOutput::Open(spec.target, options.sample_rate, clock, options.file_flush_interval);
      if (!file) return file.error();
      return std::unique_ptr<AudioOutput>(std::move(*file));
    }
    case BackendSpec::Kind::kNull:
      break;
  }
  return std::unique_ptr<AudioOutput>(std::make_unique<NullOutput>(options.sample_rate, clock));
}

}  // namespace callgate::audio::backends
