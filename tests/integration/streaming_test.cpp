// Streamed response bodies (http::Response::stream) on the real server over real TCP: chunked and
// Content-Length framing, producers answering from other threads or slowly, producers that fail
// or stall, clients that stop reading, HEAD, keep-alive and pipelining after a streamed answer,
// and the access metrics.
#include "core/worker.hpp"
#include "http/dispatcher.hpp"
#include "http/message.hpp"
#include "http/server.hpp"
#include "metrics/registry.hpp"
#include "net/runtime.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/served_router.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace callgate::testing {
namespace {

using namespace std::chrono_literals;

// The bytes of chunk `index` of a test body: recognisable, so a reordered or repeated chunk shows.
std::string ChunkBytes(std::size_t index, std::size_t size) {
  std::string bytes(size, static_cast<char>('a' + index % 26));
  std::string tag(1, '<');  // (not "<" + ...: g++ 12 -Wrestrict false positive)
  tag += std::to_string(index);
  tag += '>';
  bytes.replace(0, std::min(tag.size(), size), tag.substr(0, std::min(tag.size(), size)));
  return bytes;
}

std::string Expected(std::size_t chunks, std::size_t size) {
  std::string body;
  for (std::size_t i = 0; i < chunks; ++i)
    body += ChunkBytes(i, size);
  return body;
}

// Counts what the server did with a stream; shared with the test, which outlives the stream.
struct Tally {
  std::atomic<int> next_calls{0};
  std::atomic<bool> destroyed{false};
};

// A producer of `chunks` chunks of `size` bytes. Answers from `worker` (another thread) when
// given, after `delay` each; inline otherwise. Then fails instead of ending when `fail_after` is
// reached, or never answers once `stall_after` is reached. `announced` is the Length().
class TestStream final : public http::BodyStream {
 public:
  struct Options {
    std::size_t chunks = 4;
    std::size_t size = 1000;
    std::optional<std::uint64_t> announced;
    core::Worker* worker = nullptr;
    std::chrono::milliseconds delay{0};
    std::optional<std::size_t> fail_after;
    std::optional<std::size_t> stall_after;
    std::optional<std::size_t> infinite_chunks;  // ignore `chunks`: never ends
  };
  TestStream(Options options, std::shared_ptr<Tally> tally)
      : options_(options), tally_(std::move(tally)) {}
  ~TestStream() override { tally_->destroyed = true; }

  std::optional<std::uint64_t> Length() const override { return options_.announced; }

  void Next(NextCallback done) override {
    ++tally_->next_calls;
    const std::size_t index = index_++;
    http::BodyChunk chunk;
    if (options_.stall_after && index >= *options_.stall_after) {
      stalled_.push_back(std::move(done));  // never answered (released with the stream)
      return;
    }
    if (options_.fail_after && index >= *options_.fail_after) {
      chunk = http::BodyChunk::Error("the test producer failed");
    } else if (options_.infinite_chunks || index < options_.chunks) {
      chunk = http::BodyChunk::Data(ChunkBytes(index, options_.size));
    } else {
      chunk = http::BodyChunk::End();
    }
    if (options_.worker == nullptr) {
      done(std::move(chunk));
      return;
    }
    const auto delay = options_.delay;
    options_.worker->Post([done = std::move(done), chunk = std::move(chunk), delay]() mutable {
      if (delay.count() > 0) std::this_thread::sleep_for(delay);
      done(std::move(chunk));
    });
  }

