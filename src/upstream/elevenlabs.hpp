// The ElevenLabs Conversational AI API as callgate uses it: one interface (fakeable in tests)
// and the client that implements it over upstream::HttpClient. Every call to ElevenLabs goes
// through here: the xi-api-key header, ELEVENLABS_BASE_URL, the total timeout (a caller is
// answered within it, retries included), the retry policy (retry_policy.hpp) and the parsing of
// every documented error shape (api_error.hpp).
//
// Results arrive through callbacks, on an I/O thread or a scheduler thread; never inline.
#pragma once

#include "core/clock.hpp"
#include "core/scheduler.hpp"
#include "upstream/api_error.hpp"
#include "upstream/http_client.hpp"
#include "upstream/retry_policy.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <variant>
#include <vector>

namespace callgate::upstream {

template <class T>
using ApiResult = std::variant<T, ApiError>;

struct PhoneNumber {
  std::string phone_number_id;
  std::string phone_number;  // E.164
  std::string provider;      // "twilio" | "sip_trunk"
  std::string label;
};

struct Audio {
  std::string content_type;  // "audio/mpeg"
  std::string bytes;
};

class ElevenLabsApi {
 public:
  virtual ~ElevenLabsApi() = default;
  // POST /v1/convai/twilio/outbound-call (or /sip-trunk/outbound-call). `body` is sent as is.
  // The answer ({success, message, conversation_id, callSid|sip_call_id}) is returned whole.
  virtual void OutboundCall(bool sip_trunk, boost::json::object body,
                            std::function<void(ApiResult<boost::json::object>)> done) = 0;
  // GET /v1/convai/phone-numbers.
  virtual void ListPhoneNumbers(std::function<void(ApiResult<std::vector<PhoneNumber>>)> done) = 0;
  // GET /v1/convai/conversations/{id}.
  virtual void GetConversation(std::string conversation_id,
                               std::function<void(ApiResult<boost::json::object>)> done) = 0;
  // GET /v1/convai/conversations?<query> (the query string is passed through, already encoded).
  virtual void ListConversations(std::string query,
                                 std::function<void(ApiResult<boost::json::object>)> done) = 0;
  // GET /v1/convai/conversations/{id}/audio.
  virtual void GetConversationAudio(std::string conversation_id,
                                    std::function<void(ApiResult<Audio>)> done) = 0;
  // GET /v1/convai/conversation/get-signed-url?agent_id=...: the signed wss:// URL.
  virtual void GetSignedUrl(std::string agent_id,
                            std::function<void(ApiResult<std::string>)> done) = 0;
};

struct ElevenLabsOptions {
  std::string base_url = "https://api.elevenlabs.io";  // no trailing slash needed
  std::string api_key;
  std::chrono::milliseconds timeout{10'000};  // per operation, retries included
  std::chrono::milliseconds audio_timeout{60'000};
  std::size_t max_audio_bytes = 256 * 1024 * 1024;
  RetryPolicy retry;
};

// Percent-encodes one path segment or query value (RFC 3986 unreserved characters kept).
std::string EncodeComponent(std::string_view text);

class ElevenLabsClient final : public ElevenLabsApi {
 public:
  // `clock` measures the operation deadline; `jitter` returns [0, 1) (random by default).
  ElevenLabsClient(HttpClient& http, core::Scheduler& scheduler, core::Clock& clock,
                   ElevenLabsOptions options, std::function<double()> jitter = {});

  void OutboundCall(bool sip_trunk, boost::json::object body,
                    std::function<void(ApiResult<boost::json::object>)> done) override;
  void ListPhoneNumbers(std::function<void(ApiResult<std::vector<PhoneNumber>>)> done) override;
  void GetConversation(std::string conversation_id,
                       std::function<void(ApiResult<boost::json::object>)> done) override;
  void ListConversations(std::string query,
                         std::function<void(ApiResult<boost::json::object>)> done) override;
  void GetConversationAudio(std::string conversation_id,
                            std::function<void(ApiResult<Audio>)> done) override;
  void GetSignedUrl(std::string agent_id,
                    std::function<void(ApiResult<std::string>)> done) override;

  const ElevenLabsOptions& options() const { return options_; }

 private:
  struct Call;
  // Runs `call` (with retries) and hands the final 2xx answer or error to its callback.
  void Execute(std::shared_ptr<Call> call);
  void Attempt(std::shared_ptr<Call> call);

  HttpClient& http_;
  core::Scheduler& scheduler_;
  core::Clock& clock_;
  ElevenLabsOptions options_;
  std::function<double()> jitter_;
};

}  // namespace callgate::upstream
