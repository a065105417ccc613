#include "sim/tokens.hpp"

#include <openssl/rand.h>

#include <array>
#include <charconv>
#include <stdexcept>

namespace callgate::sim {
namespace {

constexpr std::string_view kLowerAlnum = "0123456789abcdefghijklmnopqrstuvwxyz";
constexpr std::string_view kHex = "0123456789abcdef";
constexpr std::string_view kAlnum =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr std::string_view kBase64Url =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::string_view kCursorPrefix = "sim-cursor:v1:";

void FillRandom(unsigned char* data, std::size_t size) {
  if (RAND_bytes(data, static_cast<int>(size)) != 1) {
    throw std::runtime_error("OpenSSL RAND_bytes failed");
  }
}

}  // namespace

std::string RandomString(std::string_view alphabet, std::size_t length) {
  if (alphabet.empty() || alphabet.size() > 256) {
    throw std::invalid_argument("RandomString: alphabet must have 1..256 characters");
  }
  // Rejection sampling keeps the distribution uniform for alphabets that do not divide 256.
  const unsigned limit = 256 - (256 % static_cast<unsigned>(alphabet.size()));
  std::string out;
  out.reserve(length);
  std::array<unsigned char, 64> pool{};
  std::size_t used = pool.size();
  while (out.size() < length) {
    if (used == pool.size()) {
      FillRandom(pool.data(), pool.size());
      used = 0;
    }
    const unsigned byte = pool[used++];
    if (byte < limit) out.push_back(alphabet[byte % alphabet.size()]);
  }
  return out;
}

std::string NewConversationId() {
  return "conv_" + RandomString(kLowerAlnum, 28);
}
std::string NewCallSid() {
  return "CA" + RandomString(kHex, 32);
}
std::string NewStreamSid() {
  return "MZ" + RandomString(kHex, 32);
}
std::string NewSipCallId() {
  return "SCL_" + RandomString(kAlnum, 12);
}
std::string NewTraceId() {
  return RandomString(kHex, 32);
}
std::string NewSignature() {
  return RandomString(kBase64Url, 43);
}

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out.push_back(kBase64Url[(v >> 18) & 63]);
    out.push_back(kBase64Url[(v >> 12) & 63]);
    out.push_back(kBase64Url[(v >> 6) & 63]);
    out.push_back(kBase64Url[v & 63]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out.push_back(kBase64Url[(v >> 18) & 63]);
    out.push_back(kBase64Url[(v >> 12) & 63]);
    if (rest == 2) out.push_back(kBase64Url[(v >> 6) & 63]);
  }
  return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (const char c : text) {
    const auto index = kBase64Url.find(c);
    if (index == std::string_view::npos) return std::nullopt;
    buffer = (buffer << 6) | static_cast<unsigned>(index);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xFF));
    }
  }
  return out;
}

std::string EncodeCursor(std::uint64_t seq) {
  return Base64UrlEncode(std::string(kCursorPrefix) + std::to_string(seq));
}

std::optional<std::uint64_t> DecodeCursor(std::string_view cursor) {
  const auto decoded = Base64UrlDecode(cursor);
  if (!decoded || !decoded->starts_with(kCursorPrefix)) return std::nullopt;
  const std::string_view digits = std::string_view(*decoded).substr(kCursorPrefix.size());
  std::uint64_t seq = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size()) {
    return std::nullopt;
  }
  return seq;
}

}  // namespace callgate::sim
