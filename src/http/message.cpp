#include "http/message.hpp"

#include <boost/json/serialize.hpp>
#include <boost/url/parse_query.hpp>

#include <algorithm>
#include <cctype>

namespace callgate::http {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::optional<std::string_view> Headers::Get(std::string_view name) const {
  for (const auto& [field, value] : fields_) {
    if (EqualsIgnoreCase(field, name)) return std::string_view(value);
  }
  return std::nullopt;
}

void Headers::Set(std::string name, std::string value) {
  std::erase_if(fields_, [&](const auto& f) { return EqualsIgnoreCase(f.first, name); });
  fields_.emplace_back(std::move(name), std::move(value));
}

void Headers::Add(std::string name, std::string value) {
  fields_.emplace_back(std::move(name), std::move(value));
}

std::string_view Request::PathParam(std::string_view name) const {
  const auto it = path_params.find(name);
  return it == path_params.end() ? std::string_view{} : std::string_view(it->second);
}

std::optional<std::string> Request::QueryParam(std::string_view name) const {
  auto parsed = boost::urls::parse_query(query);
  if (!parsed) return std::nullopt;
  boost::urls::encoding_opts opts;
  opts.space_as_plus = true;
  for (const auto& param : *parsed) {
    if (param.key.decode(opts) == name) return param.value.decode(opts);
  }
  return std::nullopt;
}

Response Response::Json(int status, const boost::json::value& value) {
  Response response;
  response.status = status;
  response.headers.Set("Content-Type", "application/json");
  response.body = boost::json::serialize(value);
  return response;
}

Response Response::Text(int status, std::string text, std::string content_type) {
  Response response;
  response.status = status;
  response.headers.Set("Content-Type", std::move(content_type));
  response.body = std::move(text);
  return response;
}

}  // namespace callgate::http
