#include "store/database.hpp"

#include "store/statement.hpp"

#include "support/process.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>
#include <future>
#include <thread>

namespace callgate::store {
namespace {

using callgate::testing::TempDir;

std::string Query(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  std::string value;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  return value;
}

std::string OnDatabaseThread(Database& database, const char* sql) {
  std::promise<std::string> result;
  EXPECT_TRUE(database.Post([&](sqlite3* db) { result.set_value(Query(db, sql)); }));
  return result.get_future().get();
}

TEST(Database, CreatesDirectoriesWalAndMigrations) {
  TempDir dir;
  const auto path = (dir.path() / "nested" / "deeper" / "callgate.db").string();
  auto database = Database::Open(path);
  EXPECT_EQ(database->schema_version(), 1);
  EXPECT_EQ(OnDatabaseThread(*database, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(OnDatabaseThread(*database, "PRAGMA synchronous"), "2");  // FULL
  EXPECT_EQ(OnDatabaseThread(*database, "SELECT COUNT(*) FROM schema_migrations"), "1");
  EXPECT_FALSE(
      OnDatabaseThread(*database, "SELECT value FROM meta WHERE key='created_at'").empty());
}

TEST(Database, StatementsAreCompiledOncePerConnectionAndLentOneAtATime) {
  TempDir dir;
  auto database = Database::Open((dir.path() / "callgate.db").string());
  constexpr std::string_view kSql = "SELECT value FROM meta WHERE key = ?1";
  std::promise<void> checked;
  ASSERT_TRUE(database->Post([&](sqlite3* db) {
    sqlite3_stmt* first = Database::Acquire(db, kSql);
    ASSERT_NE(first, nullptr);
    EXPECT_STREQ(sqlite3_sql(first), std::string(kSql).c_str());
    // In use further up the stack: the caller must prepare its own.
    EXPECT_EQ(Database::Acquire(db, kSql), nullptr);
    sqlite3_bind_text(first, 1, "created_at", -1, SQLITE_STATIC);
    EXPECT_EQ(sqlite3_step(first), SQLITE_ROW);
    Database::Release(first);  // reset, bindings cleared
    sqlite3_stmt* again = Database::Acquire(db, kSql);
    EXPECT_EQ(again, first);
    EXPECT_EQ(sqlite3_step(again), SQLITE_DONE);  // ?1 is NULL now: no row
    Database::Release(again);
    EXPECT_EQ(Database::Acquire(db, "SELECT nonsense FROM nowhere"), nullptr);
    checked.set_value();
  }));
  checked.get_future().wait();

  // Off the database thread there is no cache.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &raw), SQLITE_OK);
  EXPECT_EQ(Database::Acquire(raw, "SELECT 1"), nullptr);
  sqlite3_close(raw);
  // Close() finalizes the cached statements, so the connection really closes (a statement left
  // behind would make sqlite3_close fail and leak the connection: LeakSanitizer would report it).
  database->Close();
}

TEST(Statement, RunsAgainWithNewBindsAndReportsFailures) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  ASSERT_TRUE(Exec(db, "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)"));
  EXPECT_FALSE(Exec(db, "CREATE TABLE t (x)")) << "already exists";
  {
    Transaction transaction(db);
    ASSERT_TRUE(transaction.ok());
    Statement insert(db, "INSERT INTO t (k, v) VALUES (?1, ?2)");
    ASSERT_TRUE(insert.ok());
    // One statement, several rows: Run() resets after each step, the binds chain.
    EXPECT_TRUE(insert.Bind(1, std::int64_t{1}).Bind(2, "one").Run());
    EXPECT_TRUE(insert.Bind(1, std::int64_t{2}).Bind(2, std::string("two")).Run());
    EXPECT_FALSE(insert.Bind(1, std::int64_t{2}).Bind(2, "again").Run()) << "duplicate key";
    EXPECT_NE(insert.error().find("UNIQUE"), std::string::npos) << insert.error();
    EXPECT_TRUE(insert.BindNull(1).Bind(2, "three").Run()) << "the failure did not stick";
    EXPECT_TRUE(transaction.Commit());
  }
  {
    Statement count(db, "SELECT COUNT(*), MAX(k) FROM t WHERE v <> ?1");
    ASSERT_EQ(count.Bind(1, "none").Step(), SQLITE_ROW);
    EXPECT_EQ(count.Int64(0), 3);
    EXPECT_EQ(count.Int64(1), 3);
    count.Reset();  // binds kept
    ASSERT_EQ(count.Step(), SQLITE_ROW);
    EXPECT_EQ(count.Int64(0), 3);
    count.Reset();
    ASSERT_EQ(count.Bind(1, "two").Step(), SQLITE_ROW);
    EXPECT_EQ(count.Int64(0), 2);
    Statement bad(db, "SELECT nonsense FROM nowhere");
    EXPECT_FALSE(bad.ok());
    EXPECT_FALSE(bad.Bind(1, "x").Run());
  }  // finalized before the connection closes
  EXPECT_EQ(sqlite3_close(db), SQLITE_OK);
}

TEST(Database, CheckpointsRunInTheBackgroundAndKeepTheWalBounded) {
  TempDir dir;
  const auto path = (dir.path() / "callgate.db").string();
  auto database = Database::Open(path);
  std::promise<void> written;
  ASSERT_TRUE(database->Post([&](sqlite3* db) {
    sqlite3_exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)", nullptr, nullptr, nullptr);
    // No fsync per commit in this test: it is about checkpoints, and 2,000 fsyncs are slow.
    sqlite3_exec(db, "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr);
    // Each commit appends at least one page to the WAL: well past checkpoint_frames().
    for (int i = 0; i < 2 * database->checkpoint_frames(); ++i) {
      sqlite3_exec(db, "INSERT INTO t (v) VALUES (randomblob(3000))", nullptr, nullptr, nullptr);
    }
    written.set_value();
  }));
  written.get_future().wait();
  // The checkpoint thread copies the pages to the database file while the writer goes on.
  for (int i = 0; i < 500 && database->checkpoint_stats().background == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GE(database->checkpoint_stats().background, 1u);
  EXPECT_GT(database->checkpoint_stats().last_backfilled, 0);  // it copied pages
  EXPECT_EQ(OnDatabaseThread(*database, "SELECT COUNT(*) FROM t"),
            std::to_string(2 * database->checkpoint_frames()));
  database->Close();
  // The file holds every row after a clean close.
  auto reopened = Database::Open(path);
  EXPECT_EQ(OnDatabaseThread(*reopened, "SELECT COUNT(*) FROM t"),
            std::to_string(2 * reopened->checkpoint_frames()));
}

TEST(Database, ANewFileGetsLargePagesAndAnOldOneKeepsItsOwn) {
  TempDir dir;
  const auto fresh = (dir.path() / "fresh.db").string();
  {
    auto database = Database::Open(fresh);
    EXPECT_EQ(database->page_bytes(), Database::kPageBytes);
    EXPECT_EQ(OnDatabaseThread(*database, "PRAGMA page_size"),
              std::to_string(Database::kPageBytes));
    // The checkpoint bound is in bytes: 4 MiB of WAL is 128 frames of 32 KiB.
    EXPECT_EQ(database->checkpoint_frames(), 128);
  }
  // A file written by an earlier callgate, with SQLite's default 4 KiB pages and a row in it.
  const auto old = (dir.path() / "old.db").string();
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(old.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw,
                         "PRAGMA page_size=4096; PRAGMA journal_mode=WAL;"
                         " CREATE TABLE kept (v TEXT); INSERT INTO kept VALUES ('still here');",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_close(raw), SQLITE_OK);
  auto database = Database::Open(old);
  EXPECT_EQ(database->page_bytes(), 4096);
  EXPECT_EQ(OnDatabaseThread(*database, "PRAGMA page_size"), "4096");
  EXPECT_EQ(database->checkpoint_frames(), 1024);
  EXPECT_EQ(OnDatabaseThread(*database, "SELECT v FROM kept"), "still here");
}

TEST(Database, ReopeningAppliesNothingTwice) {
  TempDir dir;
  const auto path = (dir.path() / "callgate.db").string();
  Database::Open(path)->Close();
  auto database = Database::Open(path);
  EXPECT_EQ(OnDatabaseThread(*database, "SELECT COUNT(*) FROM schema_migrations"), "1");
  EXPECT_EQ(OnDatabaseThread(*database, "SELECT COUNT(*) FROM meta"), "1");
}

TEST(Database, RefusesASchemaNewerThanItKnows) {
  TempDir dir;
  const auto path = (dir.path() / "callgate.db").string();
  {
    auto database = Database::Open(path);
    std::promise<void> done;
    database->Post([&](sqlite3* db) {
      sqlite3_exec(db, "INSERT INTO schema_migrations VALUES (999, 'future', 0)", nullptr, nullptr,
                   nullptr);
      done.set_value();
    });
    done.get_future().wait();
  }
  try {
    Database::Open(path);
    FAIL() << "expected a refusal";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("999"), std::string::npos) << e.what();
  }
}

TEST(Database, UnopenablePathIsAClearError) {
  TempDir dir;
  const auto file = dir.path() / "a-file";
  { std::ofstream(file) << "x"; }
  try {
    Database::Open((file / "callgate.db").string());  // parent is a regular file
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("a-file"), std::string::npos) << e.what();
  }
}

constexpr Migration kWidgets[] = {
    {200, "widgets", "CREATE TABLE widgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"},
};
constexpr Migration kWidgetsAndGadgets[] = {
    {200, "widgets", "CREATE TABLE widgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"},
    {100, "gadgets", "CREATE TABLE gadgets (id INTEGER PRIMARY KEY);"},
};

TEST(Database, AppliesModuleMigrationsIncludingOnesAddedBelowTheHighest) {
  TempDir dir;
  const auto path = (dir.path() / "callgate.db").string();
  {
    auto database = Database::Open(path, kWidgets);
    EXPECT_EQ(database->schema_version(), 200);
    EXPECT_EQ(OnDatabaseThread(*database, "SELECT COUNT(*) FROM widgets"), "0");
  }
  // A later build adds a migration numbered below one already applied (another module's range):
  // it is applied, and nothing is applied twice.
  auto database = Database::Open(path, kWidgetsAndGadgets);
  EXPECT_EQ(database->schema_version(), 200);
  EXPECT_EQ(OnDatabaseThread(*database, "SELECT COUNT(*) FROM gadgets"), "0");
  EXPECT_EQ(OnDatabaseThread(*database, "SELECT group_concat(version) FROM schema_migrations"),
            "1,100,200");
}

TEST(Database, RefusesAFileWithAMigrationThisBuildDoesNotKnow) {
  TempDir dir;
  const auto path = (dir.path() / "callgate.db").string();
  Database::Open(path, kWidgets)->Close();
  try {
    Database::Open(path);  // a build without the widgets module
    FAIL() << "expected a refusal";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("200"), std::string::npos) << e.what();
  }
}

TEST(Database, RefusesTwoMigrationsSharingAVersion) {
  constexpr Migration kClash[] = {
      {1, "clash", "CREATE TABLE clash (id INTEGER);"},
  };
  TempDir dir;
  try {
    Database::Open((dir.path() / "callgate.db").string(), kClash);
    FAIL() << "expected a refusal";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("share version 1"), std::string::npos) << e.what();
  }
}

TEST(Database, PingAnswersOnTheDatabaseThread) {
  TempDir dir;
  auto database = Database::Open((dir.path() / "callgate.db").string());
  std::promise<bool> ok;
  ASSERT_TRUE(database->Post([&](sqlite3* db) { ok.set_value(Database::Ping(db)); }));
  EXPECT_TRUE(ok.get_future().get());
  database->Close();
  EXPECT_FALSE(database->Post([](sqlite3*) {})) << "closed databases refuse work";
}

}  // namespace
}  // namespace callgate::store
