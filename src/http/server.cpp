// g++ 12 at -O2 and above reports Asio's coroutine frame allocation (aligned_alloc, then free)
// as a mismatched new/delete once a frame's deallocation is inlined into Serve(): a false
// positive that depends on inlining decisions, silenced for this translation unit only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include "http/server.hpp"

#include "core/ids.hpp"
#include "core/logging.hpp"
#include "http/detail/connection.hpp"
#include "http/detail/websocket_session.hpp"
#include "http/head_format.hpp"
#include "http/response_head.hpp"
#include "metrics/registry.hpp"
#include "net/defer.hpp"
#include "net/runtime.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/defer.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <array>
#include <atomic>
#include <ctime>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <utility>

namespace callgate::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using detail::Connection;
using detail::ConnectionBase;
using detail::PlainStream;
using detail::TlsStream;

// A request body read into a std::string like Beast's string_body, but appended: string_body's
// reader resizes the string first, which zero-fills every byte it is about to overwrite (a
// webhook's 5.6 KB, for nothing).
struct AppendedStringBody {
  using value_type = std::string;

  static std::uint64_t size(const value_type& body) { return body.size(); }

  class reader {  // NOLINT(readability-identifier-naming): Beast's BodyReader concept
   public:
    template <bool isRequest, class Fields>
    reader(bhttp::header<isRequest, Fields>&, value_type& body) : body_(body) {}

    void init(const boost::optional<std::uint64_t>& length, boost::system::error_code& ec) {
      ec = {};
      if (!length) return;
      if (*length > body_.max_size()) {
        ec = bhttp::error::buffer_overflow;
        return;
      }
      body_.reserve(static_cast<std::size_t>(*length));
    }

    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, boost::system::error_code& ec) {
      const std::size_t extra = beast::buffer_bytes(buffers);
      if (extra > body_.max_size() - body_.size()) {
        ec = bhttp::error::buffer_overflow;
        return 0;
      }
      ec = {};
      for (const auto buffer : beast::buffers_range_ref(buffers))
        body_.append(static_cast<const char*>(buffer.data()), buffer.size());
      return extra;
    }

    void finish(boost::system::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kFirstReadBytes = 8 * 1024;
constexpr std::size_t kHeadReserveBytes = 512;  // a typical head, so that it grows at most once

const std::string& HttpDate() {
  thread_local std::time_t cached_second = 0;
  thread_local std::string cached;
  const std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached = buf;
    cached_second = now;
  }
  return cached;
}

// An HTTP/1.1 WebSocket upgrade request (RFC 6455 §4.1).
bool IsWebSocketUpgrade(const Request& request) {
  auto contains = [](std::string_view haystack, std::string_view needle) {
    for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
      if (beast::iequals(haystack.substr(i, needle.size()), needle)) return true;
    }
    return false;
  };
  const auto upgrade = request.headers.Get("Upgrade");
  const auto connection = request.headers.Get("Connection");
  return request.method == "GET" && upgrade && connection && contains(*upgrade, "websocket") &&
         contains(*connection, "upgrade");
}

// Bounded label values for metrics: unknown methods collapse into "OTHER".
std::string_view MethodLabel(std::string_view method) {
  static constexpr std::string_view kKnown[] = {"GET",    "HEAD",    "POST", "PUT",
                                                "DELETE", "OPTIONS", "PATCH"};
  for (const auto known : kKnown) {
    if (method == known) return known;
  }
  return "OTHER";
}

// The metric children a connection counted its last request in. A keep-alive client mostly
// repeats one route, method and status; then the families' look-ups (a mutex shared by the I/O
// threads, a map keyed by label vectors, three strings to build) are skipped.
struct LastMetrics {
  std::string route;
  std::string_view method;
  int status = 0;
  metrics::Counter* requests = nullptr;
  metrics::Histogram* latency = nullptr;
};

// A value handed from any thread to a coroutine on a connection's thread: a handler's answer,
// the next chunk of a streamed body. The producer parks it under the mutex and posts a cancel of
// the timer to that thread, which wakes the waiting coroutine. The coroutine looks at the slot
// before every wait, and the posted cancel can only run once it waits, so no wake-up is lost;
// a stale cancel (from an earlier value) is a spurious wake-up that WaitParked absorbs.
template <class T>
struct Parked : std::enable_shared_from_this<Parked<T>> {
  explicit Parked(asio::any_io_executor ex) : executor(std::move(ex)), timer(executor) {}

