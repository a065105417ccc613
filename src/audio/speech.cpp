#include "audio/speech.hpp"

#include "audio/resampler.hpp"

#include <espeak-ng/espeak_ng.h>
#include <espeak-ng/speak_lib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <new>
#include <numbers>
#include <stdexcept>

namespace callgate::audio {
namespace {

// espeak-ng's state is process-global inside the library; this mirrors it, so it is global too.
struct Espeak {
  std::mutex mutex;  // held for every call into espeak-ng
  bool initialised = false;
  std::string data_path;
  std::string voice;  // voice currently selected in the library
  int words_per_minute = 0;
};

Espeak& TheEspeak() {
  static Espeak espeak;
  return espeak;
}

std::string StatusMessage(espeak_ng_STATUS status) {
  std::array<char, 512> buffer{};
  espeak_ng_GetStatusCodeMessage(status, buffer.data(), buffer.size());
  return buffer.data();
}

// Called with the mutex held.
void InitialiseLocked(Espeak& espeak, const std::string& data_path) {
  if (espeak.initialised) {
    if (!data_path.empty() && data_path != espeak.data_path) {
      throw std::runtime_error("espeak-ng is already initialised with data path '" +
                               espeak.data_path + "', cannot switch to '" + data_path + "'");
    }
    return;
  }
  espeak_ng_InitializePath(data_path.empty() ? nullptr : data_path.c_str());
  espeak_ng_ERROR_CONTEXT context = nullptr;
  espeak_ng_STATUS status = espeak_ng_Initialize(&context);
  espeak_ng_ClearErrorContext(&context);
  if (status != ENS_OK) {
    throw std::runtime_error(
        "espeak-ng could not initialise (" + StatusMessage(status) +
        "): its data is missing or unreadable; install espeak-ng-data or point "
        "ESPEAK_DATA_PATH at the directory holding espeak-ng-data");
  }
  status = espeak_ng_InitializeOutput(ENOUTPUT_MODE_SYNCHRONOUS, 0, nullptr);
  if (status != ENS_OK) {
    throw std::runtime_error("espeak-ng: cannot set up synchronous output: " +
                             StatusMessage(status));
  }
  if (espeak_ng_GetSampleRate() != SpeechSynthesizer::kNativeSampleRate) {
    throw std::runtime_error("espeak-ng: unexpected sample rate " +
                             std::to_string(espeak_ng_GetSampleRate()));
  }
  espeak.initialised = true;
  espeak.data_path = data_path;
}

// Called with the mutex held. Falls back to "en" for a name espeak-ng does not know.
void SelectVoiceLocked(Espeak& espeak, const std::string& language) {
  if (espeak.voice == language) return;
  const bool plausible = !language.empty() && language.size() <= 64 &&
                         std::all_of(language.begin(), language.end(), [](char c) {
                           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                  (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '+' ||
                                  c == '/';
                         });
  if (plausible && espeak_ng_SetVoiceByName(language.c_str()) == ENS_OK) {
    espeak.voice = language;
    return;
  }
  if (espeak.voice == "en") return;
  const espeak_ng_STATUS status = espeak_ng_SetVoiceByName("en");
  if (status != ENS_OK) {
    espeak.voice.clear();
    throw std::runtime_error("espeak-ng: cannot load the 'en' voice: " + StatusMessage(status));
  }
  espeak.voice = "en";
}

struct Capture {
  std::vector<std::int16_t> samples;
  bool out_of_memory = false;
};

// espeak-ng's synthesis callback: C code calls it, so nothing may propagate out of it.
int OnSamples(short* wav, int count, espeak_EVENT* events) {
  auto* capture = static_cast<Capture*>(events->user_data);
  if (wav == nullptr || count <= 0) return 0;
  try {
    capture->samples.insert(capture->samples.end(), wav, wav + count);
  } catch (const std::bad_alloc&) {
    capture->out_of_memory = true;
    return 1;  // abort synthesis
  }
  return 0;
}

std::vector<std::int16_t> SpeakNative(const std::string& text, const std::string& language,
                                      int words_per_minute) {
  Espeak& espeak = TheEspeak();
  const std::lock_guard lock(espeak.mutex);
  SelectVoiceLocked(espeak, language);
  if (espeak.words_per_minute != words_per_minute) {
    if (espeak_SetParameter(espeakRATE, words_per_minute, 0) != EE_OK) {
      throw std::runtime_error("espeak-ng: cannot set the speaking rate");
    }
    espeak.words_per_minute = words_per_minute;
  }
  espeak_SetSynthCallback(OnSamples);
  Capture capture;
  const espeak_ng_STATUS status = espeak_ng_Synthesize(
      text.c_str(), text.size() + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, nullptr, &capture);
  if (capture.out_of_memory) throw std::bad_alloc();
  if (status != ENS_OK) {
    throw std::runtime_error("espeak-ng: synthesis failed: " + StatusMessage(status));
  }
  return std::move(capture.samples);
}

std::string CacheKey(std::string_view language, int sample_rate, std::string_view text) {
  std::string key;
  key.reserve(language.size() + text.size() + 16);
  key.append(language).push_back('\0');
  key.append(std::to_string(sample_rate)).push_back('\0');
  key.append(text);
  return key;
}

}  // namespace

SpeechSynthesizer::SpeechSynthesizer(SpeechOptions options) : options_(std::move(options)) {
  if (options_.words_per_minute < espeakRATE_MINIMUM ||
      options_.words_per_minute > espeakRATE_MAXIMUM) {
    throw std::invalid_argument("SpeechSynthesizer: words_per_minute " +
                                std::to_string(options_.words_per_minute) + " outside [80, 450]");
  }
  Espeak& espeak = TheEspeak();
  const std::lock_guard lock(espeak.mutex);
  InitialiseLocked(espeak, options_.data_path);
  SelectVoiceLocked(espeak, "en");  // proves a voice loads, so failure shows at start-up
}

std::vector<std::int16_t> SpeechSynthesizer::Synthesize(std::string_view text, int sample_rate) {
  return Synthesize(text, sample_rate, options_.language);
}

std::vector<std::int16_t> SpeechSynthesizer::Synthesize(std::string_view text, int sample_rate,
                                                        std::string_view language) {
  if (sample_rate < Resampler::kMinRate || sample_rate > Resampler::kMaxRate) {
    throw std::invalid_argument("SpeechSynthesizer: sample rate " + std::to_string(sample_rate) +
                                " outside [" + std::to_string(Resampler::kMinRate) + ", " +
                                std::to_string(Resampler::kMaxRate) + "]");
  }
  if (text.size() > kMaxTextBytes) {
    throw std::invalid_argument("SpeechSynthesizer: text of " + std::to_string(text.size()) +
                                " bytes exceeds " + std::to_string(kMaxTextBytes));
  }
  std::vector<std::int16_t> samples;
  const std::string key = CacheKey(language, sample_rate, text);
  if (CacheGet(key, samples, /*count=*/true)) return samples;

  const std::string native_key = CacheKey(language, kNativeSampleRate, text);
  std::vector<std::int16_t> native;
  if (sample_rate == kNativeSampleRate || !CacheGet(native_key, native, /*count=*/false)) {
    native = SpeakNative(std::string(text), std::string(language), options_.words_per_minute);
    CachePut(native_key, native);
  }
  if (sample_rate == kNativeSampleRate) return native;
  samples = Resample(native, kNativeSampleRate, sample_rate);
  CachePut(key, samples);
  return samples;
}

bool SpeechSynthesizer::CacheGet(const std::string& key, std::vector<std::int16_t>& out,
                                 bool count) {
  const std::lock_guard lock(cache_mutex_);
  const auto it = index_.find(key);
  if (it == index_.end()) {
    if (count) ++stats_.misses;
    return false;
  }
  if (count) ++stats_.hits;
  lru_.splice(lru_.begin(), lru_, it->second);
  out = it->second->samples;
  return true;
}

void SpeechSynthesizer::CachePut(const std::string& key, const std::vector<std::int16_t>& samples) {
  if (options_.cache_entries == 0) return;
  const std::lock_guard lock(cache_mutex_);
  if (index_.contains(key)) return;  // another thread got there first
  lru_.push_front({key, samples});
  index_.emplace(key, lru_.begin());
  while (lru_.size() > options_.cache_entries) {
    index_.erase(lru_.back().key);
    lru_.pop_back();
  }
  stats_.entries = lru_.size();
}

SpeechSynthesizer::CacheStats SpeechSynthesizer::cache_stats() const {
  const std::lock_guard lock(cache_mutex_);
  return stats_;
}

std::vector<std::int16_t> Tone(double hz, double seconds, int sample_rate, double amplitude) {
  if (sample_rate <= 0 || !(seconds >= 0.0) || !(hz >= 0.0) || !(amplitude >= 0.0) ||
      amplitude > 1.0) {
    throw std::invalid_argument("Tone: bad arguments");
  }
  const auto count = static_cast<std::size_t>(std::llround(seconds * sample_rate));
  std::vector<std::int16_t> samples(count);
  const double step = 2.0 * std::numbers::pi * hz / sample_rate;
  for (std::size_t n = 0; n < count; ++n) {
    samples[n] = static_cast<std::int16_t>(
        std::lround(amplitude * 32767.0 * std::sin(step * static_cast<double>(n))));
  }
  return samples;
}

}  // namespace callgate::audio
