#include "http/router.hpp"

#include <boost/url/pct_string_view.hpp>

#include <atomic>
#include <set>
#include <stdexcept>

namespace callgate::http {

struct Responder::State {
  explicit State(Deliver d) : deliver(std::move(d)) {}
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State() {
    if (!sent.exchange(true)) {
      Response response = Response::Json(
          500, {{"error",
                 {{"code", "internal_error"},
                  {"message", "the request handler finished without producing a response"},
                  {"request_id", request_id}}}});
      deliver(std::move(response));
    }
  }
  Deliver deliver;
  std::atomic<bool> sent{false};
  std::string request_id;
};

Responder::Responder(Deliver deliver) : state_(std::make_shared<State>(std::move(deliver))) {}

void Responder::Send(Response response) const {
  if (state_->sent.exchange(true)) return;  // a second Send is ignored
  state_->deliver(std::move(response));
}

const std::string& Responder::request_id() const {
  return state_->request_id;
}
void Responder::set_request_id(std::string id) {
  state_->request_id = std::move(id);
}

namespace {

// The segments of a path after its leading '/'; views into `path`.
std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> segments;
  if (path.empty() || path.front() != '/') return segments;
  std::size_t start = 1;
  while (true) {
    const std::size_t slash = path.find('/', start);
    segments.emplace_back(
        path.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return segments;
}

bool IsParam(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

// Score of a pattern against path segments: -1 no match; otherwise higher = more literal.
int MatchScore(const Route& route, const std::vector<std::string_view>& segments) {
  if (route.segments.size() != segments.size()) return -1;
  int score = 0;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (IsParam(route.segments[i])) {
      if (segments[i].empty()) return -1;
    } else if (route.segments[i] == segments[i]) {
      score += 1 << (30 - std::min<std::size_t>(i, 30));  // earlier literals weigh more
    } else {
      return -1;
    }
  }
  return score;
}

}  // namespace

void Router::Add(std::string method, std::string pattern, Handler handler, RouteOptions options) {
  if (pattern.empty() || pattern.front() != '/') {
    throw std::invalid_argument("route pattern must start with '/': " + pattern);
  }
  auto route = std::make_unique<Route>();
  for (const std::string_view segment : SplitPath(pattern))
    route->segments.emplace_back(segment);
  for (const auto& segment : route->segments) {
    if (segment.find_first_of("{}") != std::string::npos && !IsParam(segment)) {
      throw std::invalid_argument("malformed route segment '" + segment + "' in " + pattern);
    }
  }
  for (const auto& existing : routes_) {
    if (existing->method == method && existing->pattern == pattern) {
      throw std::invalid_argument("duplicate route " + method + " " + pattern);
    }
  }
  route->method = std::move(method);
  route->pattern = std::move(pattern);
  route->handler = std::move(handler);
  route->options = options;
  routes_.push_back(std::move(route));
}

void Router::AddWebSocket(std::string pattern, WebSocketAcceptor acceptor, RouteOptions options) {
  Add("GET", std::move(pattern), nullptr, options);
  routes_.back()->websocket = std::move(acceptor);
}

RouteMatch Router::Match(std::string_view method, std::string_view path) const {
  const std::vector<std::string_view> segments = SplitPath(path);
  RouteMatch result;
  // Find the best-scoring pattern first, then the method among routes sharing that pattern, so
  // that "/a/{x}" with POST only does not shadow "/a/b" with GET (and 405 lists the right set).
  int best = -1;
  for (const auto& route : routes_)
    best = std::max(best, MatchScore(*route, segments));
  if (best < 0) return result;

  const std::string_view wanted = method == "HEAD" ? std::string_view("GET") : method;
  const Route* found = nullptr;
  for (const auto& route : routes_) {
    if (route->method != method && route->method != wanted) continue;
    if (MatchScore(*route, segments) != best) continue;
    if (route->method == method || found == nullptr) found = route.get();
  }
  if (found == nullptr) {
    // 405, with the methods the path has (only now: the common case needs no list).
    std::set<std::string> allowed;
    for (const auto& route : routes_) {
      if (MatchScore(*route, segments) != best) continue;
      allowed.insert(route->method);
      if (route->method == "GET") allowed.insert("HEAD");
    }
    result.kind = RouteMatch::Kind::kMethodNotAllowed;
    for (const auto& m : allowed) {
      if (!result.allow.empty()) result.allow += ", ";
      result.allow += m;
    }
    return result;
  }
  result.kind = RouteMatch::Kind::kFound;
  result.route = found;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (!IsParam(found->segments[i])) continue;
    const std::string& name = found->segments[i];
    auto encoded = boost::urls::make_pct_string_view(segments[i]);
    result.params[name.substr(1, name.size() - 2)] =
        encoded ? encoded->decode() : std::string(segments[i]);  // invalid escapes verbatim
  }
  return result;
}

}  // namespace callgate::http