  void Put(T value) {  // any thread
    {
      std::lock_guard lock(mutex);
      parked = std::move(value);
    }
    asio::post(executor, [self = this->shared_from_this()] { self->timer.cancel(); });
  }

  std::optional<T> Take() {
    std::lock_guard lock(mutex);
    return std::exchange(parked, std::nullopt);
  }

  void Interrupt() {  // on the connection's thread
    interrupted = true;
    timer.cancel();
  }

  asio::any_io_executor executor;
  asio::steady_timer timer;
  std::mutex mutex;
  std::optional<T> parked;
  bool interrupted = false;  // only touched on the connection's thread
};

// Waits (on the connection's thread) for the value parked in `slot`: nullopt once `deadline` has
// passed or the wait was interrupted.
template <class T>
asio::awaitable<std::optional<T>> WaitParked(std::shared_ptr<Parked<T>> slot,
                                             Clock::time_point deadline) {
  slot->timer.expires_at(deadline);
  while (true) {
    if (auto value = slot->Take()) co_return value;
    if (slot->interrupted || Clock::now() >= deadline) co_return std::nullopt;
    co_await slot->timer.async_wait(kTuple);
  }
}

// One value handed from any thread to the coroutine waiting for it on a connection's thread: a
// handler's answer. The waiting coroutine's completion is deferred to its executor by whichever
// thread puts the value: one queued handler, no timer. When the value comes first (a handler that
// answered inline), the coroutine takes it without suspending.
template <class T>
class Handoff {
 public:
  void Put(T value) {  // any thread, once
    std::unique_lock lock(mutex_);
    if (!waiter_) {
      value_ = std::move(value);
      return;
    }
    // Moved by construction only: Boost 1.81's move assignment of any_completion_handler
    // recurses without end (it copies from an lvalue through its converting constructor).
    Waiter waiter(std::move(*waiter_));
    waiter_.reset();
    lock.unlock();
    Complete(executor_, std::move(waiter), std::move(value));
  }

  std::optional<T> TakeReady() {
    std::lock_guard lock(mutex_);
    return std::exchange(value_, std::nullopt);
  }

  // On `executor`, the waiting coroutine's; at most one wait, only after TakeReady() found
  // nothing.
  asio::awaitable<T> Wait(asio::any_io_executor executor) {
    return asio::async_initiate<const asio::use_awaitable_t<>, void(T)>(
        [this, executor = std::move(executor)](auto handler) {
          std::unique_lock lock(mutex_);
          if (value_) {  // put between TakeReady() and now: complete, but never inline
            T value = std::move(*value_);
            value_.reset();
            lock.unlock();
            Complete(executor, std::move(handler), std::move(value));
            return;
          }
          executor_ = executor;
          waiter_.emplace(std::move(handler));
        },
        asio::use_awaitable);
  }

 private:
  // Deferred, not posted: when the value is put on an I/O thread (an upstream answer read on
  // the same thread), the completion runs on that thread once the current handler returns,
  // instead of waking another thread. A thread that answers many at once (the webhook inbox's
  // database thread) opens a net::PostBatch: one hand-off per I/O thread for all its answers.
  template <class Handler>
  static void Complete(const asio::any_io_executor& executor, Handler handler, T value) {
    net::Defer(executor, [handler = std::move(handler), value = std::move(value)]() mutable {
      std::move(handler)(std::move(value));
    });
  }

  std::mutex mutex_;
  std::optional<T> value_;
  using Waiter = asio::any_completion_handler<void(T)>;
  asio::any_io_executor executor_;  // the waiter's
  std::optional<Waiter> waiter_;
};

