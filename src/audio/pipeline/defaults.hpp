// The pipeline's default settings in one place, for the option structs and for the
// configuration that exposes them (AUDIO_CHUNK_MS, AUDIO_JITTER_PREBUFFER_MS, ...).
#pragma once

#include <chrono>

namespace callgate::audio::pipeline {

// user_audio_chunk length. The SDKs send 250 ms; shorter chunks cut the agent's reaction time.
inline constexpr std::chrono::milliseconds kDefaultChunk{50};
// Playout delay before agent audio starts: slack against late `audio` events.
inline constexpr std::chrono::milliseconds kDefaultPrebuffer{80};
// Most agent audio held for playback. The service may send speech ahead of real time, so this
// must cover its bursts; past it the oldest audio is dropped (and counted).
inline constexpr std::chrono::milliseconds kDefaultMaxBuffer{3000};
// Fade applied to what is playing when an interruption flushes the buffer.
inline constexpr std::chrono::milliseconds kDefaultInterruptFade{5};
// Unsent user chunks kept when the session falls behind; older ones are dropped.
inline constexpr std::chrono::milliseconds kDefaultMaxPendingUplink{1000};
// speexdsp's own default quality. Quality 5 costs 1.5x more at 44.1 <-> 48 kHz (the usual
// agent-to-device pair), for a passband 3% wider that speech does not use.
inline constexpr int kDefaultResamplerQuality = 4;

}  // namespace callgate::audio::pipeline
