// Where a client connects for an absolute URL: http(s) for the HTTP client, ws(s) for the
// conversation WebSocket. Pure.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace callgate::upstream {

struct UrlTarget {
  std::string scheme;          // as written
  bool tls = false;            // one of the secure schemes
  std::string host;            // without brackets
  std::string port;            // explicit, or the scheme's default (80/443)
  std::string host_header;     // host[:port] as the Host header wants it, brackets for IPv6
  std::string authority;       // host:port, always with the port, brackets for IPv6
  std::string path_and_query;  // "/" when the URL has no path
};

// nullopt with `error` set ("not an absolute URL", "the scheme must be http or https", "the URL
// has no host") when the URL cannot be used. `plain` and `secure` list the accepted schemes;
// the first of each names them in the error.
std::optional<UrlTarget> ParseUrlTarget(std::string_view url,
                                        std::initializer_list<std::string_view> plain,
                                        std::initializer_list<std::string_view> secure,
                                        std::string& error);

// ParseUrlTarget for http and https, remembering per thread the last URL's origin (scheme and
// authority as written) and its parse: a URL with the same origin followed by a path and query
// takes the remembered parse and only its own path_and_query. A client sends to one or two
// origins, and the full parse (Boost.URL, six strings) was 3.5% of a proxied GET's instructions.
// The result is always the one ParseUrlTarget(url, {"http"}, {"https"}, error) gives.
std::optional<UrlTarget> ParseHttpTarget(std::string_view url, std::string& error);

}  // namespace callgate::upstream
