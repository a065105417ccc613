// When a failed call to ElevenLabs may be tried again, and after how long. Pure.
//
// The SDKs retry every request, the outbound-call POST included, on 408/429/5xx (elevenlabs-api.md
// §8). We must not: a POST that reached the API may have placed the call, and a second one rings
// the person twice. So:
//   * idempotent requests (GETs) are retried on connection errors, truncated or non-JSON answers,
//     408, 429 and 5xx;
//   * a request that places a call is retried only when it provably never reached the API (the
//     connection could not be made) or on 429 (the API refused it before acting on it).
// The delay is Retry-After when the API gave one (capped), otherwise exponential: base * 2^(n-1)
// with +-10% jitter, capped. The caller also stops when the delay would pass its deadline.
#pragma once

#include "upstream/api_error.hpp"

#include <chrono>
#include <optional>

namespace callgate::upstream {

enum class RequestSafety { kIdempotent, kPlacesCall };

struct RetryPolicy {
  int max_attempts = 3;  // the first try included
  std::chrono::milliseconds base_delay{500};
  std::chrono::milliseconds max_delay{60'000};
};

// `attempt` is the 1-based number of the attempt that just failed with `error`; `jitter` is in
// [0, 1). nullopt: give up and report `error`.
std::optional<std::chrono::milliseconds> RetryDelay(const RetryPolicy& policy, RequestSafety safety,
                                                    const ApiError& error, int attempt,
                                                    double jitter);

}  // namespace callgate::upstream
