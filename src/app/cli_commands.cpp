#include "app/cli_commands.hpp"

#include "app/adapters.hpp"
#include "app/build_info.hpp"

#include "audio/backends/device_backend.hpp"
#include "audio/backends/monotonic_clock.hpp"
#include "audio/backends/spec.hpp"
#include "calls/outbound.hpp"
#include "conversation/engine.hpp"
#include "conversation/transport.hpp"
#include "conversations/render.hpp"
#include "core/clock.hpp"
#include "core/worker.hpp"
#include "net/asio_scheduler.hpp"
#include "net/runtime.hpp"
#include "upstream/elevenlabs.hpp"
#include "upstream/http_client.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <boost/system/result.hpp>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

namespace callgate::app {
namespace {

// The upstream client on a small runtime of its own, for one command.
class Upstream {
 public:
  explicit Upstream(const config::Config& config)
      : runtime_(1),
        scheduler_(runtime_),
        http_(upstream::MakeHttpClient(
            runtime_, {.ca_file = config.elevenlabs_ca_file,
                       .user_agent = std::string("callgate-cli/") + BuildVersion()})),
        api_(*http_, scheduler_, clock_,
             {.base_url = config.elevenlabs_base_url,
              .api_key = config.elevenlabs_api_key,
              .timeout = config.upstream_timeout}),
        thread_([this] { runtime_.Run(); }) {}
  ~Upstream() {
    runtime_.Stop();
    thread_.join();
  }
  upstream::ElevenLabsClient& api() { return api_; }
  upstream::HttpClient& http() { return *http_; }

  // Runs `start(done)` and waits for `done`'s value.
  template <class T, class Start>
  T Wait(Start start) {
    std::promise<T> promise;
    auto future = promise.get_future();
    start([&promise](T value) { promise.set_value(std::move(value)); });
    return future.get();
  }

