// Text to speech for the simulator's scripted agent, over espeak-ng; plus a tone generator.
//
// SpeechSynthesizer::Synthesize("Hello! I'm calling about a parking ticket.", 16000) returns
// mono int16 samples at the requested rate: espeak-ng speaks at its native 22050 Hz and the
// result is resampled (Resampler, default quality). The voice is the espeak-ng voice named by
// `language` ("en", "de", "fr", "en-us", ...); an unknown name falls back to "en". No pause is
// appended after the last word.
//
// espeak-ng is a process-global, non-reentrant C library. It is initialised once per process, by
// the first SpeechSynthesizer constructed (the library is never terminated: it lives until
// exit), and every synthesis in the process is serialised behind one static mutex. That static
// state mirrors the library's own global state and is the only global in this module.
// Consequences: SpeechSynthesizer is thread-safe, but concurrent calls wait for each other, and
// a call can take tens of milliseconds per sentence: call it from a worker thread, never an I/O
// thread. `data_path` is honoured by the first initialisation only; a later SpeechSynthesizer
// naming a different non-empty path throws.
//
// Each SpeechSynthesizer keeps a small LRU cache, (language, rate, text) -> samples, bounded by
// `cache_entries` (0 disables it), because agents repeat phrases. The 22050 Hz rendering is
// cached too, so one text asked for at several rates is spoken once and the results line up.
//
// Errors: the constructor throws std::runtime_error when espeak-ng cannot initialise (e.g. its
// data, package espeak-ng-data, is missing) or the "en" voice cannot be loaded, and
// std::invalid_argument for options out of range. Synthesize throws std::invalid_argument for a
// sample rate outside [Resampler::kMinRate, Resampler::kMaxRate] or text longer than
// kMaxTextBytes, and std::runtime_error if espeak-ng fails.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace callgate::audio {

struct SpeechOptions {
  std::string language = "en";     // default voice for Synthesize(text, rate)
  int words_per_minute = 175;      // espeak-ng's normal rate; [80, 450]
  std::size_t cache_entries = 64;  // 0 disables the cache
  std::string data_path;           // empty: espeak-ng's own search (ESPEAK_DATA_PATH, system data)
};

class SpeechSynthesizer {
 public:
  static constexpr std::size_t kMaxTextBytes = 16 * 1024;
  static constexpr int kNativeSampleRate = 22050;  // espeak-ng's output rate (checked at init)

  explicit SpeechSynthesizer(SpeechOptions options = {});
  SpeechSynthesizer(const SpeechSynthesizer&) = delete;
  SpeechSynthesizer& operator=(const SpeechSynthesizer&) = delete;

  std::vector<std::int16_t> Synthesize(std::string_view text, int sample_rate);
  std::vector<std::int16_t> Synthesize(std::string_view text, int sample_rate,
                                       std::string_view language);

  // hits + misses == Synthesize calls that got past argument checks.
  struct CacheStats {
    std::size_t hits = 0;
    std::size_t misses = 0;
    std::size_t entries = 0;
  };
  CacheStats cache_stats() const;

 private:
  struct Entry {
    std::string key;
    std::vector<std::int16_t> samples;
  };

  // `count`: whether this lookup is a request (hits/misses) or the internal 22050 Hz one.
  bool CacheGet(const std::string& key, std::vector<std::int16_t>& out, bool count);
  void CachePut(const std::string& key, const std::vector<std::int16_t>& samples);

  const SpeechOptions options_;
  mutable std::mutex cache_mutex_;  // guards everything below
  std::list<Entry> lru_;            // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  CacheStats stats_;
};

// A sine tone: round(amplitude * 32767 * sin(2*pi*hz*n/sample_rate)), amplitude in [0, 1] of
// full scale, round(seconds * sample_rate) samples. For tests and the simulator's beeps.
// Throws std::invalid_argument for a non-positive rate, negative duration/frequency or an
// amplitude outside [0, 1].
std::vector<std::int16_t> Tone(double hz, double seconds, int sample_rate, double amplitude);

}  // namespace callgate::audio
