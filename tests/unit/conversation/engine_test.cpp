// The session engine against the real simulator (REST + conversation WebSocket) served
// in-process by the real http::Server on 127.0.0.1, with file and null endpoints. A recording
// transport (the real one, wrapped) keeps every frame sent and received, so the tests compare
// what went over the wire with what the simulator saw and what ended up in the output WAV.
#include "conversation/engine.hpp"

#include "audio/backends/monotonic_clock.hpp"
#include "audio/codec.hpp"
#include "audio/speech.hpp"
#include "audio/vad.hpp"
#include "audio/wav.hpp"
#include "conversation/protocol.hpp"
#include "core/clock.hpp"
#include "http/dispatcher.hpp"
#include "net/asio_scheduler.hpp"
#include "net/runtime.hpp"
#include "sim/agent/conversation_service.hpp"
#include "sim/simulator.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/served_router.hpp"
#include "upstream/elevenlabs.hpp"
#include "upstream/http_client.hpp"

#include <openssl/sha.h>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <future>
#include <thread>

namespace callgate::conversation {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using audio::backends::BackendSpec;
using audio::backends::ParseBackendSpec;
using callgate::testing::Fetch;
using callgate::testing::ServedRouter;
using callgate::testing::TempDir;

constexpr char kKey[] = "sk_conversation_engine_7c1e";

// --- a transport that records the wire ------------------------------------------------------

struct Wire {
  mutable std::mutex mutex;
  std::vector<std::string> sent;
  std::vector<std::string> received;

  std::vector<std::string> Sent() const {
    std::lock_guard lock(mutex);
    return sent;
  }
  std::vector<std::string> Received() const {
    std::lock_guard lock(mutex);
    return received;
  }
};

class RecordingTransport final : public Transport {
 public:
  RecordingTransport(std::shared_ptr<Transport> inner, std::shared_ptr<Wire> wire)
      : inner_(std::move(inner)), wire_(std::move(wire)) {}

  void Connect(std::string url, Handlers handlers) override {
    handlers.on_text = [wire = wire_,
                        on_text = std::move(handlers.on_text)](std::string_view text) {
      {
        std::lock_guard lock(wire->mutex);
        wire->received.emplace_back(text);
      }
      on_text(text);
    };
    inner_->Connect(std::move(url), std::move(handlers));
  }
  bool Send(std::string frame) override {
    std::string copy = frame;
    if (!inner_->Send(std::move(frame))) return false;
    std::lock_guard lock(wire_->mutex);
    wire_->sent.push_back(std::move(copy));
    return true;
  }
  void Close(std::uint16_t code, std::string reason) override {
    inner_->Close(code, std::move(reason));
  }
  void StartTicker(std::chrono::milliseconds period, std::function<void()> tick,
                   TickerGroup::Warmer warmer) override {
    inner_->StartTicker(period, std::move(tick), std::move(warmer));
  }
  void StopTicker() override { inner_->StopTicker(); }
  std::chrono::steady_clock::time_point received_at() const override {
    return inner_->received_at();
  }
  void Post(std::function<void()> task) override { inner_->Post(std::move(task)); }
  void After(std::chrono::milliseconds delay, std::function<void()> task) override {
    inner_->After(delay, std::move(task));
  }
  void Abort() override { inner_->Abort(); }
  void Shutdown() override { inner_->Shutdown(); }

 private:
  std::shared_ptr<Transport> inner_;
  std::shared_ptr<Wire> wire_;
};

class RecordingFactory final : public TransportFactory {
 public:
  explicit RecordingFactory(std::unique_ptr<TransportFactory> inner) : inner_(std::move(inner)) {}
  metrics::LatencySummary tick_lateness() const override { return inner_->tick_lateness(); }
  std::shared_ptr<Transport> Create() override {
    auto wire = std::make_shared<Wire>();
    {
      std::lock_guard lock(mutex_);
      wires_.push_back(wire);
    }
    return std::make_shared<RecordingTransport>(inner_->Create(), wire);
  }
  std::shared_ptr<Wire> Last() const {
    std::lock_guard lock(mutex_);
    return wires_.empty() ? nullptr : wires_.back();
  }