 private:
  core::SystemClock clock_;
  net::Runtime runtime_;
  net::AsioScheduler scheduler_;
  std::unique_ptr<upstream::HttpClient> http_;
  upstream::ElevenLabsClient api_;
  std::thread thread_;
};

int Fail(const upstream::ApiError& error) {
  const auto response = upstream::ToGatewayResponse(error, "cli");
  const auto body = boost::json::parse(response.body);
  std::fprintf(stderr, "callgate: %s\n",
               std::string(body.at("error").at("message").as_string()).c_str());
  return 1;
}

// Pulls `body` chunk by chunk into `path` ("-": standard output) without holding the whole
// recording in memory. A file is written as <path>.part and renamed once complete, so a cut
// download never leaves a truncated file under the final name. Returns the bytes written.
boost::system::result<std::uint64_t, std::string> DownloadTo(Upstream& upstream,
                                                             http::BodyStream& body,
                                                             const std::string& path) {
  const bool to_stdout = path == "-";
  const std::string part = path + ".part";
  std::FILE* out = to_stdout ? stdout : std::fopen(part.c_str(), "wb");
  if (out == nullptr) return "cannot write " + part + ": " + std::strerror(errno);
  auto fail = [&](std::string why) -> boost::system::result<std::uint64_t, std::string> {
    if (!to_stdout) {
      std::fclose(out);
      std::remove(part.c_str());
    }
    return why;
  };
  const std::optional<std::uint64_t> length = body.Length();
  std::uint64_t written = 0;
  while (true) {
    http::BodyChunk chunk = upstream.Wait<http::BodyChunk>([&](auto done) { body.Next(done); });
    if (chunk.kind == http::BodyChunk::Kind::kError) {
      return fail("the download was cut after " + std::to_string(written) +
                  " bytes: " + chunk.error);
    }
    if (chunk.kind == http::BodyChunk::Kind::kEnd) break;
    if (std::fwrite(chunk.data.data(), 1, chunk.data.size(), out) != chunk.data.size()) {
      return fail("cannot write " + (to_stdout ? std::string("to standard output") : part) + ": " +
                  std::strerror(errno));
    }
    written += chunk.data.size();
  }
  if (length && written != *length) {
    return fail("the download ended after " + std::to_string(written) + " of " +
                std::to_string(*length) + " announced bytes");
  }
  if (to_stdout) {
    if (std::fflush(stdout) != 0) return "cannot write to standard output";
    return written;
  }
  if (std::fclose(out) != 0) {
    std::remove(part.c_str());
    return "cannot write " + part + ": " + std::strerror(errno);
  }
  if (std::rename(part.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(part.c_str());
    return "cannot rename " + part + " to " + path + ": " + why;
  }
  return written;
}

std::string FormatTime(std::int64_t unix_secs) {
  const std::time_t t = static_cast<std::time_t>(unix_secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buffer;
}

std::int64_t IntOr(const boost::json::object& object, std::string_view key, std::int64_t fallback) {
  const auto* value = object.if_contains(key);
  return value != nullptr && value->is_number() ? value->to_number<std::int64_t>() : fallback;
}

std::string StringOr(const boost::json::object& object, std::string_view key,
                     std::string fallback = "") {
  const auto* value = object.if_contains(key);
  return value != nullptr && value->is_string() ? std::string(value->as_string()) : fallback;
}

void PrintConversation(const boost::json::object& upstream_conversation) {
  const auto rendered = conversations::RenderConversation(upstream_conversation, "");
  std::printf("Conversation %s\n", StringOr(rendered, "conversation_id").c_str());
  std::printf("  status:    %s\n", StringOr(rendered, "status").c_str());
  std::printf("  agent:     %s\n", StringOr(rendered, "agent_id").c_str());
  if (const auto* start = rendered.if_contains("start_time_unix_secs");
      start && start->is_number()) {
    std::printf("  started:   %s\n", FormatTime(start->to_number<std::int64_t>()).c_str());
  }
  if (const auto* duration = rendered.if_contains("duration_secs");
      duration && duration->is_number()) {
    std::printf("  duration:  %lld s\n",
                static_cast<long long>(duration->to_number<std::int64_t>()));
  }
  if (const auto* reason = rendered.if_contains("termination_reason");
      reason && reason->is_string()) {
    std::printf("  ended:     %s\n", std::string(reason->as_string()).c_str());
  }
  if (const auto* analysis = rendered.if_contains("analysis"); analysis && analysis->is_object()) {
    const auto summary = StringOr(analysis->as_object(), "transcript_summary");
    const auto result = StringOr(analysis->as_object(), "call_successful");
    if (!result.empty()) std::printf("  result:    %s\n", result.c_str());
    if (!summary.empty()) std::printf("  summary:   %s\n", summary.c_str());
  }
  const std::string text = StringOr(rendered, "transcript_text");
  std::printf("\n%s\n", text.empty() ? "(no transcript yet)" : text.c_str());
}

}  // namespace

int RunCall(const config::Config& config, const CallCommand& command) {
  boost::json::object body{{"to_number", command.to_number}, {"prompt", command.prompt}};
  if (!command.agent_id.empty()) body["agent_id"] = command.agent_id;
  if (!command.variables.empty()) {
    boost::json::object variables;
    for (const std::string& assignment : command.variables) {
      const auto equals = assignment.find('=');
      if (equals == std::string::npos || equals == 0) {
        std::fprintf(stderr, "callgate call: --var expects NAME=VALUE, got '%s'\n",
                     assignment.c_str());
        return 2;
      }
      variables[assignment.substr(0, equals)] = assignment.substr(equals + 1);
    }
    body["dynamic_variables"] = std::move(variables);
  }
  calls::OutboundOptions options{.default_agent_id = config.elevenlabs_agent_id,
                                 .agent_phone_number_id = config.elevenlabs_agent_phone_number_id,
                                 .from_number = config.elevenlabs_from_number};
  auto parsed = calls::ParseOutboundRequest(body, options);
  if (auto* error = std::get_if<calls::RequestError>(&parsed)) {
    std::fprintf(stderr, "callgate call: %s\n", error->message.c_str());
    return error->status == 400 ? 2 : 1;
  }
  const auto& request = std::get<calls::OutboundRequest>(parsed);

  Upstream upstream(config);
  calls::CallingNumberResolver resolver(upstream.api(), config.elevenlabs_agent_phone_number_id,
                                        config.elevenlabs_from_number);
  using Resolved = std::pair<std::optional<calls::CallingNumber>, std::optional<http::Response>>;
  const auto resolved = upstream.Wait<Resolved>([&](auto done) {
    resolver.Resolve("cli", [done](std::optional<calls::CallingNumber> number,
                                   std::optional<http::Response> error) {
      done(Resolved{std::move(number), std::move(error)});
    });
  });
  if (!resolved.first) {
    const auto error = boost::json::parse(resolved.second->body);
    std::fprintf(stderr, "callgate call: %s\n",
                 std::string(error.at("error").at("message").as_string()).c_str());
    return 1;
  }
  const auto placed = upstream.Wait<upstream::ApiResult<boost::json::object>>([&](auto done) {
    upstream.api().OutboundCall(resolved.first->sip_trunk,
                                calls::UpstreamCallBody(request, *resolved.first), done);
  });
  if (const auto* error = std::get_if<upstream::ApiError>(&placed)) return Fail(*error);
  const auto& answer = std::get<boost::json::object>(placed);
  const std::string conversation_id = StringOr(answer, "conversation_id");
  if (conversation_id.empty()) {
    std::fprintf(stderr, "callgate call: ElevenLabs did not place the call: %s\n",
                 StringOr(answer, "message", "no reason given").c_str());
    return 1;
  }
  std::printf("%s\n", conversation_id.c_str());
  std::fflush(stdout);
  if (!command.wait) return 0;

  std::string last_status;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(command.wait_timeout_secs);
  while (std::chrono::steady_clock::now() < deadline) {
    const auto fetched = upstream.Wait<upstream::ApiResult<boost::json::object>>(
        [&](auto done) { upstream.api().GetConversation(conversation_id, done); });
    if (const auto* error = std::get_if<upstream::ApiError>(&fetched)) {
      if (error->kind == upstream::ApiError::Kind::kStatus && error->upstream_status < 500 &&
          error->upstream_status != 429) {
        return Fail(*error);
      }
    } else {
      const auto& conversation = std::get<boost::json::object>(fetched);
      const std::string status = StringOr(conversation, "status");
      if (status != last_status) {
        std::fprintf(stderr, "status: %s\n", status.c_str());
        last_status = status;
      }
      if (status == "done" || status == "failed") {
        std::printf("\n");
        PrintConversation(conversation);
        return status == "done" ? 0 : 1;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(command.poll_interval_ms));
  }
  std::fprintf(stderr, "callgate call: the call had not ended after %d s (last status: %s)\n",
               command.wait_timeout_secs, last_status.c_str());
  return 1;
}

int RunConversations(const config::Config& config, const ConversationsCommand& command) {
  Upstream upstream(config);
  if (command.action == "list") {
    std::string query = "page_size=" + std::to_string(command.page_size);
    if (!command.cursor.empty()) query += "&cursor=" + upstream::EncodeComponent(command.cursor);
    if (!command.agent_id.empty()) {
      query += "&agent_id=" + upstream::EncodeComponent(command.agent_id);
    }
    const auto listed = upstream.Wait<upstream::ApiResult<boost::json::object>>(
        [&](auto done) { upstream.api().ListConversations(query, done); });
    if (const auto* error = std::get_if<upstream::ApiError>(&listed)) return Fail(*error);
    const auto& page = std::get<boost::json::object>(listed);
    std::printf("%-36s %-12s %-20s %8s %6s  %s\n", "CONVERSATION", "STATUS", "STARTED", "SECONDS",
                "TURNS", "RESULT");
    for (const auto& item : page.at("conversations").as_array()) {
      if (!item.is_object()) continue;
      const auto& c = item.as_object();
      std::printf("%-36s %-12s %-20s %8lld %6lld  %s\n", StringOr(c, "conversation_id").c_str(),
                  StringOr(c, "status").c_str(),
                  FormatTime(IntOr(c, "start_time_unix_secs", 0)).c_str(),
                  static_cast<long long>(IntOr(c, "call_duration_secs", 0)),
                  static_cast<long long>(IntOr(c, "message_count", 0)),
                  StringOr(c, "call_successful").c_str());
    }
    const auto* more = page.if_contains("has_more");
    if (more != nullptr && more->is_bool() && more->as_bool()) {
      std::printf("more: callgate conversations list --cursor %s\n",
                  StringOr(page, "next_cursor").c_str());
    }
    return 0;
  }
  if (command.conversation_id.empty()) {
    std::fprintf(stderr, "callgate conversations %s: a conversation id is required\n",
                 command.action.c_str());
    return 2;
  }
  if (command.action == "show") {
    const auto fetched = upstream.Wait<upstream::ApiResult<boost::json::object>>(
        [&](auto done) { upstream.api().GetConversation(command.conversation_id, done); });
    if (const auto* error = std::get_if<upstream::ApiError>(&fetched)) return Fail(*error);
    PrintConversation(std::get<boost::json::object>(fetched));
    return 0;
  }
  if (command.action == "audio") {
    auto opened = upstream.Wait<upstream::ApiResult<upstream::AudioStream>>(
        [&](auto done) { upstream.api().OpenConversationAudio(command.conversation_id, done); });
    if (const auto* error = std::get_if<upstream::ApiError>(&opened)) return Fail(*error);
    const auto& audio = std::get<upstream::AudioStream>(opened);
    const std::string path =
        command.output.empty() ? command.conversation_id + ".mp3" : command.output;
    const auto downloaded = DownloadTo(upstream, *audio.body, path);
    if (!downloaded) {
      std::fprintf(stderr, "callgate conversations audio: %s\n", downloaded.error().c_str());
      return 1;
    }
    if (path != "-") {
      std::fprintf(stderr, "wrote %llu bytes of %s to %s\n",
                   static_cast<unsigned long long>(*downloaded), audio.content_type.c_str(),
                   path.c_str());
    }
    return 0;
  }
  std::fprintf(stderr, "callgate conversations: unknown action '%s'\n", command.action.c_str());
  return 2;
}

int RunWebhooks(const config::Config& config, const WebhooksCommand& command) {
  if (command.action != "replay" || command.event_id.empty()) {
    std::fprintf(stderr, "callgate webhooks: usage: callgate webhooks replay EVENT_ID\n");
    return 2;
  }
  const std::string base = !command.gateway_url.empty()
                               ? command.gateway_url
                               : "http://127.0.0.1:" + std::to_string(config.port);
  Upstream upstream(config);
  upstream::HttpRequest request;
  request.method = "POST";
  request.url =
      base + "/api/webhooks/events/" + upstream::EncodeComponent(command.event_id) + "/replay";
  if (!config.api_keys.empty()) request.headers.Set("X-API-Key", config.api_keys.front());
  const auto outcome = upstream.Wait<upstream::HttpOutcome>(
      [&](auto done) { upstream.http().Send(std::move(request), done); });
  if (const auto* failure = std::get_if<upstream::HttpFailure>(&outcome)) {
    std::fprintf(stderr, "callgate webhooks replay: the gateway at %s: %s\n", base.c_str(),
                 failure->message.c_str());
    return 1;
  }
  const auto& response = std::get<upstream::HttpResponse>(outcome);
  std::printf("%s\n", response.body.c_str());
  return response.status == 202 ? 0 : 1;
}

int RunAudioDevices() {
  auto devices = audio::backends::ListDevices();
  if (!devices) {
    std::fprintf(stderr, "callgate audio devices: %s\n", devices.error().detail.c_str());
    return 1;
  }
  std::printf("%s", audio::backends::FormatDeviceList(*devices).c_str());
  if (devices->empty()) {
    std::printf("no audio devices: use AUDIO_INPUT/AUDIO_OUTPUT=file:PATH or null\n");
  }
  return 0;
}

int RunTalk(const config::Config& config, const TalkCommand& command) {
  const std::string agent_id =
      command.agent_id.empty() ? config.elevenlabs_agent_id : command.agent_id;
  if (agent_id.empty()) {
    std::fprintf(stderr, "callgate talk: no agent: pass --agent-id or set ELEVENLABS_AGENT_ID\n");
    return 2;
  }
  const auto input = audio::backends::ParseBackendSpec(
      command.input.empty() ? config.audio_input.ToString() : command.input);
  const auto output = audio::backends::ParseBackendSpec(
      command.output.empty() ? config.audio_output.ToString() : command.output);
  if (!input || !output) {
    std::fprintf(stderr, "callgate talk: %s\n",
                 (!input ? input.error() : output.error()).message.c_str());
    return 2;
  }
  conversation::SessionRequest request;
  request.agent_id = agent_id;
  request.input = *input;
  request.output = *output;
  for (const std::string& assignment : command.variables) {
    const auto equals = assignment.find('=');
    if (equals == std::string::npos || equals == 0) {
      std::fprintf(stderr, "callgate talk: --var expects NAME=VALUE, got '%s'\n",
                   assignment.c_str());
      return 2;
    }
    request.initiation.dynamic_variables[assignment.substr(0, equals)] =
        assignment.substr(equals + 1);
  }

  core::SystemClock clock;
  audio::backends::MonotonicClock audio_clock;
  net::Runtime runtime(2);
  net::AsioScheduler scheduler(runtime);
  auto http = upstream::MakeHttpClient(
      runtime, {.ca_file = config.elevenlabs_ca_file,
                .user_agent = std::string("callgate-cli/") + BuildVersion()});
  upstream::ElevenLabsClient api(*http, scheduler, clock,
                                 {.base_url = config.elevenlabs_base_url,
                                  .api_key = config.elevenlabs_api_key,
                                  .timeout = config.upstream_timeout});
  auto transports =
      conversation::MakeWebSocketTransportFactory(runtime, {.ca_file = config.elevenlabs_ca_file});
  core::Worker worker("audio", 64);
  int exit_code = 1;
  std::mutex print_mutex;
  // The conversation ends (on_done, or a second Ctrl-C); then the engine is destroyed while
  // the runtime still runs, as its contract asks, and only then the runtime stops.
  auto finished = std::make_shared<std::promise<void>>();
  auto finished_once = std::make_shared<std::once_flag>();
  auto finish = [finished, finished_once] {
    std::call_once(*finished_once, [&finished] { finished->set_value(); });
  };
  auto engine = std::make_unique<conversation::Engine>(
      conversation::EngineDependencies{api, *transports, worker, clock, audio_clock},
      EngineOptionsFrom(config));
  request.on_transcript = [&print_mutex](const conversation::TranscriptUpdate& update) {
    if (update.kind == conversation::TranscriptUpdate::Kind::kTentative) return;
    std::lock_guard lock(print_mutex);
    const bool agent = update.turn.role == conversation::Turn::Role::kAgent;
    std::printf(
        "%s%s: %s\n",
        update.kind == conversation::TranscriptUpdate::Kind::kCorrected ? "(corrected) " : "",
        agent ? "Agent" : "You", update.turn.text.c_str());
    std::fflush(stdout);
  };
  request.on_done = [&exit_code, &print_mutex, finish](const conversation::SessionStats& stats) {
    const std::string reason = stats.end_reason ? stats.end_reason->ToString() : "ended";
    const std::string code = stats.end_reason ? stats.end_reason->code : "";
    exit_code = code == "stopped" || code == "agent_ended" || code == "server_closed" ? 0 : 1;
    {
      std::lock_guard lock(print_mutex);
      std::fprintf(stderr, "conversation %s ended: %s\n",
                   stats.conversation_id.empty() ? "-" : stats.conversation_id.c_str(),
                   reason.c_str());
    }
    finish();
  };
  auto started = engine->Start(std::move(request));
  if (auto* error = std::get_if<conversation::StartError>(&started)) {
    std::fprintf(stderr, "callgate talk: %s\n", error->message.c_str());
    return 1;
  }
  auto session = std::get<std::shared_ptr<conversation::Session>>(started);
  std::fprintf(stderr, "talking to %s (input %s, output %s); Ctrl-C ends the conversation\n",
               agent_id.c_str(), input->ToString().c_str(), output->ToString().c_str());
  auto signals_seen = std::make_shared<std::atomic<int>>(0);
  runtime.OnStopSignal([session, signals_seen, finish](int) {
    if (signals_seen->fetch_add(1) > 0) {
      finish();  // a second Ctrl-C: stop waiting for a clean end
      return;
    }
    session->Stop();
  });
  std::thread io([&runtime] { runtime.Run(); });
  finished->get_future().wait();
  session.reset();
  engine.reset();  // Shutdown(): waits for the session's last steps on the running runtime
  // Let the connection's last handlers run (they release the session), then stop; a runtime
  // that stays busy is stopped after a grace period.
  runtime.StopWhenIdle();
  auto drained = std::async(std::launch::async, [&io] { io.join(); });
  if (drained.wait_for(std::chrono::seconds(3)) != std::future_status::ready) {
    runtime.Stop();
  }
  drained.wait();
  return exit_code;
}

}  // namespace callgate::app
