// Constant-time comparison of secrets (API keys).
//
// Both sides are hashed with SHA-256 first, so the time taken depends neither on where the
// strings differ nor on their lengths; the digests are then compared with CRYPTO_memcmp.
// Thread-safe; no allocation after a thread's first hash (its SHA-256 context).
#pragma once

#include <array>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace callgate::core {

using Sha256Digest = std::array<unsigned char, 32>;

// SHA-256 with the algorithm fetched once and one context per thread: OpenSSL 3's one-shot
// SHA256() fetches the algorithm and allocates a context on every call, which costs more than
// hashing a key or a signature. nullopt only if OpenSSL itself fails. Thread-safe.
std::optional<Sha256Digest> Sha256(std::string_view data);

bool ConstantTimeEquals(std::string_view a, std::string_view b);

// True when `candidate` equals one of the keys whose Sha256 digests are `key_digests` (hashed
// once, when the keys are configured). Every key is compared (no early exit), so the time does
// not reveal which key matched or how many keys there are before it.
bool MatchesAnyKeyDigest(std::string_view candidate, std::span<const Sha256Digest> key_digests);

}  // namespace callgate::core
