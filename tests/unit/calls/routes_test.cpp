// GET /api/calls and GET /api/calls/{call_id} on the real HTTP server (in-process, 127.0.0.1,
// port 0) over a real SQLite ledger.
#include "calls/routes.hpp"
#include "calls/sqlite_ledger.hpp"

#include "calls_support.hpp"
#include "http/dispatcher.hpp"
#include "net/runtime.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/served_router.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace callgate::calls {
namespace {

using namespace std::chrono_literals;
using callgate::testing::Fetch;
using callgate::testing::HttpResponse;
using callgate::testing::ServedRouter;
using callgate::testing::TempDir;
using testing::Await;

constexpr char kApiKey[] = "test-key-0123456789";
constexpr std::int64_t kStartMs = 1'700'000'000'000;

class CallRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    database_ = testing::OpenDatabase((dir_.path() / "callgate.db").string());
    ledger_ = std::make_unique<SqliteCallLedger>(*database_, clock_);
    AddLedgerRoutes(router_, *ledger_);
    dispatcher_ =
        std::make_unique<http::Dispatcher>(router_, http::DispatchOptions{.api_keys = {kApiKey}});
    served_ = std::make_unique<ServedRouter>(runtime_, *dispatcher_);
  }
  void TearDown() override {
    served_.reset();
    database_->Close();
  }

  CallRecord Insert(std::string to = "+15551234567") {
    NewCall call{.to_number = std::move(to), .agent_id = "agent_1", .prompt = "Call them"};
    auto result =
        Await<LedgerResult<CallRecord>>([&](auto done) { ledger_->Insert(std::move(call), done); });
    EXPECT_TRUE(result.has_value());
    return *result;
  }

  HttpResponse Get(const std::string& target, bool with_key = true) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (with_key) headers.emplace_back("X-API-Key", kApiKey);
    auto response = Fetch(served_->port(), "GET", target, headers);
    EXPECT_TRUE(response.has_value()) << target;
    return response.value_or(HttpResponse{});
  }

  static boost::json::value Json(const HttpResponse& response) {
    return boost::json::parse(response.body);
  }
  static std::string ErrorCode(const HttpResponse& response) {
    return std::string(Json(response).at("error").at("code").as_string());
  }

  TempDir dir_;
  core::ManualClock clock_{core::SystemTime{std::chrono::milliseconds(kStartMs)}};
  std::unique_ptr<store::Database> database_;
  std::unique_ptr<SqliteCallLedger> ledger_;
  net::Runtime runtime_{2};
  http::Router router_;
  std::unique_ptr<http::Dispatcher> dispatcher_;
  std::unique_ptr<ServedRouter> served_;
};

TEST_F(CallRoutesTest, BothRoutesNeedAnApiKey) {
  const CallRecord call = Insert();
  for (const std::string& target : {std::string("/api/calls"), "/api/calls/" + call.call_id}) {
    const HttpResponse response = Get(target, false);
    EXPECT_EQ(response.status, 401) << target;
    EXPECT_EQ(ErrorCode(response), "missing_api_key");
  }
}

TEST_F(CallRoutesTest, GetsACallById) {
  const CallRecord call = Insert();
  auto initiated = Await<LedgerResult<CallRecord>>([&](auto done) {
    ledger_->MarkInitiated(call.call_id, {.conversation_id = "conv_1", .call_sid = "CA1"}, done);
  });
  ASSERT_TRUE(initiated.has_value());
  auto done = Await<LedgerResult<UpdateOutcome>>([&](auto cb) {
    ledger_->ApplyConversationUpdate({.conversation_id = "conv_1",
                                      .status = CallStatus::kDone,
                                      .transcript = boost::json::array{"hello"},
                                      .duration_secs = 12},
                                     cb);
  });
  ASSERT_TRUE(done.has_value());

  const HttpResponse response = Get("/api/calls/" + call.call_id);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.Header("content-type"), "application/json");
  const auto json = Json(response);
  EXPECT_EQ(json, boost::json::value(ToJson(done->record)));  // the one rendering
  EXPECT_EQ(json.at("call_id").as_string(), call.call_id);
  EXPECT_EQ(json.at("status"), "done");
  EXPECT_EQ(json.at("conversation_id"), "conv_1");
  EXPECT_EQ(json.at("transcript").at(0), "hello");
}

TEST_F(CallRoutesTest, AnUnknownCallIs404InTheEnvelope) {
  const HttpResponse response = Get("/api/calls/call_000000000000000000000000");
  EXPECT_EQ(response.status, 404);
  const auto json = Json(response);
  EXPECT_EQ(json.at("error").at("code"), "call_not_found");
  EXPECT_EQ(json.at("error").at("message"), "no call with that id");
  EXPECT_FALSE(json.at("error").at("request_id").as_string().empty());
}

