// How the database key reaches SQLCipher (DESIGN §12): through sqlite3_key_v2
// and sqlite3_rekey_v2 with the raw-key string x'<hex>' held in wiped memory,
// never as `PRAGMA key` SQL text (SQLite's parser copies statement text into
// memory it does not wipe). Databases keyed either way open either way, so
// profiles made with the pragma keep opening. Also: a closed Database.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "database_internal.h"  // defines SQLITE_HAS_CODEC: sqlite3_key_v2
#include "key_file.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/protocol/identity.h"
#include "rhizome/storage/identity_store.h"
#include "rhizome/storage/profile.h"
#include "schema.h"
#include "storage_test_util.h"
#include "test_support.h"

namespace rhizome::storage {
namespace {

namespace fs = std::filesystem;
using testing::FastParams;
using testing::ReadAll;

constexpr std::string_view kMarker = "keying-test-marker-7f3a";

crypto::SecretBytes TestKey(std::uint64_t seed) {
  crypto::DeterministicRandom rng(seed);
  return crypto::SecretBytes::Random(rng, kDatabaseKeyBytes);
}

// The pre-change way of keying: `PRAGMA <verb> = "x'<hex>'"` as SQL text.
// (Tests only: the hex key sits in an ordinary string here.)
int ExecKeyPragma(sqlite3* db, std::string_view verb, const crypto::SecretBytes& key) {
  const std::string sql = "PRAGMA " + std::string(verb) + " = \"x'" + ToHex(key.expose()) + "'\"";
  return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
}

// Opens `path` keyed by pragma text; nullptr on failure.
Connection OpenWithKeyPragma(const fs::path& path, const crypto::SecretBytes& key, bool create) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
  Connection conn(nullptr);
  if (sqlite3_open_v2(path.c_str(), &raw, flags, nullptr) != SQLITE_OK) {
    sqlite3_close_v2(raw);
    return conn;
  }
  conn = Connection(raw);
  if (ExecKeyPragma(raw, "key", key) != SQLITE_OK) return Connection();
  return conn;
}

// The marker row of table t, or nullopt if the query fails.
std::optional<std::string> ReadMarker(sqlite3* db) {
  sqlite3_stmt* stmt = nullptr;
  std::optional<std::string> out;
  if (sqlite3_prepare_v2(db, "SELECT v FROM t", -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(stmt, 0);
    if (text != nullptr) out = reinterpret_cast<const char*>(text);
  }
  sqlite3_finalize(stmt);
  return out;
}

int WriteMarker(sqlite3* db) {
  const std::string sql =
      "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('" + std::string(kMarker) + "')";
  return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
}

class KeyingTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(crypto::Init().ok()); }
  fs::path db_path() const { return tmp_.path() / "keyed.db"; }

  // The file is no plain SQLite database: its first bytes are SQLCipher's
  // random salt, not "SQLite format 3".
  void ExpectEncrypted() const { EXPECT_NE(ReadAll(db_path()).substr(0, 15), "SQLite format 3"); }

  rhizome::testing::TempDir tmp_;
};

TEST_F(KeyingTest, RawKeySpecIsXQuotedHexInWipedMemory) {
  crypto::SecretBytes key(kDatabaseKeyBytes);
  for (std::size_t i = 0; i < key.size(); ++i) key.expose_mut()[i] = static_cast<std::uint8_t>(i);
  const crypto::SecretBytes spec = RawKeySpec(key);
  ASSERT_EQ(spec.size(), kRawKeySpecBytes + 1);
  EXPECT_EQ(kRawKeySpecBytes, 67u);
  const std::string text(reinterpret_cast<const char*>(spec.expose().data()), kRawKeySpecBytes);
  EXPECT_EQ(text, "x'000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'");
  EXPECT_EQ(spec.expose()[kRawKeySpecBytes], 0);
}

// Compatibility: every profile made before the switch to sqlite3_key_v2 was
// keyed with the pragma text.
TEST_F(KeyingTest, DatabaseKeyedByPragmaTextOpensThroughTheKeyApi) {
  const auto key = TestKey(1);
  {
    Connection conn = OpenWithKeyPragma(db_path(), key, /*create=*/true);
    ASSERT_NE(conn.get(), nullptr);
    ASSERT_EQ(WriteMarker(conn.get()), SQLITE_OK);
  }
  ExpectEncrypted();
  auto conn = OpenKeyedConnection(db_path(), key, /*create=*/false);
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  EXPECT_EQ(ReadMarker(conn->get()), std::string(kMarker));
  // Another key does not open it.
  auto wrong = OpenKeyedConnection(db_path(), TestKey(2), /*create=*/false);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, kKeyMismatch.code);
}

