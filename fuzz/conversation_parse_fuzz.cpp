// Fuzz target: the one-pass conversation parse for the gateway's answer
// (upstream/conversation_parse.hpp). The input is the upstream's body. Beyond "no crash", it
// checks the contract: the same error as boost::json::parse for the same text, and on success
// exactly the members the whole-tree reference keeps (tests/support/pruned_conversation.hpp).
#include "upstream/conversation_parse.hpp"

#include "support/pruned_conversation.hpp"

#include <boost/json/parse.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

// libFuzzer's entry point (declared here: -Wmissing-declarations).
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

// boost::json's equality, except that a NaN (which "0E777" parses to) equals a NaN.
bool Same(const boost::json::value& a, const boost::json::value& b) {
  if (a.is_double() && b.is_double() && std::isnan(a.get_double()) && std::isnan(b.get_double()))
    return true;
  if (a.kind() != b.kind()) return false;
  if (a.is_array()) {
    const auto& x = a.get_array();
    const auto& y = b.get_array();
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (!Same(x[i], y[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    const auto& x = a.get_object();
    const auto& y = b.get_object();
    if (x.size() != y.size()) return false;
    for (const auto& member : x) {
      const auto* other = y.if_contains(member.key());
      if (other == nullptr || !Same(member.value(), *other)) return false;
    }
    return true;
  }
  return a == b;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = callgate::upstream::ParseConversationForRender(text);
  boost::system::error_code error;
  const boost::json::value full = boost::json::parse(text, error);
  if (parsed.error != error) std::abort();
  if (parsed.consumed > size) std::abort();
  if (!error && !Same(parsed.root, callgate::testing::PrunedConversation(full))) std::abort();
  return 0;
}
