#include "upstream/url_target.hpp"

#include <boost/url/parse.hpp>

#include <algorithm>

namespace callgate::upstream {

namespace {

// ParseUrlTarget, which also tells how long the URL's origin ("scheme://authority") is.
std::optional<UrlTarget> Parse(std::string_view url, std::initializer_list<std::string_view> plain,
                               std::initializer_list<std::string_view> secure, std::string& error,
                               std::size_t& origin_size) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) {
    error = "not an absolute URL";
    return std::nullopt;
  }
  UrlTarget target;
  target.scheme = parsed->scheme();
  const auto is = [&](std::initializer_list<std::string_view> schemes) {
    return std::find(schemes.begin(), schemes.end(), target.scheme) != schemes.end();
  };
  target.tls = is(secure);
  if (!target.tls && !is(plain)) {
    error =
        "the scheme must be " + std::string(*plain.begin()) + " or " + std::string(*secure.begin());
    return std::nullopt;
  }
  target.host = parsed->host_address();
  if (target.host.empty()) {
    error = "the URL has no host";
    return std::nullopt;
  }
  const bool default_port = !parsed->has_port();
  target.port = default_port ? (target.tls ? "443" : "80") : std::string(parsed->port());
  const std::string shown =
      parsed->host_type() == boost::urls::host_type::ipv6 ? "[" + target.host + "]" : target.host;
  target.host_header = default_port ? shown : shown + ":" + target.port;
  target.authority = shown + ":" + target.port;
  target.path_and_query =
      parsed->encoded_path().empty() ? "/" : std::string(parsed->encoded_path());
  if (parsed->has_query()) target.path_and_query += "?" + std::string(parsed->encoded_query());
  origin_size = parsed->encoded_origin().size();
  return target;
}

}  // namespace

std::optional<UrlTarget> ParseUrlTarget(std::string_view url,
                                        std::initializer_list<std::string_view> plain,
                                        std::initializer_list<std::string_view> secure,
                                        std::string& error) {
  std::size_t origin_size = 0;
  return Parse(url, plain, secure, error, origin_size);
}

std::optional<UrlTarget> ParseHttpTarget(std::string_view url, std::string& error) {
  struct Remembered {
    std::string origin;  // "scheme://authority", empty until a URL with a path was parsed
    UrlTarget target;
  };
  thread_local Remembered last;
  const std::string_view origin = last.origin;
  if (!origin.empty() && url.size() > origin.size() && url.starts_with(origin) &&
      url[origin.size()] == '/') {
    const std::string_view rest = url.substr(origin.size());
    // What the full parse would keep: a valid path and query, and no fragment.
    if (boost::urls::parse_origin_form(rest)) {
      UrlTarget target = last.target;
      target.path_and_query.assign(rest);
      return target;
    }
  }
  std::size_t path_at = 0;
  auto target = Parse(url, {"http"}, {"https"}, error, path_at);
  if (target && path_at < url.size() && url[path_at] == '/') {
    last.origin.assign(url.substr(0, path_at));
    last.target = *target;
  }
  return target;
}

}  // namespace callgate::upstream