// How the body of a streamed response went.
struct StreamOutcome {
  bool complete = false;         // every byte and the end of the body were written
  bool cut = false;              // given up mid-body: the connection must end without a clean close
  bool keep_alive = false;       // what the response announced
  bool close_delimited = false;  // HTTP/1.0 without a length: only a reset can say "cut"
  std::uint64_t bytes = 0;       // body bytes written
};

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Impl> {
  Impl(net::Runtime& rt, const Dispatcher& d, metrics::Registry& registry, ServerOptions opts)
      : runtime(rt),
        dispatcher(d),
        options(std::move(opts)),
        acceptor(rt.next_context().get_executor()),
        requests(registry.AddCounter("callgate_http_requests_total",
                                     "HTTP requests answered, by route, method and status",
                                     {"route", "method", "status"})),
        latency(registry.AddHistogram(
            "callgate_http_request_duration_seconds",
            "Time from a request's head being read to its response being ready to send, by route",
            {"route"}, metrics::LatencyBuckets())),
        in_flight(
            registry
                .AddGauge("callgate_http_requests_in_flight", "HTTP requests being handled now", {})
                .Get()),
        open(
            registry.AddGauge("callgate_http_connections_open", "Open HTTP connections", {}).Get()),
        accepted(
            registry.AddCounter("callgate_http_connections_total", "HTTP connections accepted", {})
                .Get()) {}

  asio::awaitable<void> AcceptLoop();
  template <class Stream>
  asio::awaitable<void> Serve(std::shared_ptr<Connection<Stream>> conn);
  template <class Stream>
  asio::awaitable<bool> Write(Connection<Stream>& conn, Response response,
                              const std::string& method, unsigned version, bool keep_alive,
                              const std::string& request_id);
  template <class Stream>
  asio::awaitable<StreamOutcome> WriteStreamed(Connection<Stream>& conn, Response response,
                                               const std::string& method, unsigned version,
                                               bool keep_alive, const std::string& request_id);
  asio::awaitable<Response> Handle(asio::any_io_executor conn_executor, Prepared prepared,
                                   Request request);
  // The head of `response` as this server writes it, whole or streamed (response_head.hpp).
  std::string Head(const Response& response, std::optional<std::size_t> content_length,
                   unsigned version, bool keep_alive, const std::string& request_id,
                   bool chunked) const;
  void Register(const std::shared_ptr<ConnectionBase>& conn);
  void Record(const Request& request, const std::string& route, int status, std::size_t bytes,
              Clock::time_point started, LastMetrics& last);
  void Count(const Request& request, const std::string& route, int status,
             Clock::time_point started, LastMetrics& last);
  void LogAccess(const Request& request, const std::string& route, int status, std::uint64_t bytes,
                 Clock::time_point started, std::string_view note = {});

  net::Runtime& runtime;
  const Dispatcher& dispatcher;
  ServerOptions options;
  tcp::acceptor acceptor;
  metrics::Family<metrics::Counter>& requests;
  metrics::Family<metrics::Histogram>& latency;
  metrics::Gauge& in_flight;
  metrics::Gauge& open;
  metrics::Counter& accepted;

  std::atomic<bool> draining{false};
  mutable std::mutex mutex;
  std::set<std::shared_ptr<ConnectionBase>> connections;
  std::unique_ptr<asio::ssl::context> tls;  // set when serving HTTPS
};

asio::awaitable<void> Server::Impl::AcceptLoop() {
  auto self = shared_from_this();
  while (!draining) {
    auto [ec, socket] =
        co_await acceptor.async_accept(runtime.next_context().get_executor(), kTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || draining || !acceptor.is_open()) co_return;
      // Out of file descriptors and the like: back off briefly instead of spinning.
      spdlog::warn("accept failed: {}", ec.message());
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(kTuple);
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    const auto endpoint = socket.remote_endpoint(ignored);
    const std::string remote = ignored ? std::string("unknown") : endpoint.address().to_string();
    auto executor = socket.get_executor();
    if (tls) {
      auto conn = std::make_shared<Connection<TlsStream>>(executor, std::move(socket), *tls);
      conn->remote = remote;
      Register(conn);
      asio::co_spawn(executor, Serve(conn), asio::detached);
    } else {
      auto conn = std::make_shared<Connection<PlainStream>>(executor, std::move(socket));
      conn->remote = remote;
      Register(conn);
      asio::co_spawn(executor, Serve(conn), asio::detached);
    }
  }
}

void Server::Impl::Register(const std::shared_ptr<ConnectionBase>& conn) {
  {
    std::lock_guard lock(mutex);
    connections.insert(conn);
  }
  accepted.Increment();
  open.Add(1);
}

std::string Server::Impl::Head(const Response& response, std::optional<std::size_t> content_length,
                               unsigned version, bool keep_alive, const std::string& request_id,
                               bool chunked) const {
  std::string head;
  head.reserve(kHeadReserveBytes);
  AppendResponseHead(head, response.status, response.headers, content_length,
                     {.version = version,
                      .keep_alive = keep_alive,
                      .server = options.server_name,
                      .date = HttpDate(),
                      .request_id = request_id,
                      .chunked = chunked});
  return head;
}

void Server::Impl::Record(const Request& request, const std::string& route, int status,
                          std::size_t bytes, Clock::time_point started, LastMetrics& last) {
  Count(request, route, status, started, last);
  LogAccess(request, route, status, bytes, started);
}

