// The checked-in fuzz corpus for the key-file parser
// (tests/fuzz/corpus/key_file/) is generated here, deterministically, and
// this test checks the files on disk still match the generator and that each
// file is what its name says. To regenerate after a format change:
//   RHIZOME_WRITE_KEY_FILE_CORPUS=1 ./storage_unit_tests --gtest_filter='KeyFileCorpus*'
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>

#include "key_file.h"
#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "storage_test_util.h"
#include "test_support.h"

namespace rhizome::storage {
namespace {

namespace fs = std::filesystem;

// The passphrase of the valid corpus files (the fuzz target tries it).
constexpr std::string_view kCorpusPassphrase = "fuzz";

Bytes Reseal(Bytes b) {
  auto sum = crypto::Blake2b256(ByteSpan(b).first(kKeyFileChecksumOffset));
  std::copy(sum.begin(), sum.end(), b.begin() + kKeyFileChecksumOffset);
  return b;
}

Bytes Valid(std::uint64_t seed, crypto::Argon2idParams params) {
  crypto::DeterministicRandom rng(seed);
  auto key = crypto::SecretBytes::Random(rng, 32);
  auto file = WrapDatabaseKey(key, AsBytes(kCorpusPassphrase), params, rng);
  EXPECT_TRUE(file.ok());
  return SerializeKeyFile(*file);
}

std::map<std::string, Bytes> MakeCorpus() {
  std::map<std::string, Bytes> c;
  const Bytes valid = Valid(1, {1, 8192});
  c["valid_min_cost.key"] = valid;
  c["valid_ops3_mem64k.key"] = Valid(2, {3, 65536});
  c["empty.key"] = {};
  c["truncated_header.key"] = Bytes(valid.begin(), valid.begin() + 40);
  c["truncated_checksum.key"] = Bytes(valid.begin(), valid.end() - 1);
  Bytes trailing = valid;
  trailing.push_back(0);
  c["trailing_byte.key"] = trailing;
  Bytes magic = valid;
  magic[0] = 'X';
  c["bad_magic.key"] = Reseal(magic);
  Bytes version = valid;
  version[9] = 2;
  c["version_2.key"] = Reseal(version);
  Bytes checksum = valid;
  checksum[50] ^= 0x80;
  c["bad_checksum.key"] = checksum;
  Bytes huge = valid;
  huge[kKeyFileMemOffset + 2] = 0x01;  // mem_limit = 2^40 + 8192, checksum fixed
  c["mem_1tib_resealed.key"] = Reseal(huge);
  Bytes ops = valid;
  ops[kKeyFileOpsOffset] = 0xff;
  c["ops_huge_resealed.key"] = Reseal(ops);
  Bytes tag = valid;
  tag[kKeyFileChecksumOffset - 1] ^= 0x01;
  c["tampered_tag_resealed.key"] = Reseal(tag);
  return c;
}

fs::path CorpusDir() {
  return rhizome::testing::VectorPath("").parent_path().parent_path() / "fuzz" / "corpus" /
         "key_file";
}

TEST(KeyFileCorpus, CheckedInCorpusMatchesTheGenerator) {
  ASSERT_TRUE(crypto::Init().ok());
  const auto corpus = MakeCorpus();
  if (std::getenv("RHIZOME_WRITE_KEY_FILE_CORPUS") != nullptr) {
    fs::create_directories(CorpusDir());
    for (const auto& [name, bytes] : corpus) {
      testing::WriteAll(CorpusDir() / name, std::string(bytes.begin(), bytes.end()));
    }
  }
  for (const auto& [name, bytes] : corpus) {
    SCOPED_TRACE(name);
    const fs::path path = CorpusDir() / name;
    ASSERT_TRUE(fs::exists(path)) << path;
    EXPECT_EQ(testing::ReadAll(path), std::string(bytes.begin(), bytes.end()));
  }
}

TEST(KeyFileCorpus, EachCorpusFileIsWhatItsNameSays) {
  ASSERT_TRUE(crypto::Init().ok());
  for (const auto& [name, bytes] : MakeCorpus()) {
    SCOPED_TRACE(name);
    auto parsed = ParseKeyFile(bytes);
    if (name.rfind("valid_", 0) == 0) {
      ASSERT_TRUE(parsed.ok()) << parsed.error().message;
      EXPECT_TRUE(UnwrapDatabaseKey(*parsed, AsBytes(kCorpusPassphrase)).ok());
    } else if (name == "tampered_tag_resealed.key") {
      ASSERT_TRUE(parsed.ok());
      EXPECT_ERRC(UnwrapDatabaseKey(*parsed, AsBytes(kCorpusPassphrase)), Errc::kWrongPassphrase);
    } else {
      EXPECT_FALSE(parsed.ok());
    }
  }
}

// The known answer printed in docs/protocol/profile-key-file.md.
TEST(KeyFileCorpus, DocumentedKnownAnswerHolds) {
  ASSERT_TRUE(crypto::Init().ok());
  const Bytes file = MakeCorpus().at("valid_min_cost.key");
  EXPECT_EQ(ToHex(ByteSpan(file).first(kKeyFileSaltOffset)),
            "52485a4d4b4559000001000000000000000100000000000020"
            "00");
  auto parsed = ParseKeyFile(file);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(ToHex(parsed->salt), "99e4df29c2a6389f1f93bd4f97d08043");
  crypto::StackSecret<32> kek;
  ASSERT_TRUE(
      crypto::Argon2id(AsBytes(kCorpusPassphrase), parsed->salt, parsed->params, kek.expose_mut())
          .ok());
  EXPECT_EQ(ToHex(kek.expose()),
            "eb4580bbbdfc7ecd41824e81463744619685cf4c7aaa1a2817b5017a7ae16cb2");
  auto key = UnwrapDatabaseKey(*parsed, AsBytes(kCorpusPassphrase));
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(ToHex(key->expose()),
            "e3ce9653181d27fc5e7c495aea941d974247673c68c350b4867558f57da64ce3");
  EXPECT_EQ(ToHex(ByteSpan(file).subspan(kKeyFileChecksumOffset)),
            "ba1b9123d7259b7aa9c3f66d71244fd59bed7c2ab7f9a3501ba48890f36fda5b");
}

}  // namespace
}  // namespace rhizome::storage
