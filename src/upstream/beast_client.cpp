// The Beast implementation of upstream::HttpClient (see http_client.hpp for the contract).
//
// Each request runs as one coroutine on the executor of the I/O thread it was sent from (one
// thread runs each io_context, so no strand is needed). A connection is owned by exactly one
// request at a time: taken from the pool (or made), used, and given back only after a complete
// response that allows keep-alive. The connection's watchdog (net/watchdog.hpp: no timer
// operation per request) keeps the connect timeout and then the total deadline by closing the
// socket, which is what we want on the client side; the sockets are bare (no beast::tcp_stream,
// whose expiry bookkeeping ran on every read and write).
//
// A streamed response (SendStreamed) keeps its connection, its parser and its executor in a
// BodyState shared by the consumer's BodyStream handle and the coroutine reading each chunk; the
// pool, like the TLS context, is shared so that a stream may outlive the client.
#include "http/request_head.hpp"
#include "upstream/http_client.hpp"
#include "upstream/tls_client.hpp"
#include "upstream/url_target.hpp"

#include "net/runtime.hpp"
#include "net/watchdog.hpp"

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>

namespace callgate::upstream {

void HttpClient::SendStreamed(HttpRequest request, HttpStreamedCallback done) {
  Send(std::move(request), [done = std::move(done)](HttpOutcome outcome) {
    if (auto* failure = std::get_if<HttpFailure>(&outcome)) {
      done(std::move(*failure));
      return;
    }
    auto& response = std::get<HttpResponse>(outcome);
    HttpStreamedResponse streamed{response.status, std::move(response.headers), nullptr};
    streamed.body =
        http::MakeStringBodyStream(std::make_shared<const std::string>(std::move(response.body)));
    done(std::move(streamed));
  });
}

const char* ToString(HttpFailure::Kind kind) {
  switch (kind) {
    case HttpFailure::Kind::kInvalidUrl:
      return "invalid_url";
    case HttpFailure::Kind::kResolve:
      return "resolve_failed";
    case HttpFailure::Kind::kConnect:
      return "connect_failed";
    case HttpFailure::Kind::kTls:
      return "tls_failed";
    case HttpFailure::Kind::kTimeout:
      return "timeout";
    case HttpFailure::Kind::kConnectionLost:
      return "connection_lost";
    case HttpFailure::Kind::kBadResponse:
      return "bad_response";
    case HttpFailure::Kind::kResponseTooLarge:
      return "response_too_large";
  }
  return "unknown";
}

namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

using Target = UrlTarget;

// Pooled connections are shared per scheme, host and port.
std::string PoolKey(const Target& target) {
  return target.scheme + "://" + target.authority;
}

// The io_context an executor belongs to: the I/O thread it runs on.
asio::io_context& ContextOf(const asio::any_io_executor& executor) {
  return static_cast<asio::io_context&>(asio::query(executor, asio::execution::context));
}

// Room for a whole typical answer (a conversation is 3-20 KB) in one receive. Beast reads into a
// flat_buffer as much as its spare capacity, at least 512 bytes, and its parser consumes every
// body byte at once, so a buffer left to grow by itself stays at 512: a 3 KB answer took six
// receives, six wake-ups of the read loop and six parser calls.
constexpr std::size_t kReadBytes = std::size_t{16} * 1024;

// One connection, plain or TLS. Owned by one request at a time.
struct Link {
  explicit Link(asio::io_context& context)
      : home(&context), watchdog(context.get_executor(), [this] { Close(); }) {
    buffer.reserve(kReadBytes);
  }

  // The io_context (I/O thread) its socket is registered with: it is only reused by requests
  // running there, so its completions never hop to another thread.
  const asio::io_context* home;
  std::unique_ptr<tcp::socket> plain;
  std::unique_ptr<beast::ssl_stream<tcp::socket>> tls;
  beast::flat_buffer buffer;
  SteadyClock::time_point idle_since;
  // The deadline of the phase under way (connecting, then the request): closes the socket when
  // it passes.
  net::Watchdog watchdog;