 private:
  std::unique_ptr<TransportFactory> inner_;
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<Wire>> wires_;
};

// An ElevenLabsApi whose GetSignedUrl answers only when told to, or at once with a fixed URL.
class HeldApi final : public upstream::ElevenLabsApi {
 public:
  void OutboundCall(bool, json::object,
                    std::function<void(upstream::ApiResult<json::object>)>) override {}
  void ListPhoneNumbers(
      std::function<void(upstream::ApiResult<std::vector<upstream::PhoneNumber>>)>) override {}
  void GetConversation(std::string,
                       std::function<void(upstream::ApiResult<json::object>)>) override {}
  void ListConversations(std::string,
                         std::function<void(upstream::ApiResult<json::object>)>) override {}
  void GetConversationAudio(std::string,
                            std::function<void(upstream::ApiResult<upstream::Audio>)>) override {}
  void GetSignedUrl(std::string,
                    std::function<void(upstream::ApiResult<std::string>)> done) override {
    std::unique_lock lock(mutex_);
    if (!url_.empty()) {
      const std::string url = url_;
      lock.unlock();
      done(url);
      return;
    }
    pending_.push_back(std::move(done));
  }
  void AnswerWith(std::string url) {
    std::lock_guard lock(mutex_);
    url_ = std::move(url);
  }
  std::size_t pending() const {
    std::lock_guard lock(mutex_);
    return pending_.size();
  }
  void FailAll() {
    std::vector<std::function<void(upstream::ApiResult<std::string>)>> pending;
    {
      std::lock_guard lock(mutex_);
      pending.swap(pending_);
    }
    for (auto& done : pending)
      done(upstream::ApiError{.kind = upstream::ApiError::Kind::kTimeout, .message = "held"});
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::function<void(upstream::ApiResult<std::string>)>> pending_;
  std::string url_;
};

// --- signal helpers -------------------------------------------------------------------------

std::string Sha256Hex(const std::vector<std::uint8_t>& bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(bytes.data(), bytes.size(), digest);
  std::string hex;
  for (unsigned char byte : digest) {
    char two[3];
    std::snprintf(two, sizeof two, "%02x", byte);
    hex += two;
  }
  return hex;
}

// The raw bytes of every user_audio_chunk sent, in order.
std::vector<std::uint8_t> UserAudio(const Wire& wire) {
  std::vector<std::uint8_t> bytes;
  for (const auto& frame : wire.Sent()) {
    const auto value = json::parse(frame);
    const auto* chunk = value.as_object().if_contains("user_audio_chunk");
    if (chunk == nullptr) continue;
    auto decoded = Base64Decode(chunk->as_string());
    EXPECT_TRUE(decoded);
    if (decoded) bytes.insert(bytes.end(), decoded->begin(), decoded->end());
  }
  return bytes;
}

struct AgentAudio {
  std::int64_t event_id;
  std::vector<std::int16_t> samples;
};

// The audio events received (decoded in `format`), and the highest interruption event id.
std::vector<AgentAudio> ReceivedAudio(const Wire& wire, const audio::AudioFormat& format,
                                      std::optional<std::int64_t>* interrupted = nullptr) {
  std::vector<AgentAudio> events;
  for (const auto& frame : wire.Received()) {
    const auto parsed = ParseServerMessage(frame);
    if (!parsed.event) continue;
    if (const auto* audio = std::get_if<AudioChunk>(&*parsed.event)) {
      events.push_back({audio->event_id.value_or(-1), audio::Decode(format, audio->audio)});
    } else if (const auto* interruption = std::get_if<Interruption>(&*parsed.event)) {
      if (interrupted != nullptr) {
        const auto id =
            interruption->event_id.value_or(events.empty() ? -1 : events.back().event_id);
        if (!*interrupted || id > **interrupted) *interrupted = id;
      }
    }
  }
  return events;
}

std::vector<std::int16_t> Concat(const std::vector<AgentAudio>& events, std::int64_t event_id) {
  std::vector<std::int16_t> all;
  for (const auto& event : events) {
    if (event.event_id == event_id)
      all.insert(all.end(), event.samples.begin(), event.samples.end());
  }
  return all;
}

std::size_t Find(const std::vector<std::int16_t>& haystack, std::span<const std::int16_t> needle,
                 std::size_t from = 0) {
  if (from > haystack.size()) return std::string::npos;
  const auto it = std::search(haystack.begin() + static_cast<std::ptrdiff_t>(from), haystack.end(),
                              needle.begin(), needle.end());
  return it == haystack.end() ? std::string::npos : static_cast<std::size_t>(it - haystack.begin());
}

// The first window of `length` samples at or after `from` that is not near silence (so that
// searching for it cannot match a silent stretch elsewhere).
std::size_t NextVoiced(const std::vector<std::int16_t>& samples, std::size_t from,
                       std::size_t length) {
  for (std::size_t at = from; at + length <= samples.size(); at += length / 4) {
    if (audio::RmsDbfs(std::span<const std::int16_t>(samples.data() + at, length)) > -40.0)
      return at;
  }
  return std::string::npos;
}

// Frequency by zero crossings (sign changes) over `samples`.
double ZeroCrossingHz(std::span<const std::int16_t> samples, int rate) {
  std::size_t crossings = 0;
  for (std::size_t i = 1; i < samples.size(); ++i) {
    if ((samples[i - 1] < 0) != (samples[i] < 0)) ++crossings;
  }
  return static_cast<double>(crossings) / 2.0 /
         (static_cast<double>(samples.size()) / static_cast<double>(rate));
}

std::vector<std::int16_t> Silence(double seconds, int rate) {
  return std::vector<std::int16_t>(static_cast<std::size_t>(seconds * rate), 0);
}

std::vector<std::int16_t> Speech(const std::string& text, int rate) {
  static audio::SpeechSynthesizer synthesizer;
  return synthesizer.Synthesize(text, rate);
}

void Append(std::vector<std::int16_t>& to, const std::vector<std::int16_t>& more) {
  to.insert(to.end(), more.begin(), more.end());
}

// --- the fixture ----------------------------------------------------------------------------

class EngineTest : public ::testing::Test {
 protected:
  void Serve(sim::ConversationServiceOptions service = {}, bool tls = false,
             const std::string& subject_alt_name = "DNS:localhost,IP:127.0.0.1") {
    sim::SimOptions options;
    options.api_key = kKey;
    options.agents = sim::DefaultAgents();
    options.agents.push_back({.agent_id = "agent_pcm44",
                              .name = "44.1 kHz",
                              .first_message = "Hello, this is the agent speaking.",
                              .input_format = "pcm_44100",
                              .output_format = "pcm_44100"});
    options.agents.push_back({.agent_id = "agent_ulaw",
                              .name = "Telephony",
                              .first_message = "Hello, this is the agent speaking.",
                              .input_format = "ulaw_8000",
                              .output_format = "ulaw_8000"});
    options.agents.push_back(
        {.agent_id = "agent_long",
         .name = "Talkative",
         .first_message = "Good afternoon! I would like to tell you, at some length, about the "
                          "many excellent services that we offer to all of our customers, every "
                          "single day of the week."});
    simulator_ = std::make_unique<sim::Simulator>(std::move(options), sim_clock_, scheduler_);
    simulator_->AddRoutes(router_);
    if (service.ping_interval == sim::ConversationServiceOptions{}.ping_interval) {
      service.ping_interval = 200ms;
    }
    service_ = std::make_unique<sim::ConversationService>(*simulator_, scheduler_, service);
    service_->AddRoutes(router_);
    dispatcher_ = std::make_unique<http::Dispatcher>(
        router_, http::DispatchOptions{.render_error = simulator_->ErrorRenderer(),
                                       .observer = simulator_->Observer()});
    http::ServerOptions server{.host = "127.0.0.1", .port = 0, .server_name = "uvicorn"};
    if (tls) {
      cert_ = callgate::testing::MakeTestCertificate(dir_.path().string(), subject_alt_name);
      ASSERT_FALSE(cert_.cert_file.empty()) << "openssl could not make a certificate";
      server.tls_cert_file = cert_.cert_file;
      server.tls_key_file = cert_.key_file;
    }
    tls_ = tls;
    served_ = std::make_unique<ServedRouter>(runtime_, *dispatcher_, server);
  }

