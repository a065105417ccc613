#include "audio/speech.hpp"
#include "audio/vad.hpp"
#include "unit/audio/signal.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace callgate::audio {
namespace {

constexpr const char* kSentence = "Hello, this is a test.";

TEST(Speech, SpeaksASentence) {
  SpeechSynthesizer tts;
  const auto start = std::chrono::steady_clock::now();
  const std::vector<std::int16_t> speech = tts.Synthesize(kSentence, 16000);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  std::printf("[ info     ] synthesized %.2f s of speech in %.1f ms\n",
              static_cast<double>(speech.size()) / 16000.0,
              std::chrono::duration<double, std::milli>(elapsed).count());

  ASSERT_FALSE(speech.empty());
  const double seconds = static_cast<double>(speech.size()) / 16000.0;
  EXPECT_GT(seconds, 0.5);
  EXPECT_LT(seconds, 5.0);
  EXPECT_GT(RmsDbfs(speech), -35.0) << "speech is too quiet";

  EnergyVad vad(16000);
  const std::vector<VadEvent> events = vad.Feed(speech);
  ASSERT_FALSE(events.empty()) << "the VAD heard no speech";
  EXPECT_EQ(events[0].type, VadEvent::Type::kSpeechStart);
  EXPECT_LT(events[0].sample_offset, 16000 / 2) << "speech should begin early";
}

TEST(Speech, RatesGiveLengthsInProportion) {
  SpeechSynthesizer tts;
  const std::vector<std::int16_t> native = tts.Synthesize(kSentence, 22050);
  ASSERT_FALSE(native.empty());
  for (int rate : {8000, 16000, 24000, 44100, 48000}) {
    const std::vector<std::int16_t> speech = tts.Synthesize(kSentence, rate);
    const double expected = static_cast<double>(native.size()) * rate / 22050.0;
    EXPECT_NEAR(static_cast<double>(speech.size()), expected, 2.0) << rate;
  }
}

TEST(Speech, CacheReturnsIdenticalSamples) {
  SpeechSynthesizer tts;
  const std::vector<std::int16_t> first = tts.Synthesize(kSentence, 16000);
  const std::vector<std::int16_t> second = tts.Synthesize(kSentence, 16000);
  EXPECT_EQ(first, second);
  const auto stats = tts.cache_stats();
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.entries, 2u);  // 16 kHz and the 22050 Hz rendering
}

TEST(Speech, CacheIsBoundedAndEvictsTheLeastRecentlyUsed) {
  SpeechSynthesizer tts({.cache_entries = 2});
  tts.Synthesize("one", 22050);    // [one]
  tts.Synthesize("two", 22050);    // [two, one]
  tts.Synthesize("one", 22050);    // hit: [one, two]
  tts.Synthesize("three", 22050);  // evicts two: [three, one]
  EXPECT_EQ(tts.cache_stats().entries, 2u);
  EXPECT_EQ(tts.cache_stats().hits, 1u);
  tts.Synthesize("one", 22050);  // still cached
  EXPECT_EQ(tts.cache_stats().hits, 2u);
  tts.Synthesize("two", 22050);  // was evicted
  EXPECT_EQ(tts.cache_stats().hits, 2u);
  EXPECT_EQ(tts.cache_stats().misses, 4u);
}

TEST(Speech, CacheCanBeDisabled) {
  SpeechSynthesizer tts({.cache_entries = 0});
  EXPECT_FALSE(tts.Synthesize("again", 16000).empty());
  EXPECT_FALSE(tts.Synthesize("again", 16000).empty());
  EXPECT_EQ(tts.cache_stats().entries, 0u);
  EXPECT_EQ(tts.cache_stats().hits, 0u);
}

TEST(Speech, LanguagesAndFallback) {
  SpeechSynthesizer tts({.cache_entries = 0});
  const std::vector<std::int16_t> english = tts.Synthesize("Good morning", 16000, "en");
  const std::vector<std::int16_t> german = tts.Synthesize("Guten Morgen", 16000, "de");
  const std::vector<std::int16_t> unknown = tts.Synthesize("Good morning", 16000, "xx-nope");
  const std::vector<std::int16_t> hostile = tts.Synthesize("Good morning", 16000, "../../etc");
  ASSERT_FALSE(english.empty());
  EXPECT_FALSE(german.empty());
  // The unknown names fall back to "en": the same words come out about as long.
  EXPECT_NEAR(static_cast<double>(unknown.size()), static_cast<double>(english.size()),
              0.05 * static_cast<double>(english.size()));
  EXPECT_NEAR(static_cast<double>(hostile.size()), static_cast<double>(english.size()),
              0.05 * static_cast<double>(english.size()));
}

