// Webhook signatures: ElevenLabs' `ElevenLabs-Signature: t=<unix>,v0=<hex>` scheme, verified and
// produced. Pure: no I/O; time comes from an injected core::Clock.
//
// The signed string is "<t>." followed by the raw request body exactly as received; the MAC is
// HMAC-SHA256 keyed with the secret's bytes, as 64 lowercase hex characters. Several `v0=`
// entries are accepted (the sender rotating its secret), and several secrets may be configured
// (the receiver rotating). Every candidate is compared in constant time with no early exit.
// The timestamp must be no older than `max_age` and no further than `max_future` ahead of the
// clock. The seed's older form (the header is the hex HMAC of the body alone) is accepted only
// when `allow_body_only` is set: it has no timestamp, so a captured request can be replayed
// forever; the inbox's replay memory is then the only defence.
//
// Sign() makes the header value; the forwarder and the simulator use it so that one verifier
// serves both directions. All functions are thread-safe.
#pragma once

#include "core/clock.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace callgate::webhook {

inline constexpr std::string_view kSignatureHeader = "ElevenLabs-Signature";

// Why a signature was refused. The code strings are part of the HTTP API (401 error codes).
enum class SignatureError {
  kMissing,                  // signature_missing: no header, or an empty one
  kMalformed,                // signature_malformed: not `t=<digits>,v0=<64 hex>[,v0=...]`
  kMismatch,                 // signature_mismatch: no v0 matches any configured secret
  kTimestampOutOfTolerance,  // timestamp_out_of_tolerance: authentic but too old or too new
};
std::string_view ErrorCode(SignatureError error);

// How an accepted request was authenticated; recorded with the stored event.
enum class Verification {
  kVerified,          // "verified": t=...,v0=... matched
  kVerifiedBodyOnly,  // "verified_body_only": the seed's form (allowed by option)
  kUnverified,        // "unverified": no secret configured, nothing was checked
};
std::string_view VerificationName(Verification verification);

struct VerifyOptions {
  // Any of these may have signed the request. Empty = verification is off (kUnverified).
  std::vector<std::string> secrets;
  std::chrono::seconds max_age{30 * 60};
  std::chrono::seconds max_future{5 * 60};
  bool allow_body_only = false;
};

// The header's fields, when it is well formed. A header with no `t=` is well formed only as
// the body-only form (a single bare 64-hex value, optionally prefixed `sha256=`).
struct SignatureHeader {
  std::optional<std::int64_t> timestamp;  // t=
  std::vector<std::string> v0;            // lowercase hex, in header order
  std::optional<std::string> body_only;   // the bare-hex form, lowercased
};

// At most this many v0 entries (bounds the work an attacker can ask for).
inline constexpr std::size_t kMaxSignatures = 8;

// nullopt when malformed. Parts are separated by ',' (whitespace around them ignored); `t=` must
// appear once with 1-15 digits; each `v0=` holds exactly 64 hex digits; other keys (a future
// `v1=`) are ignored; a part without '=' is malformed.
std::optional<SignatureHeader> ParseSignatureHeader(std::string_view value);

struct VerifyResult {
  std::optional<SignatureError> error;  // empty = accepted
  std::string message;                  // for the 401 body; never contains a secret or a MAC
  Verification verification = Verification::kUnverified;
  std::optional<std::int64_t> timestamp;
  // Identifies this signed delivery: "t=<t>,v0=<MAC under the first secret>" (or that MAC alone
  // for the body-only form), whatever order or extra entries the header had. The inbox remembers
  // it to recognise a replay. Empty when unverified.
  std::string replay_key;
  bool ok() const { return !error.has_value(); }
};

// `header` is the ElevenLabs-Signature value, or nullopt when the request had none.
VerifyResult Verify(std::optional<std::string_view> header, std::string_view body,
                    const VerifyOptions& options, const core::Clock& clock);

// The header value for `body` signed at `timestamp`: "t=<timestamp>,v0=<hex>".
std::string Sign(std::string_view secret, std::int64_t timestamp, std::string_view body);

// Lowercase hex HMAC-SHA256 of `data` keyed with `key`.
std::string HmacSha256Hex(std::string_view key, std::string_view data);

}  // namespace callgate::webhook
