// Database, Statement and Transaction over a real SQLCipher profile database.
#include "rhizome/storage/database.h"

#include <gtest/gtest.h>

#include <optional>

#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/storage/profile.h"
#include "storage_test_util.h"
#include "test_support.h"

namespace rhizome::storage {
namespace {

using testing::FastParams;

constexpr std::string_view kPassphrase = "database test passphrase";

class DatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init().ok());
    crypto::DeterministicRandom rng(1);
    auto p = Profile::Create(dir(), AsBytes(kPassphrase), FastParams(), rng);
    ASSERT_TRUE(p.ok()) << p.error().message;
    profile_.emplace(std::move(*p));
  }

  std::filesystem::path dir() const { return tmp_.path() / "profile"; }
  Database& db() { return profile_->db(); }

  void Reopen() {
    profile_.reset();
    auto p = Profile::Open(dir(), AsBytes(kPassphrase));
    ASSERT_TRUE(p.ok()) << p.error().message;
    profile_.emplace(std::move(*p));
  }

  std::int64_t CountSettings() {
    auto stmt = db().Prepare("SELECT count(*) FROM settings");
    EXPECT_TRUE(stmt.ok());
    auto row = stmt->Step();
    EXPECT_TRUE(row.ok() && *row);
    return stmt->ColumnInt64(0);
  }

  Status PutSetting(std::string_view key, ByteSpan value) {
    auto stmt = db().Prepare("INSERT INTO settings (key, value) VALUES (?1, ?2)");
    if (!stmt) return stmt.error();
    return stmt->Bind(1, key).Bind(2, value).Run();
  }

  rhizome::testing::TempDir tmp_;
  std::optional<Profile> profile_;
};

TEST_F(DatabaseTest, TransactionRollsBackOnDestruction) {
  {
    auto txn = db().Begin();
    ASSERT_TRUE(txn.ok());
    ASSERT_OK(PutSetting("a", AsBytes("1")));
    EXPECT_EQ(CountSettings(), 1);
  }  // no Commit()
  EXPECT_EQ(CountSettings(), 0);
  Reopen();
  EXPECT_EQ(CountSettings(), 0);
}

TEST_F(DatabaseTest, CommittedTransactionPersistsAcrossReopen) {
  {
    auto txn = db().Begin();
    ASSERT_TRUE(txn.ok());
    ASSERT_OK(PutSetting("a", AsBytes("1")));
    ASSERT_OK(PutSetting("b", AsBytes("2")));
    ASSERT_OK(txn->Commit());
  }
  Reopen();
  EXPECT_EQ(CountSettings(), 2);
}

TEST_F(DatabaseTest, CommitTwiceIsRefused) {
  auto txn = db().Begin();
  ASSERT_TRUE(txn.ok());
  ASSERT_OK(txn->Commit());
  EXPECT_ERRC(txn->Commit(), Errc::kInvalidArgument);
}

TEST_F(DatabaseTest, MovedTransactionRollsBackOnce) {
  std::optional<Transaction> outer;
  {
    auto txn = db().Begin();
    ASSERT_TRUE(txn.ok());
    ASSERT_OK(PutSetting("a", AsBytes("1")));
    outer.emplace(std::move(*txn));
  }  // the moved-from transaction does nothing here
  EXPECT_EQ(CountSettings(), 1);
  outer.reset();
  EXPECT_EQ(CountSettings(), 0);
}

TEST_F(DatabaseTest, NestedBeginIsRefused) {
  auto txn = db().Begin();
  ASSERT_TRUE(txn.ok());
  EXPECT_ERRC(db().Begin(), Errc::kInvalidArgument);
}

TEST_F(DatabaseTest, DuplicatePrimaryKeyIsAlreadyExists) {
  ASSERT_OK(PutSetting("k", AsBytes("1")));
  EXPECT_ERRC(PutSetting("k", AsBytes("2")), Errc::kAlreadyExists);
  // The failed statement changed nothing.
  EXPECT_EQ(CountSettings(), 1);
}

TEST_F(DatabaseTest, OtherConstraintViolationIsInvalidArgument) {
  ASSERT_OK(db().Exec("CREATE TABLE t (x INTEGER NOT NULL)"));
  auto stmt = db().Prepare("INSERT INTO t (x) VALUES (?1)");
  ASSERT_TRUE(stmt.ok());
  EXPECT_ERRC(stmt->BindNull(1).Run(), Errc::kInvalidArgument);
}

TEST_F(DatabaseTest, BindToAMissingParameterIsMalformed) {
  auto stmt = db().Prepare("INSERT INTO settings (key, value) VALUES (?1, ?2)");
  ASSERT_TRUE(stmt.ok());
  stmt->Bind(1, std::string_view("k")).Bind(2, AsBytes("v")).Bind(3, std::int64_t{1});
  EXPECT_ERRC(stmt->Step(), Errc::kMalformed);
  EXPECT_EQ(CountSettings(), 0);
  // Reset() clears the bind error; the statement then runs.
  stmt->Reset();
  ASSERT_OK(stmt->Run());
  EXPECT_EQ(CountSettings(), 1);
}

