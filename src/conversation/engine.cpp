#include "conversation/engine.hpp"

#include "audio/backends/factory.hpp"
#include "core/ids.hpp"
#include "core/prefetch.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>

namespace callgate::conversation {

namespace backends = audio::backends;

std::string DescribeApiError(const upstream::ApiError& error) {
  using Kind = upstream::ApiError::Kind;
  switch (error.kind) {
    case Kind::kStatus: {
      std::string text = "HTTP " + std::to_string(error.upstream_status);
      if (!error.code.empty()) text += " " + error.code;
      if (!error.message.empty()) text += ": " + error.message;
      return text;
    }
    case Kind::kUnavailable:
      return "ElevenLabs unavailable: " + error.message;
    case Kind::kTimeout:
      return "timed out: " + error.message;
    case Kind::kBadResponse:
      return "bad response: " + error.message;
  }
  return error.message;
}

namespace {

class SessionImpl;

// A device spec's identity for the one-session-per-device rule ("" for non-devices).
std::string DeviceKey(const backends::BackendSpec& spec, std::string_view direction) {
  if (spec.kind != backends::BackendSpec::Kind::kDevice) return {};
  return std::string(direction) + ":" + spec.target;
}

}  // namespace

struct Engine::Registry {
  mutable std::mutex mutex;
  std::condition_variable changed;
  std::map<std::string, std::shared_ptr<SessionImpl>> sessions;
  std::set<std::string> devices;
  std::size_t reporting = 0;  // sessions gone from `sessions` whose on_done is running
  bool shutting_down = false;
  metrics::LatencyHistogram audio_event_latency;  // lock-free

  // Before on_done: the id and the devices are free again (on_done may start a successor).
  void Remove(const std::string& id, const std::vector<std::string>& device_keys) {
    std::lock_guard lock(mutex);
    sessions.erase(id);
    for (const auto& key : device_keys)
      devices.erase(key);
    ++reporting;
  }
  // After on_done.
  void Reported() {
    std::lock_guard lock(mutex);
    --reporting;
    changed.notify_all();
  }
  bool Idle() const { return sessions.empty() && reporting == 0; }
};

namespace {

// Endpoints in transit between the strand and the worker (std::function needs copyable
// callables, so they travel behind a shared_ptr).
struct Endpoints {
  std::unique_ptr<backends::AudioInput> input;
  std::unique_ptr<backends::AudioOutput> output;
  std::optional<backends::BackendError> error;
};

class SessionImpl final : public Session, public std::enable_shared_from_this<SessionImpl> {
 public:
  SessionImpl(const EngineDependencies& deps, const EngineOptions& options, SessionRequest request,
              std::shared_ptr<Transport> transport, std::shared_ptr<Engine::Registry> registry,
              std::vector<std::string> device_keys)
      : transport_(std::move(transport)),
        deps_(deps),
        options_(options),
        request_(std::move(request)),
        registry_(std::move(registry)),
        device_keys_(std::move(device_keys)),
        machine_(deps.wall_clock, MachineOptions(options, request_),
                 SessionIdentity{request_.session_id, request_.agent_id, request_.input.ToString(),
                                 request_.output.ToString()}) {}

  ~SessionImpl() override = default;

  static SessionMachineOptions MachineOptions(const EngineOptions& options,
                                              const SessionRequest& request) {
    SessionMachineOptions machine = options.session;
    machine.tools_enabled = static_cast<bool>(request.tool_handler);
    return machine;
  }

  // --- Session --------------------------------------------------------------------------------

  const std::string& id() const override { return request_.session_id; }

  void Stop() override {
    auto self = shared_from_this();
    transport_->Post(
        [self] { self->Apply(self->WithMachine([](SessionMachine& m) { return m.Stop(); })); });
  }

  SessionStats Stats() const override {
    std::lock_guard lock(mutex_);
    return machine_.Stats();
  }

  bool finished() const override { return done_.load(); }

  void SendUserMessage(std::string text) override { SendClient(UserMessageMessage(text)); }
  void SendContextualUpdate(std::string text) override {
    SendClient(ContextualUpdateMessage(text));
  }
  void SendUserActivity() override { SendClient(UserActivityMessage()); }

  // --- the run --------------------------------------------------------------------------------

  void PostBegin() {
    auto self = shared_from_this();
    transport_->Post([self] { self->Begin(); });
  }