  tcp::socket& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  void Close() {
    boost::system::error_code ignored;
    lowest().close(ignored);
  }

  // True when the peer has closed (or reset) an idle connection, or sent unexpected bytes.
  bool PeerClosed() {
    auto& socket = lowest();
    if (!socket.is_open()) return true;
    char byte;
    const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;                            // FIN
    if (n > 0) return true;                             // unsolicited bytes: unusable
    return !(errno == EAGAIN || errno == EWOULDBLOCK);  // reset or other error
  }
};

// Idle keep-alive connections by scheme://host:port and I/O thread. Shared by the client and its
// open streams.
class Pool {
 public:
  Pool(std::chrono::milliseconds idle_timeout, std::size_t max_idle_per_host)
      : idle_timeout_(idle_timeout), max_idle_per_host_(max_idle_per_host) {}

  // The check for a peer that closed (a recv syscall) runs outside the lock, which the other
  // I/O threads take for their own connections.
  std::unique_ptr<Link> TakeIdle(const std::string& key, const asio::io_context& home) {
    const auto now = SteadyClock::now();
    while (std::unique_ptr<Link> link = PopMostRecent(key, home)) {
      if (now - link->idle_since < idle_timeout_ && !link->PeerClosed()) return link;
    }
    return nullptr;
  }

  void GiveBack(const std::string& key, std::unique_ptr<Link> link) {
    link->idle_since = SteadyClock::now();
    link->watchdog.Clear();
    std::lock_guard lock(mutex_);
    auto& links = links_[std::pair(key, link->home)];
    if (links.size() >= max_idle_per_host_) links.pop_front();  // the stalest
    links.push_back(std::move(link));
  }

  void Clear() {
    std::lock_guard lock(mutex_);
    links_.clear();
  }

 private:
  std::unique_ptr<Link> PopMostRecent(const std::string& key, const asio::io_context& home) {
    std::lock_guard lock(mutex_);
    auto it = links_.find(std::pair(key, &home));
    if (it == links_.end() || it->second.empty()) return nullptr;
    std::unique_ptr<Link> link = std::move(it->second.back());
    it->second.pop_back();
    return link;
  }

  const std::chrono::milliseconds idle_timeout_;
  const std::size_t max_idle_per_host_;
  std::mutex mutex_;
  std::map<std::pair<std::string, const asio::io_context*>, std::deque<std::unique_ptr<Link>>>
      links_;
};

// What a failed read of a response (head or body) means for the caller.
// `timed_out`: the connection's watchdog closed it.
HttpFailure ReadFailure(const boost::system::error_code& ec, bool timed_out, bool got_some,
                        const Target& target, std::uint64_t limit) {
  HttpFailure failure{HttpFailure::Kind::kConnectionLost, "", true};
  if (timed_out) {
    failure.kind = HttpFailure::Kind::kTimeout;
    failure.message = "no complete response from " + target.host_header + " in time";
  } else if (ec == bhttp::error::body_limit) {
    failure.kind = HttpFailure::Kind::kResponseTooLarge;
    failure.message = "response from " + target.host_header + " is larger than " +
                      std::to_string(limit) + " bytes";
  } else if (ec == bhttp::error::partial_message ||
             (ec == bhttp::error::end_of_stream && got_some)) {
    failure.kind = HttpFailure::Kind::kBadResponse;
    failure.message = "truncated response from " + target.host_header;
  } else if (ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category() &&
             ec != bhttp::error::end_of_stream) {
    failure.kind = HttpFailure::Kind::kBadResponse;
    failure.message = "malformed response from " + target.host_header + ": " + ec.message();
  } else {
    failure.message = "connection to " + target.host_header + " lost: " + ec.message();
  }
  return failure;
}

bool IsIdempotent(const std::string& method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "DELETE";
}

using StreamParser = bhttp::response_parser<bhttp::buffer_body>;

// A streamed response's connection and parser, between the chunks the consumer asks for. Only
// touched on `executor` (the I/O thread the request ran on).
struct BodyState {
  asio::any_io_executor executor;
  std::shared_ptr<ssl::context> tls_context;  // outlives `link` and the pool's TLS streams
  std::shared_ptr<Pool> pool;
  std::unique_ptr<Link> link;  // null once given back or closed
  std::unique_ptr<StreamParser> parser;
  Target target;
  std::chrono::milliseconds read_timeout{0};
  std::size_t chunk_bytes = 64 * 1024;
  std::uint64_t limit = 0;  // 0 = none
  bool keep_alive = false;
  bool failed = false;
  bool abandoned = false;