  static EngineOptions Defaults() {
    EngineOptions options;
    options.session.audio.max_buffer = 10s;  // the simulator may send far ahead of real time
    options.session.metadata_timeout = 10s;
    options.session.tool_timeout = 5s;
    return options;
  }

  void MakeEngine(EngineOptions options = Defaults(), std::string api_key = kKey,
                  TransportOptions transport = {}, upstream::ElevenLabsApi* api = nullptr) {
    upstream::HttpClientOptions http;
    if (tls_) http.ca_file = cert_.cert_file;
    http_ = upstream::MakeHttpClient(runtime_, http);
    upstream::ElevenLabsOptions client;
    client.base_url =
        std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(served_->port());
    client.api_key = std::move(api_key);
    client.retry.base_delay = 10ms;
    api_ = std::make_unique<upstream::ElevenLabsClient>(*http_, scheduler_, wall_clock_, client);
    transports_ = std::make_unique<RecordingFactory>(
        MakeWebSocketTransportFactory(runtime_, std::move(transport)));
    engine_ =
        std::make_unique<Engine>(EngineDependencies{api != nullptr ? *api : *api_, *transports_,
                                                    worker_, wall_clock_, audio_clock_},
                                 std::move(options));
  }

  void TearDown() override {
    engine_.reset();  // while the runtime still runs
    served_.reset();  // stops the runtime
    service_.reset();
    transports_.reset();
    api_.reset();
    http_.reset();
  }

  // Starts a session and returns its handle; `done` gets the final stats.
  std::shared_ptr<Session> Start(SessionRequest request, std::promise<SessionStats>& done) {
    request.on_done = [&done](const SessionStats& stats) { done.set_value(stats); };
    auto started = engine_->Start(std::move(request));
    if (auto* error = std::get_if<StartError>(&started)) {
      ADD_FAILURE() << "start failed: " << error->message;
      return nullptr;
    }
    return std::get<std::shared_ptr<Session>>(started);
  }

  // Runs a session to its end (`during` may stop it) and returns the final stats.
  SessionStats Run(SessionRequest request, const std::function<void(Session&)>& during = nullptr) {
    std::promise<SessionStats> done;
    auto future = done.get_future();
    auto session = Start(std::move(request), done);
    if (!session) return {};
    if (during) during(*session);
    if (future.wait_for(60s) != std::future_status::ready) {
      ADD_FAILURE() << "the session did not end";
      session->Stop();
      future.wait_for(10s);
      return session->Stats();
    }
    return future.get();
  }

  // Polls the session's stats until `condition` holds (false after `timeout`).
  static bool WaitUntil(Session& session, const std::function<bool(const SessionStats&)>& condition,
                        std::chrono::milliseconds timeout = 30s) {
    return callgate::testing::WaitFor([&] { return condition(session.Stats()); }, timeout);
  }

  std::optional<callgate::testing::HttpResponse> Get(const std::string& target) {
    if (!tls_) return Fetch(served_->port(), "GET", target);
    callgate::testing::TcpConnection connection(served_->port(), {.ca_file = cert_.cert_file});
    if (!connection.connected()) return std::nullopt;
    connection.Send(callgate::testing::BuildRequest("GET", target));
    return connection.Read();
  }

  void Post(const std::string& target, const std::string& body) {
    auto response =
        Fetch(served_->port(), "POST", target, {{"Content-Type", "application/json"}}, body);
    ASSERT_TRUE(response && response->status == 200) << (response ? response->body : "no answer");
  }

  // The simulator's statistics of the conversation, once it has closed.
  json::object SimStats(const std::string& conversation_id) {
    json::object stats;
    callgate::testing::WaitFor(
        [&] {
          auto response = Get("/_sim/conversations/" + conversation_id + "/websocket");
          if (!response || response->status != 200) return false;
          stats = json::parse(response->body).as_object();
          return !stats.at("close").is_null();
        },
        10s);
    return stats;
  }

  std::string Wav(const std::string& name, const std::vector<std::int16_t>& samples, int rate) {
    const auto path = dir_.path() / name;
    audio::WriteWav(path, samples, rate);
    return path.string();
  }

  static BackendSpec Spec(const std::string& text) { return ParseBackendSpec(text).value(); }

