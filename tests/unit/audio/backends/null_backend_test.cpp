#include "audio/backends/null_backend.hpp"

#include "audio/backends/factory.hpp"
#include "core/clock.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace callgate::audio::backends {
namespace {

using std::chrono::milliseconds;

TEST(NullInput, ProducesSilenceAtTheRealRate) {
  core::ManualClock clock;
  NullInput input(16000, clock);
  std::vector<std::int16_t> buf(4000, 7);
  EXPECT_EQ(input.Read(buf), 0u) << "not started";
  ASSERT_FALSE(input.Start().has_value());
  EXPECT_EQ(input.Read(buf), 0u) << "no time has passed";
  clock.Advance(milliseconds(100));
  EXPECT_EQ(input.Read(std::span(buf).first(1000)), 1000u) << "limited by the buffer";
  EXPECT_EQ(input.Read(buf), 600u) << "the rest of the 100 ms";
  EXPECT_TRUE(std::all_of(buf.begin(), buf.begin() + 600, [](auto s) { return s == 0; }));
  EXPECT_EQ(input.Read(buf), 0u);
  clock.Advance(std::chrono::microseconds(62'500));  // 1000 samples exactly
  EXPECT_EQ(input.Read(buf), 1000u);
  EXPECT_EQ(input.stats().frames, 2600u);
  input.Stop();
  clock.Advance(milliseconds(100));
  EXPECT_EQ(input.Read(buf), 0u);
  EXPECT_FALSE(input.exhausted());
}

TEST(NullInput, AClockGoingBackwardsYieldsNothingUntilItCatchesUp) {
  core::ManualClock clock;
  NullInput input(8000, clock);
  input.Start();
  clock.Advance(milliseconds(100));
  std::vector<std::int16_t> buf(8000);
  EXPECT_EQ(input.Read(buf), 800u);
  clock.Advance(milliseconds(-50));
  EXPECT_EQ(input.Read(buf), 0u);
  clock.Advance(milliseconds(60));
  EXPECT_EQ(input.Read(buf), 80u);
}

TEST(NullOutput, WantsWhatASpeakerWouldPlayAndDiscardsIt) {
  core::ManualClock clock;
  NullOutput output(24000, clock);
  EXPECT_EQ(output.WritableFrames(), 0u);
  const std::vector<std::int16_t> samples(100, 1);
  EXPECT_EQ(output.Write(samples), 0u) << "not started";
  output.Start();
  EXPECT_EQ(output.WritableFrames(), 0u);
  clock.Advance(milliseconds(20));
  EXPECT_EQ(output.WritableFrames(), 480u);
  EXPECT_EQ(output.Write(samples), 100u);
  EXPECT_EQ(output.WritableFrames(), 380u);
  EXPECT_EQ(output.QueuedFrames(), 0u);
  EXPECT_EQ(output.latency(), std::chrono::microseconds(0));
  EXPECT_EQ(output.stats().frames, 100u);
  EXPECT_EQ(output.kind(), "null");
  EXPECT_EQ(output.Describe(), "null @ 24000 Hz");
}

TEST(NullBackends, RejectInvalidRates) {
  core::ManualClock clock;
  EXPECT_THROW(NullInput(0, clock), std::invalid_argument);
  EXPECT_THROW(NullOutput(500000, clock), std::invalid_argument);
}

TEST(Factory, OpensNullEndpointsAtTheRequestedRate) {
  core::ManualClock clock;
  auto input = OpenInput({BackendSpec::Kind::kNull, ""}, {.sample_rate = 8000}, clock);
  ASSERT_TRUE(input.has_value());
  EXPECT_EQ((*input)->kind(), "null");
  EXPECT_EQ((*input)->sample_rate(), 8000);
  auto output = OpenOutput({BackendSpec::Kind::kNull, ""}, {}, clock);
  ASSERT_TRUE(output.has_value());
  EXPECT_EQ((*output)->sample_rate(), kDefaultEndpointRate);
}

TEST(Endpoint, TheErrorHandlerRunsOnceWithTheLatchedError) {
  // A file output whose directory vanished cannot fail on demand; use a subclass to drive Fail().
  class Failing final : public AudioInput {
   public:
    std::string_view kind() const override { return "test"; }
    std::string Describe() const override { return "test"; }
    int sample_rate() const override { return 8000; }
    std::optional<BackendError> Start() override {
      started_ = true;
      return std::nullopt;
    }
    void Stop() override { started_ = false; }
    std::size_t Read(std::span<std::int16_t>) override {
      Fail({BackendError::Code::kDeviceUnavailable, "gone"});
      Fail({BackendError::Code::kFileError, "second"});
      return 0;
    }
  };
  Failing endpoint;
  int calls = 0;
  endpoint.SetErrorHandler([&](const BackendError& error) {
    ++calls;
    EXPECT_EQ(error.ToString(), "audio_device_unavailable: gone");
    endpoint.Stop();  // allowed from the handler
  });
  endpoint.Start();
  std::vector<std::int16_t> buf(10);
  endpoint.Read(buf);
  endpoint.Read(buf);
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(endpoint.error().has_value());
  EXPECT_EQ(endpoint.error()->CodeName(), "audio_device_unavailable");
  EXPECT_FALSE(endpoint.started());
}

}  // namespace
}  // namespace callgate::audio::backends