TEST_F(DatabaseTest, ColumnsRoundTrip) {
  ASSERT_OK(db().Exec("CREATE TABLE t (i INTEGER, b BLOB, s TEXT, n BLOB, e BLOB)"));
  const Bytes blob = {0x00, 0x01, 0xff, 0x00, 0x7f};
  auto ins = db().Prepare("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)");
  ASSERT_TRUE(ins.ok());
  ASSERT_OK(ins->Bind(1, std::int64_t{-1234567890123})
                .Bind(2, ByteSpan(blob))
                .Bind(3, std::string_view("h\xc3\xa9llo"))
                .BindNull(4)
                .Bind(5, ByteSpan())
                .Run());
  EXPECT_EQ(db().Changes(), 1);
  EXPECT_EQ(db().LastInsertRowId(), 1);
  auto sel = db().Prepare("SELECT i, b, s, n, e, typeof(e) FROM t");
  ASSERT_TRUE(sel.ok());
  auto row = sel->Step();
  ASSERT_TRUE(row.ok() && *row);
  EXPECT_EQ(sel->ColumnCount(), 6);
  EXPECT_EQ(sel->ColumnInt64(0), -1234567890123);
  EXPECT_EQ(Bytes(sel->ColumnBlob(1).begin(), sel->ColumnBlob(1).end()), blob);
  EXPECT_EQ(sel->ColumnText(2), "h\xc3\xa9llo");
  EXPECT_TRUE(sel->ColumnIsNull(3));
  EXPECT_FALSE(sel->ColumnIsNull(4));  // an empty blob is not NULL
  EXPECT_TRUE(sel->ColumnBlob(4).empty());
  EXPECT_EQ(sel->ColumnText(5), "blob");
  auto done = sel->Step();
  ASSERT_TRUE(done.ok());
  EXPECT_FALSE(*done);
}

TEST_F(DatabaseTest, RunRefusesAStatementThatReturnsRows) {
  auto stmt = db().Prepare("SELECT 1");
  ASSERT_TRUE(stmt.ok());
  EXPECT_ERRC(stmt->Run(), Errc::kInvalidArgument);
}

TEST_F(DatabaseTest, RunResetsSoTheStatementCanBeReused) {
  auto stmt = db().Prepare("INSERT INTO settings (key, value) VALUES (?1, ?2)");
  ASSERT_TRUE(stmt.ok());
  for (std::string_view key : {"x", "y", "z"}) {
    ASSERT_OK(stmt->Bind(1, key).Bind(2, AsBytes(key)).Run());
  }
  EXPECT_EQ(CountSettings(), 3);
}

TEST_F(DatabaseTest, PrepareTakesExactlyOneStatement) {
  EXPECT_ERRC(db().Prepare("SELECT 1; SELECT 2"), Errc::kInternal);
  EXPECT_ERRC(db().Prepare(""), Errc::kInternal);
  EXPECT_ERRC(db().Prepare("SELEKT nonsense"), Errc::kInternal);
  EXPECT_TRUE(db().Prepare("SELECT 1;  \n").ok());
}

TEST_F(DatabaseTest, ExecReportsSqlErrorsWithoutEchoingSql) {
  auto r = db().Exec("INSERT INTO no_such_table VALUES ('secret-value')");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInternal);
  EXPECT_EQ(std::string(r.error().message).find("secret-value"), std::string::npos);
}

TEST_F(DatabaseTest, SchemaIsAtTheCurrentVersion) {
  auto v = db().UserVersion();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, kSchemaVersion);
  for (const char* table : {"identity", "settings"}) {
    auto stmt = db().Prepare("SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?1");
    ASSERT_TRUE(stmt.ok());
    stmt->Bind(1, std::string_view(table));
    auto row = stmt->Step();
    ASSERT_TRUE(row.ok() && *row);
    EXPECT_EQ(stmt->ColumnInt64(0), 1) << table;
  }
}

TEST_F(DatabaseTest, ConnectionRunsWithTheSecuritySettings) {
  auto query = [&](const char* sql) -> std::string {
    auto stmt = db().Prepare(sql);
    EXPECT_TRUE(stmt.ok()) << sql;
    auto row = stmt->Step();
    EXPECT_TRUE(row.ok() && *row) << sql;
    return std::string(stmt->ColumnText(0));
  };
  EXPECT_FALSE(query("PRAGMA cipher_version").empty());
  EXPECT_EQ(query("PRAGMA secure_delete"), "1");
  EXPECT_EQ(query("PRAGMA foreign_keys"), "1");
  EXPECT_EQ(query("PRAGMA journal_mode"), "delete");
  EXPECT_EQ(query("PRAGMA synchronous"), "3");  // EXTRA: the directory is synced too
  EXPECT_EQ(query("PRAGMA temp_store"), "2");
}

TEST_F(DatabaseTest, ForeignKeysAreEnforced) {
  ASSERT_OK(
      db().Exec("CREATE TABLE parent (id INTEGER PRIMARY KEY);"
                "CREATE TABLE child (p INTEGER REFERENCES parent(id));"));
  EXPECT_ERRC(db().Exec("INSERT INTO child VALUES (42)"), Errc::kInvalidArgument);
}

}  // namespace
}  // namespace rhizome::storage
