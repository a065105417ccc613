// The Beast implementation of conversation::Transport (contract in transport.hpp): the module's
// only translation unit that sees Asio and Beast.
//
// Lanes: the factory keeps a fixed set of lanes (TransportOptions::lanes), each a strand of the
// runtime's io_context with one timer and a TickerGroup (ticker_group.hpp); transports are
// spread over them round-robin. A transport's coroutine (the connection with its read loop),
// its writes and its timers all run on its lane's strand, so the state below needs no lock;
// Post/After/Abort/Shutdown hop onto the strand first. StartTicker() joins the lane's group:
// one timer wake-up per period ticks every session of the lane in turn (N per-session timers
// cost N wake-ups, the main CPU cost of many idle-ish sessions), and the lanes' ticks are spread
// over the period so that no burst holds both I/O threads for long. Every coroutine and handler
// holds a shared_ptr to the transport, so it lives until the last of them ends.
//
// Connecting: resolve, TCP connect, TLS (SNI, verification against the system store plus the
// optional CA file, host-name check), WebSocket upgrade; one watchdog bounds all of it. Writing:
// one outstanding write, as Beast requires; frames wait in a bounded queue drained by a chain of
// write completions (the first write starts inside Send(): no coroutine, no post per frame); the
// close frame goes once the queue is empty. Reading: one loop;
// Beast answers the server's close frame itself, and bounds the closing handshake and the idle
// time (with WebSocket pings at half of it).
#include "conversation/protocol.hpp"
#include "conversation/ticker_group.hpp"
#include "conversation/transport.hpp"
#include "core/prefetch.hpp"
#include "upstream/tls_client.hpp"
#include "upstream/url_target.hpp"

#include "net/runtime.hpp"

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/url/parse.hpp>

#include <atomic>
#include <deque>
#include <optional>
#include <set>
#include <vector>

namespace callgate::conversation {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;
// A bare socket bound to the lane's strand, not beast::tcp_stream: the WebSocket stream keeps
// its own timeouts (handshake, idle, close) and the watchdog bounds connecting, so tcp_stream's
// per-operation timer bookkeeping, shared state and type-erased executor would be pure cost on
// every frame; the concrete strand type lets completions dispatch without type erasure.
using Socket = asio::basic_stream_socket<tcp, Strand>;
using PlainWs = websocket::stream<Socket>;
using TlsWs = websocket::stream<beast::ssl_stream<Socket>>;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxCloseReason = 120;  // a close frame's reason is at most 123 bytes

using Target = upstream::UrlTarget;

std::optional<Target> ParseTarget(const std::string& url, std::string& error) {
  return upstream::ParseUrlTarget(url, {"ws", "http"}, {"wss", "https"}, error);
}

// A completion handler Asio treats as a continuation of the handler that started its
// operation: when the operation completes at once (a write the socket takes whole), the
// handler is queued on the thread that started it instead of waking another I/O thread, which
// would only find the lane's strand busy and go back to sleep (a futex wake and two context
// switches per frame otherwise). Only a scheduling hint: order and strand are unchanged.
template <class F>
struct Continuation {
  F f;
  template <class... Args>
  void operator()(Args&&... args) {
    f(std::forward<Args>(args)...);
  }
  friend bool asio_handler_is_continuation(Continuation*) { return true; }
};
template <class F>
Continuation<F> AsContinuation(F f) {
  return Continuation<F>{std::move(f)};
}

// One line of an HTTP body for an error message.
std::string Excerpt(std::string_view body) {
  std::string out(body.substr(0, 200));
  for (char& c : out) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return out;
}

// A strand shared by several transports, with one timer driving all their tickers.
class Lane final : public std::enable_shared_from_this<Lane> {
 public:
  Lane(asio::io_context& io, unsigned slot, unsigned slots,
       std::shared_ptr<metrics::LatencyHistogram> lateness)
      : strand_(asio::make_strand(io)),
        timer_(strand_),
        group_(slot, slots),
        lateness_(std::move(lateness)) {}

  const Strand& strand() const { return strand_; }

  // Strand only.
  TickerGroup::Id AddTicker(std::chrono::milliseconds period, std::function<void()> tick,
                            TickerGroup::Warmer warmer) {
    const auto id =
        group_.Add(period, std::move(tick), std::chrono::steady_clock::now(), std::move(warmer));
    Arm();
    return id;
  }
  // Strand only. The timer is left armed: when it fires with nothing due it is not re-armed.
  void RemoveTicker(TickerGroup::Id id) { group_.Remove(id); }

