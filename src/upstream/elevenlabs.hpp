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

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <functional>
#include <memory>
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

// A recording still on its way: the upstream's head is in, the bytes are pulled from `body`
// (chunks of at most HttpClientOptions::stream_chunk_bytes; Length() is the upstream's
// Content-Length when it sent one). Dropping `body` before its end closes the upstream connection.
struct AudioStream {
  std::string content_type;  // "audio/mpeg"
  std::shared_ptr<http::BodyStream> body;
};

// GET /v1/convai/conversations/{id} as received, for a caller that renders it at once: the
// 2xx body's bytes and the members the gateway renders, parsed from them
// (GetConversationDocument, conversation_parse.hpp).
struct ConversationDocument {
  // The monotonic arena `object` lives in; declared first so that it outlives `object`. Values
  // built with object.storage() take parts of it by move, without copies. The storage is not
  // reference-counted, so neither `object` nor those values visit their nodes when they go: the
  // arena frees its blocks at once. Hence values built with that storage must not outlive the
  // document. The arena is not thread-safe: the document belongs to one thread at a time.
  std::unique_ptr<boost::json::monotonic_resource> arena;
  // Only the members conversations/render.hpp reads (ParseConversationForRender); the whole
  // document is `body`.
  boost::json::object object;
  std::string body;  // the JSON text as received
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
  // The same request, checks and errors as GetConversation, for the gateway's own rendering:
  // the body is kept and the rendered members live in an arena (see ConversationDocument). The
  // default implementation (for fakes) serializes GetConversation's object as the body and
  // parses it as the client does.
  virtual void GetConversationDocument(std::string conversation_id,
                                       std::function<void(ApiResult<ConversationDocument>)> done);
  // GET /v1/convai/conversations?<query> (the query string is passed through, already encoded).
  virtual void ListConversations(std::string query,
                                 std::function<void(ApiResult<boost::json::object>)> done) = 0;
  // GET /v1/convai/conversations/{id}/audio, held whole in memory.
  virtual void GetConversationAudio(std::string conversation_id,
                                    std::function<void(ApiResult<Audio>)> done) = 0;
  // GET /v1/convai/conversations/{id}/audio, streamed: answers as soon as a 2xx head with an
  // audio/* Content-Type is in. Errors are those of GetConversationAudio (the small body of an
  // error answer is read whole and parsed); retries happen only before a stream is handed over.
  // The default implementation (for fakes) serves GetConversationAudio's bytes from memory.
  virtual void OpenConversationAudio(std::string conversation_id,
                                     std::function<void(ApiResult<AudioStream>)> done);
  // GET /v1/convai/conversation/get-signed-url?agent_id=...: the signed wss:// URL.
  virtual void GetSignedUrl(std::string agent_id,
                            std::function<void(ApiResult<std::string>)> done) = 0;
};

struct ElevenLabsOptions {
  std::string base_url = "https://api.elevenlabs.io";  // no trailing slash needed
  std::string api_key;
  std::chrono::milliseconds timeout{10'000};  // per operation, retries included
  // GetConversationAudio: the whole download, retries included. OpenConversationAudio: up to the
  // head, retries included; then `timeout` bounds the wait for each chunk of the body.
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
  void GetConversationDocument(std::string conversation_id,
                               std::function<void(ApiResult<ConversationDocument>)> done) override;
  void ListConversations(std::string query,
                         std::function<void(ApiResult<boost::json::object>)> done) override;
  void GetConversationAudio(std::string conversation_id,
                            std::function<void(ApiResult<Audio>)> done) override;
  void OpenConversationAudio(std::string conversation_id,
                             std::function<void(ApiResult<AudioStream>)> done) override;
  void GetSignedUrl(std::string agent_id,
                    std::function<void(ApiResult<std::string>)> done) override;

  const ElevenLabsOptions& options() const { return options_; }

 private:
  struct Call;
  struct StreamCall;
  // Runs `call` (with retries) and hands the final 2xx answer or error to its callback.
  void Execute(std::shared_ptr<Call> call);
  void Attempt(std::shared_ptr<Call> call);
  void AttemptStream(std::shared_ptr<StreamCall> call);
  // Schedules `again` after the retry policy's delay for `error`; false (nothing scheduled) when
  // the policy gives up or the delay would cross `deadline`.
  bool ScheduleRetry(const std::string& what, RequestSafety safety, const ApiError& error,
                     int attempt, core::SystemTime deadline, std::function<void()> again);
  HttpRequest BaseRequest(const std::string& method, const std::string& path,
                          core::SystemTime deadline) const;

  HttpClient& http_;
  core::Scheduler& scheduler_;
  core::Clock& clock_;
  ElevenLabsOptions options_;
  std::function<double()> jitter_;
};

}  // namespace callgate::upstream