TEST_F(KeyingTest, DatabaseKeyedThroughTheKeyApiOpensByPragmaText) {
  const auto key = TestKey(3);
  {
    auto conn = OpenKeyedConnection(db_path(), key, /*create=*/true);
    ASSERT_TRUE(conn.ok()) << conn.error().message;
    ASSERT_EQ(WriteMarker(conn->get()), SQLITE_OK);
  }
  ExpectEncrypted();
  Connection conn = OpenWithKeyPragma(db_path(), key, /*create=*/false);
  ASSERT_NE(conn.get(), nullptr);
  EXPECT_EQ(ReadMarker(conn.get()), std::string(kMarker));
}

// The x'..' string is read as a raw key: the same 32 bytes handed to SQLCipher
// as a passphrase (which it would stretch with PBKDF2) give another key.
TEST_F(KeyingTest, TheKeyIsUsedRawNotAsAPassphrase) {
  const auto key = TestKey(4);
  {
    auto conn = OpenKeyedConnection(db_path(), key, /*create=*/true);
    ASSERT_TRUE(conn.ok()) << conn.error().message;
    ASSERT_EQ(WriteMarker(conn->get()), SQLITE_OK);
  }
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db_path().c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  Connection conn(raw);
  ASSERT_EQ(sqlite3_key_v2(raw, "main", key.expose().data(), static_cast<int>(key.size())),
            SQLITE_OK);
  EXPECT_EQ(ReadMarker(raw), std::nullopt);
}

TEST_F(KeyingTest, RekeyThroughTheApiMatchesThePragmaText) {
  const auto old_key = TestKey(5);
  const auto new_key = TestKey(6);
  {
    auto conn = OpenKeyedConnection(db_path(), old_key, /*create=*/true);
    ASSERT_TRUE(conn.ok()) << conn.error().message;
    ASSERT_EQ(WriteMarker(conn->get()), SQLITE_OK);
    ASSERT_OK(RekeyConnection(conn->get(), new_key));
  }
  {
    Connection conn = OpenWithKeyPragma(db_path(), new_key, /*create=*/false);
    ASSERT_NE(conn.get(), nullptr);
    EXPECT_EQ(ReadMarker(conn.get()), std::string(kMarker));
    // And back, the old way.
    ASSERT_EQ(ExecKeyPragma(conn.get(), "rekey", old_key), SQLITE_OK);
  }
  auto conn = OpenKeyedConnection(db_path(), old_key, /*create=*/false);
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  EXPECT_EQ(ReadMarker(conn->get()), std::string(kMarker));
  EXPECT_FALSE(OpenKeyedConnection(db_path(), new_key, /*create=*/false).ok());
}

// A whole profile whose database was keyed the old way (pragma text) opens
// with its passphrase, and its identity loads.
TEST_F(KeyingTest, ProfileKeyedByPragmaTextStillOpens) {
  crypto::DeterministicRandom rng(7);
  const fs::path dir = tmp_.path() / "profile";
  constexpr std::string_view kPassphrase = "keyed the old way";
  ASSERT_TRUE(Profile::Create(dir, AsBytes(kPassphrase), FastParams(), rng).ok());
  auto file = ParseKeyFile(AsBytes(ReadAll(dir / kKeyFileName)));
  ASSERT_TRUE(file.ok());
  auto key = UnwrapDatabaseKey(*file, AsBytes(kPassphrase));
  ASSERT_TRUE(key.ok());
  // Rebuild profile.db as the code before sqlite3_key_v2 did.
  fs::remove(dir / kDatabaseFileName);
  auto id = protocol::GenerateIdentity("Old Way", rng);
  ASSERT_TRUE(id.ok());
  {
    Connection conn = OpenWithKeyPragma(dir / kDatabaseFileName, *key, /*create=*/true);
    ASSERT_NE(conn.get(), nullptr);
    Database db = DatabaseAccess::Adopt(std::move(conn));
    ASSERT_OK(ConfigureConnection(DatabaseAccess::Handle(db)));
    ASSERT_OK(MigrateSchema(db, 0));
    ASSERT_OK(SaveIdentity(db, *id));
  }
  auto p = Profile::Open(dir, AsBytes(kPassphrase));
  ASSERT_TRUE(p.ok()) << p.error().message;
  auto loaded = LoadIdentity(p->db());
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->display_name, "Old Way");
  EXPECT_EQ(loaded->signing.public_key, id->signing.public_key);
}

TEST(ClosedDatabaseTest, EveryCallFailsWithoutTouchingSqlite) {
  Database db = DatabaseAccess::Closed();
  EXPECT_EQ(DatabaseAccess::Handle(db), nullptr);
  EXPECT_ERRC(db.Exec("SELECT 1"), Errc::kIo);
  EXPECT_ERRC(db.Prepare("SELECT 1"), Errc::kIo);
  EXPECT_ERRC(db.Begin(), Errc::kIo);
  EXPECT_ERRC(db.UserVersion(), Errc::kIo);
  EXPECT_EQ(db.LastInsertRowId(), 0);
  EXPECT_EQ(db.Changes(), 0);
  auto r = db.Exec("SELECT 1");
  ASSERT_FALSE(r.ok());
  EXPECT_STREQ(r.error().message, "profile database is closed; reopen the profile");
}

}  // namespace
}  // namespace rhizome::storage
