#include "http/request_head.hpp"

#include "http/head_format.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace callgate::http {
namespace {

std::string Head(const RequestHeadFields& fields, const Headers& headers, std::size_t body_size) {
  std::string out;
  EXPECT_TRUE(AppendRequestHead(out, fields, headers, body_size));
  return out;
}

TEST(RequestHeadTest, AGetHasNoFramingFieldAndTheFieldsInBeastsOrder) {
  Headers headers;
  headers.Add("xi-api-key", "sk_1");
  headers.Add("Accept", "application/json");
  EXPECT_EQ(Head({.method = "GET",
                  .target = "/v1/convai/conversations/c_1?x=1",
                  .host = "api.elevenlabs.io",
                  .user_agent = "callgate/1"},
                 headers, 0),
            "GET /v1/convai/conversations/c_1?x=1 HTTP/1.1\r\n"
            "Host: api.elevenlabs.io\r\n"
            "User-Agent: callgate/1\r\n"
            "xi-api-key: sk_1\r\n"
            "Accept: application/json\r\n"
            "\r\n");
}

TEST(RequestHeadTest, ABodyIsAnnouncedByItsLengthAndAnEmptyPostByZero) {
  const Headers none;
  EXPECT_EQ(Head({.method = "POST", .target = "/a", .host = "h:8080"}, none, 17),
            "POST /a HTTP/1.1\r\nHost: h:8080\r\nContent-Length: 17\r\n\r\n");
  EXPECT_EQ(Head({.method = "POST", .target = "/a", .host = "h"}, none, 0),
            "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(Head({.method = "PATCH", .target = "/a", .host = "h"}, none, 0),
            "PATCH /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(Head({.method = "DELETE", .target = "/a", .host = "h"}, none, 0),
            "DELETE /a HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(Head({.method = "DELETE", .target = "/a", .host = "h"}, none, 3),
            "DELETE /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n");
  EXPECT_EQ(RequestBodyEnd(false, 17), "");
}

TEST(RequestHeadTest, AChunkedBodyGoesAsOneChunkThenTheLastChunk) {
  const Headers none;
  const std::string head =
      Head({.method = "POST", .target = "/hook", .host = "h", .chunked = true}, none, 300);
  EXPECT_EQ(head, "POST /hook HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n12c\r\n");
  EXPECT_EQ(RequestBodyEnd(true, 300), "\r\n0\r\n\r\n");
  // An empty chunked body is the last chunk alone: a zero-size chunk would end it too early.
  EXPECT_EQ(Head({.method = "POST", .target = "/hook", .host = "h", .chunked = true}, none, 0),
            "POST /hook HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(RequestBodyEnd(true, 0), "0\r\n\r\n");
}

TEST(RequestHeadTest, AChunkSizeLineIsHexThenCrlfUpToTheLargestSize) {
  EXPECT_EQ(detail::FormatChunkSize(0).view(), "0\r\n");
  EXPECT_EQ(detail::FormatChunkSize(300).view(), "12c\r\n");
  EXPECT_EQ(detail::FormatChunkSize(std::numeric_limits<std::size_t>::max()).view(),
            "ffffffffffffffff\r\n");
}

TEST(RequestHeadTest, TheClientOwnsHostAndFramingAndTheCallersAgentWins) {
  Headers headers;
  headers.Add("host", "evil.example");
  headers.Add("Content-Length", "999");
  headers.Add("transfer-encoding", "chunked");
  headers.Add("user-agent", "n8n-forwarder");
  const std::string head =
      Head({.method = "POST", .target = "/", .host = "h", .user_agent = "callgate/1"}, headers, 2);
  EXPECT_EQ(head,
            "POST / HTTP/1.1\r\nHost: h\r\nuser-agent: n8n-forwarder\r\nContent-Length: 2\r\n\r\n");
}

TEST(RequestHeadTest, AFieldThatCouldSplitTheHeadIsLeftOut) {
  Headers headers;
  headers.Add("X-Injected", "a\r\nX-Evil: 1");
  headers.Add("X-Bare-Lf", "a\nb");
  headers.Add("Bad Name", "v");
  headers.Add("", "v");
  headers.Add("X-Kept", "yes");
  const std::string head = Head({.method = "GET", .target = "/", .host = "h"}, headers, 0);
  EXPECT_EQ(head, "GET / HTTP/1.1\r\nHost: h\r\nX-Kept: yes\r\n\r\n");
}

TEST(RequestHeadTest, AMethodOrTargetThatCannotBeWrittenIsRefused) {
  const Headers none;
  for (const auto& [method, target] :
       {std::pair{"GET X", "/"}, std::pair{"", "/"}, std::pair{"GET", ""}, std::pair{"GET", "/a b"},
        std::pair{"GET", "/a\r\nX: 1"}, std::pair{"GET", "/\x7f"}}) {
    std::string out = "kept";
    EXPECT_FALSE(AppendRequestHead(out, {.method = method, .target = target, .host = "h"}, none, 0))
        << method << " " << target;
    EXPECT_EQ(out, "kept");
  }
}

}  // namespace
}  // namespace callgate::http
