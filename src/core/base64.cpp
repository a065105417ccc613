#include "core/base64.hpp"

#include <openssl/evp.h>

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

namespace {

#if defined(__x86_64__)
// 12 bytes to 16 characters per step with SSSE3 (W. Mula's method, as in aklomp/base64 and
// simdutf): a byte shuffle and two multiplies split each 3 bytes into four 6-bit indices, then
// a 16-entry table of per-range offsets turns each index into its character. Reads 16 bytes
// per step, so it stops while at least 16 are left; the scalar loop does the rest. Returns the
// bytes consumed.
__attribute__((target("ssse3"))) std::size_t EncodeBlocksSsse3(const std::uint8_t* in,
                                                               std::size_t size, char* dest) {
  std::size_t done = 0;
  const __m128i shuffle = _mm_set_epi8(10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1);
  const __m128i offsets =
      _mm_setr_epi8('a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
                    '0' - 52, '0' - 52, '0' - 52, '+' - 62, '/' - 63, 'A', 0, 0);
  for (; size - done >= 16; done += 12, dest += 16) {
    const __m128i bytes =
        _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + done)), shuffle);
    const __m128i high = _mm_mulhi_epu16(_mm_and_si128(bytes, _mm_set1_epi32(0x0fc0fc00)),
                                         _mm_set1_epi32(0x04000040));
    const __m128i low = _mm_mullo_epi16(_mm_and_si128(bytes, _mm_set1_epi32(0x003f03f0)),
                                        _mm_set1_epi32(0x01000010));
    const __m128i indices = _mm_or_si128(high, low);  // 16 values in [0, 63]
    // 0..25 -> 13 ('A'), 26..51 -> 0 ('a' - 26), 52..61 -> 1..10, 62 -> 11, 63 -> 12.
    __m128i range = _mm_subs_epu8(indices, _mm_set1_epi8(51));
    const __m128i upper = _mm_cmpgt_epi8(_mm_set1_epi8(26), indices);
    range = _mm_or_si128(range, _mm_and_si128(upper, _mm_set1_epi8(13)));
    const __m128i chars = _mm_add_epi8(_mm_shuffle_epi8(offsets, range), indices);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dest), chars);
  }
  return done;
}

const bool kHaveSsse3 = [] {
  __builtin_cpu_init();  // may run before libgcc's own initialiser
  return __builtin_cpu_supports("ssse3") != 0;
}();
#endif

}  // namespace

void Base64EncodeTo(std::span<const std::uint8_t> bytes, std::string& out) {
  const std::size_t start = out.size();
  out.resize(start + Base64EncodedSize(bytes.size()));
  Base64EncodeInto(bytes, out.data() + start);
}

void Base64EncodeInto(std::span<const std::uint8_t> bytes, char* dest) {
  const std::uint8_t* in = bytes.data();
  std::size_t left = bytes.size();
#if defined(__x86_64__)
  if (kHaveSsse3 && left >= 16) {
    const std::size_t done = EncodeBlocksSsse3(in, left, dest);
    in += done;
    left -= done;
    dest += done / 3 * 4;
  }
#endif
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