TEST(Speech, SpeakingRateIsConfigurable) {
  SpeechSynthesizer slow({.words_per_minute = 100, .cache_entries = 0});
  SpeechSynthesizer fast({.words_per_minute = 300, .cache_entries = 0});
  const auto slow_speech = slow.Synthesize(kSentence, 16000);
  const auto fast_speech = fast.Synthesize(kSentence, 16000);
  EXPECT_GT(slow_speech.size(), fast_speech.size() * 3 / 2);
  EXPECT_THROW(SpeechSynthesizer({.words_per_minute = 10}), std::invalid_argument);
}

TEST(Speech, RejectsBadArguments) {
  SpeechSynthesizer tts;
  EXPECT_THROW(tts.Synthesize("hi", 0), std::invalid_argument);
  EXPECT_THROW(tts.Synthesize("hi", 999), std::invalid_argument);
  EXPECT_THROW(tts.Synthesize(std::string(SpeechSynthesizer::kMaxTextBytes + 1, 'a'), 16000),
               std::invalid_argument);
  EXPECT_TRUE(tts.Synthesize("", 16000).size() < 1600u);  // at most a breath of silence
}

TEST(Speech, ConcurrentCallsAreSerialisedSafely) {
  SpeechSynthesizer tts({.cache_entries = 0});
  std::vector<std::size_t> sizes(4);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    threads.emplace_back([&, i] {
      sizes[i] =
          tts.Synthesize(i % 2 == 0 ? "Parking ticket" : "Thank you for calling", 8000).size();
    });
  }
  for (auto& t : threads)
    t.join();
  for (std::size_t size : sizes)
    EXPECT_GT(size, 4000u);
}

TEST(SpeechDeathTest, MissingDataIsAClearError) {
  // espeak-ng initialises once per process, so this runs in a fresh copy of the test binary.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // Next to the test binary, so the parent and the re-executed child agree on the path and
  // concurrent runs from different build trees do not share it.
  const std::filesystem::path broken =
      std::filesystem::canonical("/proc/self/exe").parent_path() / "espeak-missing-data";
  std::filesystem::create_directories(broken / "espeak-ng-data");  // present but empty
  EXPECT_EXIT(
      {
        try {
          SpeechSynthesizer tts({.data_path = broken.string()});
        } catch (const std::runtime_error& e) {
          std::fprintf(stderr, "runtime_error: %s\n", e.what());
          std::fflush(stderr);
          std::_Exit(0);  // skip exit-time leak checks of the half-initialised library
        }
        std::_Exit(1);
      },
      ::testing::ExitedWithCode(0),
      "runtime_error: espeak-ng could not initialise.*espeak-ng-data");
  std::filesystem::remove_all(broken);
}

TEST(Tone, Shape) {
  const std::vector<std::int16_t> tone = Tone(1000.0, 0.5, 8000, 0.25);
  ASSERT_EQ(tone.size(), 4000u);
  EXPECT_EQ(tone[0], 0);
  EXPECT_EQ(tone[2], static_cast<std::int16_t>(std::lround(0.25 * 32767)));  // sin(pi/2)
  EXPECT_NEAR(testing::Rms(tone), 0.25 * 32767 / std::sqrt(2.0), 2.0);
  EXPECT_NEAR(testing::ZeroCrossingHz(tone, 8000), 1000.0, 1.0);
  EXPECT_THROW(Tone(440.0, 1.0, 0, 0.5), std::invalid_argument);
  EXPECT_THROW(Tone(440.0, 1.0, 8000, 1.5), std::invalid_argument);
  EXPECT_THROW(Tone(440.0, -1.0, 8000, 0.5), std::invalid_argument);
}

}  // namespace
}  // namespace callgate::audio
