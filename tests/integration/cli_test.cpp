// The one-shot CLI commands as processes against `callgate sim`: call (--wait), conversations
// list/show/audio, and their errors and exit codes.
#include "integration/sim_process.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace callgate::testing {
namespace {

using namespace std::chrono_literals;

struct CliRun {
  int exit_code = -1;
  std::string output;
};

CliRun Cli(const SimProcess& sim, std::vector<std::string> args, const TempDir& dir,
           const std::string& name, std::map<std::string, std::string> extra_env = {}) {
  std::map<std::string, std::string> env{
      {"ELEVENLABS_BASE_URL", "http://127.0.0.1:" + std::to_string(sim.port())},
      {"ELEVENLABS_API_KEY", sim.api_key()},
      {"ELEVENLABS_AGENT_ID", "agent_sim_default"},
      {"ELEVENLABS_AGENT_PHONE_NUMBER_ID", "phnum_sim_twilio"}};
  for (auto& [key, value] : extra_env)
    env[key] = value;
  args.insert(args.begin(), CallgateBinary());
  ChildProcess process({.args = args,
                        .environment = env,
                        .working_dir = dir.path(),
                        .log_file = dir.path() / (name + ".log")});
  CliRun run;
  run.exit_code = process.WaitExit(60s).value_or(-1);
  run.output = process.Output();
  return run;
}

TEST(Cli, CallWaitsForTheEndAndPrintsTheTranscript) {
  SimProcess sim({"--time-scale", "100"});
  ASSERT_TRUE(sim.started()) << sim.Output();
  TempDir dir;
  const CliRun call =
      Cli(sim, {"call", "+15551234567", "Get parking ticket dismissed", "--wait"}, dir, "call");
  EXPECT_EQ(call.exit_code, 0) << call.output;
  EXPECT_NE(call.output.find("conv_"), std::string::npos) << call.output;
  EXPECT_NE(call.output.find("status:    done"), std::string::npos) << call.output;
  EXPECT_NE(call.output.find("Agent: Hello! I'm calling about Get parking ticket dismissed."),
            std::string::npos)
      << call.output;
  const auto id_start = call.output.find("conv_");
  const std::string id = call.output.substr(id_start, call.output.find('\n', id_start) - id_start);

  const CliRun list = Cli(sim, {"conversations", "list"}, dir, "list");
  EXPECT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find(id), std::string::npos) << list.output;

  const CliRun show = Cli(sim, {"conversations", "show", id}, dir, "show");
  EXPECT_EQ(show.exit_code, 0) << show.output;
  EXPECT_NE(show.output.find("User: "), std::string::npos) << show.output;

  const CliRun audio = Cli(sim, {"conversations", "audio", id, "-o", "call.mp3"}, dir, "audio");
  EXPECT_EQ(audio.exit_code, 0) << audio.output;
  std::ifstream file(dir.path() / "call.mp3", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  auto direct = Fetch(sim.port(), "GET", "/v1/convai/conversations/" + id + "/audio",
                      {{"xi-api-key", sim.api_key()}});
  ASSERT_TRUE(direct && direct->status == 200);
  EXPECT_EQ(bytes, direct->body);
  EXPECT_NE(audio.output.find("wrote " + std::to_string(bytes.size()) + " bytes of audio/mpeg"),
            std::string::npos)
      << audio.output;
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "call.mp3.part"));

  // "-o -": the bytes on standard output, nothing else there.
  const CliRun piped = Cli(sim, {"conversations", "audio", id, "-o", "-"}, dir, "piped");
  EXPECT_EQ(piped.exit_code, 0);
  EXPECT_EQ(piped.output.find(direct->body), 0u) << "the recording is first on the output";

  // A place that cannot be written: a clear error, exit 1, no file left behind.
  const CliRun nowhere =
      Cli(sim, {"conversations", "audio", id, "-o", "no/such/dir/call.mp3"}, dir, "nowhere");
  EXPECT_EQ(nowhere.exit_code, 1);
  EXPECT_NE(nowhere.output.find("cannot write no/such/dir/call.mp3.part"), std::string::npos)
      << nowhere.output;
}

TEST(Cli, TalkShowsTheTranscriptLiveAndCtrlCEndsCleanly) {
  SimProcess sim;
  ASSERT_TRUE(sim.started()) << sim.Output();
  TempDir dir;
  const auto wav = dir.path() / "talk.wav";
  ChildProcess talk(
      {.args = {CallgateBinary(), "talk", "--input", "null", "--output", "file:" + wav.string(),
                "--var", "purpose=a terminal test"},
       .environment = {{"ELEVENLABS_BASE_URL", "http://127.0.0.1:" + std::to_string(sim.port())},
                       {"ELEVENLABS_API_KEY", sim.api_key()},
                       {"ELEVENLABS_AGENT_ID", "agent_sim_default"}},
       .working_dir = dir.path(),
       .log_file = dir.path() / "talk.log"});
  ASSERT_TRUE(WaitFor(
      [&] {
        return talk.Output().find("Agent: Hello! I'm calling about a terminal test.") !=
               std::string::npos;
      },
      30s))
      << talk.Output();
  // Some of the agent's audio is in the file, then Ctrl-C.
  ASSERT_TRUE(WaitFor(
      [&] {
        std::error_code ec;
        return std::filesystem::file_size(wav, ec) > 16000 && !ec;
      },
      30s));
  talk.Signal(SIGINT);
  EXPECT_EQ(talk.WaitExit(30s), 0) << talk.Output();
  EXPECT_NE(talk.Output().find("ended: stopped"), std::string::npos) << talk.Output();
}

TEST(Cli, ErrorsAreClearAndExitCodesDistinguishUsageFromFailure) {
  SimProcess sim;
  ASSERT_TRUE(sim.started()) << sim.Output();
  TempDir dir;
  const CliRun bad_number = Cli(sim, {"call", "5551234567", "hello"}, dir, "bad-number");
  EXPECT_EQ(bad_number.exit_code, 2);
  EXPECT_NE(bad_number.output.find("E.164"), std::string::npos) << bad_number.output;

  const CliRun wrong_key =
      Cli(sim, {"conversations", "list"}, dir, "wrong-key", {{"ELEVENLABS_API_KEY", "sk_wrong"}});
  EXPECT_EQ(wrong_key.exit_code, 1);
  EXPECT_NE(wrong_key.output.find("ELEVENLABS_API_KEY"), std::string::npos) << wrong_key.output;
  EXPECT_EQ(wrong_key.output.find("sk_wrong"), std::string::npos) << "never print a secret";

  const CliRun unknown = Cli(sim, {"conversations", "show", "conv_nope"}, dir, "unknown");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.output.find("404"), std::string::npos) << unknown.output;

  const CliRun busy = Cli(sim, {"call", "+15551234567", "x", "--var", "novalue"}, dir, "var");
  EXPECT_EQ(busy.exit_code, 2);
}

}  // namespace
}  // namespace callgate::testing