  TempDir dir_;
  callgate::testing::TestCertificate cert_;
  bool tls_ = false;
  core::ScaledClock sim_clock_{1.0};
  core::SystemClock wall_clock_;
  audio::backends::MonotonicClock audio_clock_;
  net::Runtime runtime_{2};
  net::AsioScheduler scheduler_{runtime_};
  core::Worker worker_{"audio-test", 64};
  http::Router router_;
  std::unique_ptr<sim::Simulator> simulator_;
  std::unique_ptr<sim::ConversationService> service_;
  std::unique_ptr<http::Dispatcher> dispatcher_;
  std::unique_ptr<ServedRouter> served_;
  std::unique_ptr<upstream::HttpClient> http_;
  std::unique_ptr<upstream::ElevenLabsClient> api_;
  std::unique_ptr<RecordingFactory> transports_;
  std::unique_ptr<Engine> engine_;
};

// --- a whole conversation -------------------------------------------------------------------

TEST_F(EngineTest, WholeConversationWithFilesEndsWhenTheAgentHangsUp) {
  Serve({.speech_speed = 8.0, .turns = 1});
  MakeEngine();
  constexpr int kRate = 16000;
  std::vector<std::int16_t> input = Silence(1.5, kRate);
  Append(input, Speech("hello there", kRate));
  Append(input, Silence(0.2, kRate));  // then the file input plays digital silence
  const std::string in = Wav("in.wav", input, kRate);
  const std::string out = (dir_.path() / "out.wav").string();

  InitiationData init;
  init.dynamic_variables = {{"purpose", "your order"}};
  const auto stats = Run({.agent_id = "agent_sim_default",
                          .input = Spec("file:" + in),
                          .output = Spec("file:" + out),
                          .initiation = init});

  // Ended by the agent's end_call, after its last words.
  ASSERT_TRUE(stats.end_reason);
  EXPECT_EQ(stats.end_reason->code, "agent_ended") << stats.end_reason->ToString();
  EXPECT_EQ(stats.end_reason->close_code, 1000);
  EXPECT_EQ(stats.status, Status::kEnded);
  EXPECT_EQ(stats.agent_output_audio_format, "pcm_16000");
  EXPECT_EQ(stats.user_input_audio_format, "pcm_16000");
  ASSERT_FALSE(stats.conversation_id.empty());
  ASSERT_GE(stats.transcript.size(), 3u);
  EXPECT_EQ(stats.transcript.front().role, Turn::Role::kAgent);
  EXPECT_EQ(stats.transcript.front().text, "Hello! I'm calling about your order.");
  EXPECT_EQ(stats.transcript[1].role, Turn::Role::kUser);
  EXPECT_EQ(stats.transcript.back().text, "Thank you for your time. Goodbye!");
  EXPECT_GT(stats.audio_seconds_sent, 2.0);
  EXPECT_GT(stats.audio_seconds_received, 2.0);
  EXPECT_GT(stats.user_audio_lag_max_ms, 0.0);

  const auto wire = transports_->Last();
  const auto sim = SimStats(stats.conversation_id);
  ASSERT_FALSE(sim.empty());

  // The initiation message went first, and is what the simulator recorded.
  const auto sent = wire->Sent();
  ASSERT_FALSE(sent.empty());
  EXPECT_EQ(sent.front(), InitiationMessage(init));
  EXPECT_EQ(sim.at("init_message"), json::parse(sent.front()));

  // Every ping answered with its event_id.
  std::vector<std::int64_t> pongs;
  for (const auto& frame : sent) {
    const auto object = json::parse(frame).as_object();
    if (object.contains("type") && object.at("type") == "pong") {
      pongs.push_back(object.at("event_id").as_int64());
    }
  }
  const auto& pings = sim.at("pings").as_array();
  ASSERT_GE(pings.size(), 3u);
  EXPECT_EQ(stats.pings_answered, pongs.size());
  for (std::size_t i = 0; i < pings.size(); ++i) {
    const auto id = pings[i].at("event_id").as_int64();
    EXPECT_NE(std::find(pongs.begin(), pongs.end(), id), pongs.end()) << "ping " << id;
    // The very last ping may cross the server's close frame; every other one was answered.
    if (i + 1 < pings.size()) {
      EXPECT_EQ(pings[i].at("pong_received"), true) << "ping " << id;
    }
  }

  // The user audio the simulator received is the input file's samples, byte for byte (then
  // the silence after the file).
  // (Chunks in flight when the simulator hung up are sent but not counted by it.)
  auto user = UserAudio(*wire);
  const auto received = static_cast<std::size_t>(sim.at("user_audio_bytes").as_int64());
  ASSERT_LE(received, user.size());
  user.resize(received);
  EXPECT_EQ(Sha256Hex(user), sim.at("user_audio_sha256").as_string());
  auto expected = audio::EncodePcm16Le(input);
  ASSERT_GT(received, expected.size()) << "the whole file reached the simulator";
  expected.resize(received, 0);
  EXPECT_TRUE(user == expected) << "the user audio differs from the input file";

  // The output WAV holds the agent's audio, every event in order, the last one included.
  int out_rate = 0;
  const auto played = audio::ReadAudioFile(out, &out_rate);
  EXPECT_EQ(out_rate, kRate);
  std::optional<std::int64_t> interrupted;
  const auto events = ReceivedAudio(*wire, *audio::ParseFormat("pcm_16000"), &interrupted);
  ASSERT_GE(events.size(), 2u);
  std::size_t at = 0;
  for (const auto& event : events) {
    if (interrupted && event.event_id <= *interrupted) continue;
    const auto found = Find(played, event.samples, at);
    ASSERT_NE(found, std::string::npos) << "audio of event " << event.event_id << " not played";
    at = found + event.samples.size();
  }
  EXPECT_EQ(events.back().event_id, stats.transcript.back().event_id) << "the goodbye";
  EXPECT_GT(audio::RmsDbfs(events.back().samples), -40.0);

  // Every audio event that went straight into the playback buffer was timed (not how long).
  const auto latency = engine_->audio_event_latency();
  EXPECT_GT(latency.count, 0u);
  EXPECT_LE(latency.count, events.size());
  EXPECT_LE(latency.p50, latency.max);
}

// --- the transports' shared tick -----------------------------------------------------------

TEST(DefaultTick, DividesTheChunkInStepsOfTenToTwentyFiveMilliseconds) {
  const std::vector<std::pair<int, int>> chunk_tick{{50, 25}, {20, 20}, {100, 25},  {60, 20},
                                                    {30, 15}, {70, 14}, {1000, 25}, {250, 25},
                                                    {5, 5},   {53, 20}, {10, 10}};
  for (const auto& [chunk, tick] : chunk_tick) {
    EXPECT_EQ(DefaultTick(std::chrono::milliseconds(chunk)).count(), tick) << chunk << " ms";
  }
}

TEST_F(EngineTest, TheTickAndEarlyChunksFollowTheChunkUnlessSet) {
  Serve();
  MakeEngine();
  EXPECT_EQ(engine_->options().tick, 25ms) << "50 ms chunks";
  EXPECT_EQ(engine_->options().session.audio.chunk_early, 12ms);
  EngineOptions set = Defaults();
  set.tick = 20ms;  // does not divide 50 ms: chunks are whole and wait for their tick
  engine_.reset();
  MakeEngine(set);
  EXPECT_EQ(engine_->options().tick, 20ms);
  EXPECT_EQ(engine_->options().session.audio.chunk_early, 0ms);
  set.session.audio.chunk = 100ms;
  engine_.reset();
  MakeEngine(set);
  EXPECT_EQ(engine_->options().session.audio.chunk_early, 10ms);
}

TEST_F(EngineTest, TransportsOfOneLaneShareItsTickAndMayStopOrReplaceTheirTickers) {
  Serve();
  MakeEngine(Defaults(), kKey, {.lanes = 1});  // every transport on the same lane
  constexpr std::size_t kTransports = 3;
  std::vector<std::shared_ptr<Transport>> transports;
  for (std::size_t i = 0; i < kTransports; ++i)
    transports.push_back(transports_->Create());
  std::array<std::atomic<int>, kTransports> ticks{};
  std::atomic<int> replacement_ticks{0};
  for (std::size_t i = 0; i < kTransports; ++i) {
    Transport* transport = transports[i].get();
    transport->Post([&ticks, &replacement_ticks, i, transport] {
      transport->StartTicker(5ms,
                             [&ticks, &replacement_ticks, i, transport] {
                               const int n = ++ticks[i];
                               if (i == 1 && n == 3)
                                 transport->StopTicker();  // stops itself from inside its tick
                               if (i == 2 && n == 3) {     // replaces itself
                                 transport->StartTicker(
                                     5ms, [&replacement_ticks] { ++replacement_ticks; }, {});
                               }
                             },
                             {});
    });
  }
  ASSERT_TRUE(callgate::testing::WaitFor(
      [&] { return ticks[0].load() >= 10 && replacement_ticks.load() >= 5; }, 30s));
  EXPECT_EQ(ticks[1].load(), 3);
  EXPECT_EQ(ticks[2].load(), 3);
  // The rounds the lane's timer started are in the factory's lateness record (at least one per
  // tick of the transport that kept ticking: they all share the lane's rounds).
  const metrics::LatencySummary late = transports_->tick_lateness();
  EXPECT_GE(late.count, 10u);
  EXPECT_LE(late.p50, late.max);
  // Shut down, then wait for a task behind the shutdowns on the lane: no tick runs after it.
  for (auto& transport : transports)
    transport->Shutdown();
  std::promise<void> drained;
  transports.front()->Post([&drained] { drained.set_value(); });
  ASSERT_EQ(drained.get_future().wait_for(10s), std::future_status::ready);
  const int after = ticks[0].load();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(ticks[0].load(), after);
}

// --- formats --------------------------------------------------------------------------------

TEST_F(EngineTest, AToneSurvivesEveryFormat) {
  Serve({.speech_speed = 8.0});
  MakeEngine();
  constexpr int kFileRate = 48000;
  constexpr double kHz = 1000.0;
  std::vector<std::int16_t> input = Silence(1.0, kFileRate);
  Append(input, audio::Tone(kHz, 2.5, kFileRate, 0.5));
  const std::string in = Wav("tone.wav", input, kFileRate);

  for (const std::string agent : {"agent_sim_public", "agent_pcm44", "agent_ulaw"}) {
    SCOPED_TRACE(agent);
    const std::string out = (dir_.path() / (agent + ".wav")).string();
    const auto stats =
        Run({.agent_id = agent, .input = Spec("file:" + in), .output = Spec("file:" + out)},
            [](Session& session) {
              WaitUntil(session, [](const SessionStats& s) {
                return s.audio_seconds_sent >= 3.8 || s.end_reason.has_value();
              });
              session.Stop();
            });
    ASSERT_TRUE(stats.end_reason);
    EXPECT_EQ(stats.end_reason->code, "stopped") << stats.end_reason->ToString();
    const auto format = audio::ParseFormat(stats.user_input_audio_format);
    ASSERT_TRUE(format);
    EXPECT_EQ(stats.agent_output_audio_format, stats.user_input_audio_format);

    // What the simulator received is what was sent...
    const auto wire = transports_->Last();
    const auto user = UserAudio(*wire);
    const auto sim = SimStats(stats.conversation_id);
    EXPECT_EQ(Sha256Hex(user), sim.at("user_audio_sha256").as_string());
    // ...and the tone is still a 1 kHz tone, at its level, after resampling and encoding.
    const auto samples = audio::Decode(*format, user);
    const auto rate = static_cast<std::size_t>(format->sample_rate);
    ASSERT_GT(samples.size(), rate * 33 / 10);
    const std::span<const std::int16_t> tone(samples.data() + rate * 13 / 10, rate * 19 / 10);
    EXPECT_NEAR(ZeroCrossingHz(tone, format->sample_rate), kHz, kHz * 0.01);
    EXPECT_NEAR(audio::RmsDbfs(tone), 20 * std::log10(0.5 / std::sqrt(2.0)), 1.0);

    // The agent's greeting is in the output file, at the agent's rate.
    int out_rate = 0;
    auto played = audio::ReadAudioFile(out, &out_rate);
    EXPECT_EQ(out_rate, format->sample_rate);
    std::erase(played, std::int16_t{0});
    EXPECT_GT(played.size(), rate / 2) << "at least half a second of agent audio";
    EXPECT_GT(audio::RmsDbfs(played), -35.0);
  }
}

// --- interruptions --------------------------------------------------------------------------

class EngineInterruptionTest : public EngineTest, public ::testing::WithParamInterface<bool> {};

TEST_P(EngineInterruptionTest, BufferedAgentAudioIsNotPlayedAfterAnInterruption) {
  const bool reason_form = GetParam();
  Serve({.speech_speed = 2.0, .interruption_with_reason = reason_form});
  MakeEngine();
  constexpr int kRate = 16000;
  std::vector<std::int16_t> input = Silence(1.2, kRate);
  Append(input, Speech("hello there", kRate));
  Append(input, Silence(3.0, kRate));
  const std::string in = Wav("in.wav", input, kRate);
  const std::string out = (dir_.path() / "out.wav").string();

  const auto stats =
      Run({.agent_id = "agent_long", .input = Spec("file:" + in), .output = Spec("file:" + out)},
          [](Session& session) {
            WaitUntil(session, [](const SessionStats& s) {
              return s.transcript.size() >= 2 || s.end_reason.has_value();
            });
            session.Stop();
          });
  ASSERT_TRUE(stats.end_reason);
  EXPECT_EQ(stats.end_reason->code, "stopped") << stats.end_reason->ToString();
  EXPECT_GE(stats.interruptions, 1u);
  ASSERT_FALSE(stats.transcript.empty());
  EXPECT_TRUE(stats.transcript.front().interrupted);

  const auto wire = transports_->Last();
  std::optional<std::int64_t> interrupted;
  const auto events = ReceivedAudio(*wire, *audio::ParseFormat("pcm_16000"), &interrupted);
  ASSERT_FALSE(events.empty());
  ASSERT_TRUE(interrupted) << "the simulator interrupted the agent";
  const auto greeting = Concat(events, events.front().event_id);
  EXPECT_EQ(*interrupted, events.front().event_id);

  const auto played = audio::ReadAudioFile(out, nullptr);
  const auto voiced = NextVoiced(greeting, 0, 400);
  ASSERT_NE(voiced, std::string::npos);
  const auto found = Find(played, std::span<const std::int16_t>(greeting.data() + voiced, 400));
  ASSERT_NE(found, std::string::npos) << "the greeting started playing";
  ASSERT_GE(found, voiced);
  const std::size_t start = found - voiced;
  std::size_t heard = 0;
  while (start + heard < played.size() && heard < greeting.size() &&
         played[start + heard] == greeting[heard]) {
    ++heard;
  }
  // A good part of the greeting had arrived but not been played when the interruption came...
  ASSERT_GT(greeting.size(), heard + kRate * 3 / 10)
      << "heard " << heard << " of " << greeting.size();
  // ...and none of it is played after (a 5 ms fade aside).
  const auto after = NextVoiced(greeting, heard + kRate / 20, 800);
  ASSERT_NE(after, std::string::npos);
  const std::span<const std::int16_t> unplayed(greeting.data() + after, 800);
  EXPECT_EQ(Find(played, unplayed), std::string::npos) << "buffered audio was played";
}

INSTANTIATE_TEST_SUITE_P(EventIdAndReasonForms, EngineInterruptionTest, ::testing::Bool());

// --- stopping, tools ------------------------------------------------------------------------

TEST_F(EngineTest, StopClosesWith1000) {
  Serve({.speech_speed = 8.0});
  MakeEngine();
  std::vector<TranscriptUpdate> updates;
  std::mutex updates_mutex;
  SessionRequest request{.agent_id = "agent_sim_public"};
  request.on_transcript = [&](const TranscriptUpdate& update) {
    std::lock_guard lock(updates_mutex);
    updates.push_back(update);
  };
  const auto stats = Run(std::move(request), [&](Session& session) {
    EXPECT_TRUE(WaitUntil(session, [](const SessionStats& s) { return !s.transcript.empty(); }));
    const auto live = session.Stats();
    EXPECT_EQ(live.status, Status::kActive);
    EXPECT_FALSE(live.end_reason);
    EXPECT_EQ(engine_->active(), 1u);
    EXPECT_NE(engine_->Find(session.id()), nullptr);
    session.SendContextualUpdate("User is on the pricing page");
    session.SendUserActivity();
    EXPECT_TRUE(callgate::testing::WaitFor(
        [&] {
          auto response = Get("/_sim/conversations/" + live.conversation_id + "/websocket");
          return response && response->status == 200 &&
                 !json::parse(response->body).at("contextual_updates").as_array().empty();
        },
        10s));
    session.Stop();
    session.Stop();
  });
  EXPECT_EQ(stats.end_reason->ToString(), "stopped");
  EXPECT_EQ(stats.end_reason->close_code, 1000);
  EXPECT_EQ(engine_->active(), 0u);
  const auto sim = SimStats(stats.conversation_id);
  EXPECT_EQ(sim.at("close").at("by"), "client");
  EXPECT_EQ(sim.at("close").at("code"), 1000);
  EXPECT_EQ(sim.at("close").at("reason"), "User ended conversation");
  std::lock_guard lock(updates_mutex);
  ASSERT_FALSE(updates.empty());
  EXPECT_EQ(updates.front().turn.text, "Hi! How can I help you today?");
}

TEST_F(EngineTest, ClientToolCallsAreAnswered) {
  Serve({.speech_speed = 8.0});
  MakeEngine();
  constexpr int kRate = 16000;
  std::vector<std::int16_t> input = Silence(1.0, kRate);
  Append(input, Speech("hello there", kRate));
  const std::string in = Wav("in.wav", input, kRate);

  for (const bool with_handler : {false, true}) {
    SCOPED_TRACE(with_handler ? "with a handler" : "without a handler");
    SessionRequest request{.agent_id = "agent_sim_public", .input = Spec("file:" + in)};
    request.initiation.dynamic_variables = {{"sim_client_tool", "lookup_order"}};
    if (with_handler) {
      request.tool_handler = [](const ClientToolCall& call,
                                std::function<void(ToolOutcome)> reply) {
        std::thread([call, reply] {
          reply({"order 42 shipped (" + call.tool_name + ")", false});
        }).detach();
      };
    }
    json::array results;
    const auto stats = Run(std::move(request), [&](Session& session) {
      EXPECT_TRUE(WaitUntil(session, [](const SessionStats& s) { return s.tool_calls > 0; }));
      callgate::testing::WaitFor(
          [&] {
            auto response =
                Get("/_sim/conversations/" + session.Stats().conversation_id + "/websocket");
            if (!response || response->status != 200) return false;
            results = json::parse(response->body).at("tool_results").as_array();
            return !results.empty();
          },
          10s);
      session.Stop();
    });
    EXPECT_EQ(stats.end_reason->code, "stopped");
    EXPECT_EQ(stats.tool_calls, 1u);
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].at("expected"), true);
    EXPECT_EQ(results[0].at("timed_out"), false);
    if (with_handler) {
      EXPECT_EQ(results[0].at("is_error"), false);
      EXPECT_EQ(results[0].at("result"), "order 42 shipped (lookup_order)");
    } else {
      EXPECT_EQ(results[0].at("is_error"), true);
      EXPECT_NE(std::string(results[0].at("result").as_string()).find("not available"),
                std::string::npos);
    }
  }
}

