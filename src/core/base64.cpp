#include "core/base64.hpp"

#include <openssl/evp.h>

#include <array>
#include <cstring>

namespace callgate::core {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Every 12-bit value as its two characters, in memory order.
constexpr auto kPairs = [] {
  std::array<std::array<char, 2>, 4096> pairs{};
  for (std::size_t i = 0; i < pairs.size(); ++i)
    pairs[i] = {kAlphabet[i >> 6], kAlphabet[i & 63]};
  return pairs;
}();

// The character's 6-bit value shifted to its place in a quantum's 24 bits, per position;
// 0x80000000 (outside the 24 bits) marks a character outside the alphabet.
constexpr std::uint32_t kInvalid = 0x80000000u;
constexpr auto kShifted = [] {
  std::array<std::array<std::uint32_t, 256>, 4> tables{};
  for (auto& table : tables)
    table.fill(kInvalid);
  for (std::uint32_t v = 0; v < 64; ++v) {
    const auto c = static_cast<unsigned char>(kAlphabet[v]);
    tables[0][c] = v << 18;
    tables[1][c] = v << 12;
    tables[2][c] = v << 6;
    tables[3][c] = v;
  }
  return tables;
}();

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

void Base64EncodeTo(std::span<const std::uint8_t> bytes, std::string& out) {
  const std::size_t start = out.size();
  out.resize(start + (bytes.size() + 2) / 3 * 4);
  char* dest = out.data() + start;
  const std::uint8_t* in = bytes.data();
  std::size_t left = bytes.size();
  for (; left >= 3; left -= 3, in += 3, dest += 4) {
    const std::uint32_t n = (std::uint32_t{in[0]} << 16) | (std::uint32_t{in[1]} << 8) | in[2];
    std::memcpy(dest, kPairs[n >> 12].data(), 2);
    std::memcpy(dest + 2, kPairs[n & 0xFFF].data(), 2);
  }
  if (left > 0) {
    std::uint32_t n = std::uint32_t{in[0]} << 16;
    if (left == 2) n |= std::uint32_t{in[1]} << 8;
    dest[0] = kAlphabet[(n >> 18) & 63];
    dest[1] = kAlphabet[(n >> 12) & 63];
    dest[2] = left == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    dest[3] = '=';
  }
}

bool Base64DecodeBlocks(std::string_view text, std::uint8_t* out) {
  const auto* in = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t quanta = text.size() / 4;
  std::uint32_t bad = 0;
  for (std::size_t q = 0; q < quanta; ++q, in += 4, out += 3) {
    const std::uint32_t n =
        kShifted[0][in[0]] | kShifted[1][in[1]] | kShifted[2][in[2]] | kShifted[3][in[3]];
    bad |= n;
    out[0] = static_cast<std::uint8_t>(n >> 16);
    out[1] = static_cast<std::uint8_t>(n >> 8);
    out[2] = static_cast<std::uint8_t>(n);
  }
  return (bad & kInvalid) == 0;
}

int Base64Value(char c) {
  const std::uint32_t v = kShifted[3][static_cast<unsigned char>(c)];
  return v == kInvalid ? -1 : static_cast<int>(v);
}

}  // namespace callgate::core
