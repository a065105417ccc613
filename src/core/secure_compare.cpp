#include "core/secure_compare.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <array>

namespace callgate::core {
namespace {

using Digest = std::array<unsigned char, SHA256_DIGEST_LENGTH>;

Digest Sha256(std::string_view data) {
  Digest digest{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
  return digest;
}

}  // namespace

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  const Digest da = Sha256(a);
  const Digest db = Sha256(b);
  return CRYPTO_memcmp(da.data(), db.data(), da.size()) == 0;
}

bool MatchesAnyKey(std::string_view candidate, std::span<const std::string> keys) {
  const Digest dc = Sha256(candidate);
  int matched = 0;
  for (const std::string& key : keys) {
    const Digest dk = Sha256(key);
    matched |= static_cast<int>(CRYPTO_memcmp(dc.data(), dk.data(), dc.size()) == 0);
  }
  return matched != 0;
}

}  // namespace callgate::core