// --- faults ---------------------------------------------------------------------------------

TEST_F(EngineTest, WrongApiKeyFailsTheSignedUrl) {
  Serve();
  MakeEngine(Defaults(), "sk_wrong");
  const auto stats = Run({.agent_id = "agent_sim_default"});
  ASSERT_TRUE(stats.end_reason);
  EXPECT_EQ(stats.end_reason->code, "signed_url_failed");
  EXPECT_NE(stats.end_reason->detail.find("HTTP 401"), std::string::npos)
      << stats.end_reason->detail;
  EXPECT_FALSE(stats.end_reason->close_code);
  EXPECT_TRUE(stats.conversation_id.empty());
  auto sessions = Get("/_sim/websockets");
  ASSERT_TRUE(sessions);
  EXPECT_EQ(sessions->body.find("ws_"), std::string::npos) << "no WebSocket was opened";
}

TEST_F(EngineTest, UnknownAgentFailsTheSignedUrl) {
  Serve();
  MakeEngine();
  const auto stats = Run({.agent_id = "agent_nope"});
  ASSERT_TRUE(stats.end_reason);
  EXPECT_EQ(stats.end_reason->code, "signed_url_failed");
  EXPECT_NE(stats.end_reason->detail.find("HTTP 404"), std::string::npos)
      << stats.end_reason->detail;
}

