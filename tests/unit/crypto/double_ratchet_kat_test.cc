// Known-answer transcripts for the Double Ratchet (tests/vectors/
// rhizome_double_ratchet_kat.json). Self-generated regression vectors: with
// fixed inputs and DeterministicRandom seeds, a scripted conversation (in order,
// out of order, a DH step each way, replay, tampered header and body, beyond
// MAX_SKIP) must produce exactly the recorded message bytes, decrypt to the
// recorded plaintexts, fail with the recorded error codes (changing nothing),
// and end in states with the recorded digests.
//
// Regenerate (only after a deliberate format change, and say so in the commit):
//   RHIZOME_REGENERATE_KAT=1 crypto_unit_tests --gtest_filter='DoubleRatchet.KnownAnswer*'
// which rewrites the file in the source tree from the script below.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "rhizome/crypto/double_ratchet.h"
#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/random.h"
#include "test_support.h"

namespace rhizome::crypto {
namespace {

using nlohmann::json;
using rhizome::testing::Hex;
using rhizome::testing::ReadFileOrDie;
using rhizome::testing::VectorPath;

constexpr const char* kFile = "rhizome_double_ratchet_kat.json";

// The script: what each step does. Expected outputs are filled in on
// regeneration and checked otherwise.
json Script() {
  json steps = json::array();
  auto send = [&](const char* from, const char* id, const char* text) {
    steps.push_back({{"op", "send"}, {"from", from}, {"id", id}, {"plaintext", text}});
  };
  auto deliver = [&](const char* to, const char* id) {
    steps.push_back({{"op", "deliver"}, {"to", to}, {"id", id}});
  };
  auto tampered = [&](const char* to, const char* id, int bit) {
    steps.push_back({{"op", "deliver"}, {"to", to}, {"id", id}, {"flip_bit", bit}});
  };
  send("alice", "a0", "hello Bob, this is the contact request");
  send("alice", "a1", "a1: will arrive late");
  send("alice", "a2", "a2");
  deliver("bob", "a0");                               // Bob's receiving DH step
  deliver("bob", "a2");                               // skips a1
  deliver("bob", "a1");                               // from the skipped store
  deliver("bob", "a1");                               // replay
  deliver("bob", "a0");                               // replay
  send("bob", "b0", "b0: Bob's card would go here");  // Bob's sending DH step
  send("bob", "b1", "b1");
  deliver("alice", "b1");
  deliver("alice", "b0");
  send("alice", "a3", "a3: new chain");  // Alice's DH step
  send("alice", "a4", "a4");
  // a3 is 133 bytes: header nonce 0..23, header ciphertext and tag 24..79,
  // body nonce 80..103, body ciphertext 104..116, tag 117..132.
  tampered("bob", "a3", 8 * 5);        // header nonce
  tampered("bob", "a3", 8 * 30);       // header ciphertext
  tampered("bob", "a3", 8 * 82);       // body nonce
  tampered("bob", "a3", 8 * 110 + 3);  // body ciphertext
  tampered("bob", "a3", 8 * 132 + 7);  // body tag
  deliver("bob", "a4");
  deliver("bob", "a3");
  steps.push_back({{"op", "burst"},
                   {"from", "alice"},
                   {"id_prefix", "c"},
                   {"count", kMaxSkip + 2},
                   {"plaintext_prefix", "burst "}});
  deliver("bob", "c1001");  // would skip kMaxSkip + 1 keys: refused
  deliver("bob", "c1000");  // skips exactly kMaxSkip
  deliver("bob", "c1001");
  deliver("bob", "c0");
  send("bob", "b2", "b2: after the burst");
  deliver("alice", "b2");
  deliver("alice", "b2");  // replay
  return steps;
}

struct Party {
  DoubleRatchet ratchet;
  DeterministicRandom rng;
};

const char* CodeName(const Result<Bytes>& r) {
  if (r.ok()) return "ok";
  switch (r.error().code) {
    case Errc::kAuthenticationFailed:
      return "authentication_failed";
    case Errc::kLimitExceeded:
      return "limit_exceeded";
    case Errc::kMalformed:
      return "malformed";
    case Errc::kCryptoFailure:
      return "crypto_failure";
    default:
      return "other";
  }
}

// Runs the transcript in `doc`. With `record`, writes every expected value into
// `doc`; otherwise compares each with the recorded one.
void RunTranscript(json& doc, bool record) {
  json& setup = doc["setup"];
  const Bytes k2 = Hex(setup["k2"].get<std::string>());
  const Bytes h = Hex(setup["handshake_hash"].get<std::string>());
  const Bytes invite_secret = Hex(setup["invite_secret"].get<std::string>());
  const std::uint64_t now = setup["now"].get<std::uint64_t>();

  auto boot = DeriveRatchetBootstrap(k2, h);
  ASSERT_TRUE(boot.ok());
  auto invite = X25519FromSecret(invite_secret);
  ASSERT_TRUE(invite.ok());
  auto check = [&](json& slot, const json& actual, const std::string& what) {
    if (record) {
      slot = actual;
    } else {
      EXPECT_EQ(slot, actual) << what;
    }
  };
  check(doc["derived"]["associated_data"], ToHex(boot->associated_data), "AD");
  check(doc["derived"]["invite_public_key"], ToHex(invite->public_key), "invite key");

  auto alice = DoubleRatchet::InitAlice(*boot, invite->public_key);
  auto bob = DoubleRatchet::InitBob(*boot, *invite);
  ASSERT_TRUE(alice.ok() && bob.ok());
  std::map<std::string, Party*> parties;
  Party pa{std::move(alice).value(),
           DeterministicRandom(setup["alice_rng_seed"].get<std::uint64_t>())};
  Party pb{std::move(bob).value(), DeterministicRandom(setup["bob_rng_seed"].get<std::uint64_t>())};
  parties["alice"] = &pa;
  parties["bob"] = &pb;

  std::map<std::string, Bytes> messages;
  std::map<std::string, std::string> plaintexts;
  std::size_t index = 0;
  for (json& step : doc["steps"]) {
    const std::string what = "step " + std::to_string(index++);
    const std::string op = step["op"].get<std::string>();
    if (op == "send") {
      Party& p = *parties.at(step["from"].get<std::string>());
      const std::string text = step["plaintext"].get<std::string>();
      auto m = p.ratchet.Encrypt(AsBytes(text), p.rng);
      ASSERT_TRUE(m.ok()) << what;
      check(step["message"], ToHex(*m), what);
      messages[step["id"].get<std::string>()] = *m;
      plaintexts[step["id"].get<std::string>()] = text;
    } else if (op == "burst") {
      Party& p = *parties.at(step["from"].get<std::string>());
      const std::size_t count = step["count"].get<std::size_t>();
      Blake2b digest(kBlake2b256Bytes);
      for (std::size_t i = 0; i < count; ++i) {
        const std::string id = step["id_prefix"].get<std::string>() + std::to_string(i);
        const std::string text = step["plaintext_prefix"].get<std::string>() + std::to_string(i);
        auto m = p.ratchet.Encrypt(AsBytes(text), p.rng);
        ASSERT_TRUE(m.ok()) << what;
        digest.Update(*m);
        messages[id] = *m;
        plaintexts[id] = text;
      }
      ByteArray<32> d{};
      digest.Final(d);
      check(step["messages_blake2b_256"], ToHex(d), what);
    } else if (op == "deliver") {
      Party& p = *parties.at(step["to"].get<std::string>());
      const std::string id = step["id"].get<std::string>();
      Bytes m = messages.at(id);
      if (step.contains("flip_bit")) {
        const std::size_t bit = step["flip_bit"].get<std::size_t>();
        ASSERT_LT(bit / 8, m.size()) << what;
        m[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      }
      SecretBytes before = p.ratchet.Serialize();
      auto r = p.ratchet.Decrypt(m, now);
      check(step["expect"], CodeName(r), what);
      if (r.ok()) {
        EXPECT_EQ(std::string(r->begin(), r->end()), plaintexts.at(id)) << what;
      } else {
        SecretBytes after = p.ratchet.Serialize();
        EXPECT_TRUE(
            before.size() == after.size() &&
            std::equal(before.expose().begin(), before.expose().end(), after.expose().begin()))
            << what << ": a failed decryption changed the state";
      }
      check(step["skipped_keys_after"], p.ratchet.skipped_key_count(), what);
    } else {
      FAIL() << what << ": unknown op " << op;
    }
  }
  for (const auto& [name, party] : parties) {
    SecretBytes state = party->ratchet.Serialize();
    check(doc["final_state_blake2b_256"][name], ToHex(Blake2b256(state.expose())),
          "final state of " + name);
  }
}

TEST(DoubleRatchet, KnownAnswerTranscriptMatchesByteForByte) {
  const char* regenerate = std::getenv("RHIZOME_REGENERATE_KAT");
  if (regenerate != nullptr && std::string(regenerate) == "1") {
    json doc;
    doc["description"] =
        "Rhizome Double Ratchet (header encryption) known-answer transcript. Self-generated "
        "regression vectors, not from any external source: see docs/protocol/double-ratchet.md.";
    doc["regenerate"] =
        "RHIZOME_REGENERATE_KAT=1 crypto_unit_tests "
        "--gtest_filter='DoubleRatchet.KnownAnswer*'";
    Bytes k2(32);
    Bytes h(64);
    Bytes invite(32);
    for (std::size_t i = 0; i < 32; ++i) k2[i] = static_cast<std::uint8_t>(0x10 + i);
    for (std::size_t i = 0; i < 64; ++i) h[i] = static_cast<std::uint8_t>(0xc0 ^ i);
    for (std::size_t i = 0; i < 32; ++i) invite[i] = static_cast<std::uint8_t>(0x77 + 3 * i);
    doc["setup"] = {{"k2", ToHex(k2)},
                    {"handshake_hash", ToHex(h)},
                    {"invite_secret", ToHex(invite)},
                    {"alice_rng_seed", 20261201},
                    {"bob_rng_seed", 20261202},
                    {"now", 1800000000}};
    doc["steps"] = Script();
    RunTranscript(doc, /*record=*/true);
    std::ofstream out(VectorPath(kFile));
    out << doc.dump(1) << "\n";
    ASSERT_TRUE(out.good());
    return;
  }
  json doc = json::parse(ReadFileOrDie(VectorPath(kFile)));
  // The recorded script is the one in this file (a stale file is caught here).
  json script = doc["steps"];
  for (json& step : script) {
    for (const char* k : {"message", "expect", "skipped_keys_after", "messages_blake2b_256"}) {
      step.erase(k);
    }
  }
  EXPECT_EQ(script, Script());
  RunTranscript(doc, /*record=*/false);
}

}  // namespace
}  // namespace rhizome::crypto