  // Cuts the connection (shutdown after the grace period); the session then ends.
  void Abort() { transport_->Abort(); }

  void Begin() {
    {
      std::lock_guard lock(mutex_);
      machine_.Begin();
    }
    spdlog::info("session {}: starting with agent {} (input {}, output {})", id(),
                 request_.agent_id, request_.input.ToString(), request_.output.ToString());
    const bool early_input = request_.input.kind != backends::BackendSpec::Kind::kNull;
    const bool early_output = request_.output.kind == backends::BackendSpec::Kind::kDevice;
    if (!early_input && !early_output) {
      RequestUrl();
      return;
    }
    OpenOnWorker(early_input, early_output, std::nullopt, std::nullopt, /*start=*/false,
                 [](const std::shared_ptr<SessionImpl>& self) { self->RequestUrl(); });
  }

 private:
  template <class F>
  Actions WithMachine(F&& f) {
    std::lock_guard lock(mutex_);
    return f(machine_);
  }

  void SendClient(std::string frame) {
    auto self = shared_from_this();
    transport_->Post([self, frame = std::move(frame)]() mutable {
      bool accepted = false;
      Actions actions = self->WithMachine(
          [&](SessionMachine& m) { return m.SendClientMessage(std::move(frame), accepted); });
      self->Apply(std::move(actions));
    });
  }

  void RequestUrl() {
    if (machine_finished()) return;
    auto self = shared_from_this();
    deps_.api.GetSignedUrl(request_.agent_id, [self](upstream::ApiResult<std::string> result) {
      self->transport_->Post([self, result = std::move(result)] { self->UrlReady(result); });
    });
  }

  void UrlReady(const upstream::ApiResult<std::string>& result) {
    if (machine_finished()) return;
    if (const auto* error = std::get_if<upstream::ApiError>(&result)) {
      Fail({"signed_url_failed", DescribeApiError(*error), std::nullopt});
      return;
    }
    const std::string& url = std::get<std::string>(result);
    {
      std::lock_guard lock(mutex_);
      machine_.Connecting();
    }
    spdlog::debug("session {}: connecting to {}", id(), RedactUrl(url));
    auto self = shared_from_this();
    Transport::Handlers handlers;
    handlers.on_open = [self] {
      self->Apply(self->WithMachine(
          [&](SessionMachine& m) { return m.Opened(self->request_.initiation); }));
    };
    handlers.on_text = [self](std::string_view text) {
      self->Apply(self->WithMachine([&](SessionMachine& m) {
        const std::uint64_t buffered = m.buffered_audio_events();
        Actions actions = m.Receive(text);
        if (m.buffered_audio_events() != buffered) {  // its samples are in the playback buffer
          self->registry_->audio_event_latency.Record(std::chrono::steady_clock::now() -
                                                      self->transport_->received_at());
        }
        return actions;
      }));
    };
    handlers.on_close = [self](const CloseInfo& info) {
      self->Apply(self->WithMachine([&](SessionMachine& m) { return m.Closed(info); }));
    };
    transport_->Connect(url, std::move(handlers));
    transport_->After(options_.session.metadata_timeout, [self] {
      self->Apply(self->WithMachine([](SessionMachine& m) { return m.MetadataDeadline(); }));
    });
  }

  // Carries out what the machine decided. On the strand, without the machine's lock.
  void Apply(Actions actions) {
    bool stalled = false;
    for (auto& frame : actions.send) {
      if (transport_->Send(std::move(frame.text))) continue;
      if (frame.user_audio) {
        std::lock_guard lock(mutex_);
        machine_.CountDroppedChunk(frame.audio_bytes);
      } else {
        stalled = true;
      }
    }
    if (!actions.transcript.empty() && request_.on_transcript) {
      for (const auto& update : actions.transcript)
        request_.on_transcript(update);
    }
    if (actions.call_tool) RunTool(std::move(*actions.call_tool));
    if (actions.open_audio) OpenLate();
    if (actions.close) transport_->Close(actions.close->code, std::move(actions.close->reason));
    if (actions.finished) Finish();
    if (stalled) {
      Fail({"connection_lost", "the send queue is full: the connection is stalled", std::nullopt});
    }
  }

  void Fail(EndReason reason) {
    Apply(WithMachine([&](SessionMachine& m) { return m.Fail(std::move(reason)); }));
  }