  ~BodyState() {
    if (link) link->Close();
  }

  // The body was read to its end: the connection can serve another request.
  void Release() {
    if (!link) return;
    if (keep_alive && link->buffer.size() == 0) {
      pool->GiveBack(PoolKey(target), std::move(link));
    } else {
      link->Close();
    }
  }

  // The consumer dropped the stream: whatever is left of the body is not wanted. Closing the
  // socket also ends a pending read (which still owns `link` until it completes).
  void Abandon() {
    abandoned = true;
    if (link) link->Close();
  }

  template <class Stream>
  asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> ReadSome(Stream& stream) {
    co_return co_await bhttp::async_read_some(stream, link->buffer, *parser, kTuple);
  }

  asio::awaitable<http::BodyChunk> Read() {
    if (failed) co_return http::BodyChunk::Error("the body could not be read");
    if (parser->is_done()) {
      Release();
      co_return http::BodyChunk::End();
    }
    if (abandoned || !link) co_return http::BodyChunk::Error("the stream was abandoned");
    std::string data(chunk_bytes, '\0');
    std::size_t got = 0;
    auto& body = parser->get().body();
    while (true) {
      body.data = data.data() + got;
      body.size = data.size() - got;
      link->watchdog.SetAfter(read_timeout);
      boost::system::error_code ec;
      if (link->tls) {
        std::tie(ec, std::ignore) = co_await ReadSome(*link->tls);
      } else {
        std::tie(ec, std::ignore) = co_await ReadSome(*link->plain);
      }
      const bool timed_out = link->watchdog.Clear();
      got = data.size() - body.size;
      body.data = nullptr;  // `data` is ours: the parser must not write there later
      body.size = 0;
      if (ec == bhttp::error::need_buffer) ec = {};
      if (!ec && abandoned) ec = asio::error::operation_aborted;
      if (ec) {
        failed = true;
        if (link) link->Close();
        HttpFailure failure = ReadFailure(ec, timed_out, true, target, limit);
        if (timed_out) {
          failure.message = "no body data from " + target.host_header + " within " +
                            std::to_string(read_timeout.count()) + " ms";
        }
        co_return http::BodyChunk::Error(std::string(ToString(failure.kind)) + ": " +
                                         failure.message);
      }
      if (got > 0 || parser->is_done()) break;
    }
    if (parser->is_done()) Release();  // the next Next() answers the end
    if (got == 0) co_return http::BodyChunk::End();
    data.resize(got);
    co_return http::BodyChunk::Data(std::move(data));
  }
};

asio::awaitable<void> ReadChunk(std::shared_ptr<BodyState> state,
                                http::BodyStream::NextCallback done) {
  http::BodyChunk chunk = http::BodyChunk::Error("unexpected client error");
  try {
    chunk = co_await state->Read();
  } catch (const std::exception& e) {
    spdlog::error("http client: reading a body from {}: {}", state->target.host_header, e.what());
    state->failed = true;
    chunk = http::BodyChunk::Error(std::string("unexpected client error: ") + e.what());
  }
  done(std::move(chunk));
}

// What the consumer holds. Dropping it abandons the rest of the body.
class StreamedBody final : public http::BodyStream {
 public:
  StreamedBody(std::shared_ptr<BodyState> state, std::optional<std::uint64_t> length)
      : state_(std::move(state)), length_(length) {}
  ~StreamedBody() override {
    const auto executor = state_->executor;
    asio::post(executor, [state = std::move(state_)] { state->Abandon(); });
  }
  StreamedBody(const StreamedBody&) = delete;
  StreamedBody& operator=(const StreamedBody&) = delete;