TEST_F(EngineTest, ADroppedWebSocketEndsWithConnectionLost) {
  Serve({.speech_speed = 8.0});
  MakeEngine();
  Post("/_sim/websocket-faults", R"({"drop_after_events":5})");
  const auto stats = Run({.agent_id = "agent_sim_public"});
  ASSERT_TRUE(stats.end_reason);
  EXPECT_EQ(stats.end_reason->code, "connection_lost") << stats.end_reason->ToString();
  EXPECT_FALSE(stats.conversation_id.empty());
}

TEST_F(EngineTest, AnErrorCloseCodeEndsWithUpstreamError) {
  Serve({.speech_speed = 8.0});
  MakeEngine();
  Post("/_sim/websocket-faults", R"({"close_code":1011,"after_events":3})");
  const auto stats = Run({.agent_id = "agent_sim_public"});
  ASSERT_TRUE(stats.end_reason);
  EXPECT_EQ(stats.end_reason->ToString(), "upstream_error: 1011 simulated fault");
  EXPECT_EQ(stats.end_reason->close_code, 1011);
}

TEST_F(EngineTest, AMissingDynamicVariableEndsWithTheServersError) {
  Serve();
  MakeEngine();
  const auto stats = Run({.agent_id = "agent_sim_default"});  // its first message needs {{purpose}}
  ASSERT_TRUE(stats.end_reason);
  EXPECT_EQ(stats.end_reason->code, "upstream_error");
  EXPECT_EQ(stats.end_reason->close_code, 1008);
  EXPECT_TRUE(stats.end_reason->detail.starts_with("1008 missing_dynamic_variable: "))
      << stats.end_reason->detail;
  EXPECT_NE(stats.end_reason->detail.find("purpose"), std::string::npos);
}