  void RunTool(ClientToolCall call) {
    auto self = shared_from_this();
    const std::string tool_call_id = call.tool_call_id;
    auto reply = [self, tool_call_id](ToolOutcome outcome) {
      self->transport_->Post([self, tool_call_id, outcome = std::move(outcome)] {
        self->Apply(self->WithMachine([&](SessionMachine& m) {
          return m.ToolResult(tool_call_id, outcome.result, outcome.is_error);
        }));
      });
    };
    transport_->After(options_.session.tool_timeout, [self, tool_call_id] {
      self->Apply(
          self->WithMachine([&](SessionMachine& m) { return m.ToolTimedOut(tool_call_id); }));
    });
    try {
      request_.tool_handler(call, reply);
    } catch (const std::exception& e) {
      reply(ToolOutcome{std::string("Client tool '") + call.tool_name + "' failed: " + e.what(),
                        true});
    }
  }

  // --- endpoints ------------------------------------------------------------------------------

  // Opens the endpoints asked for (at the given rates for null and file outputs), starts both
  // when `start`, on the worker; then `next` on the strand unless that failed.
  void OpenOnWorker(bool open_input, bool open_output, std::optional<int> input_rate,
                    std::optional<int> output_rate, bool start,
                    std::function<void(const std::shared_ptr<SessionImpl>&)> next) {
    auto self = shared_from_this();
    auto held = std::make_shared<Endpoints>();
    held->input = std::move(input_);
    held->output = std::move(output_);
    opening_ = true;
    const bool posted = deps_.worker.Post(
        [self, held, open_input, open_output, input_rate, output_rate, start, next] {
          self->OpenBlocking(*held, open_input, open_output, input_rate, output_rate, start);
          self->transport_->Post([self, held, next] { self->Opened(*held, next); });
        });
    if (!posted) {
      opening_ = false;
      input_ = std::move(held->input);
      output_ = std::move(held->output);
      Fail({"internal_error", "the audio worker is busy", std::nullopt});
    }
  }

  // On the worker.
  void OpenBlocking(Endpoints& held, bool open_input, bool open_output,
                    std::optional<int> input_rate, std::optional<int> output_rate,
                    bool start) const {
    try {
      if (open_input && !held.input) {
        backends::InputOptions options{.device = options_.device};
        if (input_rate) options.sample_rate = *input_rate;
        auto opened = backends::OpenInput(request_.input, options, deps_.audio_clock);
        if (!opened) {
          held.error = opened.error();
          return;
        }
        held.input = std::move(*opened);
      }
      if (open_output && !held.output) {
        backends::OutputOptions options{.file_flush_interval = options_.file_flush_interval,
                                        .device = options_.device};
        if (output_rate) options.sample_rate = *output_rate;
        auto opened = backends::OpenOutput(request_.output, options, deps_.audio_clock);
        if (!opened) {
          held.error = opened.error();
          return;
        }
        held.output = std::move(*opened);
      }
      if (start && held.input && held.output) {
        if (auto error = held.output->Start()) {
          held.error = std::move(*error);
          return;
        }
        if (auto error = held.input->Start()) held.error = std::move(*error);
      }
    } catch (const std::exception& e) {
      held.error =
          backends::BackendError{backends::BackendError::Code::kDeviceUnavailable,
                                 std::string("cannot open the audio endpoint: ") + e.what()};
    }
  }

  // Back on the strand.
  void Opened(Endpoints& held,
              const std::function<void(const std::shared_ptr<SessionImpl>&)>& next) {
    opening_ = false;
    input_ = std::move(held.input);
    output_ = std::move(held.output);
    if (finishing_) {
      Cleanup();
      return;
    }
    if (held.error) {
      Fail({std::string(held.error->CodeName()), held.error->detail, std::nullopt});
      return;
    }
    if (machine_finished()) return;
    next(shared_from_this());
  }

  void OpenLate() {
    std::optional<int> input_rate, output_rate;
    {
      std::lock_guard lock(mutex_);
      if (machine_.input_format()) input_rate = machine_.input_format()->sample_rate;
      if (machine_.output_format()) output_rate = machine_.output_format()->sample_rate;
    }
    OpenOnWorker(true, true, input_rate, output_rate, /*start=*/true,
                 [](const std::shared_ptr<SessionImpl>& self) { self->AudioReady(); });
  }

