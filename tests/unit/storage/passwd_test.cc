// Passphrase changes (DESIGN §12): the database is rekeyed to a new random
// key, and a crash after any step leaves exactly one passphrase working.
#include <gtest/gtest.h>

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
  EXPECT_EQ(SnapshotDir(dir()), before);
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
