// SaveIdentity / LoadIdentity against a real profile database.
#include "rhizome/storage/identity_store.h"

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

class IdentityStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(crypto::Init().ok());
    auto p = Profile::Create(tmp_.path() / "p", AsBytes("pass"), FastParams(), rng_);
    ASSERT_TRUE(p.ok()) << p.error().message;
    profile_.emplace(std::move(*p));
    auto id = protocol::GenerateIdentity("Carol \xe2\x9c\x8a", rng_);  // with a raised fist
    ASSERT_TRUE(id.ok());
    identity_.emplace(std::move(*id));
  }

  Database& db() { return profile_->db(); }

  // Overwrites one column of the stored row.
  void Damage(const char* column, ByteSpan value) {
    auto stmt = db().Prepare(std::string("UPDATE identity SET ") + column + " = ?1");
    ASSERT_TRUE(stmt.ok());
    ASSERT_OK(stmt->Bind(1, value).Run());
  }

  rhizome::testing::TempDir tmp_;
  crypto::DeterministicRandom rng_{5};
  std::optional<Profile> profile_;
  std::optional<protocol::Identity> identity_;
};

TEST_F(IdentityStoreTest, SavedIdentityLoadsBackEqual) {
  ASSERT_OK(SaveIdentity(db(), *identity_));
  auto loaded = LoadIdentity(db());
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->display_name, identity_->display_name);
  EXPECT_EQ(loaded->signing.public_key, identity_->signing.public_key);
  EXPECT_TRUE(loaded->signing.secret_key.ConstantTimeEquals(identity_->signing.secret_key));
  EXPECT_EQ(loaded->noise.public_key, identity_->noise.public_key);
  EXPECT_TRUE(loaded->noise.secret_key.ConstantTimeEquals(identity_->noise.secret_key));
  EXPECT_EQ(loaded->certificate, identity_->certificate);
}

TEST_F(IdentityStoreTest, NoIdentityIsNotFound) {
  EXPECT_ERRC(LoadIdentity(db()), Errc::kNotFound);
}

TEST_F(IdentityStoreTest, SecondIdentityIsRefused) {
  ASSERT_OK(SaveIdentity(db(), *identity_));
  auto other = protocol::GenerateIdentity("Dave", rng_);
  ASSERT_TRUE(other.ok());
  auto r = SaveIdentity(db(), *other);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kAlreadyExists);
  EXPECT_STREQ(r.error().message, "the profile already has an identity");
  EXPECT_EQ(LoadIdentity(db())->display_name, identity_->display_name);
}

TEST_F(IdentityStoreTest, InconsistentIdentityIsNotSaved) {
  identity_->certificate[0] ^= 1;
  EXPECT_ERRC(SaveIdentity(db(), *identity_), Errc::kInvalidArgument);
  identity_->certificate[0] ^= 1;
  identity_->display_name = "";
  EXPECT_ERRC(SaveIdentity(db(), *identity_), Errc::kInvalidArgument);
  EXPECT_ERRC(LoadIdentity(db()), Errc::kNotFound);
}

TEST_F(IdentityStoreTest, DamagedStoredKeysAreCorrupt) {
  struct Case {
    const char* column;
    Bytes value;
  };
  const Case cases[] = {
      {"signing_public", Bytes(31, 1)},         // wrong size
      {"signing_public", Bytes(32, 1)},         // does not match the secret
      {"signing_secret", Bytes(64, 1)},         // wrong size
      {"signing_secret", Bytes(32, 1)},         // another key: public mismatch
      {"noise_public", Bytes(32, 9)},           // does not match the secret
      {"noise_secret", Bytes(33, 1)},           // wrong size
      {"certificate", Bytes(64, 0)},            // does not verify
      {"certificate", Bytes()},                 // wrong size
      {"display_name", Bytes{'a', 0x01, 'b'}},  // control character
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.column);
    ASSERT_OK(db().Exec("DELETE FROM identity"));
    ASSERT_OK(SaveIdentity(db(), *identity_));
    Damage(c.column, c.value);
    EXPECT_ERRC(LoadIdentity(db()), Errc::kCorrupt);
  }
}

TEST_F(IdentityStoreTest, IdentitySurvivesReopen) {
  ASSERT_OK(SaveIdentity(db(), *identity_));
  profile_.reset();
  auto p = Profile::Open(tmp_.path() / "p", AsBytes("pass"));
  ASSERT_TRUE(p.ok());
  auto loaded = LoadIdentity(p->db());
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->noise.public_key, identity_->noise.public_key);
}

}  // namespace
}  // namespace rhizome::storage