TEST_F(EngineTest, AMissingDeviceEndsBeforeAnythingIsAskedUpstream) {
  Serve();
  MakeEngine();
  const auto stats = Run({.agent_id = "agent_sim_public", .input = Spec("device:nonexistent")});
  ASSERT_TRUE(stats.end_reason);
  EXPECT_EQ(stats.end_reason->code, "audio_device_unavailable") << stats.end_reason->ToString();
  auto journal = Get("/_sim/requests?path=/v1/convai/conversation/get-signed-url");
  ASSERT_TRUE(journal);
  ASSERT_EQ(journal->status, 200);
  EXPECT_TRUE(json::parse(journal->body).at("requests").as_array().empty());
}

TEST_F(EngineTest, AnUnwritableOutputFileEndsWithAudioFileError) {
  Serve({.speech_speed = 8.0});
  MakeEngine();
  SessionRequest request;  // (designated initializers skipping `input` upset g++ 12 here)
  request.agent_id = "agent_sim_public";
  request.output = Spec("file:" + (dir_.path() / "no/such/dir/out.wav").string());
  const auto stats = Run(std::move(request));
  ASSERT_TRUE(stats.end_reason);
  EXPECT_EQ(stats.end_reason->code, "audio_file_error") << stats.end_reason->ToString();
  EXPECT_EQ(stats.end_reason->close_code, 1000) << "the WebSocket was closed cleanly";
}