void Server::Impl::Count(const Request& request, const std::string& route, int status,
                         Clock::time_point started, LastMetrics& children) {
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  const std::string_view method = MethodLabel(request.method);
  if (children.requests == nullptr || children.status != status || children.method != method ||
      children.route != route) {
    children.requests = &requests.WithLabels({route, std::string(method), std::to_string(status)});
    children.latency = &latency.WithLabels({route});
    children.route = route;
    children.method = method;
    children.status = status;
  }
  children.requests->Increment();
  children.latency->Observe(seconds);
}

// `note` marks a streamed response that did not end well ("cut"); empty otherwise.
void Server::Impl::LogAccess(const Request& request, const std::string& route, int status,
                             std::uint64_t bytes, Clock::time_point started,
                             std::string_view note) {
  auto log = core::AccessLogger();
  if (!log->should_log(spdlog::level::info)) return;
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  // The query string is not logged: it can carry tokens (signed URLs, cursors).
  if (core::CurrentLogFormat() == core::LogFormat::kJson) {
    log->info(
        "{{\"msg\":\"request\",\"remote\":\"{}\",\"method\":\"{}\",\"path\":\"{}\",\"route\":\"{}"
        "\",\"status\":{},\"bytes\":{},\"duration_ms\":{:.3f},\"request_id\":\"{}\"{}}}",
        core::JsonEscape(request.remote_address), core::JsonEscape(request.method),
        core::JsonEscape(request.path), core::JsonEscape(route), status, bytes, seconds * 1e3,
        core::JsonEscape(request.request_id),
        note.empty() ? std::string() : ",\"note\":\"" + std::string(note) + "\"");
  } else {
    log->info("{} \"{} {}\" {} {}B {:.2f}ms {}{}{}", request.remote_address, request.method,
              request.path, status, bytes, seconds * 1e3, request.request_id,
              note.empty() ? "" : " ", note);
  }
}

template <class Stream>
asio::awaitable<bool> Server::Impl::Write(Connection<Stream>& conn, Response response,
                                          const std::string& method, unsigned version,
                                          bool keep_alive, const std::string& request_id) {
  // One buffer for the head, written with the body in one gather (see response_head.hpp).
  const bool has_body = StatusHasBody(response.status);
  const std::string head =
      Head(response, response.body.size(), version, keep_alive, request_id, /*chunked=*/false);
  // HEAD: Content-Length still announces the GET body, which is not sent.
  const bool send_body = has_body && method != "HEAD" && !response.body.empty();
  const std::array<asio::const_buffer, 2> buffers{
      asio::buffer(head), send_body ? asio::buffer(response.body) : asio::const_buffer()};
  conn.watchdog.SetAfter(options.body_timeout);  // a client that stops reading is dropped
  auto [ec, n] = co_await asio::async_write(conn.stream, buffers, kTuple);
  conn.watchdog.Clear();
  co_return !ec;
}

