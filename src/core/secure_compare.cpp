#include "core/secure_compare.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <memory>

namespace callgate::core {

std::optional<Sha256Digest> Sha256(std::string_view data) {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct ContextDeleter {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  thread_local std::unique_ptr<EVP_MD_CTX, ContextDeleter> context(EVP_MD_CTX_new());
  Sha256Digest digest{};
  unsigned int length = 0;
  if (md == nullptr || context == nullptr || EVP_DigestInit_ex(context.get(), md, nullptr) != 1 ||
      EVP_DigestUpdate(context.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(context.get(), digest.data(), &length) != 1 || length != digest.size()) {
    return std::nullopt;
  }
  return digest;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  const auto da = Sha256(a);
  const auto db = Sha256(b);
  return da && db && CRYPTO_memcmp(da->data(), db->data(), da->size()) == 0;
}

bool MatchesAnyKeyDigest(std::string_view candidate, std::span<const Sha256Digest> key_digests) {
  const auto dc = Sha256(candidate);
  if (!dc) return false;  // refused rather than compared against nothing
  int matched = 0;
  for (const Sha256Digest& key : key_digests) {
    matched |= static_cast<int>(CRYPTO_memcmp(dc->data(), key.data(), dc->size()) == 0);
  }
  return matched != 0;
}

}  // namespace callgate::core
