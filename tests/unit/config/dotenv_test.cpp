// ParseDotenv() and ReadDotenvFile().
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "config/config.hpp"

namespace callgate::config {
namespace {

using StringMap = std::map<std::string, std::string, std::less<>>;

StringMap ParseOk(std::string_view text) {
  auto result = ParseDotenv(text, "test.env");
  EXPECT_TRUE(result.has_value()) << (result.has_error() ? result.error().ToString() : "");
  return result.has_value() ? *result : StringMap{};
}

ConfigError ParseError(std::string_view text) {
  auto result = ParseDotenv(text, "test.env");
  EXPECT_TRUE(result.has_error()) << "expected a syntax error";
  return result.has_error() ? result.error() : ConfigError{};
}

bool Contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

TEST(Dotenv, EmptyTextGivesAnEmptyMap) {
  EXPECT_TRUE(ParseOk("").empty());
  EXPECT_TRUE(ParseOk("\n\n   \n\t\n").empty());
}

TEST(Dotenv, PlainAssignments) {
  EXPECT_EQ(ParseOk("A=1\nB=two\n"), (StringMap{{"A", "1"}, {"B", "two"}}));
  EXPECT_EQ(ParseOk("A=1"), (StringMap{{"A", "1"}}));  // no final newline
  EXPECT_EQ(ParseOk("EMPTY=\n"), (StringMap{{"EMPTY", ""}}));
  EXPECT_EQ(ParseOk("_a.b_9=x\n"), (StringMap{{"_a.b_9", "x"}}));
}

TEST(Dotenv, CommentsAndBlankLinesAreSkipped) {
  const StringMap parsed = ParseOk(
      "# a comment\n"
      "\n"
      "   # an indented comment with KEY=VALUE inside\n"
      "A=1\n"
      "\t\n"
      "#B=2\n");
  EXPECT_EQ(parsed, (StringMap{{"A", "1"}}));
}

TEST(Dotenv, ExportPrefixIsAccepted) {
  EXPECT_EQ(ParseOk("export A=1\nexport\tB=2\n  export   C = 3\n"),
            (StringMap{{"A", "1"}, {"B", "2"}, {"C", "3"}}));
  // Not a prefix when no whitespace follows: these are ordinary names.
  EXPECT_EQ(ParseOk("exportD=4\nexport=5\n"), (StringMap{{"exportD", "4"}, {"export", "5"}}));
}

TEST(Dotenv, WhitespaceAroundKeyEqualsAndUnquotedValueIsTrimmed) {
  EXPECT_EQ(ParseOk("  A  =  spaced value  \n"), (StringMap{{"A", "spaced value"}}));
  EXPECT_EQ(ParseOk("B\t=\tx\t\n"), (StringMap{{"B", "x"}}));
}

TEST(Dotenv, EqualsSignsInsideValuesAreKept) {
  EXPECT_EQ(ParseOk("A=a=b\n"), (StringMap{{"A", "a=b"}}));
  EXPECT_EQ(ParseOk("URL=https://x/?q=1&r==2\n"), (StringMap{{"URL", "https://x/?q=1&r==2"}}));
}

TEST(Dotenv, InlineCommentsNeedWhitespaceBeforeTheHash) {
  EXPECT_EQ(ParseOk("A=value # comment\n"), (StringMap{{"A", "value"}}));
  EXPECT_EQ(ParseOk("A=value\t# comment\n"), (StringMap{{"A", "value"}}));
  EXPECT_EQ(ParseOk("A=val#ue\n"), (StringMap{{"A", "val#ue"}}));
  EXPECT_EQ(ParseOk("A=#notacomment\n"), (StringMap{{"A", "#notacomment"}}));
  EXPECT_EQ(ParseOk("A= # only a comment\n"), (StringMap{{"A", ""}}));
}

TEST(Dotenv, SingleQuotesAreLiteral) {
  EXPECT_EQ(ParseOk("A='  a # b \\n $c \"d\" '\n"), (StringMap{{"A", "  a # b \\n $c \"d\" "}}));
  EXPECT_EQ(ParseOk("A='x' # trailing comment\n"), (StringMap{{"A", "x"}}));
  EXPECT_EQ(ParseOk("A=''\n"), (StringMap{{"A", ""}}));
  EXPECT_EQ(ParseOk("A = 'x'   \n"), (StringMap{{"A", "x"}}));
}

TEST(Dotenv, DoubleQuotesProcessEscapes) {
  EXPECT_EQ(ParseOk(R"(A="l1\nl2\tt\"q\\b\$d\re")"), (StringMap{{"A", "l1\nl2\tt\"q\\b$d\re"}}));
  EXPECT_EQ(ParseOk(R"(A="C:\dir\x")"), (StringMap{{"A", R"(C:\dir\x)"}}));  // unknown kept
  EXPECT_EQ(ParseOk("A=\" keep # this \" # but not this\n"), (StringMap{{"A", " keep # this "}}));
  EXPECT_EQ(ParseOk("A=\"it's\"\n"), (StringMap{{"A", "it's"}}));
  EXPECT_EQ(ParseOk("A=\"\"\n"), (StringMap{{"A", ""}}));
}