TEST_F(CallRoutesTest, ListsPageByPageFollowingTheCursor) {
  std::vector<std::string> inserted;
  for (int i = 0; i < 5; ++i) {
    inserted.push_back(Insert().call_id);
    clock_.Advance(1s);
  }
  std::vector<std::string> listed;
  std::string target = "/api/calls?limit=2";
  int pages = 0;
  while (true) {
    const HttpResponse response = Get(target);
    ASSERT_EQ(response.status, 200) << response.body;
    const auto json = Json(response);
    ++pages;
    for (const auto& call : json.at("calls").as_array()) {
      listed.emplace_back(call.at("call_id").as_string());
      EXPECT_FALSE(call.as_object().contains("transcript"));  // summaries
    }
    if (!json.at("has_more").as_bool()) {
      EXPECT_TRUE(json.at("next_cursor").is_null());
      break;
    }
    target = "/api/calls?limit=2&cursor=" + std::string(json.at("next_cursor").as_string());
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(listed, std::vector<std::string>(inserted.rbegin(), inserted.rend()));
}

TEST_F(CallRoutesTest, ListFiltersByStatusNumberAndTime) {
  const CallRecord a = Insert("+15550000001");
  clock_.Advance(1h);
  const CallRecord b = Insert("+15550000002");
  clock_.Advance(1h);
  const CallRecord c = Insert("+15550000001");
  auto failed = Await<LedgerResult<CallRecord>>(
      [&](auto done) { ledger_->MarkFailed(c.call_id, "refused", UpdateSource::kApi, done); });
  ASSERT_TRUE(failed.has_value());

  auto ids = [&](const std::string& query) {
    const HttpResponse response = Get("/api/calls?" + query);
    EXPECT_EQ(response.status, 200) << query << ": " << response.body;
    std::vector<std::string> result;
    const auto json = Json(response);
    for (const auto& call : json.at("calls").as_array())
      result.emplace_back(call.at("call_id").as_string());
    return result;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids("status=failed"), V{c.call_id});
  EXPECT_EQ(ids("status=queued"), (V{b.call_id, a.call_id}));
  EXPECT_EQ(ids("to_number=%2B15550000001"), (V{c.call_id, a.call_id}));
  EXPECT_EQ(ids("to_number=+15550000001"), (V{c.call_id, a.call_id}));
  EXPECT_EQ(ids("since=1700003600"), (V{c.call_id, b.call_id}));
  EXPECT_EQ(ids("until=2023-11-14T23:13:20Z"), V{a.call_id});
  EXPECT_EQ(ids("since=2023-11-14T22:13:21Z&until=1700007200"), V{b.call_id});
}

TEST_F(CallRoutesTest, BadQueriesAre400sNamingTheParameter) {
  struct Case {
    const char* query;
    const char* parameter;
  };
  for (const Case& c :
       {Case{"limit=0", "limit"}, Case{"limit=500", "limit"}, Case{"status=bogus", "status"},
        Case{"to_number=12345", "to_number"}, Case{"since=last-week", "since"},
        Case{"until=2023-02-30", "until"}, Case{"since=1700000001&until=1700000000", "until"},
        Case{"colour=blue", "colour"}, Case{"limit=1&limit=2", "limit"}}) {
    const HttpResponse response = Get(std::string("/api/calls?") + c.query);
    EXPECT_EQ(response.status, 400) << c.query;
    const auto json = Json(response);
    EXPECT_EQ(json.at("error").at("code"), "invalid_query") << c.query;
    EXPECT_EQ(json.at("error").at("details").at("parameter"), c.parameter) << c.query;
  }
}

TEST_F(CallRoutesTest, AForeignCursorIs400InvalidCursor) {
  Insert();
  const HttpResponse response = Get("/api/calls?cursor=bm90LWEtY3Vyc29y");
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(ErrorCode(response), "invalid_cursor");
  EXPECT_EQ(Json(response).at("error").at("details").at("parameter"), "cursor");
}

TEST_F(CallRoutesTest, AnEmptyLedgerListsNothing) {
  const HttpResponse response = Get("/api/calls");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, R"({"calls":[],"next_cursor":null,"has_more":false})");
}

TEST_F(CallRoutesTest, AClosedLedgerAnswers503WithRetryAfter) {
  database_->Close();
  const HttpResponse response = Get("/api/calls");
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(ErrorCode(response), "storage_busy");
  EXPECT_EQ(response.Header("retry-after"), "1");
}

TEST(LedgerErrorMapping, EachErrorHasItsStatusAndCode) {
  auto check = [](LedgerErrc errc, int status, std::string_view code) {
    const http::Response response = LedgerErrorResponse(errc, "req_1");
    EXPECT_EQ(response.status, status);
    const auto json = boost::json::parse(response.body);
    EXPECT_EQ(json.at("error").at("code").as_string(), code);
    EXPECT_EQ(json.at("error").at("request_id"), "req_1");
  };
  check(LedgerErrc::kNotFound, 404, "call_not_found");
  check(LedgerErrc::kConflict, 409, "conflict");
  check(LedgerErrc::kInvalidCursor, 400, "invalid_cursor");
  check(LedgerErrc::kBusy, 503, "storage_busy");
  check(LedgerErrc::kStorage, 500, "storage_error");
  const http::Response other = LedgerErrorResponse(
      boost::system::errc::make_error_code(boost::system::errc::io_error), "req_2");
  EXPECT_EQ(other.status, 500);
}

}  // namespace
}  // namespace callgate::calls
