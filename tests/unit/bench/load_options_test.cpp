// bench/load_options.hpp: what both load generators rely on to read options and report
// percentiles the same way.
#include "load_options.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <vector>

namespace callgate::bench {
namespace {

TEST(NearestRank, IsTheSmallestSampleWithThatShareAtOrBelowIt) {
  std::vector<int> samples;
  for (int i = 1; i <= 100; ++i)
    samples.push_back(i);
  EXPECT_EQ(NearestRank(samples, 0.50), 50);
  EXPECT_EQ(NearestRank(samples, 0.99), 99);
  EXPECT_EQ(NearestRank(samples, 0.999), 100);
  EXPECT_EQ(NearestRank(samples, 1.0), 100);
  EXPECT_EQ(NearestRank(samples, 0.001), 1);
  EXPECT_EQ(NearestRank(samples, 0.0), 1);
}

TEST(NearestRank, SmallAndEmptySets) {
  EXPECT_EQ(NearestRank(std::vector<std::int64_t>{}, 0.99), 0);
  EXPECT_EQ(NearestRank(std::vector<std::int64_t>{7}, 0.5), 7);
  // Of 10 samples the p99 is the largest (rank ceil(9.9) = 10), the p90 the ninth.
  const std::vector<std::uint32_t> ten{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_EQ(NearestRank(ten, 0.99), 10u);
  EXPECT_EQ(NearestRank(ten, 0.90), 9u);
}

TEST(ParseNumber, TakesTheWholeTextOrThrowsNamingTheOption) {
  EXPECT_EQ(ParseNumber<int>("--rate", "2500"), 2500);
  EXPECT_THROW(ParseNumber<int>("--rate", "25x"), UsageError);
  EXPECT_THROW(ParseNumber<int>("--rate", ""), UsageError);
  try {
    ParseNumber<int>("--connections", "many");
    FAIL() << "no exception";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--connections"), std::string::npos) << e.what();
  }
}

TEST(ParseUrl, TakesHostPortAndPath) {
  const Target target = ParseUrl("http://127.0.0.1:8080/api/x?y=1", "/");
  EXPECT_EQ(target.host, "127.0.0.1");
  EXPECT_EQ(target.port, 8080);
  EXPECT_EQ(target.path, "/api/x?y=1");
  EXPECT_EQ(ParseUrl("http://127.0.0.1:9", "/default").path, "/default");
  EXPECT_THROW(ParseUrl("https://127.0.0.1:9/", "/"), UsageError);
}

// Resolve + Connect against a real listening socket on loopback, and a port nobody listens on.
TEST(Connect, GivesANonBlockingSocketOrMinusOneWithErrno) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in bound{};
  bound.sin_family = AF_INET;
  bound.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<const sockaddr*>(&bound), sizeof bound), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  socklen_t size = sizeof bound;
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&bound), &size), 0);
  const std::uint16_t port = ntohs(bound.sin_port);

  const sockaddr_in address = Resolve(ParseUrl("http://127.0.0.1:" + std::to_string(port), "/"));
  EXPECT_EQ(ntohs(address.sin_port), port);
  const int fd = Connect(address);
  ASSERT_GE(fd, 0);
  EXPECT_NE(::fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  int nodelay = 0;
  socklen_t length = sizeof nodelay;
  ASSERT_EQ(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &length), 0);
  EXPECT_NE(nodelay, 0);
  ::close(fd);
  ::close(listener);  // nobody listens on `port` any more

  errno = 0;
  EXPECT_EQ(Connect(address), -1);
  EXPECT_EQ(errno, ECONNREFUSED);
  EXPECT_THROW(Resolve(ParseUrl("http://no-such-host.invalid:80", "/")), UsageError);
}

}  // namespace
}  // namespace callgate::bench
