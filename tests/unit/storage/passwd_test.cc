// Passphrase changes (DESIGN §12): the database is rekeyed to a new random
// key, and a crash after any step leaves exactly one passphrase working.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <optional>

#include "key_file.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/protocol/identity.h"
#include "rhizome/storage/identity_store.h"
#include "rhizome/storage/profile.h"
#include "storage_test_util.h"
#include "test_support.h"

namespace rhizome::storage {
namespace {

namespace fs = std::filesystem;
using testing::FastParams;
using testing::ReadAll;
using testing::SnapshotDir;
using testing::WriteAll;

constexpr std::string_view kOld = "old passphrase";
constexpr std::string_view kNew = "new passphrase";
// SQLite's rollback journal magic, at the start of every journal header.
constexpr std::string_view kJournalMagic = "\xd9\xd5\x05\xf9\x20\xa1\x63\xd7";

// Lowers this process's RLIMIT_FSIZE until destroyed, with SIGXFSZ ignored so
// that a write past the limit fails (EFBIG) instead of killing the process:
// a deterministic "disk full" for every file written while it lives.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ok_ = ::getrlimit(RLIMIT_FSIZE, &saved_) == 0;
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    rlimit lowered = saved_;
    lowered.rlim_cur = bytes;
    ok_ = ok_ && old_handler_ != SIG_ERR && ::setrlimit(RLIMIT_FSIZE, &lowered) == 0;
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    if (old_handler_ != SIG_ERR) ::signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;
  bool ok() const { return ok_; }

 private:
  rlimit saved_{};
  sighandler_t old_handler_ = SIG_ERR;
  bool ok_ = false;
};

class PasswdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init().ok());
    auto p = Profile::Create(dir(), AsBytes(kOld), FastParams(), rng_);
    ASSERT_TRUE(p.ok()) << p.error().message;
    auto id = protocol::GenerateIdentity("Bob", rng_);
    ASSERT_TRUE(id.ok());
    ASSERT_OK(SaveIdentity(p->db(), *id));
    public_key_ = id->signing.public_key;
    old_key_file_ = ReadAll(key_path());
  }

  fs::path dir() const { return tmp_.path() / "profile"; }
  fs::path key_path() const { return dir() / kKeyFileName; }
  fs::path new_key_path() const { return dir() / kNewKeyFileName; }
  fs::path db_path() const { return dir() / kDatabaseFileName; }
  fs::path journal_path() const { return dir() / (std::string(kDatabaseFileName) + "-journal"); }

  // Adds a 32 KiB row, so a rekey has a few dozen pages to rewrite.
  static void Grow(Database& db) {
    ASSERT_OK(db.Exec("INSERT INTO settings (key, value) VALUES ('bulk', zeroblob(32768))"));
  }

  // The value of a settings row, or nullopt.
  static std::optional<std::string> Setting(Database& db, std::string_view key) {
    auto stmt = db.Prepare("SELECT value FROM settings WHERE key = ?1");
    if (!stmt) return std::nullopt;
    stmt->Bind(1, key);
    auto row = stmt->Step();
    if (!row || !*row) return std::nullopt;
    const ByteSpan v = stmt->ColumnBlob(0);
    return std::string(v.begin(), v.end());
  }

  // Opens with the old passphrase and changes it, stopping after `crash_at`.
  Status Change(const PasswdStep* crash_at) {
    auto p = Profile::Open(dir(), AsBytes(kOld));
    if (!p) return p.error();
    return p->ChangePassphrase(AsBytes(kNew), FastParams(), rng_, crash_at);
  }

  // Opening with `passphrase` succeeds and the data is intact.
  void ExpectOpens(std::string_view passphrase) {
    auto p = Profile::Open(dir(), AsBytes(passphrase));
    ASSERT_TRUE(p.ok()) << passphrase << ": " << p.error().message;
    auto id = LoadIdentity(p->db());
    ASSERT_TRUE(id.ok()) << id.error().message;
    EXPECT_EQ(id->signing.public_key, public_key_);
  }

  // Opening with `passphrase` fails with `code` and changes no file.
  void ExpectRefused(std::string_view passphrase, Errc code) {
    const auto before = SnapshotDir(dir());
    {
      auto p = Profile::Open(dir(), AsBytes(passphrase));
      ASSERT_FALSE(p.ok()) << passphrase << " opened the profile";
      EXPECT_EQ(p.error().code, code) << p.error().message;
    }
    EXPECT_EQ(SnapshotDir(dir()), before);
  }

  // The database key a key file holds for `passphrase`.
  static Bytes UnwrapKey(const std::string& key_file, std::string_view passphrase) {
    auto parsed = ParseKeyFile(AsBytes(key_file));
    if (!parsed) return {};
    auto key = UnwrapDatabaseKey(*parsed, AsBytes(passphrase));
    if (!key) return {};
    return Bytes(key->expose().begin(), key->expose().end());
  }

  rhizome::testing::TempDir tmp_;
  crypto::DeterministicRandom rng_{99};
  ByteArray<32> public_key_{};
  std::string old_key_file_;
};