  std::optional<std::uint64_t> Length() const override { return length_; }
  void Next(NextCallback done) override {
    asio::co_spawn(state_->executor, ReadChunk(state_, std::move(done)), asio::detached);
  }

 private:
  std::shared_ptr<BodyState> state_;
  std::optional<std::uint64_t> length_;
};

class BeastHttpClient final : public HttpClient {
 public:
  BeastHttpClient(net::Runtime& runtime, HttpClientOptions options)
      : runtime_(runtime),
        options_(std::move(options)),
        tls_context_(std::make_shared<ssl::context>(ssl::context::tls_client)),
        pool_(std::make_shared<Pool>(options_.idle_timeout, options_.max_idle_per_host)) {
    ConfigureClientTls(tls_context_->native_handle(), options_.ca_file, "http client");
  }

  ~BeastHttpClient() override { pool_->Clear(); }

  void Send(HttpRequest request, HttpCallback done) override {
    asio::co_spawn(
        runtime_.context(),
        Exchange<HttpOutcome, Attempt>(std::move(request), std::move(done), &BeastHttpClient::Once,
                                       &BeastHttpClient::Complete),
        asio::detached);
  }

  void SendStreamed(HttpRequest request, HttpStreamedCallback done) override {
    asio::co_spawn(runtime_.context(),
                   Exchange<HttpStreamedOutcome, Opened>(std::move(request), std::move(done),
                                                         &BeastHttpClient::OpenOnce,
                                                         &BeastHttpClient::Streamed),
                   asio::detached);
  }

 private:
  asio::awaitable<std::variant<std::unique_ptr<Link>, HttpFailure>> Connect(
      const Target& target, SteadyClock::time_point deadline) {
    auto executor = co_await asio::this_coro::executor;
    tcp::resolver resolver(executor);
    auto [resolve_ec, endpoints] =
        co_await resolver.async_resolve(target.host, target.port, kTuple);
    if (resolve_ec) {
      co_return HttpFailure{HttpFailure::Kind::kResolve,
                            "cannot resolve " + target.host + ": " + resolve_ec.message(), false};
    }
    asio::io_context& home = ContextOf(executor);
    auto link = std::make_unique<Link>(home);
    if (target.tls) {
      link->tls = std::make_unique<beast::ssl_stream<tcp::socket>>(home, *tls_context_);
    } else {
      link->plain = std::make_unique<tcp::socket>(home);
    }
    // The connect timeout bounds connecting and, separately, the TLS handshake; the watchdog
    // closes the socket when it passes (a range connect then stops: it tries no further address
    // on a socket it finds closed).
    const auto phase_deadline = [&] {
      return std::min(deadline, SteadyClock::now() + options_.connect_timeout);
    };
    link->watchdog.Set(phase_deadline());
    auto [connect_ec, endpoint] = co_await asio::async_connect(link->lowest(), endpoints, kTuple);
    if (const bool timed_out = link->watchdog.Clear(); timed_out || connect_ec) {
      co_return HttpFailure{HttpFailure::Kind::kConnect,
                            "cannot connect to " + target.host_header + ": " +
                                (timed_out ? std::string("timed out") : connect_ec.message()),
                            false};
    }
    boost::system::error_code ignored;
    link->lowest().set_option(tcp::no_delay(true), ignored);
    if (target.tls) {
      SSL* native = link->tls->native_handle();
      if (auto refused = PrepareClientTls(native, target.host); !refused.empty()) {
        co_return HttpFailure{HttpFailure::Kind::kTls, std::move(refused), false};
      }
      link->watchdog.Set(phase_deadline());
      auto [handshake_ec] = co_await link->tls->async_handshake(ssl::stream_base::client, kTuple);
      if (const bool timed_out = link->watchdog.Clear(); timed_out || handshake_ec) {
        const std::string why = timed_out ? std::string("timed out") : handshake_ec.message();
        co_return HttpFailure{
            HttpFailure::Kind::kTls,
            "TLS with " + target.host_header + " failed: " + why + CertificateFailure(native),
            false};
      }
    }
    co_return std::move(link);
  }

