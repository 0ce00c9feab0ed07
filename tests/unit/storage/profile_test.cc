// Profile: create, open, identity round trips, permissions, wipe, and the
// catalogue of damaged or missing files.
#include "rhizome/storage/profile.h"

#include <gtest/gtest.h>
#include <sqlcipher/sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>

#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/protocol/identity.h"
#include "rhizome/storage/identity_store.h"
#include "storage_test_util.h"
#include "test_support.h"

namespace rhizome::storage {
namespace {

namespace fs = std::filesystem;
using testing::Contains;
using testing::FastParams;
using testing::ReadAll;
using testing::SnapshotDir;
using testing::WriteAll;

constexpr std::string_view kPassphrase = "profile test passphrase";

class ProfileTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(crypto::Init().ok()); }
  fs::path dir() const { return tmp_.path() / "profile"; }
  fs::path db_path() const { return dir() / kDatabaseFileName; }
  fs::path key_path() const { return dir() / kKeyFileName; }

  // Creates a profile holding an identity, then closes it.
  void CreateWithIdentity() {
    auto p = Profile::Create(dir(), AsBytes(kPassphrase), FastParams(), rng_);
    ASSERT_TRUE(p.ok()) << p.error().message;
    auto id = protocol::GenerateIdentity("Alice", rng_);
    ASSERT_TRUE(id.ok());
    ASSERT_OK(SaveIdentity(p->db(), *id));
    public_key_ = id->signing.public_key;
  }

  // Open with kPassphrase must fail with `code`, changing no file.
  void ExpectOpenFails(Errc code) {
    const auto before = SnapshotDir(dir());
    auto p = Profile::Open(dir(), AsBytes(kPassphrase));
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().code, code) << p.error().message;
    p = Error{Errc::kInternal, ""};  // close anything it held before comparing
    EXPECT_EQ(SnapshotDir(dir()), before);
  }

  rhizome::testing::TempDir tmp_;
  crypto::DeterministicRandom rng_{42};
  ByteArray<32> public_key_{};
};

TEST_F(ProfileTest, CreateOpenSaveLoadAndReopen) {
  CreateWithIdentity();
  for (int i = 0; i < 2; ++i) {
    auto p = Profile::Open(dir(), AsBytes(kPassphrase));
    ASSERT_TRUE(p.ok()) << p.error().message;
    EXPECT_EQ(p->dir(), dir());
    auto id = LoadIdentity(p->db());
    ASSERT_TRUE(id.ok()) << id.error().message;
    EXPECT_EQ(id->display_name, "Alice");
    EXPECT_EQ(id->signing.public_key, public_key_);
  }
}

TEST_F(ProfileTest, ExistsReportsProfiles) {
  EXPECT_FALSE(Profile::Exists(dir()));
  CreateWithIdentity();
  EXPECT_TRUE(Profile::Exists(dir()));
  EXPECT_TRUE(Profile::Exists(dir() / ""));  // a trailing slash names the same profile
  EXPECT_FALSE(Profile::Exists(tmp_.path()));
}