TEST_F(PasswdTest, CompletedChangeOpensWithTheNewPassphraseOnly) {
  ASSERT_OK(Change(nullptr));
  EXPECT_FALSE(fs::exists(new_key_path()));
  ExpectOpens(kNew);
  ExpectRefused(kOld, Errc::kWrongPassphrase);
  // Only the two profile files remain.
  EXPECT_EQ(SnapshotDir(dir()).size(), 2u);
}

TEST_F(PasswdTest, ChangeRekeysTheDatabaseToAFreshKey) {
  const Bytes old_key = UnwrapKey(old_key_file_, kOld);
  ASSERT_EQ(old_key.size(), 32u);
  ASSERT_OK(Change(nullptr));
  const Bytes new_key = UnwrapKey(ReadAll(key_path()), kNew);
  ASSERT_EQ(new_key.size(), 32u);
  EXPECT_NE(new_key, old_key);
}

// SECURITY: a coerced or leaked old passphrase plus a saved copy of the old key
// file must not open the profile after a change: the database key changed.
TEST_F(PasswdTest, OldPassphraseWithACopyOfTheOldKeyFileNoLongerOpens) {
  ASSERT_OK(Change(nullptr));
  const std::string new_key_file = ReadAll(key_path());
  // The attacker restores the old key file in place...
  WriteAll(key_path(), old_key_file_);
  ExpectRefused(kOld, Errc::kCorrupt);  // unwraps, but the key opens nothing
  // ...or beside the new one, as if a change had been interrupted.
  WriteAll(key_path(), new_key_file);
  WriteAll(new_key_path(), old_key_file_);
  ExpectRefused(kOld, Errc::kWrongPassphrase);
  // The owner still gets in, and the stale file is cleaned away.
  ExpectOpens(kNew);
  EXPECT_FALSE(fs::exists(new_key_path()));
}

TEST_F(PasswdTest, ChangeCanBeRepeated) {
  ASSERT_OK(Change(nullptr));
  {
    auto p = Profile::Open(dir(), AsBytes(kNew));
    ASSERT_TRUE(p.ok());
    ASSERT_OK(p->ChangePassphrase(AsBytes("third"), FastParams(), rng_));
    // The open profile keeps working after its rekey.
    EXPECT_TRUE(LoadIdentity(p->db()).ok());
  }
  ExpectOpens("third");
  ExpectRefused(kNew, Errc::kWrongPassphrase);
  ExpectRefused(kOld, Errc::kWrongPassphrase);
}

