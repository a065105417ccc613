#include "core/ids.hpp"
#include "core/logging.hpp"
#include "core/secure_compare.hpp"
#include "core/strings.hpp"
#include "core/worker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <regex>
#include <set>

namespace callgate::core {
namespace {

TEST(SecureCompare, EqualsOnlyTheSameBytes) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));  // prefix
  EXPECT_FALSE(ConstantTimeEquals("abc", ""));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST(SecureCompare, Sha256MatchesTheStandardVectors) {
  auto hex = [](const std::optional<Sha256Digest>& digest) {
    std::string out;
    for (unsigned char byte : digest.value()) {
      constexpr char kDigits[] = "0123456789abcdef";
      out += kDigits[byte >> 4];
      out += kDigits[byte & 15];
    }
    return out;
  };
  // FIPS 180-2 examples.
  EXPECT_EQ(hex(Sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(SecureCompare, MatchesAnyKeyDigest) {
  std::vector<Sha256Digest> keys;
  for (const char* key : {"first-key", "second-key"})
    keys.push_back(Sha256(key).value());
  EXPECT_TRUE(MatchesAnyKeyDigest("first-key", keys));
  EXPECT_TRUE(MatchesAnyKeyDigest("second-key", keys));
  EXPECT_FALSE(MatchesAnyKeyDigest("third-key", keys));
  EXPECT_FALSE(MatchesAnyKeyDigest("first-ke", keys));
  EXPECT_FALSE(MatchesAnyKeyDigest("anything", {}));
}

TEST(Strings, CaseIsFoldedForAsciiLettersOnly) {
  EXPECT_TRUE(EqualsIgnoreCase("Content-Length", "content-LENGTH"));
  EXPECT_TRUE(EqualsIgnoreCase("", ""));
  EXPECT_FALSE(EqualsIgnoreCase("Content-Length", "Content-Lengt"));
  EXPECT_FALSE(EqualsIgnoreCase("x-a", "x-b"));
  // Only A-Z and a-z fold: '@' (0x40) and '`' (0x60), or '[' and '{', differ by the same bit.
  EXPECT_FALSE(EqualsIgnoreCase("@", "`"));
  EXPECT_FALSE(EqualsIgnoreCase("[", "{"));
  EXPECT_FALSE(EqualsIgnoreCase("\xC9", "\xE9"));  // Latin-1 É/é are bytes, not letters here
  EXPECT_EQ(AsciiLower("X-Request-ID: \xC9Z@[`"), "x-request-id: \xC9z@[`");
}

TEST(Strings, SingleQuotedWrapsTheTextAsIs) {
  EXPECT_EQ(SingleQuoted("USB Mic"), "'USB Mic'");
  EXPECT_EQ(SingleQuoted(""), "''");
  EXPECT_EQ(SingleQuoted("it's"), "'it's'");
}

TEST(Ids, HavePrefixAndAreUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewId("req");
    EXPECT_TRUE(std::regex_match(id, std::regex("req_[0-9a-f]{24}"))) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Ids, AcceptableRequestIds) {
  EXPECT_TRUE(IsAcceptableRequestId("abc-123_x.y:z"));
  EXPECT_TRUE(IsAcceptableRequestId(std::string(128, 'a')));
  EXPECT_FALSE(IsAcceptableRequestId(std::string(129, 'a')));
  EXPECT_FALSE(IsAcceptableRequestId(""));
  EXPECT_FALSE(IsAcceptableRequestId("has space"));
  EXPECT_FALSE(IsAcceptableRequestId("quote\""));
  EXPECT_FALSE(IsAcceptableRequestId("new\nline"));
}

TEST(Logging, JsonEscape) {
  EXPECT_EQ(JsonEscape("plain"), "plain");
  EXPECT_EQ(JsonEscape("a\"b\\c"), "a\\\"b\\\\c");
  EXPECT_EQ(JsonEscape("line\nbreak\ttab\r"), "line\\nbreak\\ttab\\r");
  EXPECT_EQ(JsonEscape(std::string("\x01", 1)), "\\u0001");
}

TEST(Worker, RunsTasksInOrderOffTheCallingThread) {
  Worker worker("test", 100);
  std::vector<int> order;
  std::promise<std::thread::id> where;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(worker.Post([&order, i] { order.push_back(i); }));
  }
  ASSERT_TRUE(worker.Post([&where] { where.set_value(std::this_thread::get_id()); }));
  EXPECT_NE(where.get_future().get(), std::this_thread::get_id());
  worker.Stop();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_FALSE(worker.Post([] {})) << "refused after Stop()";
}

TEST(Worker, QueueIsBounded) {
  Worker worker("bounded", 2);
  std::promise<void> release;
  auto released = release.get_future().share();
  std::promise<void> started;
  ASSERT_TRUE(worker.Post([&started, released] {
    started.set_value();
    released.wait();
  }));
  started.get_future().wait();  // the worker is busy; the queue is empty
  EXPECT_TRUE(worker.Post([] {}));
  EXPECT_TRUE(worker.Post([] {}));
  EXPECT_FALSE(worker.Post([] {})) << "a third queued task exceeds the bound";
  release.set_value();
}

TEST(Worker, StopRunsWhatWasQueuedAndSurvivesThrowingTasks) {
  std::atomic<int> ran{0};
  {
    Worker worker("drain", 100);
    ASSERT_TRUE(worker.Post([] { throw std::runtime_error("task failure"); }));
    for (int i = 0; i < 5; ++i)
      ASSERT_TRUE(worker.Post([&ran] { ++ran; }));
  }
  EXPECT_EQ(ran.load(), 5);
}

}  // namespace
}  // namespace callgate::core