  struct Attempt {
    std::optional<HttpResponse> response;
    std::optional<HttpFailure> failure;
    bool keep_alive = false;
    bool nothing_received = false;  // failed before any response byte arrived
  };

  // Writes `request`; on failure, what it means (the request never completely left).
  template <class Stream>
  asio::awaitable<std::optional<HttpFailure>> WriteRequest(Stream& stream, Link& link,
                                                           const HttpRequest& request,
                                                           const Target& target,
                                                           SteadyClock::time_point deadline) {
    std::string head;
    head.reserve(256 + request.headers.All().size() * 64);
    if (!http::AppendRequestHead(head,
                                 {.method = request.method,
                                  .target = target.path_and_query,
                                  .host = target.host_header,
                                  .user_agent = options_.user_agent,
                                  .chunked = request.chunked},
                                 request.headers, request.body.size())) {
      co_return HttpFailure{HttpFailure::Kind::kInvalidUrl,
                            "cannot write a " + request.method + " request to " +
                                target.host_header + ": the method or the target is malformed",
                            false};
    }
    const std::array<asio::const_buffer, 3> pieces{
        asio::buffer(head), asio::buffer(request.body),
        asio::buffer(http::RequestBodyEnd(request.chunked, request.body.size()))};

    link.watchdog.Set(deadline);  // for the write and the response after it
    auto [write_ec, written_bytes] = co_await asio::async_write(stream, pieces, kTuple);
    if (!write_ec) co_return std::nullopt;
    const bool timed_out = link.watchdog.Clear();
    co_return HttpFailure{
        timed_out ? HttpFailure::Kind::kTimeout : HttpFailure::Kind::kConnectionLost,
        "sending to " + target.host_header +
            " failed: " + (timed_out ? std::string("timed out") : write_ec.message()),
        false};
  }

  template <class Stream>
  asio::awaitable<Attempt> Roundtrip(Stream& stream, Link& link, const HttpRequest& request,
                                     const Target& target, SteadyClock::time_point deadline) {
    Attempt attempt;
    auto write_failure = co_await WriteRequest(stream, link, request, target, deadline);
    if (write_failure) {
      attempt.nothing_received = true;
      attempt.failure = std::move(write_failure);
      co_return attempt;
    }

    bhttp::response_parser<bhttp::string_body> parser;
    parser.header_limit(64 * 1024);
    const std::size_t limit =
        request.max_response_bytes != 0 ? request.max_response_bytes : options_.max_response_bytes;
    parser.body_limit(limit);
    if (request.method == "HEAD") parser.skip(true);
    auto [read_ec, read_bytes] = co_await bhttp::async_read(stream, link.buffer, parser, kTuple);
    const bool timed_out = link.watchdog.Clear();
    if (read_ec) {
      attempt.nothing_received = !parser.got_some();
      attempt.failure = ReadFailure(read_ec, timed_out, parser.got_some(), target, limit);
      co_return attempt;
    }
    auto& response = parser.get();
    HttpResponse out;
    out.status = static_cast<int>(response.result_int());
    for (const auto& field : response) {
      out.headers.Add(std::string(field.name_string()), std::string(field.value()));
    }
    out.body = std::move(response.body());
    attempt.keep_alive = response.keep_alive();
    attempt.response = std::move(out);
    co_return attempt;
  }

  asio::awaitable<Attempt> Once(std::unique_ptr<Link>& link, const HttpRequest& request,
                                const Target& target, SteadyClock::time_point deadline) {
    if (link->tls) {
      co_return co_await Roundtrip(*link->tls, *link, request, target, deadline);
    }
    co_return co_await Roundtrip(*link->plain, *link, request, target, deadline);
  }

