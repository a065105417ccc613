// CheckPythonJson against positions and messages taken from CPython 3.11's json.loads.
#include "sim/python_json.hpp"

#include <gtest/gtest.h>

#include <string>

namespace callgate::sim {
namespace {

struct Case {
  std::string text;
  std::size_t pos;
  std::string msg;
};

TEST(PythonJsonTest, DecodeErrorsMatchCPython) {
  const Case cases[] = {
      {"", 0, "Expecting value"},
      {" ", 1, "Expecting value"},
      {"{", 1, "Expecting property name enclosed in double quotes"},
      {R"({"a": })", 6, "Expecting value"},
      {R"({"agent_id": })", 13, "Expecting value"},
      {R"({"a" 1})", 5, "Expecting ':' delimiter"},
      {R"({"a": 1)", 7, "Expecting ',' delimiter"},
      {R"({"a": 1,})", 8, "Expecting property name enclosed in double quotes"},
      {"[1,]", 3, "Expecting value"},
      {"[1 2]", 3, "Expecting ',' delimiter"},
      {R"({"a": "x)", 6, "Unterminated string starting at"},
      {R"("\q")", 1, "Invalid \\escape"},
      {R"("\u12")", 2, "Invalid \\uXXXX escape"},
      {R"("\u12zz")", 2, "Invalid \\uXXXX escape"},
      {"\"a\nb\"", 2, "Invalid control character at"},
      {"1 2", 2, "Extra data"},
      {"nul", 0, "Expecting value"},
      {"{1:2}", 1, "Expecting property name enclosed in double quotes"},
      {"-", 0, "Expecting value"},
      {"01", 1, "Extra data"},
      {R"({"a":1}x)", 7, "Extra data"},
      {"{\"\xC3\xA9\": tru}", 6, "Expecting value"},  // position in characters, not bytes
      {"[", 1, "Expecting value"},
      {R"({"a":1,)", 7, "Expecting property name enclosed in double quotes"},
      {R"("abc)", 0, "Unterminated string starting at"},
      {"1.", 1, "Extra data"},
      {"1e", 1, "Extra data"},
      {R"({"a":[1,2})", 9, "Expecting ',' delimiter"},
      {"NaN", 0, "Expecting value"},  // deliberate difference, see python_json.hpp
  };
  for (const auto& c : cases) {
    const PythonJsonResult result = CheckPythonJson(c.text);
    ASSERT_EQ(result.verdict, PythonJsonVerdict::kDecodeError) << c.text;
    EXPECT_EQ(result.error.pos, c.pos) << c.text;
    EXPECT_EQ(result.error.msg, c.msg) << c.text;
  }
}

TEST(PythonJsonTest, ValidDocuments) {
  for (const std::string text :
       {R"({"a": [1, -2.5e3, true, false, null, "x\"\u00e9\n"]})", " {} ", "[]", "0", "\"\"",
        "\xEF\xBB\xBF{\"bom\": 1}", R"({"a":1e5,"b":0.5E-2})"}) {
    EXPECT_EQ(CheckPythonJson(text).verdict, PythonJsonVerdict::kValid) << text;
  }
}

TEST(PythonJsonTest, UndecodableBodiesAreUnreadable) {
  EXPECT_EQ(CheckPythonJson("{\"a\": \"\xFF\"}").verdict, PythonJsonVerdict::kUnreadable);
  EXPECT_EQ(CheckPythonJson("\"\xED\xA0\x80\"").verdict, PythonJsonVerdict::kUnreadable);
  EXPECT_EQ(CheckPythonJson("\"\xC3\"").verdict, PythonJsonVerdict::kUnreadable);
  EXPECT_EQ(CheckPythonJson(std::string(kMaxJsonDepth + 1, '[')).verdict,
            PythonJsonVerdict::kUnreadable);
  EXPECT_EQ(
      CheckPythonJson(std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']')).verdict,
      PythonJsonVerdict::kValid);
}

}  // namespace
}  // namespace callgate::sim
