// Request validation in the shapes FastAPI + pydantic v2 produce, for the simulator's routes.
//
// FastAPI validates the body and query against the endpoint's models and collects every problem
// into one 422 before the handler (and so before the API-key check) runs; these helpers do the
// same: each Check* appends ValidationIssues instead of failing fast. Coercions follow
// pydantic's lax (Python) mode on the result of json.loads: "5" is an int, "true"/1 are bools,
// but 5 is not a string. Pure; thread-safe.
#pragma once

#include "http/message.hpp"
#include "sim/fastapi_errors.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace callgate::sim {

using Issues = std::vector<ValidationIssue>;

// loc arrays: Loc({"body", "to_number"}) or Extend(loc, "agent").
boost::json::array Loc(std::initializer_list<boost::json::value_ref> parts);
boost::json::array Extend(const boost::json::array& loc, boost::json::value part);

// FastAPI's reading of a required JSON body that must be a model (an object): an empty body is
// `missing` at ["body"]; a non-JSON Content-Type hands the raw text to the model and JSON that
// is not an object is refused the same way (model_attributes_type); malformed JSON is
// `json_invalid` at ["body", <pos>]; undecodable bytes (not UTF-8, absurdly deep) are a 400
// {"detail":"There was an error parsing the body"} in `error`. `object` is set only when both
// `issues` and `error` are empty.
struct DecodedBody {
  std::optional<boost::json::object> object;
  Issues issues;
  std::optional<http::Response> error;
};
DecodedBody DecodeJsonBody(const http::Request& request, std::string_view trace_id);

// Field checks on an object. `loc` is the field's full location. A missing required field is
// `missing` (input null); `nullable` fields accept JSON null (returned as nullopt).
struct FieldRule {
  bool required = false;
  bool nullable = true;
};
std::optional<std::string> CheckString(const boost::json::object& parent, std::string_view key,
                                       const boost::json::array& loc, FieldRule rule,
                                       Issues& issues);
std::optional<bool> CheckBool(const boost::json::object& parent, std::string_view key,
                              const boost::json::array& loc, FieldRule rule, Issues& issues);
std::optional<std::int64_t> CheckInt(const boost::json::object& parent, std::string_view key,
                                     const boost::json::array& loc, FieldRule rule, Issues& issues);
// A dict field (dict_type) and a nested model (model_type "...instance of <class_name>").
const boost::json::object* CheckDict(const boost::json::object& parent, std::string_view key,
                                     const boost::json::array& loc, FieldRule rule, Issues& issues);
const boost::json::object* CheckModel(const boost::json::object& parent, std::string_view key,
                                      std::string_view class_name, const boost::json::array& loc,
                                      FieldRule rule, Issues& issues);

// Lax conversions of one value; nullopt plus an issue at `loc` when impossible.
std::optional<std::int64_t> CoerceInt(const boost::json::value& value,
                                      const boost::json::array& loc, Issues& issues);
std::optional<bool> CoerceBool(const boost::json::value& value, const boost::json::array& loc,
                               Issues& issues);

// Query parameters (input is always the raw string).
std::optional<std::string> RequiredQuery(const http::Request& request, std::string_view name,
                                         Issues& issues);
// Integer with optional bounds (greater_than_equal / less_than_equal with ctx {"ge"}/{"le"}).
std::optional<std::int64_t> QueryInt(const http::Request& request, std::string_view name,
                                     std::optional<std::int64_t> ge, std::optional<std::int64_t> le,
                                     Issues& issues);
// One of `allowed` (type "enum", msg "Input should be 'a', 'b' or 'c'").
std::optional<std::string> QueryEnum(const http::Request& request, std::string_view name,
                                     const std::vector<std::string>& allowed, Issues& issues);

}  // namespace callgate::sim
