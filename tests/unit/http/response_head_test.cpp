#include "http/response_head.hpp"

#include <gtest/gtest.h>

#include <string>

namespace callgate::http {
namespace {

std::string Head(int status, const Headers& headers, std::optional<std::size_t> length,
                 ResponseHeadFields fields = {}) {
  std::string out;
  AppendResponseHead(out, status, headers, length, fields);
  return out;
}

TEST(ResponseHeadTest, StatusLineFieldsAndLengthInBeastsOrder) {
  Headers headers;
  headers.Add("Content-Type", "application/json");
  headers.Add("Retry-After", "3");
  const std::string head =
      Head(429, headers, 17,
           {.server = "callgate", .date = "Sun, 22 Nov 2026 22:00:00 GMT", .request_id = "req_1"});
  EXPECT_EQ(head,
            "HTTP/1.1 429 Too Many Requests\r\n"
            "Content-Type: application/json\r\n"
            "Retry-After: 3\r\n"
            "Server: callgate\r\n"
            "Date: Sun, 22 Nov 2026 22:00:00 GMT\r\n"
            "X-Request-Id: req_1\r\n"
            "Content-Length: 17\r\n"
            "\r\n");
}

TEST(ResponseHeadTest, TheServerOwnsFramingAndItsOwnFields) {
  Headers headers;
  headers.Add("content-length", "999");
  headers.Add("Transfer-Encoding", "chunked");
  headers.Add("Connection", "keep-alive");
  headers.Add("Server", "handler");
  headers.Add("date", "yesterday");
  headers.Add("X-Request-Id", "req_handler");
  headers.Add("X-Kept", "yes");
  const std::string head = Head(200, headers, 2, {.server = "callgate", .date = "today"});
  EXPECT_EQ(head.find("999"), std::string::npos);
  EXPECT_EQ(head.find("chunked"), std::string::npos);
  EXPECT_EQ(head.find("Server: handler"), std::string::npos) << head;
  EXPECT_EQ(head.find("yesterday"), std::string::npos);
  EXPECT_NE(head.find("X-Kept: yes\r\n"), std::string::npos);
  EXPECT_NE(head.find("Content-Length: 2\r\n"), std::string::npos);
  // Without an id of its own, the server passes the handler's on.
  EXPECT_NE(head.find("X-Request-Id: req_handler\r\n"), std::string::npos);
  // HTTP/1.1 keeps the connection by default: no Connection field at all.
  EXPECT_EQ(head.find("Connection"), std::string::npos);
}

TEST(ResponseHeadTest, AChunkedBodyIsAnnouncedInsteadOfALength) {
  const Headers none;
  EXPECT_EQ(Head(200, none, std::nullopt, {.chunked = true}),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  // Chunked wins over a length; a status without a body gets neither.
  EXPECT_EQ(Head(200, none, 5, {.chunked = true}).find("Content-Length"), std::string::npos);
  EXPECT_EQ(Head(204, none, std::nullopt, {.chunked = true}), "HTTP/1.1 204 No Content\r\n\r\n");
}

TEST(ResponseHeadTest, ConnectionFieldFollowsVersionAndKeepAlive) {
  const Headers none;
  EXPECT_NE(Head(200, none, 0, {.version = 11, .keep_alive = false}).find("Connection: close\r\n"),
            std::string::npos);
  EXPECT_NE(
      Head(200, none, 0, {.version = 10, .keep_alive = true}).find("Connection: keep-alive\r\n"),
      std::string::npos);
  const std::string closing = Head(200, none, 0, {.version = 10, .keep_alive = false});
  EXPECT_EQ(closing.rfind("HTTP/1.0 200 OK\r\n", 0), 0U);
  EXPECT_EQ(closing.find("Connection"), std::string::npos);
}

TEST(ResponseHeadTest, StatusesWithoutABodyAnnounceNoLength) {
  const Headers none;
  for (int status : {101, 204, 304}) {
    const std::string head = Head(status, none, 0);
    EXPECT_EQ(head.find("Content-Length"), std::string::npos) << status;
  }
  EXPECT_EQ(Head(204, none, 0), "HTTP/1.1 204 No Content\r\n\r\n");
  EXPECT_NE(Head(404, none, 0).find("Content-Length: 0\r\n"), std::string::npos);
  EXPECT_FALSE(StatusHasBody(100));
  EXPECT_FALSE(StatusHasBody(304));
  EXPECT_TRUE(StatusHasBody(200));
  EXPECT_TRUE(StatusHasBody(500));
}

TEST(ResponseHeadTest, AFieldThatCouldSplitTheHeadIsLeftOut) {
  Headers headers;
  headers.Add("X-Injected", "a\r\nSet-Cookie: stolen=1");
  headers.Add("X-Bare-LF", "a\nb");
  headers.Add("Bad Name", "v");
  headers.Add("Bad:Name", "v");
  headers.Add("", "v");
  headers.Add("X-Fine", "a b\tc");
  const std::string head = Head(200, headers, 0);
  EXPECT_EQ(head.find("Set-Cookie"), std::string::npos);
  EXPECT_EQ(head.find("X-Bare-LF"), std::string::npos);
  EXPECT_EQ(head.find("Bad"), std::string::npos);
  EXPECT_EQ(head.find(": v"), std::string::npos);
  EXPECT_NE(head.find("X-Fine: a b\tc\r\n"), std::string::npos);
  // Exactly one blank line, at the end.
  EXPECT_EQ(head.find("\r\n\r\n"), head.size() - 4);
}

TEST(ResponseHeadTest, UnusualStatusesStillGetAStatusLine) {
  const Headers none;
  EXPECT_EQ(Head(599, none, 0).rfind("HTTP/1.1 599 ", 0), 0U);
  EXPECT_EQ(Head(418, none, 0).rfind("HTTP/1.1 418 ", 0), 0U);
}

}  // namespace
}  // namespace callgate::http