// --- TLS ------------------------------------------------------------------------------------

TEST_F(EngineTest, SecureWebSocketWithTheConfiguredCa) {
  Serve({.speech_speed = 8.0}, /*tls=*/true);
  MakeEngine(Defaults(), kKey, {.ca_file = cert_.cert_file});
  const auto stats = Run(
      {.agent_id = "agent_sim_default", .initiation = {.dynamic_variables = {{"purpose", "tls"}}}},
      [](Session& session) {
        WaitUntil(session, [](const SessionStats& s) {
          return !s.transcript.empty() || s.end_reason.has_value();
        });
        session.Stop();
      });
  EXPECT_EQ(stats.end_reason->ToString(), "stopped");
  ASSERT_FALSE(stats.transcript.empty());
  EXPECT_EQ(stats.transcript.front().text, "Hello! I'm calling about tls.");
}

TEST_F(EngineTest, AnUntrustedCertificateFailsTheConnection) {
  Serve({}, /*tls=*/true);
  MakeEngine();  // the REST client trusts the test CA; the WebSocket transport does not
  const auto stats = Run(
      {.agent_id = "agent_sim_default", .initiation = {.dynamic_variables = {{"purpose", "tls"}}}});
  ASSERT_TRUE(stats.end_reason);
  EXPECT_EQ(stats.end_reason->code, "connect_failed");
  EXPECT_NE(stats.end_reason->detail.find("certificate"), std::string::npos)
      << stats.end_reason->detail;
}

TEST_F(EngineTest, ACertificateForAnotherHostFailsTheConnection) {
  // Trusted, but for other.example only, while the signed URL names localhost.
  Serve({}, /*tls=*/true, "DNS:other.example");
  HeldApi api;
  api.AnswerWith("wss://localhost:" + std::to_string(served_->port()) +
                 "/v1/convai/conversation?agent_id=agent_sim_default");
  MakeEngine(Defaults(), kKey, {.ca_file = cert_.cert_file}, &api);
  const auto stats = Run({.agent_id = "agent_sim_default"});
  ASSERT_TRUE(stats.end_reason);
  EXPECT_EQ(stats.end_reason->code, "connect_failed");
  EXPECT_NE(stats.end_reason->detail.find("hostname mismatch"), std::string::npos)
      << stats.end_reason->detail;
}

TEST_F(EngineTest, ShutdownStopsRunningSessions) {
  Serve({.speech_speed = 8.0});
  MakeEngine();
  std::promise<SessionStats> done;
  auto session = Start({.agent_id = "agent_sim_public"}, done);
  ASSERT_TRUE(session);
  ASSERT_TRUE(
      WaitUntil(*session, [](const SessionStats& s) { return s.status == Status::kActive; }));
  engine_->Shutdown();
  EXPECT_EQ(engine_->active(), 0u);
  auto future = done.get_future();
  ASSERT_EQ(future.wait_for(0s), std::future_status::ready)
      << "on_done ran before Shutdown returned";
  EXPECT_EQ(future.get().end_reason->ToString(), "stopped");
  auto refused = engine_->Start({.agent_id = "agent_sim_public"});
  ASSERT_TRUE(std::holds_alternative<StartError>(refused));
  EXPECT_EQ(std::get<StartError>(refused).code, StartError::Code::kShuttingDown);
}

// --- bounds ---------------------------------------------------------------------------------

TEST_F(EngineTest, StartIsBounded) {
  Serve();
  HeldApi held;
  EngineOptions options = Defaults();
  options.max_sessions = 1;
  MakeEngine(options, kKey, {}, &held);
  EXPECT_TRUE(std::holds_alternative<StartError>(engine_->Start({})));  // no agent
  std::promise<SessionStats> first_done;
  auto first = Start({.session_id = "one", .agent_id = "agent_sim_public"}, first_done);
  ASSERT_TRUE(first);
  auto again = engine_->Start({.session_id = "two", .agent_id = "agent_sim_public"});
  ASSERT_TRUE(std::holds_alternative<StartError>(again));
  EXPECT_EQ(std::get<StartError>(again).code, StartError::Code::kTooManySessions);
  // Stopped while waiting for the signed URL: ends at once; the late answer changes nothing.
  ASSERT_TRUE(callgate::testing::WaitFor([&] { return held.pending() == 1; }, 5s));
  first->Stop();
  auto future = first_done.get_future();
  ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(future.get().end_reason->ToString(), "stopped");
  held.FailAll();
  EXPECT_EQ(first->Stats().end_reason->ToString(), "stopped");
  EXPECT_TRUE(first->finished());
}

TEST_F(EngineTest, OneSessionPerDevice) {
  Serve();
  HeldApi held;
  MakeEngine(Defaults(), kKey, {}, &held);
  std::promise<SessionStats> done;
  auto first = Start({.agent_id = "agent_sim_public", .input = Spec("device:nonexistent")}, done);
  ASSERT_TRUE(first);
  auto second =
      engine_->Start({.agent_id = "agent_sim_public", .input = Spec("device:nonexistent")});
  if (!first->finished()) {  // the first may already have given the device up
    ASSERT_TRUE(std::holds_alternative<StartError>(second));
    EXPECT_EQ(std::get<StartError>(second).code, StartError::Code::kDeviceBusy);
  }
  done.get_future().wait_for(30s);
}

}  // namespace
}  // namespace callgate::conversation
