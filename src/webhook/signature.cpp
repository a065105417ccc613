#include "webhook/signature.hpp"

#include "core/strings.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <charconv>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace callgate::webhook {
namespace {

constexpr std::size_t kHexDigestLength = 64;
constexpr std::size_t kMaxTimestampDigits = 15;

bool IsHex(std::string_view text) {
  for (char c : text) {
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return false;
  }
  return true;
}

bool IsHexDigest(std::string_view text) {
  return text.size() == kHexDigestLength && IsHex(text);
}

std::string Hex(const unsigned char* bytes, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(size * 2, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0x0f];
  }
  return out;
}

// The HMAC implementation is fetched once; EVP_MAC objects are immutable and thread-safe.
const EVP_MAC* HmacAlgorithm() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) throw std::runtime_error("OpenSSL has no HMAC implementation");
  return mac;
}

struct MacContextDeleter {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};

// Per thread, an HMAC-SHA256 context already keyed for each of the last few secrets used: a
// delivery then costs no digest fetch, allocation or key schedule, only EVP_MAC_init's cheap
// re-initialisation with the same key.
class KeyedContexts {
 public:
  EVP_MAC_CTX* For(std::string_view key) {
    for (Entry& entry : entries_) {
      if (entry.key == key) {
        if (EVP_MAC_init(entry.ctx.get(), nullptr, 0, nullptr) != 1) {
          throw std::runtime_error("EVP_MAC_init failed");
        }
        return entry.ctx.get();
      }
    }
    std::unique_ptr<EVP_MAC_CTX, MacContextDeleter> ctx(
        EVP_MAC_CTX_new(const_cast<EVP_MAC*>(HmacAlgorithm())));
    if (!ctx) throw std::runtime_error("EVP_MAC_CTX_new failed");
    char digest_name[] = "SHA256";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
        OSSL_PARAM_construct_end()};
    // An empty key is legal HMAC; OpenSSL wants a non-null pointer for it.
    static constexpr unsigned char kEmpty = 0;
    const auto* key_bytes =
        key.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(key.data());
    if (EVP_MAC_init(ctx.get(), key_bytes, key.size(), params) != 1) {
      throw std::runtime_error("EVP_MAC_init failed");
    }
    if (entries_.size() == kMaxKeys) entries_.erase(entries_.begin());
    entries_.push_back({std::string(key), std::move(ctx)});
    return entries_.back().ctx.get();
  }

 private:
  static constexpr std::size_t kMaxKeys = 4;  // current and rotated secrets, tests' keys
  struct Entry {
    std::string key;
    std::unique_ptr<EVP_MAC_CTX, MacContextDeleter> ctx;
  };
  std::vector<Entry> entries_;
};

// HMAC-SHA256 over the concatenation of `parts`, without copying them together (a post_call_audio
// body is tens of megabytes).
std::string HmacHex(std::string_view key, std::initializer_list<std::string_view> parts) {
  thread_local KeyedContexts contexts;
  EVP_MAC_CTX* ctx = contexts.For(key);
  for (std::string_view part : parts) {
    if (part.empty()) continue;
    if (EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(part.data()), part.size()) !=
        1) {
      throw std::runtime_error("EVP_MAC_update failed");
    }
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  std::size_t length = 0;
  if (EVP_MAC_final(ctx, out.data(), &length, out.size()) != 1) {
    throw std::runtime_error("EVP_MAC_final failed");
  }
  return Hex(out.data(), length);
}

VerifyResult Refuse(SignatureError error, std::string message) {
  VerifyResult result;
  result.error = error;
  result.message = std::move(message);
  return result;
}

// True when `candidate` equals the MAC of any secret. Every pair is compared: the time depends
// on neither which secret nor which candidate matched, nor where a candidate differs. A MAC's
// length is public (64 hex digits), so a candidate of another length is unequal at once and
// one of the same length is compared with CRYPTO_memcmp directly, without hashing both sides.
bool AnyMatches(std::span<const std::string> candidates, std::span<const std::string> expected) {
  int matched = 0;
  for (const std::string& mac : expected) {
    for (const std::string& candidate : candidates) {
      matched |= static_cast<int>(candidate.size() == mac.size() &&
                                  CRYPTO_memcmp(candidate.data(), mac.data(), mac.size()) == 0);
    }
  }
  return matched != 0;
}

}  // namespace

std::string_view ErrorCode(SignatureError error) {
  switch (error) {
    case SignatureError::kMissing:
      return "signature_missing";
    case SignatureError::kMalformed:
      return "signature_malformed";
    case SignatureError::kMismatch:
      return "signature_mismatch";
    case SignatureError::kTimestampOutOfTolerance:
      return "timestamp_out_of_tolerance";
  }
  return "signature_malformed";
}

std::string_view VerificationName(Verification verification) {
  switch (verification) {
    case Verification::kVerified:
      return "verified";
    case Verification::kVerifiedBodyOnly:
      return "verified_body_only";
    case Verification::kUnverified:
      return "unverified";
  }
  return "unverified";
}

