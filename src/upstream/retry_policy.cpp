#include "upstream/retry_policy.hpp"

#include <algorithm>
#include <cmath>

namespace callgate::upstream {

std::optional<std::chrono::milliseconds> RetryDelay(const RetryPolicy& policy, RequestSafety safety,
                                                    const ApiError& error, int attempt,
                                                    double jitter) {
  if (attempt >= policy.max_attempts || error.permanent) return std::nullopt;
  const int status = error.kind == ApiError::Kind::kStatus ? error.upstream_status : 0;
  bool retryable = false;
  if (safety == RequestSafety::kPlacesCall) {
    retryable =
        (error.kind == ApiError::Kind::kUnavailable && !error.request_sent) || status == 429;
  } else {
    retryable = error.kind == ApiError::Kind::kUnavailable ||
                error.kind == ApiError::Kind::kBadResponse || status == 408 || status == 429 ||
                status >= 500;
  }
  if (!retryable) return std::nullopt;
  if (error.retry_after) {
    return std::min<std::chrono::milliseconds>(*error.retry_after, policy.max_delay);
  }
  const double exponential = static_cast<double>(policy.base_delay.count()) *
                             std::pow(2.0, attempt - 1) * (0.9 + 0.2 * jitter);
  const auto delay =
      std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(exponential)));
  return std::min(delay, policy.max_delay);
}

}  // namespace callgate::upstream