// The body is pulled one chunk at a time: the next chunk is asked for only once the previous one
// was written, so a slow client slows the producer down instead of filling memory. Each wait,
// for the producer or for the client, is bounded by BODY_TIMEOUT_MS.
template <class Stream>
asio::awaitable<StreamOutcome> Server::Impl::WriteStreamed(Connection<Stream>& conn,
                                                           Response response,
                                                           const std::string& method,
                                                           unsigned version, bool keep_alive,
                                                           const std::string& request_id) {
  StreamOutcome outcome;
  std::shared_ptr<BodyStream> body = std::move(response.stream);
  const std::optional<std::uint64_t> length = body->Length();
  // The framing is the server's: it follows the stream, whatever the handler set.
  const bool chunked = !length && version >= 11;
  if (!length && !chunked) {
    keep_alive = false;  // HTTP/1.0 has no chunked encoding: the body ends with the connection
    outcome.close_delimited = true;
  }
  outcome.keep_alive = keep_alive;
  const std::string head =
      Head(response,
           length ? std::optional<std::size_t>(static_cast<std::size_t>(*length)) : std::nullopt,
           version, keep_alive, request_id, chunked);
  conn.watchdog.SetAfter(options.body_timeout);
  auto [header_ec, header_bytes] =
      co_await asio::async_write(conn.stream, asio::buffer(head), kTuple);
  conn.watchdog.Clear();  // waiting for the producer is bounded by WaitParked's own deadline
  if (header_ec) co_return outcome;
  if (method == "HEAD") {  // the headers announce the GET body; the stream is never pulled
    outcome.complete = true;
    co_return outcome;
  }

  auto slot = std::make_shared<Parked<BodyChunk>>(conn.executor);
  conn.interrupt = [slot] { slot->Interrupt(); };  // shutdown's grace period is over
  while (true) {
    body->Next([slot](BodyChunk chunk) { slot->Put(std::move(chunk)); });
    const auto deadline = Clock::now() + options.body_timeout;
    std::optional<BodyChunk> chunk = co_await WaitParked(slot, deadline);
    std::string failure;
    if (!chunk) {
      failure = slot->interrupted ? "the server is shutting down"
                                  : "no data from the producer within " +
                                        std::to_string(options.body_timeout.count()) + " ms";
    } else if (chunk->kind == BodyChunk::Kind::kError) {
      failure = "the producer failed: " + chunk->error;
    } else if (chunk->kind == BodyChunk::Kind::kEnd && length && outcome.bytes != *length) {
      failure = "the body ended after " + std::to_string(outcome.bytes) + " of " +
                std::to_string(*length) + " announced bytes";
    } else if (chunk->kind == BodyChunk::Kind::kData && length &&
               chunk->data.size() > *length - outcome.bytes) {
      failure = "the body is longer than the " + std::to_string(*length) + " announced bytes";
    }
    if (!failure.empty()) {
      spdlog::warn("request {}: streamed response cut after {} bytes: {}", request_id,
                   outcome.bytes, failure);
      outcome.cut = true;
      break;
    }
    const bool last = chunk->kind == BodyChunk::Kind::kEnd;
    if (!last && chunk->data.empty()) continue;  // nothing to write; ask again
    if (last && !chunked) {
      outcome.complete = true;
      break;
    }
    // A chunk of HTTP/1.1 chunked coding: its size line, the data, CRLF; the last is empty.
    const detail::ChunkSizeLine size_line =
        chunked ? detail::FormatChunkSize(chunk->data.size()) : detail::ChunkSizeLine{};
    const std::array<asio::const_buffer, 3> pieces{
        asio::buffer(size_line.bytes, size_line.size), asio::buffer(chunk->data),
        chunked ? asio::buffer("\r\n", 2) : asio::const_buffer()};
    conn.watchdog.SetAfter(options.body_timeout);  // a client that stops reading is dropped
    auto [ec, n] = co_await asio::async_write(conn.stream, pieces, kTuple);
    conn.watchdog.Clear();
    if (ec) {
      spdlog::debug("request {}: client gone after {} streamed bytes: {}", request_id,
                    outcome.bytes, ec.message());
      break;
    }
    if (last) {
      outcome.complete = true;
      break;
    }
    outcome.bytes += chunk->data.size();
  }
  conn.interrupt = nullptr;
  co_return outcome;
}

asio::awaitable<Response> Server::Impl::Handle(asio::any_io_executor conn_executor,
                                               Prepared prepared, Request request) {
  // The handler may answer inline, or later from any thread (after blocking work elsewhere).
  auto answer = std::make_shared<Handoff<Response>>();
  dispatcher.Run(std::move(prepared), std::move(request),
                 Responder([answer](Response r) { answer->Put(std::move(r)); }));
  if (std::optional<Response> now = answer->TakeReady()) co_return std::move(*now);
  co_return co_await answer->Wait(conn_executor);
}

