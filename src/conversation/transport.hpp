// The session engine's view of one WebSocket connection and of the serial executor it lives
// on, with no Asio or Beast type in sight (the implementation, detail/ws_transport.cpp, is the
// module's only Beast translation unit). Tests can substitute their own factory, e.g. one that
// wraps the real transport to record every frame sent.
//
// Threading: a Transport lives on a strand (which it may share with other transports of the same
// factory: see TransportOptions::lanes). Post(), After() and Abort() may be called from any thread;
// every other method must be called on the strand, i.e. from inside a handler or a task that
// this transport runs. Handlers, posted tasks and timers all run on the strand, one at a time,
// never inline in the call that scheduled them.
//
// Lifecycle: Connect() once; on_open when the WebSocket handshake has completed; on_text for
// each text frame; on_close exactly once after Connect() (also when connecting failed or was
// cancelled by Close()/Abort()), unless Shutdown() came first. Shutdown() drops the handlers and
// everything scheduled, aborts an open connection and stops the ticker: after it nothing calls
// back, which breaks the ownership cycle between a session and its transport.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "conversation/ticker_group.hpp"
#include "metrics/latency.hpp"

namespace callgate::net {
class Runtime;
}  // namespace callgate::net

namespace callgate::conversation {

// How the connection ended.
struct CloseInfo {
  std::uint16_t code = 1006;  // from the close frame; 1006 when there was none
  std::string reason;         // the close frame's reason
  bool clean = false;         // the closing handshake completed (a close frame was received)
  bool by_client = false;     // we sent the first close frame
  bool opened = false;        // the WebSocket handshake had completed
  // Why the connection failed when not clean: "cannot connect to host:443: Connection refused",
  // "TLS with host:443 failed: certificate verify failed", "WebSocket upgrade refused: HTTP 403
  // ...", "connection reset by peer". Never contains the URL's query (the signature).
  std::string error;
};

struct TransportOptions {
  std::string ca_file;  // PEM bundle trusted besides the system store (ELEVENLABS_CA_FILE)
  // Resolve + TCP + TLS + WebSocket upgrade, all together.
  std::chrono::milliseconds connect_timeout{10'000};
  // The closing handshake: after this long without the peer's close frame the socket is cut.
  std::chrono::milliseconds close_timeout{5'000};
  // Nothing received for this long (the server pings every few seconds) ends the connection;
  // WebSocket pings are sent at half of it. 0 = never.
  std::chrono::milliseconds idle_timeout{30'000};
  std::size_t max_message_bytes = 4 * 1024 * 1024;  // a larger incoming frame ends the connection
  std::size_t max_queued_frames = 256;              // Send() refuses beyond these
  std::size_t max_queued_bytes = 4 * 1024 * 1024;
  std::string user_agent = "callgate";
  std::string subprotocol;  // offered in Sec-WebSocket-Protocol when set (the browser SDK: convai)
  // Transports are spread over this many strands ("lanes"), each with one shared timer for the
  // tickers of its transports; 0 = 4 per I/O thread of the runtime. Handlers of transports on
  // one lane never run concurrently, so a handler that blocks delays the others of its lane.
  std::size_t lanes = 0;
};

class Transport {
 public:
  struct Handlers {
    std::function<void()> on_open;
    std::function<void(std::string_view text)> on_text;
    std::function<void(const CloseInfo& info)> on_close;
  };

  virtual ~Transport() = default;

  // Strand only. `url` is ws:// or wss://.
  virtual void Connect(std::string url, Handlers handlers) = 0;
  // Strand only. Queues one text frame; false (nothing queued) when not open, closing, or the
  // queue is at its bound.
  virtual bool Send(std::string frame) = 0;
  // Strand only. Sends the queued frames, then the close frame; on_close follows when the peer
  // answers (or after close_timeout). Before the handshake completed: cancels the connect.
  virtual void Close(std::uint16_t code, std::string reason) = 0;
  // Strand only, inside on_text: when the frame being delivered was read off the socket (the
  // engine times from it to the frame's audio being buffered). Transports that do not know
  // answer now.
  virtual std::chrono::steady_clock::time_point received_at() const {
    return std::chrono::steady_clock::now();
  }
  // Strand only. Prefetching ahead of a tick that may Send() (TickWarmer): stage 0 may read only
  // this object's first cache line (the caller prefetched it), stage 1 what stage 0 prefetched.
  // Only prefetches; the default does nothing.
  virtual void Warm(unsigned /*stage*/) const {}
  // Strand only. Calls `tick` every `period`, on the strand, without drift; a late tick is
  // followed by the next one on schedule (missed ticks are skipped, not bunched). Replaces any
  // previous ticker. The ticks of the transports of one lane share a timer and fire together,
  // so the first tick comes within one `period` (not exactly one period after this call).
  // `warmer` (optional) prefetches the tick's memory while other tickers of the lane run
  // (TickerGroup::Warmer).
  virtual void StartTicker(std::chrono::milliseconds period, std::function<void()> tick,
                           TickerGroup::Warmer warmer) = 0;
  virtual void StopTicker() = 0;

  // Any thread.
  virtual void Post(std::function<void()> task) = 0;
  virtual void After(std::chrono::milliseconds delay, std::function<void()> task) = 0;
  // Any thread. Cuts the connection without a closing handshake; on_close still follows.
  virtual void Abort() = 0;
  // Any thread. See the header comment.
  virtual void Shutdown() = 0;
};

class TransportFactory {
 public:
  virtual ~TransportFactory() = default;
  // Thread-safe. A fresh, unconnected transport, on one of the factory's strands.
  virtual std::shared_ptr<Transport> Create() = 0;
  // Thread-safe. How late the lanes' rounds of ticks started after their due instants, over
  // every round so far: the audio clock's scheduling delay (a busy or starved machine).
  // Factories without lanes report nothing.
  virtual metrics::LatencySummary tick_lateness() const { return {}; }
};

// The Beast implementation on `runtime`'s io_context: verified TLS (system store plus
// options.ca_file, SNI, host-name verification). Throws std::runtime_error when the CA file
// cannot be loaded. Destroy it (and every transport) before the runtime.
std::unique_ptr<TransportFactory> MakeWebSocketTransportFactory(net::Runtime& runtime,
                                                                TransportOptions options);

// ws:// or wss:// URL with its query removed, for logs (the query holds the signature).
std::string RedactUrl(std::string_view url);

}  // namespace callgate::conversation