 private:
  void Arm() {
    const auto next = group_.NextDue();
    if (!next) return;
    if (armed_ && armed_at_ <= *next) return;  // the pending wait comes first
    armed_ = true;
    armed_at_ = *next;
    const std::uint64_t generation = ++generation_;
    timer_.expires_at(*next);  // cancels a later wait, whose handler then sees a new generation
    timer_.async_wait([self = shared_from_this(), generation](const boost::system::error_code&) {
      if (generation != self->generation_) return;
      self->armed_ = false;
      const auto now = std::chrono::steady_clock::now();
      self->lateness_->Record(now - self->armed_at_);
      self->group_.RunDue(now);
      self->Arm();
    });
  }

  Strand strand_;
  asio::steady_timer timer_;
  TickerGroup group_;
  std::shared_ptr<metrics::LatencyHistogram> lateness_;  // shared by the factory's lanes
  bool armed_ = false;
  std::chrono::steady_clock::time_point armed_at_;
  std::uint64_t generation_ = 0;
};

class WsTransport final : public Transport, public std::enable_shared_from_this<WsTransport> {
 public:
  WsTransport(std::shared_ptr<Lane> lane, std::shared_ptr<ssl::context> tls,
              const TransportOptions& options)
      : lane_(std::move(lane)),
        strand_(lane_->strand()),
        tls_context_(std::move(tls)),
        options_(options),
        resolver_(strand_),
        watchdog_(strand_) {}

  void Connect(std::string url, Handlers handlers) override {
    if (connect_called_) return;
    connect_called_ = true;
    handlers_ = std::move(handlers);
    asio::co_spawn(strand_, Main(shared_from_this(), std::move(url)), asio::detached);
  }

  bool Send(std::string frame) override {
    if (!open_ || closing_ || reported_ || write_failed_) return false;
    if (queue_.size() >= options_.max_queued_frames ||
        queued_bytes_ + frame.size() > options_.max_queued_bytes) {
      return false;
    }
    queued_bytes_ += frame.size();
    queue_.push_back(std::move(frame));
    Kick();
    return true;
  }

  void Close(std::uint16_t code, std::string reason) override {
    if (reported_ || closing_) return;
    closing_ = true;
    if (!open_) {  // still connecting: give up
      cancelled_ = true;
      Cut();
      return;
    }
    if (reason.size() > kMaxCloseReason) reason.resize(kMaxCloseReason);
    close_code_ = code;
    close_reason_ = std::move(reason);
    Kick();
    // Beast bounds the closing handshake; this is the backstop should the writer be stuck
    // behind a write the peer never reads.
    AfterOnStrand(options_.close_timeout + std::chrono::seconds(1), [this] {
      if (!reported_) Cut();
    });
  }

  // The lane's group calls the tick; the group destroys a removed callback only after its
  // round, so a tick may stop or replace its own ticker.
  void StartTicker(std::chrono::milliseconds period, std::function<void()> tick,
                   TickerGroup::Warmer warmer) override {
    StopTicker();
    if (shut_down_) return;
    ticker_id_ = lane_->AddTicker(period, std::move(tick), std::move(warmer));
  }

  std::chrono::steady_clock::time_point received_at() const override { return received_at_; }

  // What Send() and the write that follows touch: the fields first, then the stream object.
  void Warm(unsigned stage) const override {
    if (stage == 0) {
      core::Prefetch(&plain_);
      core::Prefetch(&open_);
      core::Prefetch(&queue_);
      core::Prefetch(&options_.max_queued_frames);
      return;
    }
    core::PrefetchLines(plain_.get(), 2 * core::kCacheLine);
    core::PrefetchLines(tls_.get(), 2 * core::kCacheLine);
  }

  void StopTicker() override {
    if (ticker_id_ == 0) return;
    lane_->RemoveTicker(ticker_id_);
    ticker_id_ = 0;
  }

  void Post(std::function<void()> task) override {
    asio::post(strand_, [self = shared_from_this(), task = std::move(task)] { task(); });
  }

  void After(std::chrono::milliseconds delay, std::function<void()> task) override {
    asio::post(strand_, [self = shared_from_this(), delay, task = std::move(task)]() mutable {
      self->AfterOnStrand(delay, std::move(task));
    });
  }

  void Abort() override {
    asio::post(strand_, [self = shared_from_this()] {
      self->cancelled_ = true;
      self->Cut();
    });
  }

  void Shutdown() override {
    asio::post(strand_, [self = shared_from_this()] {
      self->shut_down_ = true;
      self->handlers_ = {};
      self->StopTicker();
      for (auto* timer : self->timers_)
        timer->cancel();
      self->timers_.clear();
      self->watchdog_.cancel();
      self->cancelled_ = true;
      self->Cut();
    });
  }