template <class Stream>
asio::awaitable<void> Server::Impl::Serve(std::shared_ptr<Connection<Stream>> conn) {
  auto self = shared_from_this();
  constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
  auto& lowest = beast::get_lowest_layer(conn->stream);
  beast::flat_buffer buffer;
  LastMetrics last_metrics;  // the metric children of this connection's last request
  bool keep_going = true;
  bool aborted = false;  // fault injection: end with a reset, no FIN
  bool cut = false;      // a streamed body given up mid-way
  if constexpr (kTls) {
    conn->watchdog.SetAfter(options.header_timeout);
    auto [ec] = co_await conn->stream.async_handshake(asio::ssl::stream_base::server, kTuple);
    conn->watchdog.Clear();
    if (ec) {
      spdlog::debug("{}: TLS handshake failed: {}", conn->remote, ec.message());
      keep_going = false;
    }
  }
  while (keep_going) {
    // Between requests: wait for the first byte, quietly closing an idle connection.
    conn->idle = true;
    if (draining) break;
    if (buffer.size() == 0) {
      conn->watchdog.SetAfter(options.idle_timeout);
      // Room for a whole typical request (a ~6 KB signed webhook) in one receive.
      auto [ec, n] = co_await conn->stream.async_read_some(buffer.prepare(kFirstReadBytes), kTuple);
      conn->watchdog.Clear();
      if (ec) break;
      buffer.commit(n);
    }
    conn->idle = false;

    const auto started = Clock::now();
    Request request;
    request.remote_address = conn->remote;
    request.tls = kTls;
    bhttp::request_parser<AppendedStringBody> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
    // The route's body limit is known only once the head is read: the dispatcher then refuses
    // a declared length over it (413). Beast would check a Content-Length against its own
    // default (1 MiB) as the head ends, refusing a route's larger bodies (a post_call_audio is
    // tens of megabytes) as a malformed request.
    parser.body_limit(boost::none);

    // The deadline only cancels the read, so that a 408 can still be written.
    conn->watchdog.SetAfter(options.header_timeout);
    auto [hec, hn] = co_await bhttp::async_read_header(conn->stream, buffer, parser, kTuple);
    const bool header_timed_out = conn->watchdog.Clear();
    if (hec) {
      std::optional<Response> error;
      request.request_id = core::NewId("req");
      if (header_timed_out) {
        error = dispatcher.RenderError(408, "request_timeout",
                                       "the request headers did not arrive within " +
                                           std::to_string(options.header_timeout.count()) + " ms",
                                       request.request_id);
      } else if (hec == bhttp::error::header_limit) {
        error = dispatcher.RenderError(
            431, "request_header_fields_too_large",
            "the request headers exceed " + std::to_string(options.max_header_bytes) + " bytes",
            request.request_id);
      } else if (hec != bhttp::error::end_of_stream && hec != asio::error::eof &&
                 hec != asio::error::connection_reset && hec != asio::error::operation_aborted) {
        error = dispatcher.RenderError(400, "malformed_request",
                                       "the request is not valid HTTP/1.1: " + hec.message(),
                                       request.request_id);
      }
      if (error) {
        spdlog::warn("{}: {} ({})", conn->remote, error->status, hec.message());
        request.method = "-";
        request.path = "-";
        // Counted before it is written: a client holding the answer finds it in /metrics.
        Record(request, "unmatched", error->status, error->body.size(), started, last_metrics);
        const std::string no_method;  // a named local: see the note at RunWebSocket below
        co_await Write(*conn, std::move(*error), no_method, 11, false, request.request_id);
      }
      break;
    }

    in_flight.Add(1);
    auto& head = parser.get();
    request.method = std::string(head.method_string());
    request.target = std::string(head.target());
    const auto question = request.target.find('?');
    request.path = request.target.substr(0, question);
    if (question != std::string::npos) request.query = request.target.substr(question + 1);
    for (const auto& field : head) {
      request.headers.Add(std::string(field.name_string()), std::string(field.value()));
    }
    const auto supplied_id = request.headers.Get("X-Request-Id");
    request.request_id = supplied_id && core::IsAcceptableRequestId(*supplied_id)
                             ? std::string(*supplied_id)
                             : core::NewId("req");
    const unsigned version = head.version();
    bool keep_alive = head.keep_alive();
    // What the access log needs, kept before `request` moves into the handler.
    // The log and the metrics need only the first four; the observer (the simulator's journal)
    // sees the whole head.
    Request logged;
    logged.remote_address = request.remote_address;
    logged.method = request.method;
    logged.path = request.path;
    logged.request_id = request.request_id;
    if (dispatcher.observed()) {
      logged.tls = request.tls;
      logged.target = request.target;
      logged.query = request.query;
      logged.headers = request.headers;
    }

    Prepared prepared = dispatcher.Prepare(request);
    const std::string route =
        prepared.match.route != nullptr ? prepared.match.route->pattern : "unmatched";
    Response response;
    if (prepared.early) {
      response = std::move(*prepared.early);
      if (!parser.is_done()) keep_alive = false;  // the body was not read: the stream is unusable
    } else {
      // A declared length over it was refused by Prepare (early); this bounds a chunked body.
      parser.body_limit(prepared.body_limit);
      bool body_ok = true;
      if (!parser.is_done()) {
        const auto expect = request.headers.Get("Expect");
        if (expect && beast::iequals(*expect, "100-continue")) {
          bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, version};
          conn->watchdog.SetAfter(options.body_timeout);
          co_await bhttp::async_write(conn->stream, cont, kTuple);
        }
        conn->watchdog.SetAfter(options.body_timeout);
        auto [bec, bn] = co_await bhttp::async_read(conn->stream, buffer, parser, kTuple);
        const bool body_timed_out = conn->watchdog.Clear();
        if (bec) {
          body_ok = false;
          keep_alive = false;
          if (bec == bhttp::error::body_limit) {
            response =
                dispatcher.RenderError(413, "payload_too_large",
                                       "the request body exceeds the limit of " +
                                           std::to_string(prepared.body_limit) + " bytes",
                                       request.request_id, {{"limit_bytes", prepared.body_limit}});
          } else if (body_timed_out) {
            response =
                dispatcher.RenderError(408, "request_timeout",
                                       "the request body did not arrive within " +
                                           std::to_string(options.body_timeout.count()) + " ms",
                                       request.request_id);
          } else if (bec == bhttp::error::partial_message || bec == asio::error::eof ||
                     bec == asio::error::connection_reset) {
            in_flight.Add(-1);
            break;  // the client went away mid-body: nobody to answer
          } else {
            response = dispatcher.RenderError(
                400, "malformed_request", "the request body could not be read: " + bec.message(),
                request.request_id);
          }
        }
      }
      const Route* matched = prepared.match.route;
      if (body_ok && matched->websocket && IsWebSocketUpgrade(request)) {
        request.path_params = prepared.match.params;
        WebSocketAccept accept;
        try {
          accept = matched->websocket(request);
        } catch (const std::exception& e) {
          spdlog::error("request {}: WebSocket acceptor failed: {}", request.request_id, e.what());
        }
        if (accept.handler && !accept.refusal) {
          Response switching;
          switching.status = 101;
          dispatcher.Observe(logged, switching);
          in_flight.Add(-1);
          Record(logged, route, 101, 0, started, last_metrics);
          // Named locals, not temporaries, as coroutine arguments: g++ 12 destroys an aggregate
          // temporary in a co_await expression twice (ASan: free of a non-malloc'd address).
          detail::WebSocketOptions ws_options{
              .max_message_bytes = options.websocket_max_message_bytes,
              .handshake_timeout = options.header_timeout,
              .server_name = options.server_name};
          // An upgrade request has no body: its head, as the WebSocket accept wants it.
          bhttp::request<bhttp::string_body> upgrade_request(std::move(parser.release().base()));
          co_await detail::RunWebSocket(conn, std::move(buffer), std::move(upgrade_request),
                                        std::move(accept), std::move(ws_options));
          break;
        }
        body_ok = false;
        keep_alive = false;
        response = accept.refusal ? std::move(*accept.refusal)
                                  : dispatcher.RenderError(500, "internal_error",
                                                           "the WebSocket endpoint failed",
                                                           request.request_id);
      }
      if (body_ok) {
        request.body = std::move(parser.get().body());
        if (dispatcher.observed()) logged.body = request.body;
        response = co_await Handle(conn->executor, std::move(prepared), std::move(request));
      }
    }
    if (draining) keep_alive = false;
    dispatcher.Observe(logged, response);
    if (response.abort_connection) {
      // Fault injection: a reset instead of an answer.
      boost::system::error_code ignored;
      lowest.set_option(asio::socket_base::linger(true, 0), ignored);
      in_flight.Add(-1);
      Record(logged, route, 0, 0, started, last_metrics);
      aborted = true;
      break;
    }
    if (response.stream && StatusHasBody(response.status)) {
      const int status = response.status;
      // Counted before it is written, like the others; logged once the body is over.
      Count(logged, route, status, started, last_metrics);
      const StreamOutcome streamed = co_await WriteStreamed(
          *conn, std::move(response), logged.method, version, keep_alive, logged.request_id);
      in_flight.Add(-1);
      LogAccess(logged, route, status, streamed.bytes, started,
                streamed.complete ? std::string_view() : std::string_view("cut"));
      keep_going = streamed.complete && streamed.keep_alive;
      cut = streamed.cut;
      if (cut && streamed.close_delimited) {
        // A FIN would end the body as if it were complete: reset instead.
        boost::system::error_code ignored;
        lowest.set_option(asio::socket_base::linger(true, 0), ignored);
        aborted = true;
      }
      continue;
    }
    response.stream.reset();  // a 204/304 has no body to stream
    // Counted before it is written: a client holding the answer finds it in /metrics.
    Record(logged, route, response.status, response.body.size(), started, last_metrics);
    const bool written = co_await Write(*conn, std::move(response), logged.method, version,
                                        keep_alive, logged.request_id);
    in_flight.Add(-1);
    keep_going = written && keep_alive;
  }
  // A streamed body given up mid-way ends without TLS close_notify (a clean end would hide the
  // truncation) but with a FIN after the bytes already sent.
  if constexpr (kTls) {
    if (!aborted && !cut && lowest.is_open()) {
      conn->watchdog.SetAfter(std::chrono::seconds(1));
      co_await conn->stream.async_shutdown(kTuple);
      conn->watchdog.Clear();
    }
  }
  boost::system::error_code ignored;
  // An aborted connection must not send a FIN first, or the client sees a clean end of stream.
  if (!aborted) lowest.shutdown(tcp::socket::shutdown_send, ignored);
  lowest.close(ignored);
  {
    std::lock_guard lock(mutex);
    connections.erase(conn);
  }
  open.Add(-1);
}