std::optional<SignatureHeader> ParseSignatureHeader(std::string_view value) {
  SignatureHeader header;
  const std::string_view whole = core::TrimWhitespace(value);
  if (whole.empty()) return std::nullopt;

  // The body-only form: one bare hex digest, optionally "sha256=<hex>".
  if (whole.find(',') == std::string_view::npos) {
    std::string_view bare = whole;
    if (core::AsciiLower(bare.substr(0, 7)) == "sha256=") bare.remove_prefix(7);
    if (IsHexDigest(bare)) {
      header.body_only = core::AsciiLower(bare);
      return header;
    }
  }

  std::size_t start = 0;
  while (start <= whole.size()) {
    const std::size_t comma = whole.find(',', start);
    const std::size_t end = comma == std::string_view::npos ? whole.size() : comma;
    const std::string_view part = core::TrimWhitespace(whole.substr(start, end - start));
    start = end + 1;
    const std::size_t equals = part.find('=');
    if (equals == std::string_view::npos) return std::nullopt;  // includes an empty part
    const std::string_view key = core::TrimWhitespace(part.substr(0, equals));
    const std::string_view field = core::TrimWhitespace(part.substr(equals + 1));
    if (key == "t") {
      if (header.timestamp || field.empty() || field.size() > kMaxTimestampDigits) {
        return std::nullopt;
      }
      std::int64_t t = 0;
      const auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), t);
      if (ec != std::errc{} || ptr != field.data() + field.size() || field[0] == '-') {
        return std::nullopt;
      }
      header.timestamp = t;
    } else if (key == "v0") {
      if (!IsHexDigest(field) || header.v0.size() >= kMaxSignatures) return std::nullopt;
      header.v0.push_back(core::AsciiLower(field));
    } else if (key.empty()) {
      return std::nullopt;
    }
    // Other schemes (v1=...) are ignored, as the SDKs do.
    if (comma == std::string_view::npos) break;
  }
  if (!header.timestamp || header.v0.empty()) return std::nullopt;
  return header;
}

VerifyResult Verify(std::optional<std::string_view> header_value, std::string_view body,
                    const VerifyOptions& options, const core::Clock& clock) {
  if (options.secrets.empty()) {
    VerifyResult result;
    result.verification = Verification::kUnverified;
    return result;
  }
  if (!header_value || core::TrimWhitespace(*header_value).empty()) {
    return Refuse(SignatureError::kMissing, "the ElevenLabs-Signature header is missing");
  }
  const std::optional<SignatureHeader> header = ParseSignatureHeader(*header_value);
  if (!header) {
    return Refuse(SignatureError::kMalformed,
                  "the ElevenLabs-Signature header is not of the form t=<unix seconds>,v0=<64 hex "
                  "digits>");
  }

  if (header->body_only) {
    if (!options.allow_body_only) {
      return Refuse(SignatureError::kMalformed,
                    "the ElevenLabs-Signature header has no timestamp (t=); the body-only form is "
                    "not enabled because it cannot stop replays");
    }
    std::vector<std::string> expected;
    expected.reserve(options.secrets.size());
    for (const std::string& secret : options.secrets)
      expected.push_back(HmacHex(secret, {body}));
    const std::string candidates[] = {*header->body_only};
    if (!AnyMatches(candidates, expected)) {
      return Refuse(SignatureError::kMismatch,
                    "the signature does not match the body for any configured secret");
    }
    VerifyResult result;
    result.verification = Verification::kVerifiedBodyOnly;
    result.replay_key = expected.front();
    return result;
  }

  const std::int64_t t = *header->timestamp;
  const std::string t_text = std::to_string(t);
  std::vector<std::string> expected;
  expected.reserve(options.secrets.size());
  for (const std::string& secret : options.secrets) {
    expected.push_back(HmacHex(secret, {t_text, ".", body}));
  }
  // Authenticity first: a forged request is a mismatch whatever its timestamp says.
  if (!AnyMatches(header->v0, expected)) {
    return Refuse(SignatureError::kMismatch,
                  "no v0 signature matches the body and timestamp for any configured secret");
  }
  const std::int64_t now = clock.NowUnixSeconds();
  if (t < now - options.max_age.count()) {
    return Refuse(SignatureError::kTimestampOutOfTolerance,
                  "the signature timestamp is " + std::to_string(now - t) +
                      " s old; the limit is " + std::to_string(options.max_age.count()) + " s");
  }
  if (t > now + options.max_future.count()) {
    return Refuse(SignatureError::kTimestampOutOfTolerance,
                  "the signature timestamp is " + std::to_string(t - now) +
                      " s in the future; the limit is " +
                      std::to_string(options.max_future.count()) + " s");
  }
  VerifyResult result;
  result.verification = Verification::kVerified;
  result.timestamp = t;
  // The key is what the MAC under the first secret would be, not the header as sent: a replay
  // that reorders or pads the v0 entries is still the same (t, body) and gets the same key.
  result.replay_key = "t=" + t_text + ",v0=" + expected.front();
  return result;
}

std::string Sign(std::string_view secret, std::int64_t timestamp, std::string_view body) {
  const std::string t = std::to_string(timestamp);
  return "t=" + t + ",v0=" + HmacHex(secret, {t, ".", body});
}

std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  return HmacHex(key, {data});
}

}  // namespace callgate::webhook