TEST_F(PasswdTest, ChangeRejectsBadArgumentsAndChangesNothing) {
  auto p = Profile::Open(dir(), AsBytes(kOld));
  ASSERT_TRUE(p.ok());
  const auto before = SnapshotDir(dir());
  EXPECT_ERRC(p->ChangePassphrase(AsBytes(""), FastParams(), rng_), Errc::kInvalidArgument);
  EXPECT_ERRC(
      p->ChangePassphrase(AsBytes(std::string(kMaxPassphraseBytes + 1, 'x')), FastParams(), rng_),
      Errc::kInvalidArgument);
  EXPECT_ERRC(p->ChangePassphrase(AsBytes(kNew), {1, 10}, rng_), Errc::kInvalidArgument);
  {
    auto txn = p->db().Begin();
    ASSERT_TRUE(txn.ok());
    EXPECT_ERRC(p->ChangePassphrase(AsBytes(kNew), FastParams(), rng_), Errc::kInvalidArgument);
  }
  {
    // The change replaces the connection; a statement must not outlive it.
    auto stmt = p->db().Prepare("SELECT count(*) FROM settings");
    ASSERT_TRUE(stmt.ok());
    EXPECT_ERRC(p->ChangePassphrase(AsBytes(kNew), FastParams(), rng_), Errc::kInvalidArgument);
    auto row = stmt->Step();
    ASSERT_TRUE(row.ok());
    EXPECT_TRUE(*row);
  }
  EXPECT_EQ(SnapshotDir(dir()), before);
  ASSERT_OK(p->ChangePassphrase(AsBytes(kNew), FastParams(), rng_));  // once they are gone
}

// If Open() could not finish an interrupted change, the current key may live
// in profile.key.new; a new change must not overwrite it.
TEST_F(PasswdTest, ChangeRefusesToRunOverAnUnfinishedChange) {
  auto p = Profile::Open(dir(), AsBytes(kOld));
  ASSERT_TRUE(p.ok());
  WriteAll(new_key_path(), old_key_file_);  // as if the tidy-up had failed
  const auto before = SnapshotDir(dir());
  EXPECT_ERRC(p->ChangePassphrase(AsBytes(kNew), FastParams(), rng_), Errc::kIo);
  EXPECT_EQ(SnapshotDir(dir()), before);
}

// --- A rekey that fails part way --------------------------------------------

// SECURITY: SQLCipher 3.4.1's rekey installs the new key for writing before it
// rewrites any page and does not take it back when a page write fails, so the
// connection would go on reading with the old key and writing with the new
// one: pages nobody can decrypt. The journal outgrowing the file size limit
// makes the rekey fail part way; the profile must stay on the old passphrase
// and what it writes afterwards must still be readable.
TEST_F(PasswdTest, RekeyFailingPartWayDoesNotLeaveWritesUnderAnUnknownKey) {
  {
    auto p = Profile::Open(dir(), AsBytes(kOld));
    ASSERT_TRUE(p.ok()) << p.error().message;
    Grow(p->db());
  }
  // The rekey journals every page (after a 512-byte header, 1032 bytes per
  // 1024-byte page), so it outgrows each of these limits before it finishes:
  // after its first page, half way, or at its last pages, and before its
  // commit, so the database file itself is not written while a limit holds.
  const auto db_size = fs::file_size(db_path());
  ASSERT_GE(db_size, 32u * 1024);
  for (const std::uintmax_t limit_bytes : {std::uintmax_t{2048}, db_size / 2, db_size}) {
    SCOPED_TRACE(limit_bytes);
    const std::string value = "after " + std::to_string(limit_bytes);
    {
      auto p = Profile::Open(dir(), AsBytes(kOld));
      ASSERT_TRUE(p.ok()) << p.error().message;
      Status changed;
      {
        FileSizeLimit limit(static_cast<rlim_t>(limit_bytes));
        ASSERT_TRUE(limit.ok());
        changed = p->ChangePassphrase(AsBytes(kNew), FastParams(), rng_);
      }
      ASSERT_FALSE(changed.ok());
      EXPECT_EQ(changed.error().code, Errc::kIo);
      EXPECT_STREQ(changed.error().message,
                   "rekeying the database failed; the passphrase is unchanged");
      EXPECT_FALSE(fs::exists(new_key_path()));
      EXPECT_FALSE(fs::exists(journal_path()));
      EXPECT_EQ(ReadAll(key_path()), old_key_file_);

      // The same Profile keeps working: a new row, and a rewrite of every
      // page of the big one.
      auto stmt = p->db().Prepare("INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)");
      ASSERT_TRUE(stmt.ok());
      ASSERT_OK(stmt->Bind(1, std::string_view("after")).Bind(2, AsBytes(value)).Run());
      ASSERT_OK(p->db().Exec("UPDATE settings SET value = zeroblob(32700) WHERE key = 'bulk'"));
      EXPECT_EQ(Setting(p->db(), "after"), value);
    }
    ExpectRefused(kNew, Errc::kWrongPassphrase);
    ExpectOpens(kOld);  // every page decrypts (quick_check) under the old key
    auto p = Profile::Open(dir(), AsBytes(kOld));
    ASSERT_TRUE(p.ok()) << p.error().message;
    EXPECT_EQ(Setting(p->db(), "after"), value);
    EXPECT_EQ(Setting(p->db(), "bulk"), std::string(32700, '\0'));
  }
  // A later change, with room on the disk, works.
  {
    auto p = Profile::Open(dir(), AsBytes(kOld));
    ASSERT_TRUE(p.ok()) << p.error().message;
    ASSERT_OK(p->ChangePassphrase(AsBytes(kNew), FastParams(), rng_));
    EXPECT_TRUE(Setting(p->db(), "after").has_value());
  }
  ExpectOpens(kNew);
  ExpectRefused(kOld, Errc::kWrongPassphrase);
}