Server::Server(net::Runtime& runtime, const Dispatcher& dispatcher, metrics::Registry& registry,
               ServerOptions options)
    : impl_(std::make_shared<Impl>(runtime, dispatcher, registry, std::move(options))) {}

Server::~Server() = default;

std::uint16_t Server::Listen() {
  boost::system::error_code ec;
  if (!impl_->options.tls_cert_file.empty() || !impl_->options.tls_key_file.empty()) {
    auto context = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                         asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                         asio::ssl::context::no_tlsv1_1);
    context->use_certificate_chain_file(impl_->options.tls_cert_file, ec);
    if (ec) {
      throw std::runtime_error("cannot load the TLS certificate " + impl_->options.tls_cert_file +
                               ": " + ec.message());
    }
    context->use_private_key_file(impl_->options.tls_key_file, asio::ssl::context::pem, ec);
    if (ec) {
      throw std::runtime_error("cannot load the TLS key " + impl_->options.tls_key_file + ": " +
                               ec.message());
    }
    impl_->tls = std::move(context);
  }
  const std::string host = impl_->options.host == "localhost" ? "127.0.0.1" : impl_->options.host;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) throw std::runtime_error("'" + host + "' is not an IP address: " + ec.message());
  const tcp::endpoint endpoint(address, impl_->options.port);
  auto& acceptor = impl_->acceptor;
  const std::string where = host + ":" + std::to_string(impl_->options.port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (ec) throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
  acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
  return acceptor.local_endpoint().port();
}