 private:
  Options options_;
  std::shared_ptr<Tally> tally_;
  std::size_t index_ = 0;
  std::vector<NextCallback> stalled_;
};

double Metric(metrics::Registry& registry, const std::string& line_prefix) {
  std::istringstream text(registry.Render());
  std::string line;
  while (std::getline(text, line)) {
    if (line.rfind(line_prefix + " ", 0) == 0)
      return std::stod(line.substr(line_prefix.size() + 1));
  }
  return -1;
}

// Splits raw response bytes into the head (lower-cased) and what followed it.
struct RawResponse {
  std::string head;
  std::string body;
};
RawResponse Split(const std::string& raw) {
  RawResponse out;
  const auto end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return out;
  out.head = raw.substr(0, end + 2);
  for (char& c : out.head)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  out.body = raw.substr(end + 4);
  return out;
}

class StreamingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AddStream("/chunked", {.chunks = 5, .size = 3000});
    AddStream("/length", {.chunks = 3, .size = 70'000, .announced = 210'000});
    AddStream("/threaded", {.chunks = 40, .size = 64 * 1024, .worker = &worker_});
    AddStream("/threaded-length",
              {.chunks = 40, .size = 64 * 1024, .announced = 40 * 64 * 1024, .worker = &worker_});
    AddStream("/slow", {.chunks = 10, .size = 100, .worker = &worker_, .delay = 20ms});
    AddStream("/fails", {.chunks = 10, .size = 5000, .worker = &worker_, .fail_after = 3});
    AddStream(
        "/fails-length",
        {.chunks = 10, .size = 5000, .announced = 50'000, .worker = &worker_, .fail_after = 3});
    AddStream("/short", {.chunks = 2, .size = 100, .announced = 1000});
    AddStream("/long", {.chunks = 3, .size = 100, .announced = 150});
    AddStream("/stalls", {.chunks = 10, .size = 100, .stall_after = 2});
    AddStream("/endless", {.size = 64 * 1024, .infinite_chunks = 1});
    AddStream("/empty", {.chunks = 0, .announced = 0});
    router_.Add("GET", "/plain", [](http::Request, http::Responder responder) {
      responder.Send(http::Response::Text(200, "plain answer"));
    });
    router_.Add("GET", "/no-content", [this](http::Request, http::Responder responder) {
      http::Response response;
      response.status = 204;
      response.stream = std::make_shared<TestStream>(TestStream::Options{}, Track("/no-content"));
      responder.Send(std::move(response));
    });
    // The handler's framing fields and a value that would split the head are not written.
    router_.Add("GET", "/handler-fields", [this](http::Request, http::Responder responder) {
      http::Response response = http::Response::Stream(
          200, "application/octet-stream",
          std::make_shared<TestStream>(TestStream::Options{.chunks = 2, .size = 10},
                                       Track("/handler-fields")));
      response.headers.Set("Content-Length", "999");
      response.headers.Set("Transfer-Encoding", "gzip");
      response.headers.Set("X-Injected", "a\r\nSet-Cookie: stolen=1");
      response.headers.Set("X-Kept", "yes");
      responder.Send(std::move(response));
    });
    dispatcher_ = std::make_unique<http::Dispatcher>(router_, http::DispatchOptions{});
    served_ = std::make_unique<ServedRouter>(
        runtime_, *dispatcher_,
        http::ServerOptions{.host = "127.0.0.1", .port = 0, .body_timeout = 400ms});
    port_ = served_->port();
  }

  void TearDown() override {
    served_.reset();
    answers_.Stop();
    worker_.Stop();
  }

  std::shared_ptr<Tally> Track(const std::string& path) {
    std::lock_guard lock(mutex_);
    auto& tally = tallies_[path];
    tally = std::make_shared<Tally>();
    return tally;
  }

  std::shared_ptr<Tally> TallyOf(const std::string& path) {
    std::lock_guard lock(mutex_);
    return tallies_[path];
  }

  // A GET route answering 200 with a new TestStream; the handler answers from another thread.
  void AddStream(const std::string& path, TestStream::Options options) {
    router_.Add("GET", path, [this, path, options](http::Request, http::Responder responder) {
      auto stream = std::make_shared<TestStream>(options, Track(path));
      answers_.Post([responder, stream] {
        responder.Send(http::Response::Stream(200, "application/octet-stream", stream));
      });
    });
  }

  net::Runtime runtime_{2};
  core::Worker worker_{"test-producer", 1024};
  core::Worker answers_{"test-answers", 1024};
  http::Router router_;
  std::unique_ptr<http::Dispatcher> dispatcher_;
  std::unique_ptr<ServedRouter> served_;
  std::uint16_t port_ = 0;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Tally>> tallies_;
};

TEST_F(StreamingTest, UnknownLengthIsSentChunked) {
  TcpConnection connection(port_);
  ASSERT_TRUE(connection.Send(BuildRequest("GET", "/chunked")));
  auto response = connection.Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->Header("transfer-encoding"), "chunked");
  EXPECT_EQ(response->Header("content-length"), "");
  EXPECT_EQ(response->Header("content-type"), "application/octet-stream");
  EXPECT_FALSE(response->Header("x-request-id").empty());
  EXPECT_EQ(response->body, Expected(5, 3000));
  EXPECT_TRUE(WaitFor([&] { return TallyOf("/chunked")->destroyed.load(); }, 5s));
  EXPECT_EQ(TallyOf("/chunked")->next_calls, 6) << "five chunks and the end, pulled one by one";
}

