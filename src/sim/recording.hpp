// The simulator's call recordings: a conversation's transcript spoken (agent and user in
// different voices, placed at their time_in_call_secs) and encoded as MP3, the way
// GET /v1/convai/conversations/{id}/audio serves them.
//
// Rendering takes real CPU (espeak-ng, then the MP3 encoder), so it runs on the renderer's own
// worker thread, never on an I/O thread; `done` is called on that thread. Results are cached by
// conversation id (bounded, oldest dropped), so a recording is rendered once and every later
// request gets identical bytes. Thread-safe.
#pragma once

#include "core/worker.hpp"
#include "sim/lifecycle.hpp"

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace callgate::sim {

class RecordingRenderer {
 public:
  using Done = std::function<void(std::shared_ptr<const std::string> mp3, std::string error)>;

  explicit RecordingRenderer(std::size_t max_cached = 256);
  ~RecordingRenderer();

  // `done` gets the MP3 bytes, or null and a reason. False when the worker's queue is full.
  bool Render(std::string conversation_id, std::vector<TranscriptTurn> transcript, Done done);
  void Forget(const std::string& conversation_id);

  static constexpr int kSampleRate = 16000;
  static constexpr int kBitrateKbps = 32;

 private:
  std::shared_ptr<const std::string> Cached(const std::string& conversation_id);

  std::size_t max_cached_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const std::string>> cache_;
  std::vector<std::string> order_;  // insertion order, for eviction
  core::Worker worker_;             // last: stopped (joined) before the cache goes
};

}  // namespace callgate::sim