void Server::Start() {
  asio::co_spawn(impl_->acceptor.get_executor(), impl_->AcceptLoop(), asio::detached);
}

void Server::Shutdown(std::chrono::milliseconds grace, std::function<void()> on_done) {
  auto impl = impl_;
  impl->draining = true;
  asio::post(impl->acceptor.get_executor(), [impl] {
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
  });
  std::vector<std::shared_ptr<ConnectionBase>> snapshot;
  {
    std::lock_guard lock(impl->mutex);
    snapshot.assign(impl->connections.begin(), impl->connections.end());
  }
  for (const auto& conn : snapshot) {
    // On the connection's thread: only a connection waiting for a new request is cut now.
    asio::post(conn->executor, [conn] {
      if (conn->drain) {
        conn->drain();  // a WebSocket: close it with 1001
      } else if (conn->idle) {
        conn->Cancel();
      }
    });
  }
  // Wait for the connections in flight, polling; cut the rest when the grace period is over.
  asio::co_spawn(
      impl->runtime.context(),
      [impl, grace, done = std::move(on_done)]() -> asio::awaitable<void> {
        const auto deadline = Clock::now() + grace;
        asio::steady_timer timer(impl->runtime.context());
        while (true) {
          std::vector<std::shared_ptr<ConnectionBase>> remaining;
          {
            std::lock_guard lock(impl->mutex);
            remaining.assign(impl->connections.begin(), impl->connections.end());
          }
          if (remaining.empty()) break;
          if (Clock::now() >= deadline) {
            spdlog::warn("shutdown: grace period over, cutting {} connection(s)", remaining.size());
            for (const auto& conn : remaining) {
              asio::post(conn->executor, [conn] { conn->Cancel(); });
            }
            break;
          }
          timer.expires_after(std::chrono::milliseconds(20));
          co_await timer.async_wait(kTuple);
        }
        if (done) done();
      },
      asio::detached);
}

bool Server::tls() const {
  return impl_->tls != nullptr;
}

std::size_t Server::open_connections() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->connections.size();
}

}  // namespace callgate::http
