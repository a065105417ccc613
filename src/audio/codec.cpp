#include "audio/codec.hpp"

#include <algorithm>
#include <bit>
#include <stdexcept>

namespace callgate::audio {
namespace {

constexpr int kMulawBias = 0x84;
constexpr int kMulawClip = 32635;

void DecodePcm16LeTo(std::span<const std::uint8_t> bytes, std::span<std::int16_t> out) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto bits = static_cast<std::uint16_t>(bytes[2 * i] | (bytes[2 * i + 1] << 8));
    out[i] = static_cast<std::int16_t>(bits);  // modular since C++20
  }
}

void EncodePcm16LeTo(std::span<const std::int16_t> samples, std::span<std::uint8_t> out) {
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const auto bits = static_cast<std::uint16_t>(samples[i]);
    out[2 * i] = static_cast<std::uint8_t>(bits & 0xFF);
    out[2 * i + 1] = static_cast<std::uint8_t>(bits >> 8);
  }
}

}  // namespace

std::vector<std::int16_t> DecodePcm16Le(std::span<const std::uint8_t> bytes) {
  std::vector<std::int16_t> samples(bytes.size() / 2);
  DecodePcm16LeTo(bytes, samples);
  return samples;
}

std::vector<std::uint8_t> EncodePcm16Le(std::span<const std::int16_t> samples) {
  std::vector<std::uint8_t> bytes(samples.size() * 2);
  EncodePcm16LeTo(samples, bytes);
  return bytes;
}

std::uint8_t MulawEncode(std::int16_t sample) {
  int magnitude = sample;
  int sign = 0;
  if (magnitude < 0) {
    magnitude = -magnitude;  // int, so -(-32768) is fine
    sign = 0x80;
  }
  magnitude = std::min(magnitude, kMulawClip) + kMulawBias;  // 132..32767
  // Segment s holds biased magnitudes [0x80 << s, 0x100 << s), in 16 steps of 8 << s.
  // That is, segment = bit_width(magnitude) - 8 (magnitude < 2^15 keeps it <= 7).
  const int segment =
      std::max(0, static_cast<int>(std::bit_width(static_cast<unsigned>(magnitude))) - 8);
  const int mantissa = (magnitude >> (segment + 3)) & 0x0F;
  return static_cast<std::uint8_t>(~(sign | (segment << 4) | mantissa) & 0xFF);
}

std::int16_t MulawDecode(std::uint8_t code) {
  const int bits = ~code & 0xFF;
  const int segment = (bits >> 4) & 0x07;
  const int mantissa = bits & 0x0F;
  // Reconstruct at the middle of the step, then remove the bias.
  const int magnitude = (((mantissa << 3) + kMulawBias) << segment) - kMulawBias;
  return static_cast<std::int16_t>((bits & 0x80) != 0 ? -magnitude : magnitude);
}

std::vector<std::uint8_t> EncodeMulaw(std::span<const std::int16_t> samples) {
  std::vector<std::uint8_t> codes(samples.size());
  std::transform(samples.begin(), samples.end(), codes.begin(),
                 [](std::int16_t s) { return MulawEncode(s); });
  return codes;
}

std::vector<std::int16_t> DecodeMulaw(std::span<const std::uint8_t> codes) {
  std::vector<std::int16_t> samples(codes.size());
  std::transform(codes.begin(), codes.end(), samples.begin(),
                 [](std::uint8_t c) { return MulawDecode(c); });
  return samples;
}

void EncodeTo(const AudioFormat& format, std::span<const std::int16_t> samples,
              std::span<std::uint8_t> out) {
  if (out.size() != samples.size() * format.BytesPerSample()) {
    throw std::invalid_argument("EncodeTo: output size does not match the samples");
  }
  if (format.encoding == AudioFormat::Encoding::kMulaw) {
    std::transform(samples.begin(), samples.end(), out.begin(),
                   [](std::int16_t s) { return MulawEncode(s); });
  } else {
    EncodePcm16LeTo(samples, out);
  }
}

void DecodeTo(const AudioFormat& format, std::span<const std::uint8_t> bytes,
              std::span<std::int16_t> out) {
  if (out.size() != bytes.size() / format.BytesPerSample()) {
    throw std::invalid_argument("DecodeTo: output size does not match the bytes");
  }
  if (format.encoding == AudioFormat::Encoding::kMulaw) {
    std::transform(bytes.begin(), bytes.end(), out.begin(),
                   [](std::uint8_t c) { return MulawDecode(c); });
  } else {
    DecodePcm16LeTo(bytes, out);
  }
}

std::vector<std::int16_t> Decode(const AudioFormat& format, std::span<const std::uint8_t> bytes) {
  return format.encoding == AudioFormat::Encoding::kMulaw ? DecodeMulaw(bytes)
                                                          : DecodePcm16Le(bytes);
}

std::vector<std::uint8_t> Encode(const AudioFormat& format, std::span<const std::int16_t> samples) {
  return format.encoding == AudioFormat::Encoding::kMulaw ? EncodeMulaw(samples)
                                                          : EncodePcm16Le(samples);
}

void MixInto(std::vector<std::int16_t>& dest, std::span<const std::int16_t> src,
             std::size_t offset) {
  if (dest.size() < offset + src.size()) dest.resize(offset + src.size(), 0);
  for (std::size_t i = 0; i < src.size(); ++i) {
    const int sum = dest[offset + i] + src[i];
    dest[offset + i] = static_cast<std::int16_t>(std::clamp(sum, -32768, 32767));
  }
}

}  // namespace callgate::audio
