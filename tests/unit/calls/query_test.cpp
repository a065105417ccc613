// GET /api/calls's query parsing (pure): time formats, numbers, limits, precise errors.
#include "calls/routes.hpp"

#include <gtest/gtest.h>

namespace callgate::calls {
namespace {

TEST(TimeParameter, UnixSeconds) {
  EXPECT_EQ(ParseTimeParameter("0"), 0);
  EXPECT_EQ(ParseTimeParameter("1700000000"), 1'700'000'000'000);
  EXPECT_FALSE(ParseTimeParameter("-5"));
  EXPECT_FALSE(ParseTimeParameter("123456789012"));  // 12 digits
  EXPECT_FALSE(ParseTimeParameter("17e8"));
  EXPECT_FALSE(ParseTimeParameter(""));
}

TEST(TimeParameter, Iso8601DatesAndTimes) {
  EXPECT_EQ(ParseTimeParameter("2023-11-14"), 1'699'920'000'000);
  EXPECT_EQ(ParseTimeParameter("2023-11-14T22:13:20Z"), 1'700'000'000'000);
  EXPECT_EQ(ParseTimeParameter("2023-11-14T22:13:20.5Z"), 1'700'000'000'500);
  EXPECT_EQ(ParseTimeParameter("2023-11-14T22:13:20.123456789Z"), 1'700'000'000'123);
  EXPECT_EQ(ParseTimeParameter("2023-11-14T23:13:20+01:00"), 1'700'000'000'000);
  EXPECT_EQ(ParseTimeParameter("2023-11-14T17:13:20-05:00"), 1'700'000'000'000);
  EXPECT_EQ(ParseTimeParameter("2024-02-29"), 1'709'164'800'000);
  EXPECT_EQ(ParseTimeParameter("1969-12-31T23:59:59Z"), -1000);
}

TEST(TimeParameter, RejectsMalformedOrImpossibleTimes) {
  for (const char* bad :
       {"2023-11-14T22:13:20", "2023-11-14 22:13:20Z", "2023-13-01", "2023-02-29", "2023-11-31",
        "2023-11-14T24:00:00Z", "2023-11-14T22:60:00Z", "2023-11-14T22:13:60Z",
        "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20+0100", "2023-11-14T22:13Z", "23-11-14",
        "2023/11/14", "yesterday", "2023-11-14Z", "2023-11-14T22:13:20.1234567890Z"}) {
    EXPECT_FALSE(ParseTimeParameter(bad)) << bad;
  }
}

TEST(E164, AcceptsOnlyPlusAndUpToFifteenDigits) {
  EXPECT_TRUE(IsE164("+15551234567"));
  EXPECT_TRUE(IsE164("+44"));
  EXPECT_TRUE(IsE164("+123456789012345"));
  EXPECT_FALSE(IsE164("+1234567890123456"));
  EXPECT_FALSE(IsE164("15551234567"));
  EXPECT_FALSE(IsE164("+05551234567"));
  EXPECT_FALSE(IsE164("+1555-123"));
  EXPECT_FALSE(IsE164("+"));
}

TEST(ListQueryParsing, EmptyQueryMeansDefaults) {
  const ParsedListQuery parsed = ParseListQuery("");
  ASSERT_FALSE(parsed.error);
  EXPECT_EQ(parsed.query.limit, ListQuery::kDefaultLimit);
  EXPECT_FALSE(parsed.query.status);
  EXPECT_FALSE(parsed.query.to_number);
  EXPECT_TRUE(parsed.query.cursor.empty());
}

TEST(ListQueryParsing, ReadsEveryParameter) {
  const ParsedListQuery parsed = ParseListQuery(
      "status=in-progress&to_number=%2B15551234567&since=1700000000"
      "&until=2023-11-15T00:00:00Z&cursor=abc_-&limit=100");
  ASSERT_FALSE(parsed.error) << parsed.error->message;
  EXPECT_EQ(parsed.query.status, CallStatus::kInProgress);
  EXPECT_EQ(parsed.query.to_number, "+15551234567");
  EXPECT_EQ(parsed.query.since_ms, 1'700'000'000'000);
  EXPECT_EQ(parsed.query.until_ms, 1'700'006'400'000);
  EXPECT_EQ(parsed.query.cursor, "abc_-");
  EXPECT_EQ(parsed.query.limit, 100U);
}

TEST(ListQueryParsing, AnUnencodedPlusInTheNumberIsReadAsPlus) {
  const ParsedListQuery parsed = ParseListQuery("to_number=+15551234567");
  ASSERT_FALSE(parsed.error);
  EXPECT_EQ(parsed.query.to_number, "+15551234567");
}

void ExpectError(std::string_view query, std::string_view parameter, std::string_view message) {
  const ParsedListQuery parsed = ParseListQuery(query);
  ASSERT_TRUE(parsed.error) << query;
  EXPECT_EQ(parsed.error->parameter, parameter) << query;
  EXPECT_EQ(parsed.error->message, message) << query;
}

TEST(ListQueryParsing, BadValuesGetPreciseMessages) {
  ExpectError("limit=0", "limit", "limit must be an integer from 1 to 100; got '0'");
  ExpectError("limit=101", "limit", "limit must be an integer from 1 to 100; got '101'");
  ExpectError("limit=ten", "limit", "limit must be an integer from 1 to 100; got 'ten'");
  ExpectError("limit=", "limit", "limit must be an integer from 1 to 100; got ''");
  ExpectError("limit=-1", "limit", "limit must be an integer from 1 to 100; got '-1'");
  ExpectError("status=finished", "status",
              "status must be one of queued, initiated, in-progress, processing, done, failed; "
              "got 'finished'");
  ExpectError("to_number=5551234", "to_number",
              "to_number must be an E.164 number such as +15551234567 (encode '+' as %2B); got "
              "'5551234'");
  ExpectError("since=yesterday", "since",
              "since must be unix seconds (e.g. 1700000000) or an ISO-8601 date or time (e.g. "
              "2023-11-14 or 2023-11-14T22:13:20Z); got 'yesterday'");
  ExpectError("until=2023-02-30", "until",
              "until must be unix seconds (e.g. 1700000000) or an ISO-8601 date or time (e.g. "
              "2023-11-14 or 2023-11-14T22:13:20Z); got '2023-02-30'");
  ExpectError("since=1700000000&until=1700000000", "until", "until must be later than since");
  ExpectError("cursor=", "cursor", "cursor must be the next_cursor of a previous page");
  ExpectError("cursor=" + std::string(65, 'A'), "cursor",
              "cursor must be the next_cursor of a previous page");
}

TEST(ListQueryParsing, UnknownAndRepeatedParametersAreRefused) {
  ExpectError("statuses=done", "statuses",
              "unknown query parameter 'statuses'; accepted: status, to_number, since, until, "
              "cursor, limit");
  ExpectError("status=done&status=failed", "status", "'status' is given more than once");
}

}  // namespace
}  // namespace callgate::calls