  void AudioReady() {
    const bool echo = backends::UseEchoCancellation(options_.echo, request_.input, request_.output);
    const int capture_rate = input_->sample_rate();
    const int playback_rate = output_->sample_rate();
    spdlog::debug("session {}: audio ready: {} -> {}, {} -> {}", id(), input_->Describe(),
                  capture_rate, output_->Describe(), playback_rate);
    Apply(WithMachine(
        [&](SessionMachine& m) { return m.StartAudio(capture_rate, playback_rate, echo); }));
    if (machine_finished()) return;
    // The warmer holds this session for as long as the ticker, so the tick needs no shared_ptr
    // of its own (see TickWarmer).
    transport_->StartTicker(options_.tick, [this] { Tick(); },
                            {&SessionImpl::Warm, shared_from_this()});
  }

  // The ticker's prefetching (TickerGroup::Warmer, which owns this object): this object's first
  // lines and the machine's tick state; then the endpoints, the pipeline and the transport's
  // first line; then the pipeline's buffers and the transport's fields; then what the
  // transport's write touches. On the strand, like the tick.
  static void Warm(const void* object, unsigned stage) {
    const auto* self = static_cast<const SessionImpl*>(object);
    switch (stage) {
      case 0:
        core::PrefetchLines(self, 2 * core::kCacheLine);
        break;
      case 1:
        core::PrefetchLines(self->input_.get(), 2 * core::kCacheLine);
        core::PrefetchLines(self->output_.get(), 2 * core::kCacheLine);
        core::Prefetch(self->transport_.get());
        break;
      case 2:
        if (self->transport_) self->transport_->Warm(0);
        break;
      default:
        if (self->transport_) self->transport_->Warm(1);
        break;
    }
    self->machine_.Warm(stage);
  }

  void Tick() {
    if (!input_ || !output_) return;
    Apply(WithMachine([&](SessionMachine& m) { return m.Tick(*input_, *output_); }));
  }

  // --- the end --------------------------------------------------------------------------------

  void Finish() {
    if (finishing_) return;
    finishing_ = true;
    transport_->StopTicker();
    if (!opening_) Cleanup();  // else once the endpoints being opened are back
  }

  // Stops and closes the endpoints on the worker (the output file gets its final header), then
  // reports on the strand.
  void Cleanup() {
    auto self = shared_from_this();
    auto held = std::make_shared<Endpoints>();
    held->input = std::move(input_);
    held->output = std::move(output_);
    auto close = [held] {
      if (held->input) held->input->Stop();
      if (held->output) held->output->Stop();
      held->input.reset();
      held->output.reset();
    };
    if (!held->input && !held->output) {
      Done();
      return;
    }
    const bool posted = deps_.worker.Post([self, close] {
      close();
      self->transport_->Post([self] { self->Done(); });
    });
    if (!posted) {  // the worker is gone or full: close here rather than leak the files
      close();
      Done();
    }
  }

  void Done() {
    if (done_.exchange(true)) return;
    transport_->Shutdown();
    SessionStats stats = Stats();
    const std::string reason = stats.end_reason ? stats.end_reason->ToString() : "unknown";
    spdlog::info("session {}: ended ({}) conversation {} after {} ms", id(), reason,
                 stats.conversation_id.empty() ? "-" : stats.conversation_id,
                 stats.duration.count());
    auto on_done = std::move(request_.on_done);
    request_.on_done = nullptr;
    request_.on_transcript = nullptr;
    request_.tool_handler = nullptr;
    registry_->Remove(id(), device_keys_);
    if (on_done) on_done(stats);
    registry_->Reported();
  }

  bool machine_finished() const {
    std::lock_guard lock(mutex_);
    return machine_.finished();
  }

  // What every tick touches first, ahead of the large members (see SessionMachine's layout).
  std::unique_ptr<backends::AudioInput> input_;    // strand only
  std::unique_ptr<backends::AudioOutput> output_;  // strand only
  std::shared_ptr<Transport> transport_;
  mutable std::mutex mutex_;  // guards machine_ (Stats() reads it from any thread)

  const EngineDependencies deps_;
  const EngineOptions options_;
  SessionRequest request_;
  std::shared_ptr<Engine::Registry> registry_;
  const std::vector<std::string> device_keys_;
  SessionMachine machine_;

