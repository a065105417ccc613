// Fuzz target: the webhook's parsers. The input is "<ElevenLabs-Signature value>\n<body>".
// Beyond "no crash", it checks their contracts:
//   - a parsed header has a timestamp and 1-8 lowercase 64-hex v0 entries, or is the body-only
//     form; a verified request's replay key is the MAC the secret gives for (t, body);
//   - Sign() always verifies (round trip);
//   - the one-pass event parse and the whole-tree parse agree (result or error);
//   - a parsed event has a type, the required fields of its kind, and an audio event a file-safe
//     conversation id and non-empty bytes; an error has a known code, and an invalid_json error
//     a position inside the body;
//   - the banner of any event contains no control character but '\n', and the log line is JSON.
// The signature secret is fixed ("fuzz-secret") and the clock stands at 1700000000, so corpus
// entries signed with them reach the verified path (see fuzz/corpus/webhook_fuzz/README).
#include "webhook/banner.hpp"
#include "webhook/event.hpp"
#include "webhook/signature.hpp"

#include <boost/json/parse.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

// libFuzzer's entry point (declared here: -Wmissing-declarations).
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

using namespace callgate;

constexpr std::int64_t kNow = 1'700'000'000;
constexpr char kSecret[] = "fuzz-secret";

void CheckHeader(std::string_view header) {
  const auto parsed = webhook::ParseSignatureHeader(header);
  if (!parsed) return;
  if (parsed->body_only) {
    if (parsed->body_only->size() != 64 || parsed->timestamp || !parsed->v0.empty()) std::abort();
    return;
  }
  if (!parsed->timestamp || *parsed->timestamp < 0) std::abort();
  if (parsed->v0.empty() || parsed->v0.size() > webhook::kMaxSignatures) std::abort();
  for (const std::string& v0 : parsed->v0) {
    if (v0.size() != 64) std::abort();
    for (char c : v0) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) std::abort();
    }
  }
}

void CheckVerify(std::string_view header, std::string_view body) {
  const core::ManualClock clock(core::SystemTime{std::chrono::seconds(kNow)});
  webhook::VerifyOptions options;
  options.secrets = {kSecret};
  options.allow_body_only = !body.empty() && (body.front() & 1) != 0;
  const webhook::VerifyResult result = webhook::Verify(header, body, options, clock);
  if (result.ok()) {
    if (result.verification == webhook::Verification::kVerified) {
      if (!result.timestamp) std::abort();
      const std::string expected =
          "t=" + std::to_string(*result.timestamp) + ",v0=" +
          webhook::HmacSha256Hex(kSecret,
                                 std::to_string(*result.timestamp) + "." + std::string(body));
      if (result.replay_key != expected) std::abort();
      if (*result.timestamp < kNow - 30 * 60 || *result.timestamp > kNow + 5 * 60) std::abort();
    } else if (result.verification == webhook::Verification::kVerifiedBodyOnly) {
      if (!options.allow_body_only) std::abort();
      if (result.replay_key != webhook::HmacSha256Hex(kSecret, body)) std::abort();
    } else {
      std::abort();  // a secret is configured: never unverified
    }
  } else if (result.message.empty()) {
    std::abort();
  }
  // Round trip: our own signature over this body always verifies.
  if (!webhook::Verify(webhook::Sign(kSecret, kNow, body), body, options, clock).ok()) {
    std::abort();
  }
}

// The one-pass envelope parse and the whole-tree parse must agree on every body.
void CheckBothParsesAgree(std::string_view body, const webhook::EventResult& one_pass) {
  const webhook::EventResult tree = webhook::ParseEventWithTree(std::string(body));
  if (one_pass.has_value() != tree.has_value()) std::abort();
  if (!one_pass) {
    const auto& a = one_pass.error();
    const auto& b = tree.error();
    if (a.code != b.code || a.field != b.field || a.message != b.message || a.offset != b.offset) {
      std::abort();
    }
    return;
  }
  const webhook::Event& a = *one_pass;
  const webhook::Event& b = *tree;
  if (a.type != b.type || a.kind != b.kind || a.event_timestamp != b.event_timestamp ||
      a.conversation_id != b.conversation_id || a.agent_id != b.agent_id || a.raw != b.raw ||
      a.raw != body || a.audio.has_value() != b.audio.has_value() ||
      a.failure.has_value() != b.failure.has_value()) {
    std::abort();
  }
  if (a.failure && (a.failure->failure_reason != b.failure->failure_reason ||
                    a.failure->provider != b.failure->provider)) {
    std::abort();
  }
}

void CheckEvent(std::string_view body) {
  webhook::EventResult result = webhook::ParseEvent(std::string(body));
  CheckBothParsesAgree(body, result);
  if (!result) {
    const webhook::EventError& error = result.error();
    if (error.code == "invalid_json") {
      if (!error.offset || *error.offset > body.size() || error.line < 1) std::abort();
    } else if (error.code != "missing_field" && error.code != "invalid_field" &&
               error.code != "invalid_audio") {
      std::abort();
    }
    if (error.message.empty()) std::abort();
    return;
  }
  webhook::Event& event = *result;
  if (event.type.empty()) std::abort();
  switch (event.kind) {
    case webhook::EventType::kPostCallTranscription:
      if (!TranscriptionOf(event) || event.conversation_id.empty()) std::abort();
      break;
    case webhook::EventType::kPostCallAudio:
      if (!event.audio || event.audio->mp3.empty()) std::abort();
      if (!webhook::IsSafeConversationId(event.conversation_id)) std::abort();
      if (webhook::DataOf(event).contains("full_audio")) std::abort();
      break;
    case webhook::EventType::kCallInitiationFailure:
      if (!event.failure || event.failure->failure_reason.empty()) std::abort();
      break;
    case webhook::EventType::kOther:
      break;
  }

  webhook::StoredEvent stored;
  stored.event_id = "evt_fuzz";
  stored.type = event.type;
  stored.conversation_id = event.conversation_id;
  stored.agent_id = event.agent_id;
  stored.event_timestamp = event.event_timestamp;
  stored.verification = "verified";
  stored.event = std::make_shared<webhook::Event>(std::move(event));
  const std::string banner =
      webhook::RenderBanner(stored, "", {.max_field_chars = 40, .max_message_chars = 80});
  for (char c : banner) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\n') || u == 0x7F) std::abort();
  }
  boost::system::error_code ec;
  boost::json::parse(webhook::RenderLogLine(stored, ""), ec);
  if (ec) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  const std::string_view header = input.substr(0, newline);
  const std::string_view body =
      newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);
  CheckHeader(header);
  CheckVerify(header, body);
  CheckEvent(body);
  if (const auto decoded = webhook::DecodeBase64(body)) {
    if (decoded->size() > body.size() / 4 * 3) std::abort();
  }
  return 0;
}
