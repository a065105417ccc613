// The call record's pure parts: status names and order, the update rules, the JSON rendering.
#include "calls/call_record.hpp"
#include "calls/ledger.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace callgate::calls {
namespace {

TEST(CallStatus, NamesRoundTripAndNothingElseParses) {
  for (const auto status : {CallStatus::kQueued, CallStatus::kInitiated, CallStatus::kInProgress,
                            CallStatus::kProcessing, CallStatus::kDone, CallStatus::kFailed}) {
    EXPECT_EQ(ParseCallStatus(ToString(status)), status);
  }
  EXPECT_EQ(ToString(CallStatus::kInProgress), "in-progress");
  EXPECT_FALSE(ParseCallStatus("DONE"));
  EXPECT_FALSE(ParseCallStatus("in_progress"));
  EXPECT_FALSE(ParseCallStatus(""));
  EXPECT_EQ(ParseUpdateSource("webhook"), UpdateSource::kWebhook);
  EXPECT_FALSE(ParseUpdateSource("cron"));
}

TEST(CallStatus, MovesOnlyForwardAndFinalIsFinal) {
  EXPECT_TRUE(CanAdvance(CallStatus::kQueued, CallStatus::kInitiated));
  EXPECT_TRUE(CanAdvance(CallStatus::kInitiated, CallStatus::kDone));
  EXPECT_TRUE(CanAdvance(CallStatus::kProcessing, CallStatus::kFailed));
  EXPECT_FALSE(CanAdvance(CallStatus::kInProgress, CallStatus::kInitiated));
  EXPECT_FALSE(CanAdvance(CallStatus::kInProgress, CallStatus::kInProgress));
  EXPECT_FALSE(CanAdvance(CallStatus::kDone, CallStatus::kFailed));
  EXPECT_FALSE(CanAdvance(CallStatus::kFailed, CallStatus::kDone));
  EXPECT_TRUE(IsFinal(CallStatus::kDone));
  EXPECT_TRUE(IsFinal(CallStatus::kFailed));
  EXPECT_FALSE(IsFinal(CallStatus::kProcessing));
}

TEST(CallRecord, FormatsUnixMillisAsUtc) {
  EXPECT_EQ(FormatUnixMillis(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatUnixMillis(1'700'000'000'123), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(FormatUnixMillis(1'709'208'000'000), "2024-02-29T12:00:00.000Z");
  EXPECT_EQ(FormatUnixMillis(-1), "1969-12-31T23:59:59.999Z");
}

CallRecord SampleRecord() {
  CallRecord r;
  r.call_id = "call_0123456789abcdef01234567";
  r.created_at_ms = 1'700'000'000'000;
  r.updated_at_ms = 1'700'000'005'500;
  r.to_number = "+15551234567";
  r.agent_phone_number_id = "phnum_1";
  r.agent_id = "agent_1";
  r.prompt = "Get the parking ticket dismissed";
  r.options = {{"language", "en"}, {"metadata", {{"ticket", 42}}}};
  r.conversation_id = "conv_1";
  r.call_sid = "CA123";
  r.status = CallStatus::kDone;
  r.transcript = boost::json::array{{{"role", "agent"}, {"message", "Hello"}}};
  r.analysis = boost::json::object{{"call_successful", "success"}};
  r.duration_secs = 42;
  r.source = UpdateSource::kPoll;
  return r;
}

TEST(CallRecord, FullJsonHasEveryFieldWithNullsForAbsentOnes) {
  const boost::json::object json = ToJson(SampleRecord());
  EXPECT_EQ(json.at("call_id"), "call_0123456789abcdef01234567");
  EXPECT_EQ(json.at("status"), "done");
  EXPECT_EQ(json.at("to_number"), "+15551234567");
  EXPECT_TRUE(json.at("from_number").is_null());
  EXPECT_EQ(json.at("agent_phone_number_id"), "phnum_1");
  EXPECT_EQ(json.at("agent_id"), "agent_1");
  EXPECT_EQ(json.at("prompt"), "Get the parking ticket dismissed");
  EXPECT_EQ(json.at("options").at("metadata").at("ticket"), 42);
  EXPECT_EQ(json.at("conversation_id"), "conv_1");
  EXPECT_EQ(json.at("call_sid"), "CA123");
  EXPECT_TRUE(json.at("sip_call_id").is_null());
  EXPECT_TRUE(json.at("failure_reason").is_null());
  EXPECT_EQ(json.at("duration_secs"), 42);
  EXPECT_EQ(json.at("transcript").at(0).at("message"), "Hello");
  EXPECT_EQ(json.at("analysis").at("call_successful"), "success");
  EXPECT_EQ(json.at("source"), "poll");
  EXPECT_EQ(json.at("created_at"), "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(json.at("created_at_unix_ms"), 1'700'000'000'000);
  EXPECT_EQ(json.at("updated_at"), "2023-11-14T22:13:25.500Z");
}

TEST(CallRecord, SummaryJsonLeavesOutTranscriptAndAnalysis) {
  const boost::json::object json = ToJson(SampleRecord(), JsonDetail::kSummary);
  EXPECT_FALSE(json.contains("transcript"));
  EXPECT_FALSE(json.contains("analysis"));
  EXPECT_EQ(json.at("duration_secs"), 42);
  CallRecord queued;
  queued.call_id = "call_x";
  const boost::json::object fresh = ToJson(queued);
  EXPECT_TRUE(fresh.at("conversation_id").is_null());
  EXPECT_TRUE(fresh.at("transcript").is_null());
  EXPECT_TRUE(fresh.at("duration_secs").is_null());
  EXPECT_EQ(fresh.at("status"), "queued");
  EXPECT_TRUE(fresh.at("options").as_object().empty());
}

TEST(UpdateRules, UpstreamAnswerRecordsIdsAndInitiates) {
  CallRecord r;
  r.status = CallStatus::kQueued;
  UpstreamAccepted answer{
      .conversation_id = "conv_9", .sip_call_id = "sip-1", .agent_phone_number_id = "phnum_7"};
  EXPECT_TRUE(RecordUpstreamAccepted(r, answer, 1000));
  EXPECT_EQ(r.status, CallStatus::kInitiated);
  EXPECT_EQ(r.conversation_id, "conv_9");
  EXPECT_EQ(r.sip_call_id, "sip-1");
  EXPECT_FALSE(r.call_sid);
  EXPECT_EQ(r.agent_phone_number_id, "phnum_7");
  EXPECT_EQ(r.updated_at_ms, 1000);
  EXPECT_FALSE(RecordUpstreamAccepted(r, answer, 2000));  // nothing new
  EXPECT_EQ(r.updated_at_ms, 1000);
}

TEST(UpdateRules, FailureOnlyWhenNotFinal) {
  CallRecord r;
  EXPECT_TRUE(RecordFailure(r, "upstream refused", UpdateSource::kApi, 5));
  EXPECT_EQ(r.status, CallStatus::kFailed);
  EXPECT_EQ(r.failure_reason, "upstream refused");
  EXPECT_FALSE(RecordFailure(r, "again", UpdateSource::kPoll, 6));
  EXPECT_EQ(r.failure_reason, "upstream refused");
  CallRecord done;
  done.status = CallStatus::kDone;
  EXPECT_FALSE(RecordFailure(done, "late", UpdateSource::kPoll, 7));
  EXPECT_EQ(done.status, CallStatus::kDone);
}

TEST(UpdateRules, ConversationUpdatesMoveForwardAndStaleOnesAreIgnored) {
  CallRecord r;
  r.status = CallStatus::kInitiated;
  ConversationUpdate update{.conversation_id = "c",
                            .status = CallStatus::kInProgress,
                            .transcript = boost::json::array{"hi"},
                            .source = UpdateSource::kPoll};
  EXPECT_TRUE(RecordConversationUpdate(r, update, 10));
  EXPECT_EQ(r.status, CallStatus::kInProgress);
  EXPECT_EQ(r.source, UpdateSource::kPoll);

  // Same status, a longer transcript: the newest state wins.
  update.transcript = boost::json::array{"hi", "there"};
  EXPECT_TRUE(RecordConversationUpdate(r, update, 11));
  EXPECT_EQ(r.transcript->as_array().size(), 2U);

  // An older status is stale: nothing of it is taken.
  ConversationUpdate stale{.conversation_id = "c",
                           .status = CallStatus::kInitiated,
                           .transcript = boost::json::array{},
                           .duration_secs = 1};
  EXPECT_FALSE(RecordConversationUpdate(r, stale, 12));
  EXPECT_EQ(r.transcript->as_array().size(), 2U);
  EXPECT_FALSE(r.duration_secs);
  EXPECT_EQ(r.updated_at_ms, 11);
}

TEST(UpdateRules, FinalCallsOnlyFillGaps) {
  CallRecord r;
  r.status = CallStatus::kProcessing;
  ConversationUpdate done{.conversation_id = "c",
                          .status = CallStatus::kDone,
                          .transcript = boost::json::array{"poll transcript"},
                          .source = UpdateSource::kPoll};
  EXPECT_TRUE(RecordConversationUpdate(r, done, 20));
  EXPECT_EQ(r.status, CallStatus::kDone);

  ConversationUpdate webhook{.conversation_id = "c",
                             .status = CallStatus::kDone,
                             .transcript = boost::json::array{"webhook transcript"},
                             .analysis = boost::json::object{{"ok", true}},
                             .duration_secs = 30,
                             .source = UpdateSource::kWebhook};
  EXPECT_TRUE(RecordConversationUpdate(r, webhook, 21));
  EXPECT_EQ(r.transcript->as_array().at(0), "poll transcript");  // not overwritten
  EXPECT_EQ(r.analysis->at("ok"), true);                         // gap filled
  EXPECT_EQ(r.duration_secs, 30);
  EXPECT_EQ(r.source, UpdateSource::kWebhook);

  ConversationUpdate failed{.conversation_id = "c", .status = CallStatus::kFailed};
  EXPECT_FALSE(RecordConversationUpdate(r, failed, 22));
  EXPECT_EQ(r.status, CallStatus::kDone);
}

TEST(UpdateRules, FailedConversationGetsAReason) {
  CallRecord r;
  r.status = CallStatus::kInitiated;
  EXPECT_TRUE(
      RecordConversationUpdate(r, {.conversation_id = "c", .status = CallStatus::kFailed}, 1));
  EXPECT_EQ(r.failure_reason, "the conversation failed upstream");
  CallRecord s;
  s.status = CallStatus::kInitiated;
  EXPECT_TRUE(RecordConversationUpdate(
      s, {.conversation_id = "c", .status = CallStatus::kFailed, .failure_reason = "no answer"},
      1));
  EXPECT_EQ(s.failure_reason, "no answer");
}

}  // namespace
}  // namespace callgate::calls
