// Test helper: checks a JSON value against a small shape description, so conformance tests
// state the real API's contract (required fields, JSON types, enum ranges) in one place.
//
// A type spec is a '|'-separated list of: string, int, number, bool, null, object, array,
// any, or enum:a,b,c (a string among those), or regex:<ECMAScript> (a string matching it).
// e.g. "string|null", "enum:initiated,in-progress,processing,done,failed".
#pragma once

#include <gtest/gtest.h>
#include <boost/json/value.hpp>

#include <string>
#include <vector>

namespace callgate::sim::testing {

struct FieldShape {
  std::string name;
  std::string type;
  bool required = true;
};

bool MatchesType(const boost::json::value& value, const std::string& spec);

// Every required field present and every present field of the listed ones of the right type.
::testing::AssertionResult HasShape(const boost::json::value& value,
                                    const std::vector<FieldShape>& fields);

}  // namespace callgate::sim::testing