TEST(Dotenv, DoubleQuotedValuesMaySpanLines) {
  const StringMap parsed = ParseOk(
      "A=\"line one\n"
      "line two\n"
      "\"\n"
      "B=after\n");
  EXPECT_EQ(parsed, (StringMap{{"A", "line one\nline two\n"}, {"B", "after"}}));
}

TEST(Dotenv, LineNumbersStayRightAfterAMultiLineValue) {
  const ConfigError error = ParseError("A=\"x\ny\"\nB=1\nbroken\n");
  EXPECT_EQ(error.variable, "test.env:4");
}

TEST(Dotenv, CrlfLineEndingsAreTolerated) {
  const StringMap parsed = ParseOk("# c\r\nA=1\r\nB='two'\r\nC=\"x\r\ny\"\r\nD=4 # c\r\n\r\n");
  EXPECT_EQ(parsed, (StringMap{{"A", "1"}, {"B", "two"}, {"C", "x\ny"}, {"D", "4"}}));
  EXPECT_EQ(ParseError("A=1\r\nbroken\r\n").variable, "test.env:2");
}

TEST(Dotenv, ByteOrderMarkIsSkipped) {
  EXPECT_EQ(ParseOk("\xEF\xBB\xBF"
                    "A=1\n"),
            (StringMap{{"A", "1"}}));
  EXPECT_EQ(ParseOk("\xEF\xBB\xBF# comment\nB=2\n"), (StringMap{{"B", "2"}}));
}

TEST(Dotenv, LaterDuplicatesOverrideEarlierOnes) {
  EXPECT_EQ(ParseOk("A=1\nB=x\nA=2\n"), (StringMap{{"A", "2"}, {"B", "x"}}));
  EXPECT_EQ(ParseOk("A=1\nA=\n"), (StringMap{{"A", ""}}));
}

TEST(DotenvErrors, LineWithoutEqualsSign) {
  const ConfigError error = ParseError("A=1\n\nJUST_A_NAME\n");
  EXPECT_EQ(error.variable, "test.env:3");
  EXPECT_EQ(error.message, "expected KEY=VALUE");
  EXPECT_EQ(error.ToString(), "test.env:3: expected KEY=VALUE");
  EXPECT_EQ(ParseError("export\n").variable, "test.env:1");
}

TEST(DotenvErrors, InvalidKeys) {
  for (const std::string line : {"1ABC=x", "A-B=x", "=x", "A B=x", "export =x", "$A=x", "ÄB=x"}) {
    SCOPED_TRACE(line);
    const ConfigError error = ParseError("OK=1\n" + line + "\n");
    EXPECT_EQ(error.variable, "test.env:2");
    EXPECT_TRUE(Contains(error.message, "invalid variable name")) << error.message;
  }
}

TEST(DotenvErrors, UnterminatedQuoteNamesTheLineWhereItOpened) {
  const ConfigError double_quote = ParseError("A=1\nB=\"abc\nC=3\nD=4\n");
  EXPECT_EQ(double_quote.variable, "test.env:2");
  EXPECT_TRUE(Contains(double_quote.message, "unterminated double-quoted")) << double_quote.message;
  const ConfigError single_quote = ParseError("A=1\n\nB='abc\n");
  EXPECT_EQ(single_quote.variable, "test.env:3");
  EXPECT_TRUE(Contains(single_quote.message, "unterminated single-quoted")) << single_quote.message;
  // An escaped quote does not close the value.
  EXPECT_EQ(ParseError("A=\"abc\\\"\n").variable, "test.env:1");
}

