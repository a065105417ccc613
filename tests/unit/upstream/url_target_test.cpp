// Where the clients connect for a URL, and the HTTP client's remembered parse of the last origin.
#include "upstream/url_target.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace callgate::upstream {
namespace {

void ExpectSame(const std::optional<UrlTarget>& a, const std::optional<UrlTarget>& b,
                const std::string& url) {
  ASSERT_EQ(a.has_value(), b.has_value()) << url;
  if (!a) return;
  EXPECT_EQ(a->scheme, b->scheme) << url;
  EXPECT_EQ(a->tls, b->tls) << url;
  EXPECT_EQ(a->host, b->host) << url;
  EXPECT_EQ(a->port, b->port) << url;
  EXPECT_EQ(a->host_header, b->host_header) << url;
  EXPECT_EQ(a->authority, b->authority) << url;
  EXPECT_EQ(a->path_and_query, b->path_and_query) << url;
}

TEST(UrlTarget, TakesAUrlApart) {
  std::string error;
  const auto target =
      ParseUrlTarget("https://api.elevenlabs.io/v1/x?a=1#frag", {"http"}, {"https"}, error);
  ASSERT_TRUE(target) << error;
  EXPECT_TRUE(target->tls);
  EXPECT_EQ(target->host, "api.elevenlabs.io");
  EXPECT_EQ(target->port, "443");
  EXPECT_EQ(target->host_header, "api.elevenlabs.io");
  EXPECT_EQ(target->authority, "api.elevenlabs.io:443");
  EXPECT_EQ(target->path_and_query, "/v1/x?a=1");
  const auto v6 = ParseUrlTarget("http://[::1]:8080", {"http"}, {"https"}, error);
  ASSERT_TRUE(v6) << error;
  EXPECT_EQ(v6->host_header, "[::1]:8080");
  EXPECT_EQ(v6->path_and_query, "/");
  EXPECT_FALSE(ParseUrlTarget("ftp://example.com/", {"http"}, {"https"}, error));
  EXPECT_EQ(error, "the scheme must be http or https");
}

// In sequence on one thread, so that each URL meets the origin remembered from the one before.
TEST(UrlTarget, TheRememberedOriginGivesWhatAFullParseGives) {
  const std::vector<std::string> urls = {
      "http://127.0.0.1:4010/v1/convai/conversations/conv_1",
      "http://127.0.0.1:4010/v1/convai/conversations/conv_2/audio",
      "http://127.0.0.1:4010/v1/convai/conversations?page_size=30&cursor=abc",
      "http://127.0.0.1:4010/path#fragment",   // the fragment is not sent
      "http://127.0.0.1:4010/bad path",        // not a URL: the full parse says why
      "http://127.0.0.1:4010/%zz",             // a bad escape
      "http://127.0.0.1:40100/v1/other-port",  // the origin is a prefix of this one
      "http://127.0.0.1:4010",                 // no path
      "http://127.0.0.1:4010?x=1",             // a query without a path
      "https://api.elevenlabs.io/v1/convai/phone-numbers",
      "https://user@api.elevenlabs.io/v1/convai/agents",  // userinfo is part of the origin
      "https://api.elevenlabs.io/v1/convai/agents",
      "https://api.elevenlabs.io//double",
      "ftp://api.elevenlabs.io/v1",
      "http://127.0.0.1:4010/v1/convai/conversations/conv_1",
  };
  for (int round = 0; round < 2; ++round) {
    for (const std::string& url : urls) {
      std::string full_error;
      std::string cached_error;
      const auto full = ParseUrlTarget(url, {"http"}, {"https"}, full_error);
      const auto cached = ParseHttpTarget(url, cached_error);
      ExpectSame(cached, full, url);
      if (!full) {
        EXPECT_EQ(cached_error, full_error) << url;
      }
    }
  }
}

// The origin is remembered per thread: what another thread parsed meanwhile changes no result.
TEST(UrlTarget, AnotherThreadsOriginChangesNoResult) {
  std::string error;
  ASSERT_TRUE(ParseHttpTarget("http://a.example/one", error));
  std::optional<UrlTarget> other;
  std::thread([&] {
    std::string e;
    ASSERT_TRUE(ParseHttpTarget("http://b.example/two", e));
    other = ParseHttpTarget("http://b.example/three", e);
  }).join();
  ASSERT_TRUE(other);
  EXPECT_EQ(other->host, "b.example");
  const auto mine = ParseHttpTarget("http://a.example/four", error);
  ASSERT_TRUE(mine);
  EXPECT_EQ(mine->host, "a.example");
  EXPECT_EQ(mine->path_and_query, "/four");
}

}  // namespace
}  // namespace callgate::upstream
