#include "sim/recording.hpp"

#include "audio/codec.hpp"
#include "audio/mp3.hpp"
#include "audio/speech.hpp"

#include <algorithm>
#include <exception>
#include <optional>

namespace callgate::sim {
namespace {

// The worker's synthesizer, created on first use on the worker thread.
audio::SpeechSynthesizer& Synthesizer() {
  thread_local std::optional<audio::SpeechSynthesizer> synthesizer;
  if (!synthesizer) synthesizer.emplace();
  return *synthesizer;
}

std::string RenderMp3(const std::vector<TranscriptTurn>& transcript) {
  constexpr int kRate = RecordingRenderer::kSampleRate;
  constexpr std::size_t kGap = kRate * 3 / 10;  // 300 ms between turns
  std::vector<std::int16_t> mix;
  std::size_t cursor = 0;
  for (const TranscriptTurn& turn : transcript) {
    if (turn.message.empty()) continue;
    // The user speaks with another espeak-ng voice, so the two sides are told apart.
    const auto speech =
        Synthesizer().Synthesize(turn.message, kRate, turn.role == "user" ? "en-us" : "en");
    const std::size_t at =
        std::max(cursor, static_cast<std::size_t>(turn.time_in_call_secs) * kRate);
    audio::MixInto(mix, speech, at);
    cursor = at + speech.size() + kGap;
  }
  if (mix.empty()) mix.assign(kRate / 2, 0);  // an empty call is half a second of silence
  return audio::EncodeMp3(mix, kRate, RecordingRenderer::kBitrateKbps);
}

}  // namespace

RecordingRenderer::RecordingRenderer(std::size_t max_cached)
    : max_cached_(max_cached), worker_("recordings", 64) {}

RecordingRenderer::~RecordingRenderer() {
  worker_.Stop();
}

std::shared_ptr<const std::string> RecordingRenderer::Cached(const std::string& conversation_id) {
  std::lock_guard lock(mutex_);
  const auto it = cache_.find(conversation_id);
  return it == cache_.end() ? nullptr : it->second;
}

bool RecordingRenderer::Render(std::string conversation_id, std::vector<TranscriptTurn> transcript,
                               Done done) {
  if (auto cached = Cached(conversation_id)) {
    done(std::move(cached), {});
    return true;
  }
  return worker_.Post([this, id = std::move(conversation_id), transcript = std::move(transcript),
                       done = std::move(done)] {
    if (auto cached = Cached(id)) {  // rendered while this request waited
      done(std::move(cached), {});
      return;
    }
    std::shared_ptr<const std::string> mp3;
    try {
      mp3 = std::make_shared<const std::string>(RenderMp3(transcript));
    } catch (const std::exception& e) {
      done(nullptr, e.what());
      return;
    }
    {
      std::lock_guard lock(mutex_);
      if (cache_.emplace(id, mp3).second) order_.push_back(id);
      while (order_.size() > max_cached_) {
        cache_.erase(order_.front());
        order_.erase(order_.begin());
      }
    }
    done(std::move(mp3), {});
  });
}

void RecordingRenderer::Forget(const std::string& conversation_id) {
  std::lock_guard lock(mutex_);
  cache_.erase(conversation_id);
  std::erase(order_, conversation_id);
}

}  // namespace callgate::sim