 private:
  // --- timers ---------------------------------------------------------------------------------

  void AfterOnStrand(std::chrono::milliseconds delay, std::function<void()> task) {
    if (shut_down_) return;
    auto timer = std::make_shared<asio::steady_timer>(strand_, delay);
    timers_.insert(timer.get());
    timer->async_wait([self = shared_from_this(), timer,
                       task = std::move(task)](const boost::system::error_code& ec) {
      self->timers_.erase(timer.get());
      if (ec || self->shut_down_) return;
      task();
    });
  }

  // --- connection -----------------------------------------------------------------------------

  // Closes the socket (or stops resolving): every pending operation completes with an error.
  void Cut() {
    resolver_.cancel();
    boost::system::error_code ignored;
    if (plain_) beast::get_lowest_layer(*plain_).close(ignored);
    if (tls_) beast::get_lowest_layer(*tls_).close(ignored);
  }

  void Report(CloseInfo info) {
    watchdog_.cancel();
    if (reported_) return;
    reported_ = true;
    open_ = false;
    auto on_close = std::move(handlers_.on_close);
    handlers_ = {};
    if (!shut_down_ && on_close) on_close(info);
  }

  std::string Failure(const std::string& step, const boost::system::error_code& ec) const {
    if (timed_out_) {
      return step + ": timed out after " + std::to_string(options_.connect_timeout.count()) + " ms";
    }
    if (cancelled_) return step + ": cancelled";
    return step + ": " + ec.message();
  }

  static asio::awaitable<void> Main(std::shared_ptr<WsTransport> self, std::string url) {
    co_await self->Run(url);  // a named local, not a temporary (see the g++ 12 note)
  }

