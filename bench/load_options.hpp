// What the load generators (rate_load, webhook_load) share: reading their command line (a number
// taken strictly, an http:// URL taken apart; a bad value throws UsageError, which each tool
// turns into its usage message), resolving and connecting their sockets, and the one
// percentile definition both report with.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace callgate::bench {

struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// The whole of `text` as a T, or UsageError naming the option.
template <class T>
T ParseNumber(std::string_view name, std::string_view text) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    throw UsageError("bad value for " + std::string(name) + ": " + std::string(text));
  }
  return value;
}

struct Target {
  std::string host;
  std::uint16_t port = 0;
  std::string path;
};

// "http://HOST:PORT[/path]"; `default_path` when the URL has none.
inline Target ParseUrl(std::string_view url, std::string_view default_path) {
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme)) throw UsageError("only http:// URLs: " + std::string(url));
  url.remove_prefix(kScheme.size());
  Target target;
  const auto slash = url.find('/');
  const std::string_view authority = url.substr(0, slash);
  target.path =
      slash == std::string_view::npos ? std::string(default_path) : std::string(url.substr(slash));
  const auto colon = authority.rfind(':');
  if (colon == std::string_view::npos) {
    throw UsageError("the URL needs a port: " + std::string(url));
  }
  target.host = authority.substr(0, colon);
  target.port = ParseNumber<std::uint16_t>("port", authority.substr(colon + 1));
  return target;
}

// The IPv4 address of `target` (its host resolved once), or UsageError.
inline sockaddr_in Resolve(const Target& target) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(target.host.c_str(), nullptr, &hints, &found) != 0 || found == nullptr) {
    throw UsageError("cannot resolve " + target.host);
  }
  sockaddr_in address{};
  std::memcpy(&address, found->ai_addr, sizeof address);
  ::freeaddrinfo(found);
  address.sin_port = htons(target.port);
  return address;
}

// A blocking connect, then TCP_NODELAY and non-blocking for an epoll loop. -1 on failure, with
// errno saying why.
inline int Connect(const sockaddr_in& address) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    const int error = errno;
    ::close(fd);
    errno = error;
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

// The nearest-rank percentile of sorted samples: the smallest sample with at least `fraction`
// (0..1] of the samples at or below it. Both generators report with this one definition.
template <class T>
T NearestRank(const std::vector<T>& sorted, double fraction) {
  if (sorted.empty()) return T{};
  const auto rank =
      static_cast<std::size_t>(std::ceil(fraction * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

}  // namespace callgate::bench