  // How an exchange uses a connection: `Try` sends the request and reads what the exchange
  // needs (a whole response, or the head of a streamed one), giving a Result with `failure`
  // set when that went wrong and `nothing_received`; `Finish` turns a success into the outcome.
  template <class Result>
  using Try = asio::awaitable<Result> (BeastHttpClient::*)(std::unique_ptr<Link>&,
                                                           const HttpRequest&, const Target&,
                                                           SteadyClock::time_point);
  template <class Outcome, class Result>
  using Finish = asio::awaitable<Outcome> (BeastHttpClient::*)(const HttpRequest&, const Target&,
                                                               std::unique_ptr<Link>, Result);

  // Runs one request to its outcome and hands it to `done`; never throws.
  template <class Outcome, class Result, class Callback>
  asio::awaitable<void> Exchange(HttpRequest request, Callback done, Try<Result> attempt,
                                 Finish<Outcome, Result> finish) {
    Outcome outcome = HttpFailure{HttpFailure::Kind::kConnectionLost, "internal error", true};
    try {
      outcome = co_await Run<Outcome, Result>(request, attempt, finish);
    } catch (const std::exception& e) {
      spdlog::error("http client: {} {}: {}", request.method, request.url, e.what());
      outcome = HttpFailure{HttpFailure::Kind::kConnectionLost,
                            std::string("unexpected client error: ") + e.what(), true};
    }
    done(std::move(outcome));
  }

  // The request on an idle pooled connection to its host when there is one; on a fresh
  // connection when there is none, or when the pooled one turns out stale and trying again is
  // safe (WorthAFreshConnection).
  template <class Outcome, class Result>
  asio::awaitable<Outcome> Run(const HttpRequest& request, Try<Result> attempt,
                               Finish<Outcome, Result> finish) {
    std::string url_error;
    const auto target = ParseHttpTarget(request.url, url_error);
    if (!target) {
      co_return HttpFailure{HttpFailure::Kind::kInvalidUrl,
                            "invalid URL '" + request.url + "': " + url_error, false};
    }
    const auto timeout = request.timeout.count() > 0 ? request.timeout : options_.request_timeout;
    const auto deadline = SteadyClock::now() + timeout;

    std::unique_ptr<Link> link =
        pool_->TakeIdle(PoolKey(*target), ContextOf(co_await asio::this_coro::executor));
    if (link) {
      Result pooled = co_await (this->*attempt)(link, request, *target, deadline);
      if (!pooled.failure) {
        co_return co_await (this->*finish)(request, *target, std::move(link), std::move(pooled));
      }
      if (!WorthAFreshConnection(request, *pooled.failure, pooled.nothing_received, deadline)) {
        co_return *pooled.failure;
      }
    }
    auto connected = co_await Connect(*target, deadline);
    if (auto* failure = std::get_if<HttpFailure>(&connected)) {
      if (failure->kind == HttpFailure::Kind::kConnect && SteadyClock::now() >= deadline) {
        failure->kind = HttpFailure::Kind::kTimeout;
      }
      co_return std::move(*failure);
    }
    link = std::move(std::get<std::unique_ptr<Link>>(connected));
    Result fresh = co_await (this->*attempt)(link, request, *target, deadline);
    if (!fresh.failure) {
      co_return co_await (this->*finish)(request, *target, std::move(link), std::move(fresh));
    }
    co_return *fresh.failure;
  }

  // A pooled connection the server dropped just before we used it. When nothing came back and
  // the method is idempotent (or the request was never fully written), one more try on a fresh
  // connection is safe.
  static bool WorthAFreshConnection(const HttpRequest& request, const HttpFailure& failure,
                                    bool nothing_received, SteadyClock::time_point deadline) {
    const bool stale = nothing_received && failure.kind == HttpFailure::Kind::kConnectionLost;
    return stale && (IsIdempotent(request.method) || !failure.request_sent) &&
           SteadyClock::now() < deadline;
  }

