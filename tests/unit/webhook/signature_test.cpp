// Signature verification against MACs made by the openssl command-line tool.
#include "webhook/signature.hpp"

#include "openssl_cli.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace callgate::webhook {
namespace {

using namespace std::chrono_literals;
using testing::OpensslHmacHex;

constexpr char kSecret[] = "wsec_test_0123456789abcdef";
constexpr char kBody[] =
    R"({"type":"post_call_transcription","event_timestamp":1739537297,"data":{"conversation_id":"conv_abc"}})";
constexpr std::int64_t kT = 1739537297;

// Precomputed with the openssl CLI (not with the code under test):
//   printf '%s' '1739537297.{"type":"post_call_transcription","event_timestamp":1739537297,
//     "data":{"conversation_id":"conv_abc"}}' | openssl dgst -sha256 -hmac
//     'wsec_test_0123456789abcdef'
// (the body on one line, exactly kBody)
constexpr char kVectorMac[] = "dc741caa259fb00d402b46e8c4519bd3a803dd5aa8b7643cf041d708a36154f3";
//   printf '%s' '<kBody>' | openssl dgst -sha256 -hmac 'wsec_test_0123456789abcdef'
constexpr char kVectorBodyOnlyMac[] =
    "7688c585001ac2d70502403d8c16f9c71b4dd08f3c08711366650dd400e61538";

core::ManualClock ClockAt(std::int64_t unix_seconds) {
  return core::ManualClock(core::SystemTime{std::chrono::seconds(unix_seconds)});
}

VerifyOptions Options(std::vector<std::string> secrets = {kSecret}) {
  VerifyOptions options;
  options.secrets = std::move(secrets);
  return options;
}

std::string Header(std::int64_t t, const std::string& mac) {
  return "t=" + std::to_string(t) + ",v0=" + mac;
}

std::optional<SignatureError> ErrorOf(const std::string& header, std::string_view body,
                                      const VerifyOptions& options, const core::Clock& clock) {
  return Verify(header, body, options, clock).error;
}

TEST(Signature, CommittedVectorVerifies) {
  const auto clock = ClockAt(kT + 10);
  const VerifyResult result = Verify(Header(kT, kVectorMac), kBody, Options(), clock);
  EXPECT_TRUE(result.ok()) << result.message;
  EXPECT_EQ(result.verification, Verification::kVerified);
  EXPECT_EQ(result.timestamp, kT);
  EXPECT_EQ(Sign(kSecret, kT, kBody), Header(kT, kVectorMac));
  EXPECT_EQ(HmacSha256Hex(kSecret, kBody), kVectorBodyOnlyMac);
}

TEST(Signature, MatchesTheOpensslCliOnFreshInputs) {
  const std::string body = R"({"type":"x","data":{"text":"caf\u00e9 ✓ \n\"quoted\""}})";
  for (std::int64_t t : {std::int64_t{1'700'000'000}, std::int64_t{1'800'000'123}}) {
    const std::string mac = OpensslHmacHex(kSecret, std::to_string(t) + "." + body);
    ASSERT_EQ(mac.size(), 64u) << "the openssl CLI did not answer";
    EXPECT_EQ(Sign(kSecret, t, body), Header(t, mac));
    const auto clock = ClockAt(t);
    EXPECT_TRUE(Verify(Header(t, mac), body, Options(), clock).ok());
  }
  // A large body (hashed in one pass without concatenating copies).
  const std::string big(3 * 1024 * 1024 + 7, 'z');
  const std::string mac = OpensslHmacHex(kSecret, "1700000000." + big);
  ASSERT_EQ(mac.size(), 64u);
  const auto clock = ClockAt(1'700'000'000);
  EXPECT_TRUE(Verify(Header(1'700'000'000, mac), big, Options(), clock).ok());
}

TEST(Signature, ATamperedByteIsAMismatch) {
  const auto clock = ClockAt(kT);
  std::string body = kBody;
  body[body.find("conv_abc") + 5] = 'X';
  EXPECT_EQ(ErrorOf(Header(kT, kVectorMac), body, Options(), clock), SignatureError::kMismatch);
  // A tampered MAC, timestamp, secret or a trailing byte: all mismatches.
  std::string mac = kVectorMac;
  mac[10] = mac[10] == 'a' ? 'b' : 'a';
  EXPECT_EQ(ErrorOf(Header(kT, mac), kBody, Options(), clock), SignatureError::kMismatch);
  EXPECT_EQ(ErrorOf(Header(kT - 1, kVectorMac), kBody, Options(), clock),
            SignatureError::kMismatch);
  EXPECT_EQ(ErrorOf(Header(kT, kVectorMac), kBody, Options({"another-secret-xyz"}), clock),
            SignatureError::kMismatch);
  EXPECT_EQ(ErrorOf(Header(kT, kVectorMac), std::string(kBody) + " ", Options(), clock),
            SignatureError::kMismatch);
}

TEST(Signature, UppercaseHexIsAccepted) {
  const auto clock = ClockAt(kT);
  std::string upper = kVectorMac;
  for (char& c : upper)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(Verify(Header(kT, upper), kBody, Options(), clock).ok());
}

TEST(Signature, StaleAndFutureTimestampsAreRefused) {
  const VerifyOptions options = Options();
  {
    const auto clock = ClockAt(kT + 30 * 60);  // exactly 30 minutes old: still accepted
    EXPECT_TRUE(Verify(Header(kT, kVectorMac), kBody, options, clock).ok());
  }
  {
    const auto clock = ClockAt(kT + 30 * 60 + 1);
    const VerifyResult result = Verify(Header(kT, kVectorMac), kBody, options, clock);
    EXPECT_EQ(result.error, SignatureError::kTimestampOutOfTolerance);
    EXPECT_NE(result.message.find("1801 s old"), std::string::npos) << result.message;
  }
  {
    const auto clock = ClockAt(kT - 5 * 60);  // 5 minutes ahead: accepted
    EXPECT_TRUE(Verify(Header(kT, kVectorMac), kBody, options, clock).ok());
  }
  {
    const auto clock = ClockAt(kT - 5 * 60 - 1);
    const VerifyResult result = Verify(Header(kT, kVectorMac), kBody, options, clock);
    EXPECT_EQ(result.error, SignatureError::kTimestampOutOfTolerance);
    EXPECT_NE(result.message.find("future"), std::string::npos) << result.message;
  }
  // Both bounds are configurable.
  VerifyOptions tight = options;
  tight.max_age = 10s;
  tight.max_future = 0s;
  const auto clock = ClockAt(kT + 11);
  EXPECT_EQ(ErrorOf(Header(kT, kVectorMac), kBody, tight, clock),
            SignatureError::kTimestampOutOfTolerance);
  const auto ahead = ClockAt(kT - 1);
  EXPECT_EQ(ErrorOf(Header(kT, kVectorMac), kBody, tight, ahead),
            SignatureError::kTimestampOutOfTolerance);
  // A forged signature is a mismatch whatever its timestamp.
  const auto late = ClockAt(kT + 100'000);
  EXPECT_EQ(ErrorOf(Header(kT, std::string(64, 'a')), kBody, options, late),
            SignatureError::kMismatch);
}

TEST(Signature, RotationWithTwoV0sAndTwoSecrets) {
  const auto clock = ClockAt(kT);
  const std::string other =
      OpensslHmacHex("old-secret-987654321", std::to_string(kT) + "." + kBody);
  ASSERT_EQ(other.size(), 64u);
  // The sender signs with both its old and new secret; we know only the new one, or the old.
  const std::string both = Header(kT, other) + ",v0=" + kVectorMac;
  EXPECT_TRUE(Verify(both, kBody, Options(), clock).ok());
  EXPECT_TRUE(Verify(both, kBody, Options({"old-secret-987654321"}), clock).ok());
  // The match may come first or last in the header.
  EXPECT_TRUE(Verify(Header(kT, kVectorMac) + ",v0=" + other, kBody, Options(), clock).ok());
  // We hold two secrets (receiver rotation), the sender signs with one.
  EXPECT_TRUE(
      Verify(Header(kT, other), kBody, Options({kSecret, "old-secret-987654321"}), clock).ok());
  EXPECT_TRUE(
      Verify(Header(kT, kVectorMac), kBody, Options({"old-secret-987654321", kSecret}), clock)
          .ok());
  // Neither matches.
  EXPECT_EQ(ErrorOf(Header(kT, other) + ",v0=" + std::string(64, '0'), kBody, Options(), clock),
            SignatureError::kMismatch);
}

TEST(Signature, ReplayKeyIgnoresHowTheHeaderIsDressed) {
  const auto clock = ClockAt(kT);
  const std::string other(64, 'b');
  const auto a = Verify(Header(kT, kVectorMac), kBody, Options(), clock);
  const auto b =
      Verify(" t=" + std::to_string(kT) + " , v0=" + other + ",v0=" + kVectorMac + ",v1=whatever",
             kBody, Options(), clock);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok()) << b.message;
  EXPECT_FALSE(a.replay_key.empty());
  EXPECT_EQ(a.replay_key, b.replay_key);
  // Not the secret, and different for another timestamp.
  EXPECT_EQ(a.replay_key.find(kSecret), std::string::npos);
  const auto later = ClockAt(kT + 1);
  const auto c = Verify(Sign(kSecret, kT + 1, kBody), kBody, Options(), later);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(c.replay_key, a.replay_key);
}

TEST(Signature, MissingHeader) {
  const auto clock = ClockAt(kT);
  EXPECT_EQ(Verify(std::nullopt, kBody, Options(), clock).error, SignatureError::kMissing);
  EXPECT_EQ(Verify("", kBody, Options(), clock).error, SignatureError::kMissing);
  EXPECT_EQ(Verify("   ", kBody, Options(), clock).error, SignatureError::kMissing);
  EXPECT_EQ(ErrorCode(SignatureError::kMissing), "signature_missing");
}

TEST(Signature, MalformedHeaders) {
  const auto clock = ClockAt(kT);
  const std::string mac = kVectorMac;
  const std::string t = std::to_string(kT);
  for (const std::string& header : std::vector<std::string>{
           "v0=" + mac,                                  // no timestamp
           "t=" + t,                                     // no signature
           "t=" + t + ",v0=",                            // empty signature
           "t=" + t + ",v0=" + mac.substr(0, 63),        // short
           "t=" + t + ",v0=" + mac + "0",                // long
           "t=" + t + ",v0=" + mac.substr(0, 63) + "g",  // not hex
           "t=abc,v0=" + mac,                            // timestamp not digits
           "t=-5,v0=" + mac,                             // negative
           "t=" + t + "x,v0=" + mac,                     // trailing garbage
           "t=1234567890123456,v0=" + mac,               // 16 digits
           "t=" + t + ",t=" + t + ",v0=" + mac,          // two timestamps
           "t=" + t + ",,v0=" + mac,                     // empty part
           "t=" + t + ",v0=" + mac + ",",                // trailing comma
           "t=" + t + ",garbage,v0=" + mac,              // a part without '='
           "=x,t=" + t + ",v0=" + mac,                   // empty key
           "sha1=" + mac,                                // not a known form
           std::string("hello"),
       }) {
    const VerifyResult result = Verify(header, kBody, Options(), clock);
    EXPECT_EQ(result.error, SignatureError::kMalformed) << header;
  }
  // Too many v0 entries (bounded work).
  std::string many = "t=" + t;
  for (std::size_t i = 0; i <= kMaxSignatures; ++i)
    many += ",v0=" + std::string(64, 'a');
  EXPECT_EQ(Verify(many, kBody, Options(), clock).error, SignatureError::kMalformed);
  EXPECT_EQ(ErrorCode(SignatureError::kMalformed), "signature_malformed");
  EXPECT_EQ(ErrorCode(SignatureError::kMismatch), "signature_mismatch");
  EXPECT_EQ(ErrorCode(SignatureError::kTimestampOutOfTolerance), "timestamp_out_of_tolerance");
}

TEST(Signature, SeedBodyOnlyFormOnlyWhenEnabled) {
  const auto clock = ClockAt(kT + 1'000'000);  // no timestamp: the clock plays no part
  VerifyOptions options = Options();
  VerifyResult result = Verify(kVectorBodyOnlyMac, kBody, options, clock);
  EXPECT_EQ(result.error, SignatureError::kMalformed);
  EXPECT_NE(result.message.find("replays"), std::string::npos) << result.message;

  options.allow_body_only = true;
  result = Verify(kVectorBodyOnlyMac, kBody, options, clock);
  EXPECT_TRUE(result.ok()) << result.message;
  EXPECT_EQ(result.verification, Verification::kVerifiedBodyOnly);
  EXPECT_FALSE(result.replay_key.empty());
  EXPECT_TRUE(Verify(std::string("sha256=") + kVectorBodyOnlyMac, kBody, options, clock).ok());
  EXPECT_EQ(Verify(kVectorBodyOnlyMac, std::string(kBody) + "x", options, clock).error,
            SignatureError::kMismatch);
  // The timestamped form still works, and still checks its timestamp, with the option on.
  EXPECT_EQ(Verify(Header(kT, kVectorMac), kBody, options, clock).error,
            SignatureError::kTimestampOutOfTolerance);
}

TEST(Signature, NoSecretMeansUnverified) {
  const auto clock = ClockAt(kT);
  const VerifyResult result = Verify(std::nullopt, kBody, Options({}), clock);
  EXPECT_TRUE(result.ok());
  EXPECT_EQ(result.verification, Verification::kUnverified);
  EXPECT_TRUE(result.replay_key.empty());
  EXPECT_EQ(VerificationName(Verification::kUnverified), "unverified");
}

TEST(Signature, ParseKeepsEveryV0InOrder) {
  const auto parsed =
      ParseSignatureHeader("t=12,v0=" + std::string(64, 'A') + ",v1=zz,v0=" + std::string(64, 'b'));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->timestamp, 12);
  ASSERT_EQ(parsed->v0.size(), 2u);
  EXPECT_EQ(parsed->v0[0], std::string(64, 'a'));
  EXPECT_EQ(parsed->v0[1], std::string(64, 'b'));
}

}  // namespace
}  // namespace callgate::webhook