TEST_F(ProfileTest, CreateMakesPrivateFilesWhateverTheUmask) {
  const mode_t old = ::umask(0);  // would give 0777 dirs and 0666 files
  auto p = Profile::Create(dir(), AsBytes(kPassphrase), FastParams(), rng_);
  ::umask(old);
  ASSERT_TRUE(p.ok()) << p.error().message;
  struct stat st {};
  ASSERT_EQ(::stat(dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir())) {
    ASSERT_EQ(::stat(entry.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << entry.path();
    ++files;
  }
  EXPECT_EQ(files, 2);  // profile.db and profile.key, nothing else
}

TEST_F(ProfileTest, RollbackJournalIsPrivateToo) {
  const mode_t old = ::umask(0);
  auto p = Profile::Create(dir(), AsBytes(kPassphrase), FastParams(), rng_);
  ASSERT_TRUE(p.ok());
  auto txn = p->db().Begin();
  const bool inserted = p->db().Exec("INSERT INTO settings (key, value) VALUES ('k', x'01')").ok();
  ::umask(old);  // the journal was created under umask 0
  ASSERT_TRUE(txn.ok());
  ASSERT_TRUE(inserted);
  const fs::path journal = dir() / (std::string(kDatabaseFileName) + "-journal");
  struct stat st {};
  ASSERT_EQ(::stat(journal.c_str(), &st), 0) << "expected a rollback journal";
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_OK(txn->Commit());
  EXPECT_FALSE(fs::exists(journal));  // journal_mode = DELETE
}

TEST_F(ProfileTest, CreateTightensAnExistingDirectory) {
  fs::create_directories(dir());
  fs::permissions(dir(), fs::perms::all);
  auto p = Profile::Create(dir(), AsBytes(kPassphrase), FastParams(), rng_);
  ASSERT_TRUE(p.ok()) << p.error().message;
  struct stat st {};
  ASSERT_EQ(::stat(dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(ProfileTest, CreateRefusesADirectoryHoldingOtherFiles) {
  fs::create_directories(dir());
  fs::permissions(dir(), fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read);
  WriteAll(dir() / "photo.jpg", "not ours");
  EXPECT_ERRC(Profile::Create(dir(), AsBytes(kPassphrase), FastParams(), rng_),
              Errc::kInvalidArgument);
  EXPECT_EQ(SnapshotDir(dir()).size(), 1u);
  struct stat st {};
  ASSERT_EQ(::stat(dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0744u);  // left alone
}

TEST_F(ProfileTest, CreateWithForceInASharedDirectoryChangesNothing) {
  CreateWithIdentity();
  WriteAll(dir() / "photo.jpg", "not ours");
  const auto before = SnapshotDir(dir());
  EXPECT_ERRC(Profile::Create(dir(), AsBytes("x"), FastParams(), rng_, /*force=*/true),
              Errc::kInvalidArgument);
  EXPECT_EQ(SnapshotDir(dir()), before);
  EXPECT_TRUE(Profile::Open(dir(), AsBytes(kPassphrase)).ok());
}

TEST_F(ProfileTest, CreateOverAnExistingProfileIsRefused) {
  CreateWithIdentity();
  const auto before = SnapshotDir(dir());
  auto p = Profile::Create(dir(), AsBytes("another passphrase"), FastParams(), rng_);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, Errc::kAlreadyExists);
  EXPECT_EQ(SnapshotDir(dir()), before);
}

TEST_F(ProfileTest, CreateWithForceReplacesTheProfile) {
  CreateWithIdentity();
  {
    auto p = Profile::Create(dir(), AsBytes("another passphrase"), FastParams(), rng_,
                             /*force=*/true);
    ASSERT_TRUE(p.ok()) << p.error().message;
    EXPECT_ERRC(LoadIdentity(p->db()), Errc::kNotFound);
  }
  EXPECT_ERRC(Profile::Open(dir(), AsBytes(kPassphrase)), Errc::kWrongPassphrase);
  EXPECT_TRUE(Profile::Open(dir(), AsBytes("another passphrase")).ok());
}

TEST_F(ProfileTest, CreateRejectsBadArgumentsAndLeavesNoFiles) {
  EXPECT_ERRC(Profile::Create(dir(), AsBytes(""), FastParams(), rng_), Errc::kInvalidArgument);
  const std::string too_long(kMaxPassphraseBytes + 1, 'p');
  EXPECT_ERRC(Profile::Create(dir(), AsBytes(too_long), FastParams(), rng_),
              Errc::kInvalidArgument);
  EXPECT_ERRC(Profile::Create(dir(), AsBytes(kPassphrase), {0, 8192}, rng_),
              Errc::kInvalidArgument);
  EXPECT_ERRC(Profile::Create(dir(), AsBytes(kPassphrase), {1, 1024}, rng_),
              Errc::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir()));
  // A regular file where the directory should be.
  WriteAll(dir(), "not a directory");
  EXPECT_ERRC(Profile::Create(dir(), AsBytes(kPassphrase), FastParams(), rng_),
              Errc::kInvalidArgument);
  EXPECT_EQ(ReadAll(dir()), "not a directory");
}

TEST_F(ProfileTest, LongestPassphraseIsAccepted) {
  const std::string longest(kMaxPassphraseBytes, 'p');
  ASSERT_TRUE(Profile::Create(dir(), AsBytes(longest), FastParams(), rng_).ok());
  EXPECT_TRUE(Profile::Open(dir(), AsBytes(longest)).ok());
  EXPECT_ERRC(Profile::Open(dir(), AsBytes(longest + "p")), Errc::kInvalidArgument);
  EXPECT_ERRC(Profile::Open(dir(), AsBytes("")), Errc::kInvalidArgument);
}

TEST_F(ProfileTest, OpenWithoutAProfileIsNotFound) {
  EXPECT_ERRC(Profile::Open(dir(), AsBytes(kPassphrase)), Errc::kNotFound);
  fs::create_directories(dir());
  EXPECT_ERRC(Profile::Open(dir(), AsBytes(kPassphrase)), Errc::kNotFound);
}

TEST_F(ProfileTest, WrongPassphraseChangesNothing) {
  CreateWithIdentity();
  const auto before = SnapshotDir(dir());
  auto p = Profile::Open(dir(), AsBytes("profile test passphrasE"));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, Errc::kWrongPassphrase);
  EXPECT_STREQ(p.error().message, "wrong passphrase or damaged profile");
  EXPECT_EQ(SnapshotDir(dir()), before);
  EXPECT_TRUE(Profile::Open(dir(), AsBytes(kPassphrase)).ok());
}

TEST_F(ProfileTest, ASecondOpenOfAnOpenProfileIsRefused) {
  CreateWithIdentity();
  auto first = Profile::Open(dir(), AsBytes(kPassphrase));
  ASSERT_TRUE(first.ok());
  EXPECT_ERRC(Profile::Open(dir(), AsBytes(kPassphrase)), Errc::kIo);
  EXPECT_ERRC(Profile::Wipe(dir(), rng_), Errc::kIo);
  EXPECT_ERRC(Profile::Create(dir(), AsBytes(kPassphrase), FastParams(), rng_, true), Errc::kIo);
  first = Error{Errc::kInternal, ""};  // closes it
  EXPECT_TRUE(Profile::Open(dir(), AsBytes(kPassphrase)).ok());
}

TEST_F(ProfileTest, MovedProfileKeepsWorking) {
  CreateWithIdentity();
  auto p = Profile::Open(dir(), AsBytes(kPassphrase));
  ASSERT_TRUE(p.ok());
  Profile moved = std::move(*p);
  EXPECT_TRUE(LoadIdentity(moved.db()).ok());
}

// --- Missing and damaged files -------------------------------------------

TEST_F(ProfileTest, MissingKeyFileIsCorrupt) {
  CreateWithIdentity();
  fs::remove(key_path());
  ExpectOpenFails(Errc::kCorrupt);
}

TEST_F(ProfileTest, MissingDatabaseIsCorrupt) {
  CreateWithIdentity();
  fs::remove(db_path());
  ExpectOpenFails(Errc::kCorrupt);
  EXPECT_FALSE(fs::exists(db_path()));  // Open did not create one
}

TEST_F(ProfileTest, DamagedKeyFileIsCorrupt) {
  CreateWithIdentity();
  const std::string good = ReadAll(key_path());
  for (std::size_t i : {0ul, 9ul, 30ul, 80ul, good.size() - 1}) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x04);
    WriteAll(key_path(), bad);
    ExpectOpenFails(i == 9 ? Errc::kUnsupported : Errc::kCorrupt);
  }
  for (std::size_t len : {0ul, 10ul, good.size() - 1}) {
    WriteAll(key_path(), good.substr(0, len));
    ExpectOpenFails(Errc::kCorrupt);
  }
  WriteAll(key_path(), good + std::string(kMaxKeyFileBytes, 'x'));
  ExpectOpenFails(Errc::kCorrupt);
  WriteAll(key_path(), good);
  EXPECT_TRUE(Profile::Open(dir(), AsBytes(kPassphrase)).ok());
}

TEST_F(ProfileTest, ZeroLengthDatabaseIsCorrupt) {
  CreateWithIdentity();
  WriteAll(db_path(), "");
  ExpectOpenFails(Errc::kCorrupt);
}

TEST_F(ProfileTest, TruncatedDatabaseIsCorrupt) {
  CreateWithIdentity();
  const std::string good = ReadAll(db_path());
  ASSERT_GE(good.size(), 3u * 1024);
  for (std::size_t len : {1ul, 16ul, 100ul, 1023ul, 1024ul, 1025ul, 2048ul, good.size() - 1024,
                          good.size() - 13, good.size() - 1}) {
    SCOPED_TRACE(len);
    WriteAll(db_path(), good.substr(0, len));
    ExpectOpenFails(Errc::kCorrupt);
  }
  WriteAll(db_path(), good + "partial page");  // not a whole number of pages
  ExpectOpenFails(Errc::kCorrupt);
  WriteAll(db_path(), good);
  EXPECT_TRUE(Profile::Open(dir(), AsBytes(kPassphrase)).ok());
}

TEST_F(ProfileTest, RandomBytesDatabaseIsCorrupt) {
  CreateWithIdentity();
  const std::size_t size = fs::file_size(db_path());
  Bytes noise(size);
  rng_.Fill(noise);
  WriteAll(db_path(), std::string(noise.begin(), noise.end()));
  ExpectOpenFails(Errc::kCorrupt);
}

TEST_F(ProfileTest, AFlippedByteInAnyPageIsCorrupt) {
  CreateWithIdentity();
  const std::string good = ReadAll(db_path());
  const std::size_t page = 1024;  // SQLCipher 3 default page size
  ASSERT_EQ(good.size() % page, 0u);
  // Bytes page-12..page-1 are SQLCipher 3's padding after the 16-byte IV and
  // 20-byte HMAC: neither authenticated nor used, so flipping them changes no
  // data. Every other byte is covered: data, IV and HMAC.
  for (std::size_t p = 0; p < good.size() / page; ++p) {
    for (std::size_t offset : {0ul, 17ul, 500ul, page - 49, page - 48, page - 33, page - 13}) {
      SCOPED_TRACE(p * page + offset);
      std::string bad = good;
      bad[p * page + offset] = static_cast<char>(bad[p * page + offset] ^ 0x01);
      WriteAll(db_path(), bad);
      ExpectOpenFails(Errc::kCorrupt);
    }
  }
  WriteAll(db_path(), good);
  EXPECT_TRUE(Profile::Open(dir(), AsBytes(kPassphrase)).ok());
}

TEST_F(ProfileTest, UnencryptedDatabaseInPlaceOfTheProfileIsRefused) {
  CreateWithIdentity();
  fs::remove(db_path());
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db_path().c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "CREATE TABLE identity (x); PRAGMA user_version = 1", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
  ExpectOpenFails(Errc::kCorrupt);
}

TEST_F(ProfileTest, DatabaseOfAnotherProfileIsRefused) {
  CreateWithIdentity();
  const fs::path other = tmp_.path() / "other";
  ASSERT_TRUE(Profile::Create(other, AsBytes(kPassphrase), FastParams(), rng_).ok());
  fs::copy_file(other / kDatabaseFileName, db_path(), fs::copy_options::overwrite_existing);
  ExpectOpenFails(Errc::kCorrupt);
}

TEST_F(ProfileTest, NewerSchemaIsUnsupported) {
  {
    auto p = Profile::Create(dir(), AsBytes(kPassphrase), FastParams(), rng_);
    ASSERT_TRUE(p.ok());
    ASSERT_OK(p->db().Exec("PRAGMA user_version = " + std::to_string(kSchemaVersion + 1)));
  }
  ExpectOpenFails(Errc::kUnsupported);
}

TEST_F(ProfileTest, DatabaseWithoutSchemaIsCorrupt) {
  {
    auto p = Profile::Create(dir(), AsBytes(kPassphrase), FastParams(), rng_);
    ASSERT_TRUE(p.ok());
    ASSERT_OK(p->db().Exec("PRAGMA user_version = 0"));
  }
  ExpectOpenFails(Errc::kCorrupt);
}

TEST_F(ProfileTest, LeftoverTempKeyFilesAreRemovedAfterOpen) {
  CreateWithIdentity();
  const fs::path tmp_key = dir() / (std::string(kKeyFileName) + ".tmp");
  const fs::path tmp_new = dir() / (std::string(kNewKeyFileName) + ".tmp");
  WriteAll(tmp_key, "half-written");
  WriteAll(tmp_new, "half-written");
  ASSERT_TRUE(Profile::Open(dir(), AsBytes(kPassphrase)).ok());
  EXPECT_FALSE(fs::exists(tmp_key));
  EXPECT_FALSE(fs::exists(tmp_new));
}

// --- Wipe --------------------------------------------------------------------

TEST_F(ProfileTest, WipeRemovesTheProfileAndItsDirectory) {
  CreateWithIdentity();
  ASSERT_OK(Profile::Wipe(dir(), rng_));
  EXPECT_FALSE(fs::exists(dir()));
  EXPECT_FALSE(Profile::Exists(dir()));
  EXPECT_ERRC(Profile::Open(dir(), AsBytes(kPassphrase)), Errc::kNotFound);
}

TEST_F(ProfileTest, WipeOverwritesTheFilesBeforeRemovingThem) {
  CreateWithIdentity();
  // Hard links keep the inodes reachable after Wipe unlinks the names, so we
  // can see what Wipe wrote into them.
  const fs::path key_link = tmp_.path() / "key-link";
  const fs::path db_link = tmp_.path() / "db-link";
  fs::create_hard_link(key_path(), key_link);
  fs::create_hard_link(db_path(), db_link);
  const std::string key_before = ReadAll(key_path());
  const std::string db_before = ReadAll(db_path());
  ASSERT_OK(Profile::Wipe(dir(), rng_));
  const std::string key_after = ReadAll(key_link);
  const std::string db_after = ReadAll(db_link);
  EXPECT_GE(key_after.size(), key_before.size());
  EXPECT_FALSE(Contains(key_after, key_before.substr(0, 8)));  // not even the magic
  EXPECT_NE(key_after.substr(0, key_before.size()), key_before);
  ASSERT_EQ(db_after.size(), db_before.size());
  EXPECT_NE(db_after, db_before);
  EXPECT_FALSE(Contains(db_after, db_before.substr(0, 16)));  // the salt is gone too
}

TEST_F(ProfileTest, WipeLeavesFilesThatAreNotTheProfiles) {
  CreateWithIdentity();
  WriteAll(dir() / "notes.txt", "mine");
  ASSERT_OK(Profile::Wipe(dir(), rng_));
  EXPECT_FALSE(Profile::Exists(dir()));
  EXPECT_EQ(ReadAll(dir() / "notes.txt"), "mine");
  EXPECT_FALSE(fs::exists(db_path()));
  EXPECT_FALSE(fs::exists(key_path()));
}

TEST_F(ProfileTest, WipeAlsoRemovesAnInterruptedChangesKeyFile) {
  CreateWithIdentity();
  fs::copy_file(key_path(), dir() / kNewKeyFileName);
  ASSERT_OK(Profile::Wipe(dir(), rng_));
  EXPECT_FALSE(fs::exists(dir()));
}

TEST_F(ProfileTest, WipeOfNothingIsNotFound) {
  EXPECT_ERRC(Profile::Wipe(dir(), rng_), Errc::kNotFound);
  fs::create_directories(dir());
  EXPECT_ERRC(Profile::Wipe(dir(), rng_), Errc::kNotFound);
  EXPECT_TRUE(fs::exists(dir()));
}

}  // namespace
}  // namespace rhizome::storage
