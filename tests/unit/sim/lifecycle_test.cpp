// The conversation lifecycle as a pure function of time, at every boundary.
#include "sim/lifecycle.hpp"

#include <gtest/gtest.h>

namespace callgate::sim {
namespace {

using namespace std::chrono_literals;

class LifecycleTest : public ::testing::Test {
 protected:
  LifecycleTest() {
    record_.conversation_id = "conv_test";
    record_.external_number = "+15551234567";
    record_.created = t0_;
    record_.first_message = "Hello! I'm calling about your order.";
  }
  ConversationSnapshot At(std::chrono::nanoseconds elapsed) const {
    return Evaluate(record_, t0_ + elapsed, durations_);
  }

  core::SystemTime t0_{std::chrono::seconds(1'700'000'000)};
  Durations durations_{.ring_secs = 3, .talk_secs = 20, .processing_secs = 5};
  ConversationRecord record_;
};

TEST_F(LifecycleTest, AnsweredCallWalksThroughEveryStatus) {
  auto s = At(0s);
  EXPECT_EQ(s.status, ConversationStatus::kInitiated);
  EXPECT_TRUE(s.transcript.empty());
  EXPECT_FALSE(s.accepted_time_unix_secs);
  EXPECT_EQ(At(3s - 1ms).status, ConversationStatus::kInitiated);

  s = At(3s);
  EXPECT_EQ(s.status, ConversationStatus::kInProgress);
  ASSERT_EQ(s.transcript.size(), 1u);
  EXPECT_EQ(s.transcript[0].role, "agent");
  EXPECT_EQ(s.transcript[0].message, "Hello! I'm calling about your order.");
  EXPECT_EQ(s.call_duration_secs, 0);
  EXPECT_EQ(s.accepted_time_unix_secs, 1'700'000'003);
  EXPECT_EQ(s.termination_reason, "");
  EXPECT_FALSE(s.call_successful);

  s = At(3s + 4s);  // the second turn is at 20 * 1 / 5 = 4 s into the call
  EXPECT_EQ(s.transcript.size(), 2u);
  EXPECT_EQ(s.call_duration_secs, 4);
  EXPECT_EQ(At(3s + 4s - 1ms).transcript.size(), 1u);

  s = At(23s - 1ms);
  EXPECT_EQ(s.status, ConversationStatus::kInProgress);
  EXPECT_EQ(s.call_duration_secs, 19);

  s = At(23s);
  EXPECT_EQ(s.status, ConversationStatus::kProcessing);
  EXPECT_EQ(s.transcript.size(), 5u);
  EXPECT_EQ(s.call_duration_secs, 20);
  EXPECT_EQ(s.termination_reason, "end_call tool was called.");
  EXPECT_FALSE(s.call_successful) << "analysis only once done";
  EXPECT_FALSE(s.has_audio);
  EXPECT_EQ(At(28s - 1ms).status, ConversationStatus::kProcessing);

  s = At(28s);
  EXPECT_EQ(s.status, ConversationStatus::kDone);
  EXPECT_EQ(s.call_successful, "success");
  EXPECT_TRUE(s.has_audio);
  EXPECT_FALSE(s.transcript_summary.empty());
  EXPECT_EQ(At(1000h).status, ConversationStatus::kDone);
}

TEST_F(LifecycleTest, BusyFailsAfterTwoSeconds) {
  record_.behaviour = CalleeBehaviour::kBusy;
  EXPECT_EQ(At(2s - 1ms).status, ConversationStatus::kInitiated);
  const auto s = At(2s);
  EXPECT_EQ(s.status, ConversationStatus::kFailed);
  EXPECT_EQ(s.termination_reason, "busy");
  EXPECT_EQ(s.call_successful, "failure");
  EXPECT_TRUE(s.transcript.empty());
  EXPECT_FALSE(s.has_audio);
}

TEST_F(LifecycleTest, NoAnswerFailsAtTheRingingTimeout) {
  record_.behaviour = CalleeBehaviour::kNoAnswer;
  record_.ringing_timeout_secs = 45;
  EXPECT_EQ(At(45s - 1ms).status, ConversationStatus::kInitiated);
  const auto s = At(45s);
  EXPECT_EQ(s.status, ConversationStatus::kFailed);
  EXPECT_EQ(s.termination_reason, "no-answer");
}

TEST_F(LifecycleTest, AnsweringAfterTheRingingTimeoutIsNoAnswer) {
  record_.ringing_timeout_secs = 3;  // ring_secs is 3: the callee would pick up too late
  EXPECT_EQ(At(3s - 1ms).status, ConversationStatus::kInitiated);
  EXPECT_EQ(At(3s).status, ConversationStatus::kFailed);
  EXPECT_EQ(At(3s).termination_reason, "no-answer");
}

TEST_F(LifecycleTest, MissingDynamicVariablesFailTheConversationWhenAnswered) {
  record_.missing_variables = {"purpose"};
  EXPECT_EQ(At(3s - 1ms).status, ConversationStatus::kInitiated);
  const auto s = At(3s);
  EXPECT_EQ(s.status, ConversationStatus::kFailed);
  EXPECT_NE(s.termination_reason.find("'purpose'"), std::string::npos) << s.termination_reason;
  EXPECT_TRUE(s.transcript.empty());
}

TEST(SubstitutionTest, ReplacesKnownVariablesAndReportsMissingOnes) {
  const boost::json::object variables{
      {"purpose", "your order"}, {"balance", 150.5}, {"whole", 150.0}, {"count", 3}, {"vip", true}};
  auto result = SubstituteVariables(
      "About {{purpose}}: {{ balance }}, {{whole}}, {{count}}, {{vip}}.", variables);
  EXPECT_EQ(result.text, "About your order: 150.5, 150.0, 3, true.");
  EXPECT_TRUE(result.missing.empty());

  result = SubstituteVariables("Hi {{name}} and {{name}}, {{system__time}} {{unclosed", {});
  EXPECT_EQ(result.text, "Hi {{name}} and {{name}},  {{unclosed");
  EXPECT_EQ(result.missing, std::vector<std::string>{"name"});
}

}  // namespace
}  // namespace callgate::sim