// SECURITY: the rekey's journal holds every page of the database encrypted
// under the OLD key. Unlinked as is, its blocks would keep them for whoever
// later learns the old passphrase and holds a copy of the old key file. It is
// overwritten with random bytes before it is removed.
TEST_F(PasswdTest, RekeyJournalIsOverwrittenBeforeItIsRemoved) {
  auto p = Profile::Open(dir(), AsBytes(kOld));
  ASSERT_TRUE(p.ok()) << p.error().message;
  Grow(p->db());
  const auto db_size = fs::file_size(db_path());
  // SQLite writes its journal into an existing file; a hard link keeps that
  // inode readable after the name is removed.
  const fs::path link = tmp_.path() / "journal-link";
  WriteAll(journal_path(), "");
  fs::create_hard_link(journal_path(), link);
  ASSERT_OK(p->ChangePassphrase(AsBytes(kNew), FastParams(), rng_));
  EXPECT_FALSE(fs::exists(journal_path()));
  const std::string residue = ReadAll(link);
  EXPECT_GE(residue.size(), db_size);  // it did hold every page
  EXPECT_FALSE(testing::Contains(residue, kJournalMagic));
  // The profile is on the new key, and keeps working.
  ASSERT_OK(p->db().Exec("INSERT INTO settings (key, value) VALUES ('after', x'01')"));
  p = Error{Errc::kInternal, ""};
  ExpectOpens(kNew);
}

// A rekey's journal whose scrub was cut short (by a crash, or a failed
// overwrite) is not hot; the next open overwrites and removes it.
TEST_F(PasswdTest, OpenScrubsALeftoverJournal) {
  const std::string residue = std::string(512, '\0') + "RESIDUE OF OLD-KEY PAGES";
  WriteAll(journal_path(), residue);  // a zeroed header: what PERSIST leaves
  const fs::path link = tmp_.path() / "journal-link";
  fs::create_hard_link(journal_path(), link);
  ExpectOpens(kOld);
  EXPECT_FALSE(fs::exists(journal_path()));
  const std::string after = ReadAll(link);
  EXPECT_EQ(after.size(), residue.size());
  EXPECT_FALSE(testing::Contains(after, "RESIDUE"));
}