TEST_F(StreamingTest, TheWireFormatIsOneHttpChunkPerProducedChunk) {
  TcpConnection connection(port_);
  ASSERT_TRUE(connection.Send(
      BuildRequest("GET", "/chunked", {{"Connection", "close"}})));  // so that it ends
  bool closed = false;
  const RawResponse raw = Split(connection.ReadUntilClosed(10s, &closed));
  EXPECT_TRUE(closed);
  EXPECT_NE(raw.head.find("transfer-encoding: chunked\r\n"), std::string::npos) << raw.head;
  std::string expected;
  for (std::size_t i = 0; i < 5; ++i)
    expected += "bb8\r\n" + ChunkBytes(i, 3000) + "\r\n";  // 3000 = 0xbb8
  expected += "0\r\n\r\n";
  EXPECT_EQ(raw.body, expected);
}

TEST_F(StreamingTest, TheServerOwnsTheFramingAndNoFieldSplitsTheHead) {
  TcpConnection connection(port_);
  ASSERT_TRUE(connection.Send(BuildRequest("GET", "/handler-fields", {{"Connection", "close"}})));
  bool closed = false;
  const RawResponse raw = Split(connection.ReadUntilClosed(10s, &closed));
  EXPECT_TRUE(closed);
  EXPECT_NE(raw.head.find("\r\ntransfer-encoding: chunked\r\n"), std::string::npos) << raw.head;
  EXPECT_EQ(raw.head.find("content-length"), std::string::npos) << raw.head;
  EXPECT_EQ(raw.head.find("gzip"), std::string::npos) << raw.head;
  EXPECT_EQ(raw.head.find("set-cookie"), std::string::npos) << raw.head;
  EXPECT_EQ(raw.head.find("x-injected"), std::string::npos) << raw.head;
  EXPECT_NE(raw.head.find("\r\nx-kept: yes\r\n"), std::string::npos) << raw.head;
  EXPECT_NE(raw.head.find("\r\nconnection: close\r\n"), std::string::npos) << raw.head;
  EXPECT_EQ(raw.body,
            "a\r\n" + ChunkBytes(0, 10) + "\r\na\r\n" + ChunkBytes(1, 10) + "\r\n0\r\n\r\n");
}

TEST_F(StreamingTest, KnownLengthIsSentWithContentLength) {
  auto response = Fetch(port_, "GET", "/length");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->Header("content-length"), "210000");
  EXPECT_EQ(response->Header("transfer-encoding"), "");
  EXPECT_EQ(response->body, Expected(3, 70'000));
  EXPECT_EQ(Fetch(port_, "GET", "/empty")->Header("content-length"), "0");
}

TEST_F(StreamingTest, AProducerOnAnotherThreadStreamsMegabytes) {
  for (const std::string path : {"/threaded", "/threaded-length"}) {
    auto response = Fetch(port_, "GET", path);
    ASSERT_TRUE(response) << path;
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body.size(), 40u * 64 * 1024) << path;
    EXPECT_TRUE(response->body == Expected(40, 64 * 1024)) << path;
  }
}

