#include "audio/resampler.hpp"

#include <speex/speex_resampler.h>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace callgate::audio {
namespace {

static_assert(std::is_same_v<spx_int16_t, std::int16_t>, "speexdsp sample type must be int16");

void CheckRate(int rate, const char* which) {
  if (rate < Resampler::kMinRate || rate > Resampler::kMaxRate) {
    throw std::invalid_argument(
        std::string("Resampler: ") + which + " rate " + std::to_string(rate) + " outside [" +
        std::to_string(Resampler::kMinRate) + ", " + std::to_string(Resampler::kMaxRate) + "]");
  }
}

}  // namespace

void Resampler::Destroy::operator()(SpeexResamplerState_* state) const noexcept {
  speex_resampler_destroy(state);
}

Resampler::Resampler(int from_rate, int to_rate, int quality)
    : from_rate_(from_rate), to_rate_(to_rate), quality_(quality) {
  CheckRate(from_rate, "input");
  CheckRate(to_rate, "output");
  if (quality < 0 || quality > 10) {
    throw std::invalid_argument("Resampler: quality " + std::to_string(quality) +
                                " outside [0, 10]");
  }
  if (from_rate == to_rate) return;
  int err = RESAMPLER_ERR_SUCCESS;
  state_.reset(speex_resampler_init(1, static_cast<spx_uint32_t>(from_rate),
                                    static_cast<spx_uint32_t>(to_rate), quality, &err));
  if (!state_ || err != RESAMPLER_ERR_SUCCESS) {
    throw std::runtime_error(std::string("Resampler: speex_resampler_init: ") +
                             speex_resampler_strerror(err));
  }
  speex_resampler_skip_zeros(state_.get());
}

Resampler::~Resampler() = default;
Resampler::Resampler(Resampler&& other) noexcept = default;
Resampler& Resampler::operator=(Resampler&& other) noexcept = default;

void Resampler::Run(std::span<const std::int16_t> input, std::vector<std::int16_t>& out) {
  std::array<std::int16_t, 4096> buffer{};
  std::size_t consumed = 0;
  while (consumed < input.size()) {
    auto in_len =
        static_cast<spx_uint32_t>(std::min<std::size_t>(input.size() - consumed, 1 << 16));
    auto out_len = static_cast<spx_uint32_t>(buffer.size());
    const int err = speex_resampler_process_int(state_.get(), 0, input.data() + consumed, &in_len,
                                                buffer.data(), &out_len);
    if (err != RESAMPLER_ERR_SUCCESS) {
      throw std::runtime_error(std::string("Resampler: speex_resampler_process_int: ") +
                               speex_resampler_strerror(err));
    }
    if (in_len == 0 && out_len == 0) {
      throw std::runtime_error("Resampler: speexdsp made no progress");
    }
    consumed += in_len;
    out.insert(out.end(), buffer.begin(), buffer.begin() + out_len);
  }
}

std::vector<std::int16_t> Resampler::Process(std::span<const std::int16_t> input) {
  if (!state_) return {input.begin(), input.end()};
  std::vector<std::int16_t> out;
  out.reserve(input.size() * static_cast<std::size_t>(to_rate_) /
                  static_cast<std::size_t>(from_rate_) +
              16);
  ProcessAppend(input, out);
  return out;
}

void Resampler::ProcessAppend(std::span<const std::int16_t> input, std::vector<std::int16_t>& out) {
  if (!state_) {
    out.insert(out.end(), input.begin(), input.end());
    return;
  }
  const std::size_t before = out.size();
  Run(input, out);
  stream_in_ += static_cast<std::int64_t>(input.size());
  stream_out_ += static_cast<std::int64_t>(out.size() - before);
}

void Resampler::Reset() {
  if (state_) Restart();
}

std::vector<std::int16_t> Resampler::Flush() {
  if (!state_) return {};
  const std::int64_t expected = (stream_in_ * to_rate_ + from_rate_ / 2) / from_rate_;
  std::vector<std::int16_t> out;
  // The filter holds back about input_latency samples; pushing that much silence through
  // releases the tail. A few rounds are allowed for rounding at odd rate ratios.
  const std::vector<std::int16_t> zeros(speex_resampler_get_input_latency(state_.get()) + 1, 0);
  for (int round = 0; round < 4 && stream_out_ + static_cast<std::int64_t>(out.size()) < expected;
       ++round) {
    Run(zeros, out);
  }
  const std::int64_t wanted = std::max<std::int64_t>(0, expected - stream_out_);
  out.resize(std::min(out.size(), static_cast<std::size_t>(wanted)));
  Restart();
  return out;
}

void Resampler::Restart() {
  speex_resampler_reset_mem(state_.get());
  speex_resampler_skip_zeros(state_.get());
  stream_in_ = 0;
  stream_out_ = 0;
}

std::vector<std::int16_t> Resample(std::span<const std::int16_t> samples, int from_rate,
                                   int to_rate, int quality) {
  Resampler resampler(from_rate, to_rate, quality);
  std::vector<std::int16_t> out = resampler.Process(samples);
  const std::vector<std::int16_t> tail = resampler.Flush();
  out.insert(out.end(), tail.begin(), tail.end());
  return out;
}

}  // namespace callgate::audio
