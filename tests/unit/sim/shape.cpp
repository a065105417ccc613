#include "shape.hpp"

#include <boost/json/serialize.hpp>

#include <regex>
#include <sstream>

namespace callgate::sim::testing {
namespace {

std::vector<std::string> Split(const std::string& text, char separator) {
  std::vector<std::string> out;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, separator))
    out.push_back(item);
  return out;
}

bool MatchesOne(const boost::json::value& value, const std::string& spec) {
  if (spec == "any") return true;
  if (spec == "string") return value.is_string();
  if (spec == "int") return value.is_int64() || value.is_uint64();
  if (spec == "number") return value.is_number();
  if (spec == "bool") return value.is_bool();
  if (spec == "null") return value.is_null();
  if (spec == "object") return value.is_object();
  if (spec == "array") return value.is_array();
  if (spec.starts_with("enum:")) {
    if (!value.is_string()) return false;
    for (const auto& option : Split(spec.substr(5), ',')) {
      if (value.as_string() == option) return true;
    }
    return false;
  }
  if (spec.starts_with("regex:")) {
    return value.is_string() &&
           std::regex_match(std::string(value.as_string()), std::regex(spec.substr(6)));
  }
  ADD_FAILURE() << "bad type spec '" << spec << "'";
  return false;
}

}  // namespace

bool MatchesType(const boost::json::value& value, const std::string& spec) {
  // regex specs may contain '|', so they are never split.
  if (spec.starts_with("regex:")) return MatchesOne(value, spec);
  for (const auto& option : Split(spec, '|')) {
    if (MatchesOne(value, option)) return true;
  }
  return false;
}

::testing::AssertionResult HasShape(const boost::json::value& value,
                                    const std::vector<FieldShape>& fields) {
  if (!value.is_object()) {
    return ::testing::AssertionFailure() << "not an object: " << boost::json::serialize(value);
  }
  const auto& object = value.as_object();
  std::string problems;
  for (const auto& field : fields) {
    const auto* found = object.if_contains(field.name);
    if (found == nullptr) {
      if (field.required) problems += "\n  missing required field '" + field.name + "'";
      continue;
    }
    if (!MatchesType(*found, field.type)) {
      problems += "\n  field '" + field.name + "' is " + boost::json::serialize(*found) +
                  ", expected " + field.type;
    }
  }
  if (problems.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "in " << boost::json::serialize(value) << problems;
}

}  // namespace callgate::sim::testing
