// Argon2id: known answers, determinism, parameter validation.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "rhizome/crypto/pwhash.h"
#include "test_support.h"

namespace rhizome::crypto {
namespace {

using rhizome::testing::Hex;

// Small parameters keep the tests fast: 1 pass over 8 KiB (libsodium's minimum).
const Argon2idParams kSmall{1, 8192};

Bytes Derive(std::string_view pass, ByteSpan salt, const Argon2idParams& params,
             std::size_t len = 32) {
  Bytes out(len);
  auto st = Argon2id(AsBytes(pass), salt, params, out);
  EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
  return out;
}

TEST(Argon2id, KnownAnswersFromAnIndependentImplementation) {
  // Computed with Python "cryptography" (OpenSSL's Argon2id, version 0x13,
  // lanes = 1, memory in KiB = mem_limit / 1024), independent of libsodium:
  //   Argon2id(salt, length, iterations, lanes=1, memory_cost).derive(passphrase)
  struct Case {
    const char* pass;
    const char* salt;
    Argon2idParams params;
    const char* out;
  };
  const Case cases[] = {
      {"correct horse battery staple", "000102030405060708090a0b0c0d0e0f", {1, 8192},
       "d17ea6341ca93da6079ea2f64dc4aa31dd1aaf9caa67fb42ac4afd0714706f26"},
      {"", "00000000000000000000000000000000", {2, 16384}, "b509d7c245637341eb2870b4d19d57d3"},
      {"rhizome", "101112131415161718191a1b1c1d1e1f", {3, 65536},
       "d14e9aa06953364ad83fe6a84bac77a94a2cd4df8a3538af646b8bfa78bf8cd71089372ad9f14af23949fe36"
       "490cc8b38abb6d32ab2047b22375a14cb6fe8692"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.out);
    const Bytes expected = Hex(c.out);
    EXPECT_EQ(ToHex(Derive(c.pass, Hex(c.salt), c.params, expected.size())), c.out);
  }
}

TEST(Argon2id, SameInputsGiveSameKey) {
  const Bytes salt(kArgon2SaltBytes, 0x11);
  EXPECT_EQ(Derive("passphrase", salt, kSmall), Derive("passphrase", salt, kSmall));
}

TEST(Argon2id, DifferentSaltPassphraseOrParametersGiveDifferentKeys) {
  const Bytes salt(kArgon2SaltBytes, 0x11);
  Bytes other_salt = salt;
  other_salt[15] ^= 1;
  const Bytes base = Derive("passphrase", salt, kSmall);
  EXPECT_NE(base, Derive("passphrase", other_salt, kSmall));
  EXPECT_NE(base, Derive("passphrasf", salt, kSmall));
  EXPECT_NE(base, Derive("", salt, kSmall));
  EXPECT_NE(base, Derive("passphrase", salt, Argon2idParams{2, 8192}));
  EXPECT_NE(base, Derive("passphrase", salt, Argon2idParams{1, 16384}));
}

TEST(Argon2id, InteractiveParametersWork) {
  const Bytes salt(kArgon2SaltBytes, 0x22);
  const Bytes a = Derive("interactive", salt, Argon2idParams::Interactive());
  EXPECT_EQ(a, Derive("interactive", salt, Argon2idParams::Interactive()));
  EXPECT_NE(a, Derive("interactive", salt, kSmall));
}

TEST(Argon2id, NamedParameterSetsAreLibsodiumsLevels) {
  const auto i = Argon2idParams::Interactive();
  const auto m = Argon2idParams::Moderate();
  const auto s = Argon2idParams::Sensitive();
  EXPECT_EQ(i.ops_limit, 2u);
  EXPECT_EQ(i.mem_limit, 64ull << 20);
  EXPECT_EQ(m.ops_limit, 3u);
  EXPECT_EQ(m.mem_limit, 256ull << 20);
  EXPECT_EQ(s.ops_limit, 4u);
  EXPECT_EQ(s.mem_limit, 1ull << 30);
  for (const auto& p : {i, m, s}) EXPECT_TRUE(p.Validate().ok());
}

TEST(Argon2id, FromNameKnowsTheThreeLevelsOnly) {
  auto i = Argon2idParams::FromName("interactive");
  auto m = Argon2idParams::FromName("moderate");
  auto s = Argon2idParams::FromName("sensitive");
  ASSERT_TRUE(i.ok() && m.ok() && s.ok());
  EXPECT_EQ(i->mem_limit, Argon2idParams::Interactive().mem_limit);
  EXPECT_EQ(m->ops_limit, Argon2idParams::Moderate().ops_limit);
  EXPECT_EQ(m->mem_limit, Argon2idParams::Moderate().mem_limit);
  EXPECT_EQ(s->mem_limit, Argon2idParams::Sensitive().mem_limit);
  for (const char* bad : {"", "Moderate", "fast", "moderate ", "min"}) {
    auto r = Argon2idParams::FromName(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  }
}

TEST(Argon2id, ParametersOutsideTheAcceptedRangeAreRejected) {
  // A damaged or hostile key file must not make us allocate unbounded memory or spin forever.
  const Argon2idParams bad[] = {
      {0, 8192},                                // below libsodium's minimum passes
      {1, 8191},                                // below the minimum memory
      {1, 0},
      {kArgon2MaxOpsLimit + 1, 8192},           // above our cap on passes
      {1, kArgon2MaxMemLimit + 1},              // above our cap on memory
      {UINT64_MAX, UINT64_MAX},
  };
  const Bytes salt(kArgon2SaltBytes, 0x33);
  for (const auto& p : bad) {
    SCOPED_TRACE(std::to_string(p.ops_limit) + " / " + std::to_string(p.mem_limit));
    auto v = p.Validate();
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.error().code, Errc::kInvalidArgument);
    Bytes out(32);
    EXPECT_EQ(Argon2id(AsBytes("x"), salt, p, out).error().code, Errc::kInvalidArgument);
  }
  // The bounds themselves are accepted (validated only: not run).
  EXPECT_TRUE((Argon2idParams{1, 8192}.Validate().ok()));
  EXPECT_TRUE((Argon2idParams{kArgon2MaxOpsLimit, kArgon2MaxMemLimit}.Validate().ok()));
}

TEST(Argon2id, WrongSaltOrOutputSizeIsRejected) {
  Bytes out(32);
  EXPECT_EQ(Argon2id(AsBytes("x"), Bytes(15), kSmall, out).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(Argon2id(AsBytes("x"), Bytes(17), kSmall, out).error().code, Errc::kInvalidArgument);
  const Bytes salt(kArgon2SaltBytes);
  Bytes too_short(15), too_long(65), shortest(16), longest(64);
  EXPECT_EQ(Argon2id(AsBytes("x"), salt, kSmall, too_short).error().code,
            Errc::kInvalidArgument);
  EXPECT_EQ(Argon2id(AsBytes("x"), salt, kSmall, too_long).error().code, Errc::kInvalidArgument);
  EXPECT_TRUE(Argon2id(AsBytes("x"), salt, kSmall, shortest).ok());
  EXPECT_TRUE(Argon2id(AsBytes("x"), salt, kSmall, longest).ok());
}

}  // namespace
}  // namespace rhizome::crypto
