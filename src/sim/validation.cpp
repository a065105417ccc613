#include "sim/validation.hpp"

#include "sim/python_json.hpp"

#include <boost/json/parse.hpp>
#include <boost/url/parse_query.hpp>

#include "core/strings.hpp"
#include "http/dispatcher.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

namespace callgate::sim {
namespace {

void AddIssue(Issues& issues, std::string type, boost::json::array loc, std::string msg,
              boost::json::value input, std::optional<boost::json::object> ctx = std::nullopt) {
  issues.push_back(
      {std::move(type), std::move(loc), std::move(msg), std::move(input), std::move(ctx)});
}

// The field's value, or nullptr when absent. Records `missing` for required fields and
// reports whether a present null should end the check (nullable) or be judged by the caller.
const boost::json::value* Lookup(const boost::json::object& parent, std::string_view key,
                                 const boost::json::array& loc, FieldRule rule, Issues& issues) {
  const auto it = parent.find(key);
  if (it == parent.end()) {
    if (rule.required) AddIssue(issues, "missing", loc, "Field required", nullptr);
    return nullptr;
  }
  if (it->value().is_null() && rule.nullable) return nullptr;
  return &it->value();
}

std::optional<std::int64_t> ParseIntString(std::string_view text) {
  text = core::TrimWhitespace(text);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string EnumExpected(const std::vector<std::string>& allowed) {
  std::string out;
  for (std::size_t i = 0; i < allowed.size(); ++i) {
    if (i > 0) out += i + 1 == allowed.size() ? " or " : ", ";
    out += "'" + allowed[i] + "'";
  }
  return out;
}

}  // namespace

boost::json::array Loc(std::initializer_list<boost::json::value_ref> parts) {
  return boost::json::array(parts);
}

boost::json::array Extend(const boost::json::array& loc, boost::json::value part) {
  boost::json::array out = loc;
  out.push_back(std::move(part));
  return out;
}

DecodedBody DecodeJsonBody(const http::Request& request, std::string_view trace_id) {
  DecodedBody decoded;
  if (request.body.empty()) {
    AddIssue(decoded.issues, "missing", Loc({"body"}), "Field required", nullptr);
    return decoded;
  }
  const auto content_type = request.headers.Get("Content-Type");
  if (content_type && !core::TrimWhitespace(*content_type).empty() &&
      !http::IsJsonContentType(*content_type)) {
    AddIssue(decoded.issues, "model_attributes_type", Loc({"body"}),
             "Input should be a valid dictionary or object to extract fields from",
             boost::json::string(request.body));
    return decoded;
  }
  const PythonJsonResult check = CheckPythonJson(request.body);
  if (check.verdict == PythonJsonVerdict::kDecodeError) {
    boost::json::array loc{"body", check.error.pos};
    AddIssue(decoded.issues, "json_invalid", std::move(loc), "JSON decode error",
             boost::json::object{}, boost::json::object{{"error", check.error.msg}});
    return decoded;
  }
  std::string_view text = request.body;
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  boost::system::error_code ec;
  boost::json::parse_options options;
  options.max_depth = kMaxJsonDepth + 2;
  boost::json::value value;
  if (check.verdict == PythonJsonVerdict::kValid) value = boost::json::parse(text, ec, {}, options);
  if (check.verdict == PythonJsonVerdict::kUnreadable || ec) {
    decoded.error = FrameworkError(400, "There was an error parsing the body", trace_id);
    return decoded;
  }
  if (!value.is_object()) {
    AddIssue(decoded.issues, "model_attributes_type", Loc({"body"}),
             "Input should be a valid dictionary or object to extract fields from",
             std::move(value));
    return decoded;
  }
  decoded.object = std::move(value.as_object());
  return decoded;
}

std::optional<std::string> CheckString(const boost::json::object& parent, std::string_view key,
                                       const boost::json::array& loc, FieldRule rule,
                                       Issues& issues) {
  const boost::json::value* value = Lookup(parent, key, loc, rule, issues);
  if (value == nullptr) return std::nullopt;
  if (value->is_string()) return std::string(value->as_string());
  AddIssue(issues, "string_type", loc, "Input should be a valid string", *value);
  return std::nullopt;
}

std::optional<bool> CoerceBool(const boost::json::value& value, const boost::json::array& loc,
                               Issues& issues) {
  if (value.is_bool()) return value.as_bool();
  if (value.is_int64()) {
    if (value.as_int64() == 0 || value.as_int64() == 1) return value.as_int64() == 1;
  } else if (value.is_uint64()) {
    // too large to be 0 or 1: bool_parsing below
  } else if (value.is_double()) {
    if (value.as_double() == 0.0 || value.as_double() == 1.0) return value.as_double() == 1.0;
  } else if (value.is_string()) {
    const std::string text = core::AsciiLower(core::TrimWhitespace(value.as_string()));
    if (text == "true" || text == "1" || text == "yes" || text == "on" || text == "t" ||
        text == "y") {
      return true;
    }
    if (text == "false" || text == "0" || text == "no" || text == "off" || text == "f" ||
        text == "n") {
      return false;
    }
  } else {
    AddIssue(issues, "bool_type", loc, "Input should be a valid boolean", value);
    return std::nullopt;
  }
  AddIssue(issues, "bool_parsing", loc,
           "Input should be a valid boolean, unable to interpret input", value);
  return std::nullopt;
}

std::optional<std::int64_t> CoerceInt(const boost::json::value& value,
                                      const boost::json::array& loc, Issues& issues) {
  if (value.is_int64()) return value.as_int64();
  if (value.is_bool()) return value.as_bool() ? 1 : 0;
  if (value.is_uint64()) {
    AddIssue(issues, "int_parsing_size", loc,
             "Unable to parse input string as an integer, exceeded maximum size", value);
    return std::nullopt;
  }
  if (value.is_double()) {
    const double d = value.as_double();
    if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9.2e18) {
      return static_cast<std::int64_t>(d);
    }
    AddIssue(issues, "int_from_float", loc,
             "Input should be a valid integer, got a number with a fractional part", value);
    return std::nullopt;
  }
  if (value.is_string()) {
    if (auto parsed = ParseIntString(value.as_string())) return parsed;
    AddIssue(issues, "int_parsing", loc,
             "Input should be a valid integer, unable to parse string as an integer", value);
    return std::nullopt;
  }
  AddIssue(issues, "int_type", loc, "Input should be a valid integer", value);
  return std::nullopt;
}

std::optional<bool> CheckBool(const boost::json::object& parent, std::string_view key,
                              const boost::json::array& loc, FieldRule rule, Issues& issues) {
  const boost::json::value* value = Lookup(parent, key, loc, rule, issues);
  if (value == nullptr) return std::nullopt;
  return CoerceBool(*value, loc, issues);
}

std::optional<std::int64_t> CheckInt(const boost::json::object& parent, std::string_view key,
                                     const boost::json::array& loc, FieldRule rule,
                                     Issues& issues) {
  const boost::json::value* value = Lookup(parent, key, loc, rule, issues);
  if (value == nullptr) return std::nullopt;
  return CoerceInt(*value, loc, issues);
}

const boost::json::object* CheckDict(const boost::json::object& parent, std::string_view key,
                                     const boost::json::array& loc, FieldRule rule,
                                     Issues& issues) {
  const boost::json::value* value = Lookup(parent, key, loc, rule, issues);
  if (value == nullptr) return nullptr;
  if (value->is_object()) return &value->as_object();
  AddIssue(issues, "dict_type", loc, "Input should be a valid dictionary", *value);
  return nullptr;
}

const boost::json::object* CheckModel(const boost::json::object& parent, std::string_view key,
                                      std::string_view class_name, const boost::json::array& loc,
                                      FieldRule rule, Issues& issues) {
  const boost::json::value* value = Lookup(parent, key, loc, rule, issues);
  if (value == nullptr) return nullptr;
  if (value->is_object()) return &value->as_object();
  AddIssue(issues, "model_type", loc,
           "Input should be a valid dictionary or instance of " + std::string(class_name), *value,
           boost::json::object{{"class_name", class_name}});
  return nullptr;
}

std::optional<std::string> RequiredQuery(const http::Request& request, std::string_view name,
                                         Issues& issues) {
  auto value = request.QueryParam(name);
  if (!value) AddIssue(issues, "missing", Loc({"query", name}), "Field required", nullptr);
  return value;
}

std::optional<std::int64_t> QueryInt(const http::Request& request, std::string_view name,
                                     std::optional<std::int64_t> ge, std::optional<std::int64_t> le,
                                     Issues& issues) {
  const auto text = request.QueryParam(name);
  if (!text) return std::nullopt;
  const auto loc = Loc({"query", name});
  const auto value = ParseIntString(*text);
  if (!value) {
    AddIssue(issues, "int_parsing", loc,
             "Input should be a valid integer, unable to parse string as an integer",
             boost::json::string(*text));
    return std::nullopt;
  }
  if (ge && *value < *ge) {
    AddIssue(issues, "greater_than_equal", loc,
             "Input should be greater than or equal to " + std::to_string(*ge),
             boost::json::string(*text), boost::json::object{{"ge", *ge}});
    return std::nullopt;
  }
  if (le && *value > *le) {
    AddIssue(issues, "less_than_equal", loc,
             "Input should be less than or equal to " + std::to_string(*le),
             boost::json::string(*text), boost::json::object{{"le", *le}});
    return std::nullopt;
  }
  return value;
}

std::optional<std::string> QueryEnum(const http::Request& request, std::string_view name,
                                     const std::vector<std::string>& allowed, Issues& issues) {
  auto text = request.QueryParam(name);
  if (!text) return std::nullopt;
  if (std::find(allowed.begin(), allowed.end(), *text) != allowed.end()) return text;
  const std::string expected = EnumExpected(allowed);
  AddIssue(issues, "enum", Loc({"query", name}), "Input should be " + expected,
           boost::json::string(*text), boost::json::object{{"expected", expected}});
  return std::nullopt;
}

}  // namespace callgate::sim
