// The playback buffer between the agent's audio events and the speaker: smooths the network's
// jitter without letting latency grow, and carries the protocol's interruption rules.
//
// Samples are mono int16 at the playback endpoint's rate; each Push() carries the event_id of
// the `audio` event it came from. Read() is called at the speaker's pace and always fills its
// whole buffer (silence when there is nothing to play):
//   - Prebuffer (a playout delay): after a start or a run-dry, playback (re)starts once the
//     oldest queued sample has waited `prebuffer` worth of Read() samples, exactly (possibly in
//     the middle of a Read()), or at once when draining. So audio arriving in real time, in
//     events of any size, keeps `prebuffer` of slack against late events.
//   - Run-dry: while playing, an empty buffer plays silence, counts `run_dry`, and goes back to
//     prebuffering. When the next audio pushed belongs to the same event as the audio that ran
//     dry, the gap was inside one utterance: that counts an `underrun`. (A new event_id is a new
//     turn, and the silence before it is just the pause between turns.)
//   - Bound: at most `max_buffer` is queued; a push beyond it drops the oldest samples and counts
//     them (`overflow_samples`, `overflow_events`). The agent's service may send speech faster
//     than real time, so the bound must cover the longest burst it sends ahead.
//   - Interrupt(event_id): everything queued is flushed at once, except the first `fade` of it,
//     which is faded out linearly to avoid a click (a few ms; none if nothing was playing).
//     Audio later pushed with an event_id <= the interruption's is dropped (`stale_events`),
//     as the SDKs do.
//   - DrainThen(callback): the callback runs once every sample pushed so far (and any pushed
//     before it runs) has been handed out by Read(): synchronously inside DrainThen() when
//     nothing is queued, else inside the Read() or Interrupt() that empties the buffer. While
//     draining the prebuffer is skipped. The samples returned by that last Read() still have to
//     reach the speaker: see AudioOutput::QueuedFrames() and latency().
//
// Pure, no clock, no threads; not thread-safe (one owner). Steady state allocates nothing: the
// queue grows only up to the largest backlog seen (bounded by max_buffer). Errors: the
// constructor throws std::invalid_argument for a rate outside [1000, 384000] or negative
// durations, or a max_buffer smaller than the prebuffer.
#pragma once

#include "audio/pipeline/defaults.hpp"
#include "audio/pipeline/sample_fifo.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

namespace callgate::audio::pipeline {

struct JitterBufferOptions {
  int sample_rate = 16000;
  std::chrono::milliseconds prebuffer = kDefaultPrebuffer;
  std::chrono::milliseconds max_buffer = kDefaultMaxBuffer;
  std::chrono::milliseconds fade = kDefaultInterruptFade;
};

struct JitterBufferStats {
  std::uint64_t pushed_samples = 0;    // accepted by Push()
  std::uint64_t played_samples = 0;    // audio handed out by Read()
  std::uint64_t silence_samples = 0;   // zeros handed out by Read() for lack of audio
  std::uint64_t run_dry = 0;           // times playback ran out of audio
  std::uint64_t underruns = 0;         // ... in the middle of one event's audio
  std::uint64_t overflow_samples = 0;  // oldest samples dropped to stay within max_buffer
  std::uint64_t overflow_events = 0;   // pushes that dropped samples
  std::uint64_t interruptions = 0;
  std::uint64_t flushed_samples = 0;  // dropped by interruptions (faded samples excluded)
  std::uint64_t stale_events = 0;     // pushes dropped for an event_id <= the interruption's
  std::uint64_t stale_samples = 0;
};

class JitterBuffer {
 public:
  explicit JitterBuffer(JitterBufferOptions options);

  // False when audio of this event would be dropped as stale (after an interruption).
  bool Accepts(std::int64_t event_id) const {
    return !last_interrupt_id_ || event_id > *last_interrupt_id_;
  }

  // Queues `samples` of event `event_id`; returns false (and counts) if stale.
  bool Push(std::span<const std::int16_t> samples, std::int64_t event_id);
  // Counts a stale push that the caller dropped before decoding it (`samples` at this rate).
  void CountStale(std::size_t samples);

  // Fills all of `out`: audio, then silence if there is not enough (see the header comment).
  void Read(std::span<std::int16_t> out);

  void Interrupt(std::int64_t event_id);
  void DrainThen(std::function<void()> on_drained);

  bool playing() const { return playing_; }
  bool draining() const { return static_cast<bool>(on_drained_); }
  std::size_t buffered_samples() const { return fifo_.size(); }
  // Prefetches the samples the next Read() and Push() touch.
  void Warm() const { fifo_.Warm(); }
  std::chrono::microseconds buffered() const;
  std::optional<std::int64_t> last_interrupt_id() const { return last_interrupt_id_; }
  const JitterBufferStats& stats() const { return stats_; }
  const JitterBufferOptions& options() const { return options_; }

 private:
  void CheckDrained();

  JitterBufferOptions options_;
  std::size_t prebuffer_samples_;
  std::size_t max_samples_;
  std::size_t fade_samples_;
  SampleFifo fifo_;
  std::vector<std::int16_t> fade_scratch_;  // sized once
  bool playing_ = false;
  std::size_t waited_samples_ = 0;  // silence handed out while queued audio waited to start
  std::optional<std::int64_t> last_event_id_;
  std::optional<std::int64_t> dry_event_id_;  // event whose audio ran dry, until the next push
  std::optional<std::int64_t> last_interrupt_id_;
  std::function<void()> on_drained_;
  JitterBufferStats stats_;
};

}  // namespace callgate::audio::pipeline