  asio::awaitable<void> Run(const std::string& url) {
    CloseInfo info;
    std::string url_error;
    const auto target = ParseTarget(url, url_error);
    if (!target) {
      info.error = "invalid WebSocket URL " + RedactUrl(url) + ": " + url_error;
      Report(std::move(info));
      co_return;
    }
    watchdog_.expires_after(options_.connect_timeout);
    watchdog_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->open_ || self->reported_) return;
      self->timed_out_ = true;
      self->Cut();
    });
    auto [resolve_ec, endpoints] =
        co_await resolver_.async_resolve(target->host, target->port, kTuple);
    if (resolve_ec || cancelled_ || timed_out_) {
      info.error = Failure("cannot resolve " + target->host, resolve_ec);
      Report(std::move(info));
      co_return;
    }
    if (target->tls) {
      tls_ = std::make_unique<TlsWs>(strand_, *tls_context_);
      co_await Drive(*tls_, *target, endpoints);
    } else {
      plain_ = std::make_unique<PlainWs>(strand_);
      co_await Drive(*plain_, *target, endpoints);
    }
  }

  template <class Ws>
  asio::awaitable<void> Drive(Ws& ws, const Target& target,
                              const tcp::resolver::results_type& endpoints) {
    CloseInfo info;
    auto& lowest = beast::get_lowest_layer(ws);
    auto [connect_ec, endpoint] = co_await asio::async_connect(lowest, endpoints, kTuple);
    if (connect_ec || cancelled_ || timed_out_) {
      info.error = Failure("cannot connect to " + target.host_header, connect_ec);
      Report(std::move(info));
      co_return;
    }
    boost::system::error_code ignored;
    lowest.set_option(tcp::no_delay(true), ignored);
    if constexpr (std::is_same_v<Ws, TlsWs>) {
      auto& tls = ws.next_layer();
      SSL* native = tls.native_handle();
      if (auto refused = upstream::PrepareClientTls(native, target.host); !refused.empty()) {
        info.error = "TLS with " + target.host_header + " failed: " + refused;
        Report(std::move(info));
        co_return;
      }
      auto [handshake_ec] = co_await tls.async_handshake(ssl::stream_base::client, kTuple);
      if (handshake_ec || cancelled_ || timed_out_) {
        info.error = Failure("TLS with " + target.host_header + " failed", handshake_ec) +
                     upstream::CertificateFailure(native);
        Report(std::move(info));
        co_return;
      }
    }

    websocket::stream_base::timeout opening{};
    opening.handshake_timeout = options_.connect_timeout;
    opening.idle_timeout = websocket::stream_base::none();
    opening.keep_alive_pings = false;
    ws.set_option(opening);
    ws.read_message_max(options_.max_message_bytes);
    ws.set_option(websocket::stream_base::decorator(
        [agent = options_.user_agent,
         protocol = options_.subprotocol](websocket::request_type& req) {
          req.set(beast::http::field::user_agent, agent);
          if (!protocol.empty()) req.set(beast::http::field::sec_websocket_protocol, protocol);
        }));
    websocket::response_type response;
    auto [upgrade_ec] =
        co_await ws.async_handshake(response, target.host_header, target.path_and_query, kTuple);
    if (upgrade_ec || cancelled_ || timed_out_) {
      const int status = static_cast<int>(response.result_int());
      if (!cancelled_ && !timed_out_ && status != 0 && status != 101) {
        info.error = "WebSocket upgrade refused by " + target.host_header + ": HTTP " +
                     std::to_string(status) + " " + Excerpt(response.body());
      } else {
        info.error = Failure("WebSocket upgrade with " + target.host_header, upgrade_ec);
      }
      Report(std::move(info));
      co_return;
    }
    watchdog_.cancel();
    open_ = true;
    websocket::stream_base::timeout running{};
    running.handshake_timeout = options_.close_timeout;
    running.idle_timeout =
        options_.idle_timeout.count() > 0
            ? std::chrono::duration_cast<std::chrono::steady_clock::duration>(options_.idle_timeout)
            : websocket::stream_base::none();
    running.keep_alive_pings = options_.idle_timeout.count() > 0;
    ws.set_option(running);
    info.opened = true;
    if (!shut_down_ && handlers_.on_open) handlers_.on_open();

    beast::flat_buffer buffer;
    while (!reported_ && !shut_down_) {
      auto [read_ec, n] = co_await ws.async_read(buffer, kTuple);
      if (read_ec) {
        if (read_ec == websocket::error::closed) {
          info.clean = true;
          info.code = static_cast<std::uint16_t>(ws.reason().code);
          info.reason = std::string(ws.reason().reason.c_str());
        } else if (close_sent_ && !cancelled_) {
          // Our close frame is out: Beast ends this read (operation_aborted) and the close
          // operation reads the server's answer. Whichever finishes second reports.
          info.by_client = true;
          if (!close_finished_) {
            read_waiting_ = true;
            waiting_info_ = std::move(info);
            co_return;
          }
          FillFromClose(info);
        } else if (read_ec == beast::error::timeout) {
          info.error = closing_ ? "the server did not answer the close frame in time"
                                : "no data from the server for " +
                                      std::to_string(options_.idle_timeout.count()) + " ms";
        } else if (read_ec == websocket::error::message_too_big) {
          info.error = "a message from the server exceeded " +
                       std::to_string(options_.max_message_bytes) + " bytes";
        } else if (cancelled_) {
          info.error = closing_ ? "the connection was cut while closing" : "connection aborted";
        } else {
          info.error = "connection to " + target.host_header + " lost: " + read_ec.message();
        }
        break;
      }
      received_at_ = std::chrono::steady_clock::now();
      if (ws.got_text() && !shut_down_ && handlers_.on_text) {
        const std::string_view text(static_cast<const char*>(buffer.data().data()), buffer.size());
        handlers_.on_text(text);
      }
      buffer.consume(buffer.size());
    }
    info.by_client = close_sent_;
    Report(std::move(info));
  }

  // --- writing --------------------------------------------------------------------------------

  // Starts the write chain unless it runs. On the strand (Send, Close, a write completion).
  void Kick() {
    if (writing_) return;
    writing_ = true;
    if (tls_) {
      WriteNext(*tls_);
    } else if (plain_) {
      WriteNext(*plain_);
    } else {
      writing_ = false;
    }
  }

  // Writes the front frame (it stays at the front, deque references surviving push_back, until
  // written), then continues from its completion; once the queue is empty, the close frame.
  template <class Ws>
  void WriteNext(Ws& ws) {
    if (!queue_.empty() && !write_failed_ && !reported_) {
      ws.text(true);
      ws.async_write(asio::buffer(queue_.front()),
                     AsContinuation([self = shared_from_this(), &ws](
                                        const boost::system::error_code& ec, std::size_t) {
                       self->queued_bytes_ -= self->queue_.front().size();
                       RecycleFrame(std::move(self->queue_.front()));
                       self->queue_.pop_front();
                       if (ec) self->write_failed_ = true;
                       self->WriteNext(ws);
                     }));
      return;
    }
    if (write_failed_ || reported_) {
      queue_.clear();
      queued_bytes_ = 0;
      writing_ = false;
      return;
    }
    // (read_waiting_ implies close_sent_, so the close below has run or is running.)
    if (closing_ && !close_sent_) {
      close_sent_ = true;
      asio::co_spawn(strand_, Closer(shared_from_this()), asio::detached);
      return;
    }
    writing_ = false;
  }

  static asio::awaitable<void> Closer(std::shared_ptr<WsTransport> self) {
    if (self->tls_) {
      co_await self->SendClose(*self->tls_);
    } else if (self->plain_) {
      co_await self->SendClose(*self->plain_);
    }
    self->writing_ = false;
  }

  template <class Ws>
  asio::awaitable<void> SendClose(Ws& ws) {
    const websocket::close_reason reason(static_cast<websocket::close_code>(close_code_),
                                         close_reason_);
    auto [ec] = co_await ws.async_close(reason, kTuple);
    close_finished_ = true;
    if (!ec || ec == websocket::error::closed) {
      peer_close_ = std::make_pair(static_cast<std::uint16_t>(ws.reason().code),
                                   std::string(ws.reason().reason.c_str()));
    } else {
      close_error_ = ec == beast::error::timeout
                         ? "the server did not answer the close frame in time"
                         : "the closing handshake failed: " + ec.message();
    }
    if (read_waiting_) {
      read_waiting_ = false;
      CloseInfo info = std::move(waiting_info_);
      FillFromClose(info);
      Report(std::move(info));
    }
  }

  void FillFromClose(CloseInfo& info) const {
    info.by_client = true;
    if (peer_close_) {
      info.clean = true;
      info.code = peer_close_->first;
      info.reason = peer_close_->second;
      info.error.clear();
    } else {
      info.error = close_error_.empty() ? "the closing handshake did not complete" : close_error_;
    }
  }

  std::shared_ptr<Lane> lane_;
  Strand strand_;  // the lane's
  std::shared_ptr<ssl::context> tls_context_;
  const TransportOptions options_;
  tcp::resolver resolver_;
  asio::steady_timer watchdog_;
  std::unique_ptr<PlainWs> plain_;
  std::unique_ptr<TlsWs> tls_;
  Handlers handlers_;

  bool connect_called_ = false;
  bool open_ = false;
  bool closing_ = false;
  bool close_sent_ = false;
  bool reported_ = false;
  bool cancelled_ = false;
  bool timed_out_ = false;
  bool shut_down_ = false;
  bool writing_ = false;
  bool write_failed_ = false;
  std::uint16_t close_code_ = 1000;
  std::string close_reason_;
  std::deque<std::string> queue_;
  std::size_t queued_bytes_ = 0;
  // The closing handshake we started (see the read loop).
  bool close_finished_ = false;
  bool read_waiting_ = false;
  CloseInfo waiting_info_;
  std::optional<std::pair<std::uint16_t, std::string>> peer_close_;
  std::string close_error_;

  TickerGroup::Id ticker_id_ = 0;                      // 0: no ticker
  std::chrono::steady_clock::time_point received_at_;  // of the frame being delivered
  std::set<asio::steady_timer*> timers_;
};