// --- A crash after each step -------------------------------------------------

TEST_F(PasswdTest, CrashAfterNewKeyFileWrittenLeavesTheOldPassphrase) {
  const PasswdStep step = PasswdStep::kAfterNewKeyFileWritten;
  EXPECT_ERRC(Change(&step), Errc::kInternal);
  ASSERT_TRUE(fs::exists(new_key_path()));
  EXPECT_EQ(ReadAll(key_path()), old_key_file_);
  ExpectRefused(kNew, Errc::kWrongPassphrase);
  ExpectOpens(kOld);
  // The open tidied away the key file that opens nothing.
  EXPECT_FALSE(fs::exists(new_key_path()));
  EXPECT_EQ(ReadAll(key_path()), old_key_file_);
  ExpectRefused(kNew, Errc::kWrongPassphrase);
  ExpectOpens(kOld);
}

TEST_F(PasswdTest, CrashAfterRekeyLeavesTheNewPassphrase) {
  const PasswdStep step = PasswdStep::kAfterRekey;
  EXPECT_ERRC(Change(&step), Errc::kInternal);
  ASSERT_TRUE(fs::exists(new_key_path()));
  EXPECT_EQ(ReadAll(key_path()), old_key_file_);
  ExpectRefused(kOld, Errc::kWrongPassphrase);
  ExpectOpens(kNew);
  // The open finished the change.
  EXPECT_FALSE(fs::exists(new_key_path()));
  EXPECT_NE(ReadAll(key_path()), old_key_file_);
  ExpectRefused(kOld, Errc::kWrongPassphrase);
  ExpectOpens(kNew);
  // And the old key file, restored from a copy, opens nothing.
  WriteAll(key_path(), old_key_file_);
  ExpectRefused(kOld, Errc::kCorrupt);
}

TEST_F(PasswdTest, CrashAfterRenameLeavesTheNewPassphrase) {
  const PasswdStep step = PasswdStep::kAfterRename;
  EXPECT_ERRC(Change(&step), Errc::kInternal);
  EXPECT_FALSE(fs::exists(new_key_path()));
  ExpectRefused(kOld, Errc::kWrongPassphrase);
  ExpectOpens(kNew);
  ExpectRefused(kOld, Errc::kWrongPassphrase);
  WriteAll(key_path(), old_key_file_);
  ExpectRefused(kOld, Errc::kCorrupt);
}

// Between the rekey and the rename the old key file is overwritten in place; a
// crash there leaves a damaged profile.key beside a good profile.key.new.
TEST_F(PasswdTest, CrashWhileRetiringTheOldKeyFileLeavesTheNewPassphrase) {
  const PasswdStep step = PasswdStep::kAfterRekey;
  EXPECT_ERRC(Change(&step), Errc::kInternal);
  Bytes noise(old_key_file_.size());
  rng_.Fill(noise);
  WriteAll(key_path(), std::string(noise.begin(), noise.end()));
  ExpectRefused(kOld, Errc::kWrongPassphrase);
  ExpectOpens(kNew);
  EXPECT_FALSE(fs::exists(new_key_path()));
  ExpectOpens(kNew);
}

// A crash while profile.key.new was being written leaves only its temp file.
TEST_F(PasswdTest, CrashWhileWritingTheNewKeyFileLeavesTheOldPassphrase) {
  const PasswdStep step = PasswdStep::kAfterNewKeyFileWritten;
  EXPECT_ERRC(Change(&step), Errc::kInternal);
  const std::string partial = ReadAll(new_key_path()).substr(0, 50);
  fs::remove(new_key_path());
  WriteAll(dir() / (std::string(kNewKeyFileName) + ".tmp"), partial);
  ExpectRefused(kNew, Errc::kWrongPassphrase);
  ExpectOpens(kOld);
  EXPECT_EQ(SnapshotDir(dir()).size(), 2u);
}

}  // namespace
}  // namespace rhizome::storage