  // A whole response is in: the connection goes back to the pool when it can be reused.
  asio::awaitable<HttpOutcome> Complete(const HttpRequest& /*request*/, const Target& target,
                                        std::unique_ptr<Link> link, Attempt attempt) {
    if (attempt.keep_alive && link->buffer.size() == 0) {
      pool_->GiveBack(PoolKey(target), std::move(link));
    }
    co_return std::move(*attempt.response);
  }

  // ---- Streamed responses ----

  struct Opened {
    std::unique_ptr<StreamParser> parser;  // set when the head was read
    std::optional<HttpFailure> failure;
    bool nothing_received = false;
  };

  template <class Stream>
  asio::awaitable<Opened> OpenOn(Stream& stream, Link& link, const HttpRequest& request,
                                 const Target& target, SteadyClock::time_point deadline) {
    Opened opened;
    auto write_failure = co_await WriteRequest(stream, link, request, target, deadline);
    if (write_failure) {
      opened.nothing_received = true;
      opened.failure = std::move(write_failure);
      co_return opened;
    }
    auto parser = std::make_unique<StreamParser>();
    parser->header_limit(64 * 1024);
    if (request.max_response_bytes != 0) {
      parser->body_limit(request.max_response_bytes);
    } else {
      parser->body_limit(boost::none);
    }
    if (request.method == "HEAD") parser->skip(true);
    auto [read_ec, read_bytes] =
        co_await bhttp::async_read_header(stream, link.buffer, *parser, kTuple);
    const bool timed_out = link.watchdog.Clear();
    if (read_ec) {
      opened.nothing_received = !parser->got_some();
      opened.failure =
          ReadFailure(read_ec, timed_out, parser->got_some(), target, request.max_response_bytes);
      co_return opened;
    }
    opened.parser = std::move(parser);
    co_return opened;
  }

  asio::awaitable<Opened> OpenOnce(std::unique_ptr<Link>& link, const HttpRequest& request,
                                   const Target& target, SteadyClock::time_point deadline) {
    if (link->tls) {
      co_return co_await OpenOn(*link->tls, *link, request, target, deadline);
    }
    co_return co_await OpenOn(*link->plain, *link, request, target, deadline);
  }

  // The head is in: the response with a body stream over `link`.
  asio::awaitable<HttpStreamedOutcome> Streamed(const HttpRequest& request, const Target& target,
                                                std::unique_ptr<Link> link, Opened opened) {
    std::unique_ptr<StreamParser> parser = std::move(opened.parser);
    auto state = std::make_shared<BodyState>();
    state->executor = co_await asio::this_coro::executor;
    state->pool = pool_;
    state->tls_context = tls_context_;
    state->target = target;
    state->read_timeout = request.read_timeout.count() > 0 ? request.read_timeout
                          : request.timeout.count() > 0    ? request.timeout
                                                           : options_.request_timeout;
    state->chunk_bytes = std::max<std::size_t>(options_.stream_chunk_bytes, 1);
    state->limit = request.max_response_bytes;
    state->keep_alive = parser->get().keep_alive();
    HttpStreamedResponse response;
    const auto& head = parser->get();
    response.status = static_cast<int>(head.result_int());
    for (const auto& field : head) {
      response.headers.Add(std::string(field.name_string()), std::string(field.value()));
    }
    std::optional<std::uint64_t> length;
    if (parser->is_done()) {
      length = 0;  // no body (HEAD, 204, 304, Content-Length: 0)
    } else if (!parser->chunked() && parser->content_length()) {
      length = *parser->content_length();
    }
    state->link = std::move(link);
    state->parser = std::move(parser);
    if (state->parser->is_done()) state->Release();
    response.body = std::make_shared<StreamedBody>(std::move(state), length);
    co_return response;
  }

  net::Runtime& runtime_;
  HttpClientOptions options_;
  std::shared_ptr<ssl::context> tls_context_;
  std::shared_ptr<Pool> pool_;
};

}  // namespace

std::unique_ptr<HttpClient> MakeHttpClient(net::Runtime& runtime, HttpClientOptions options) {
  return std::make_unique<BeastHttpClient>(runtime, std::move(options));
}

}  // namespace callgate::upstream