class WsTransportFactory final : public TransportFactory {
 public:
  WsTransportFactory(net::Runtime& runtime, TransportOptions options)
      : options_(std::move(options)),
        tls_(std::make_shared<ssl::context>(ssl::context::tls_client)) {
    const unsigned lanes = options_.lanes > 0 ? static_cast<unsigned>(options_.lanes)
                                              : 4 * std::max(1u, runtime.io_threads());
    for (unsigned i = 0; i < lanes; ++i)
      lanes_.push_back(std::make_shared<Lane>(runtime.next_context(), i, lanes, lateness_));
    upstream::ConfigureClientTls(tls_->native_handle(), options_.ca_file, "conversation transport");
  }

  std::shared_ptr<Transport> Create() override {
    const std::size_t lane = next_lane_.fetch_add(1, std::memory_order_relaxed) % lanes_.size();
    return std::make_shared<WsTransport>(lanes_[lane], tls_, options_);
  }

  metrics::LatencySummary tick_lateness() const override { return lateness_->Summarize(); }

 private:
  TransportOptions options_;
  std::shared_ptr<ssl::context> tls_;
  std::shared_ptr<metrics::LatencyHistogram> lateness_ =
      std::make_shared<metrics::LatencyHistogram>();
  std::vector<std::shared_ptr<Lane>> lanes_;
  std::atomic<std::size_t> next_lane_{0};
};

}  // namespace

std::unique_ptr<TransportFactory> MakeWebSocketTransportFactory(net::Runtime& runtime,
                                                                TransportOptions options) {
  return std::make_unique<WsTransportFactory>(runtime, std::move(options));
}

}  // namespace callgate::conversation