  // Strand only.
  bool opening_ = false;
  bool finishing_ = false;
  std::atomic<bool> done_{false};
};

}  // namespace

std::chrono::milliseconds DefaultTick(std::chrono::milliseconds chunk) {
  using std::chrono::milliseconds;
  if (chunk < milliseconds(10)) return std::max(chunk, milliseconds(1));
  for (auto step = std::min(chunk.count(), std::int64_t{25}); step >= 10; --step) {
    if (chunk.count() % step == 0) return milliseconds(step);
  }
  return milliseconds(20);
}

namespace {

// The tick filled in, and chunks sent on the tick they end on when ticks divide them.
EngineOptions Resolved(EngineOptions options) {
  const auto chunk = options.session.audio.chunk;
  if (options.tick.count() <= 0) options.tick = DefaultTick(chunk);
  if (options.session.audio.chunk_early.count() == 0 && chunk.count() % options.tick.count() == 0)
    options.session.audio.chunk_early = options.tick / 2;
  return options;
}

}  // namespace

Engine::Engine(EngineDependencies deps, EngineOptions options)
    : deps_(deps),
      options_(Resolved(std::move(options))),
      registry_(std::make_shared<Registry>()) {}

Engine::~Engine() {
  Shutdown();
}

std::variant<std::shared_ptr<Session>, StartError> Engine::Start(SessionRequest request) {
  using Code = StartError::Code;
  if (request.agent_id.empty()) return StartError{Code::kInvalidRequest, "agent_id is required"};
  if (request.session_id.empty()) request.session_id = core::NewId("sess");
  std::vector<std::string> device_keys;
  for (auto key : {DeviceKey(request.input, "input"), DeviceKey(request.output, "output")}) {
    if (!key.empty()) device_keys.push_back(std::move(key));
  }
  std::shared_ptr<SessionImpl> session;
  {
    std::lock_guard lock(registry_->mutex);
    if (registry_->shutting_down) return StartError{Code::kShuttingDown, "the engine is stopping"};
    if (registry_->sessions.size() >= options_.max_sessions) {
      return StartError{Code::kTooManySessions,
                        "too many live sessions (" + std::to_string(options_.max_sessions) + ")"};
    }
    if (registry_->sessions.contains(request.session_id)) {
      return StartError{Code::kDuplicateId, "session " + request.session_id + " is running"};
    }
    for (const auto& key : device_keys) {
      if (registry_->devices.contains(key)) {
        return StartError{Code::kDeviceBusy,
                          "the audio device " + key + " is in use by another session"};
      }
    }
    session = std::make_shared<SessionImpl>(deps_, options_, std::move(request),
                                            deps_.transports.Create(), registry_, device_keys);
    registry_->sessions.emplace(session->id(), session);
    for (const auto& key : device_keys)
      registry_->devices.insert(key);
  }
  session->PostBegin();  // every step of a session runs on its strand
  return std::shared_ptr<Session>(std::move(session));
}

std::shared_ptr<Session> Engine::Find(const std::string& session_id) const {
  std::lock_guard lock(registry_->mutex);
  const auto it = registry_->sessions.find(session_id);
  return it == registry_->sessions.end() ? nullptr : it->second;
}

metrics::LatencySummary Engine::audio_event_latency() const {
  return registry_->audio_event_latency.Summarize();
}

std::size_t Engine::active() const {
  std::lock_guard lock(registry_->mutex);
  return registry_->sessions.size();
}

void Engine::Shutdown(std::chrono::milliseconds grace) {
  std::vector<std::shared_ptr<SessionImpl>> running;
  {
    std::lock_guard lock(registry_->mutex);
    registry_->shutting_down = true;
    for (const auto& [id, session] : registry_->sessions)
      running.push_back(session);
  }
  if (running.empty()) return;
  for (const auto& session : running)
    session->Stop();
  running.clear();
  std::unique_lock lock(registry_->mutex);
  if (registry_->changed.wait_for(lock, grace, [&] { return registry_->Idle(); })) return;
  for (const auto& [id, session] : registry_->sessions)
    session->Abort();
  if (!registry_->changed.wait_for(lock, grace, [&] { return registry_->Idle(); })) {
    spdlog::error("conversation engine: {} sessions did not end in time",
                  registry_->sessions.size());
  }
}

}  // namespace callgate::conversation