TEST_F(StreamingTest, ASlowProducerIsWaitedFor) {
  // Each chunk takes 20 ms, well within the 400 ms body timeout; 10 of them add up to more.
  auto response = Fetch(port_, "GET", "/slow");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, Expected(10, 100));
}

TEST_F(StreamingTest, AProducerErrorMidBodyCutsTheConnection) {
  for (const std::string path : {"/fails", "/fails-length"}) {
    TcpConnection connection(port_);
    ASSERT_TRUE(connection.Send(BuildRequest("GET", path)));
    bool closed = false;
    const RawResponse raw = Split(connection.ReadUntilClosed(10s, &closed));
    EXPECT_TRUE(closed) << path << ": the connection ends instead of waiting for more";
    EXPECT_EQ(raw.head.rfind("http/1.1 200", 0), 0u) << raw.head;
    const std::string sent = Expected(3, 5000);
    if (path == "/fails") {
      EXPECT_EQ(raw.body.find("0\r\n\r\n"), std::string::npos) << "no last chunk: truncated";
      EXPECT_NE(raw.body.find(ChunkBytes(2, 5000)), std::string::npos);
    } else {
      EXPECT_NE(raw.head.find("content-length: 50000\r\n"), std::string::npos) << raw.head;
      EXPECT_EQ(raw.body, sent) << "fewer bytes than announced";
    }
    // The test client's reader sees no complete response.
    TcpConnection again(port_);
    ASSERT_TRUE(again.Send(BuildRequest("GET", path)));
    EXPECT_FALSE(again.Read(10s)) << path;
  }
  // The server is fine afterwards.
  auto response = Fetch(port_, "GET", "/plain");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->body, "plain answer");
}

TEST_F(StreamingTest, ALengthMismatchCutsTheConnection) {
  for (const std::string path : {"/short", "/long"}) {
    TcpConnection connection(port_);
    ASSERT_TRUE(connection.Send(BuildRequest("GET", path)));
    bool closed = false;
    const RawResponse raw = Split(connection.ReadUntilClosed(10s, &closed));
    EXPECT_TRUE(closed) << path;
    if (path == "/short") {
      EXPECT_NE(raw.head.find("content-length: 1000\r\n"), std::string::npos) << raw.head;
      EXPECT_EQ(raw.body, Expected(2, 100));
    } else {
      // The chunk that would overflow the announced 150 bytes is not sent at all.
      EXPECT_NE(raw.head.find("content-length: 150\r\n"), std::string::npos) << raw.head;
      EXPECT_EQ(raw.body, Expected(1, 100));
    }
  }
}

TEST_F(StreamingTest, AStalledProducerTimesOut) {
  TcpConnection connection(port_);
  ASSERT_TRUE(connection.Send(BuildRequest("GET", "/stalls")));
  bool closed = false;
  const RawResponse raw = Split(connection.ReadUntilClosed(10s, &closed));
  EXPECT_TRUE(closed) << "cut after the body timeout";
  EXPECT_EQ(raw.head.rfind("http/1.1 200", 0), 0u) << raw.head;
  EXPECT_TRUE(WaitFor([&] { return TallyOf("/stalls")->destroyed.load(); }, 5s))
      << "the stream is released";
}

