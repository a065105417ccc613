// Fuzz target: request bodies parsed as JSON (http::ParseJsonBody). Exactly one of value and
// error comes back, and an error's position lies within the body.
#include "http/dispatcher.hpp"

#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

// libFuzzer's entry point (declared here: -Wmissing-declarations).
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const auto result = callgate::http::ParseJsonBody(body, "req_fuzz");
  if (result.value.has_value() == result.error.has_value()) std::abort();
  if (result.error) {
    if (result.error->status != 400) std::abort();
    const auto details = boost::json::parse(result.error->body).at("error").at("details");
    if (details.at("offset").to_number<std::size_t>() > size) std::abort();
    if (details.at("line").to_number<std::size_t>() < 1) std::abort();
  }
  return 0;
}