TEST(DotenvErrors, JunkAfterClosingQuote) {
  const ConfigError single_quote = ParseError("A='x' y\n");
  EXPECT_EQ(single_quote.variable, "test.env:1");
  EXPECT_TRUE(Contains(single_quote.message, "after the closing quote")) << single_quote.message;
  const ConfigError double_quote = ParseError("A=1\nB=\"x\ny\"z\n");
  EXPECT_EQ(double_quote.variable, "test.env:3");  // where the quote closed
  EXPECT_TRUE(Contains(double_quote.message, "after the closing quote")) << double_quote.message;
  EXPECT_EQ(ParseError("A=\"x\"'y'\n").variable, "test.env:1");
}

TEST(DotenvErrors, MessagesNeverContainValues) {
  for (const std::string text :
       {"SECRET=\"sk_SECRET_value_1f2e\n", "SECRET='sk_SECRET_value_1f2e' junk\n",
        "sk_SECRET_value_1f2e\n", "SECRET=\"sk_SECRET_value_1f2e\" sk_SECRET_value_1f2e\n",
        "sk_SECRET_value_1f2e x=1\n"}) {
    SCOPED_TRACE(text);
    const ConfigError error = ParseError(text);
    EXPECT_FALSE(Contains(error.ToString(), "sk_SECRET_value_1f2e")) << error.ToString();
  }
}

TEST(DotenvErrors, PathIsPartOfTheVariable) {
  const auto result = ParseDotenv("oops\n", "/etc/callgate/.env");
  ASSERT_TRUE(result.has_error());
  EXPECT_EQ(result.error().variable, "/etc/callgate/.env:1");
}

// ---------------------------------------------------------------------------------------------
// ReadDotenvFile

class DotenvFile : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("callgate_config_test_" + std::to_string(::getpid()) + "_" + info->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::permissions(dir_ / "unreadable.env", std::filesystem::perms::owner_all, ec);
    std::filesystem::remove_all(dir_, ec);
  }
  std::string Write(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }

  std::filesystem::path dir_;
};

TEST_F(DotenvFile, ReadsAndParsesAFile) {
  const std::string path = Write("a.env", "PORT=9000\nexport HOST=\"::1\"\n");
  for (const bool required : {false, true}) {
    const auto result = ReadDotenvFile(path, required);
    ASSERT_TRUE(result.has_value()) << result.error().ToString();
    EXPECT_EQ(*result, (StringMap{{"PORT", "9000"}, {"HOST", "::1"}}));
  }
}

TEST_F(DotenvFile, MissingOptionalFileIsEmpty) {
  const auto result = ReadDotenvFile((dir_ / "absent.env").string(), false);
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(result->empty());
}

TEST_F(DotenvFile, MissingRequiredFileIsAnError) {
  const std::string path = (dir_ / "absent.env").string();
  const auto result = ReadDotenvFile(path, true);
  ASSERT_TRUE(result.has_error());
  EXPECT_EQ(result.error().variable, "--env-file");
  EXPECT_EQ(result.error().message, "file '" + path + "' does not exist");
}

TEST_F(DotenvFile, DirectoryIsAnError) {
  for (const bool required : {false, true}) {
    const auto result = ReadDotenvFile(dir_.string(), required);
    ASSERT_TRUE(result.has_error());
    EXPECT_TRUE(Contains(result.error().message, "directory")) << result.error().message;
  }
}

TEST_F(DotenvFile, UnreadableFileIsAnError) {
  if (::geteuid() == 0) {
    GTEST_SKIP() << "root can read any file";
  }
  const std::string path = Write("unreadable.env", "A=1\n");
  std::filesystem::permissions(path, std::filesystem::perms::none);
  const auto result = ReadDotenvFile(path, false);
  ASSERT_TRUE(result.has_error());
  EXPECT_TRUE(Contains(result.error().message, "cannot read")) << result.error().message;
}

TEST_F(DotenvFile, SyntaxErrorNamesFileAndLine) {
  const std::string path = Write("bad.env", "A=1\nB='open\n");
  const auto result = ReadDotenvFile(path, false);
  ASSERT_TRUE(result.has_error());
  EXPECT_EQ(result.error().variable, path + ":2");
}

}  // namespace
}  // namespace callgate::config