TEST_F(StreamingTest, AClientThatStopsReadingIsDropped) {
  TcpConnection connection(port_);
  ASSERT_TRUE(connection.Send(BuildRequest("GET", "/endless")));
  // Never read: the socket buffers fill, the write stalls, and the body timeout ends it. The
  // producer was only asked for what fitted (pulled one chunk at a time).
  ASSERT_TRUE(WaitFor([&] { return TallyOf("/endless") != nullptr; }, 5s));
  EXPECT_TRUE(WaitFor([&] { return TallyOf("/endless")->destroyed.load(); }, 20s));
  EXPECT_TRUE(WaitFor(
      [&] { return Metric(served_->registry(), "callgate_http_connections_open") == 0; }, 5s));
  EXPECT_LT(TallyOf("/endless")->next_calls, 2000) << "not produced faster than written";
}

TEST_F(StreamingTest, HeadSendsTheHeadersAndNeverPulls) {
  TcpConnection connection(port_);
  ASSERT_TRUE(connection.Send(BuildRequest("HEAD", "/length")));
  auto head = connection.Read(10s, true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->Header("content-length"), "210000");
  ASSERT_TRUE(connection.Send(BuildRequest("HEAD", "/chunked")));
  head = connection.Read(10s, true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->Header("transfer-encoding"), "chunked");
  // Nothing followed the headers: the next answer on the connection is the next request's.
  ASSERT_TRUE(connection.Send(BuildRequest("GET", "/plain")));
  auto plain = connection.Read();
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->body, "plain answer");
  EXPECT_EQ(TallyOf("/length")->next_calls, 0);
  EXPECT_EQ(TallyOf("/chunked")->next_calls, 0);
}

TEST_F(StreamingTest, KeepAliveAndPipeliningAfterAStreamedAnswer) {
  TcpConnection connection(port_);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(connection.Send(BuildRequest("GET", "/threaded-length")));
    auto streamed = connection.Read();
    ASSERT_TRUE(streamed);
    EXPECT_EQ(streamed->body.size(), 40u * 64 * 1024);
    EXPECT_FALSE(streamed->Closes());
  }
  // Pipelined: a streamed answer, a plain one and a chunked one, sent in one write.
  ASSERT_TRUE(connection.Send(BuildRequest("GET", "/threaded") + BuildRequest("GET", "/plain") +
                              BuildRequest("GET", "/chunked")));
  auto first = connection.Read();
  auto second = connection.Read();
  auto third = connection.Read();
  ASSERT_TRUE(first && second && third);
  EXPECT_TRUE(first->body == Expected(40, 64 * 1024));
  EXPECT_EQ(second->body, "plain answer");
  EXPECT_EQ(third->body, Expected(5, 3000));
  EXPECT_EQ(Metric(served_->registry(), "callgate_http_connections_total"), 1);
}

TEST_F(StreamingTest, Http10GetsTheBodyUntilTheConnectionCloses) {
  TcpConnection connection(port_);
  ASSERT_TRUE(connection.Send("GET /chunked HTTP/1.0\r\nHost: x\r\n\r\n"));
  bool closed = false;
  const RawResponse raw = Split(connection.ReadUntilClosed(10s, &closed));
  EXPECT_TRUE(closed);
  EXPECT_EQ(raw.head.find("transfer-encoding"), std::string::npos) << raw.head;
  EXPECT_EQ(raw.body, Expected(5, 3000));
}

// A connection keeps the metric children of its last request: switching routes and statuses
// on one keep-alive connection must still count each request under its own labels.
TEST_F(StreamingTest, KeepAliveRequestsAreCountedUnderTheirOwnLabels) {
  TcpConnection connection(port_);
  for (const char* target :
       {"/length", "/no-content", "/length", "/chunked", "/length", "/no-content"}) {
    ASSERT_TRUE(connection.Send(BuildRequest("GET", target)));
    auto response = connection.Read(10s);
    ASSERT_TRUE(response) << target;
  }
  EXPECT_EQ(Metric(served_->registry(),
                   R"(callgate_http_requests_total{route="/length",method="GET",status="200"})"),
            3);
  EXPECT_EQ(
      Metric(served_->registry(),
             R"(callgate_http_requests_total{route="/no-content",method="GET",status="204"})"),
      2);
  EXPECT_EQ(Metric(served_->registry(),
                   R"(callgate_http_requests_total{route="/chunked",method="GET",status="200"})"),
            1);  // same method and status as /length, another route
  EXPECT_EQ(Metric(served_->registry(),
                   R"(callgate_http_request_duration_seconds_count{route="/length"})"),
            3);
}

