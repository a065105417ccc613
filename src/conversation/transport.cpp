#include "conversation/transport.hpp"

namespace callgate::conversation {

std::string RedactUrl(std::string_view url) {
  const auto query = url.find_first_of("?#");
  std::string out(url.substr(0, query));
  if (query != std::string_view::npos) out += "?…";
  return out;
}

}  // namespace callgate::conversation