TEST_F(StreamingTest, NoContentNeverStreams) {
  auto response = Fetch(port_, "GET", "/no-content");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 204);
  EXPECT_EQ(TallyOf("/no-content")->next_calls, 0);
}

TEST_F(StreamingTest, StreamedAnswersAreCounted) {
  ASSERT_TRUE(Fetch(port_, "GET", "/length"));
  TcpConnection cut(port_);
  ASSERT_TRUE(cut.Send(BuildRequest("GET", "/fails")));
  cut.ReadUntilClosed(10s);
  EXPECT_EQ(Metric(served_->registry(),
                   "callgate_http_requests_total{route=\"/length\",method=\"GET\",status=\"200\"}"),
            1);
  EXPECT_EQ(Metric(served_->registry(),
                   "callgate_http_requests_total{route=\"/fails\",method=\"GET\",status=\"200\"}"),
            1);
  EXPECT_TRUE(WaitFor(
      [&] { return Metric(served_->registry(), "callgate_http_requests_in_flight") == 0; }, 5s));
}

TEST(StreamingTls, StreamsOverTlsAndCutsWithoutCloseNotify) {
  TempDir dir;
  const TestCertificate cert = MakeTestCertificate(dir.path().string());
  ASSERT_FALSE(cert.cert_file.empty()) << "openssl could not make a certificate";
  net::Runtime runtime(2);
  core::Worker worker("tls-producer", 64);
  auto tally = std::make_shared<Tally>();
  http::Router router;
  router.Add("GET", "/big", [&](http::Request, http::Responder responder) {
    responder.Send(http::Response::Stream(
        200, "audio/mpeg",
        std::make_shared<TestStream>(
            TestStream::Options{.chunks = 20, .size = 50'000, .worker = &worker}, tally)));
  });
  router.Add("GET", "/fails", [&](http::Request, http::Responder responder) {
    responder.Send(http::Response::Stream(
        200, "audio/mpeg",
        std::make_shared<TestStream>(
            TestStream::Options{.chunks = 20, .size = 50'000, .worker = &worker, .fail_after = 2},
            tally)));
  });
  http::Dispatcher dispatcher(router, {});
  ServedRouter served(runtime, dispatcher,
                      {.host = "127.0.0.1",
                       .port = 0,
                       .tls_cert_file = cert.cert_file,
                       .tls_key_file = cert.key_file});
  {
    TcpConnection connection(served.port(), TlsClientOptions{.ca_file = cert.cert_file});
    ASSERT_TRUE(connection.connected());
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(connection.Send(BuildRequest("GET", "/big")));
      auto response = connection.Read();
      ASSERT_TRUE(response);
      EXPECT_EQ(response->Header("transfer-encoding"), "chunked");
      EXPECT_TRUE(response->body == Expected(20, 50'000));
    }
    TcpConnection cut(served.port(), TlsClientOptions{.ca_file = cert.cert_file});
    ASSERT_TRUE(cut.Send(BuildRequest("GET", "/fails")));
    bool closed = false;
    const RawResponse raw = Split(cut.ReadUntilClosed(10s, &closed));
    EXPECT_TRUE(closed);
    EXPECT_NE(raw.body.find(ChunkBytes(1, 50'000)), std::string::npos);
    EXPECT_EQ(raw.body.find("0\r\n\r\n"), std::string::npos);
  }
  served.Stop();
  worker.Stop();
}

}  // namespace
}  // namespace callgate::testing
