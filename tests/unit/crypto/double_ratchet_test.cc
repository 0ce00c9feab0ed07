// Double Ratchet with header encryption (crypto/double_ratchet.h): the KDF
// chain vector, the bootstrap derivation, the body key, round trips,
// out-of-order delivery, MAX_SKIP, tampering, replay, AD binding, the
// skipped-key cap and expiry, confirmation mixing, persistence and a
// malformed-state catalogue.
#include "rhizome/crypto/double_ratchet.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "rhizome/crypto/aead.h"
#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/random.h"
#include "test_support.h"

namespace rhizome::crypto {
namespace {

using nlohmann::json;
using rhizome::testing::Hex;
using rhizome::testing::ReadFileOrDie;
using rhizome::testing::VectorPath;

constexpr std::uint64_t kNow = 1'800'000'000;  // a fixed Unix time

std::string Text(const Bytes& b) { return std::string(b.begin(), b.end()); }

// Byte-for-byte equality of two serialized states (tests may compare secrets).
bool SameBytes(const SecretBytes& a, const SecretBytes& b) {
  return a.size() == b.size() &&
         std::equal(a.expose().begin(), a.expose().end(), b.expose().begin());
}

// A session between the acceptor (ratchet Alice) and the inviter (ratchet Bob),
// bootstrapped from fixed Noise outputs.
struct Session {
  DoubleRatchet alice;
  DoubleRatchet bob;
};

RatchetBootstrap FixedBootstrap(std::uint64_t seed) {
  DeterministicRandom rng(seed);
  auto k2 = rng.Array<32>();
  auto h = rng.Array<64>();
  auto b = DeriveRatchetBootstrap(k2, h);
  EXPECT_TRUE(b.ok());
  return std::move(b).value();
}

Session MakeSession(std::uint64_t seed = 1) {
  RatchetBootstrap boot = FixedBootstrap(seed);
  DeterministicRandom key_rng(seed + 1000);
  X25519KeyPair invite = X25519Generate(key_rng);
  auto alice = DoubleRatchet::InitAlice(boot, invite.public_key);
  auto bob = DoubleRatchet::InitBob(boot, invite);
  EXPECT_TRUE(alice.ok());
  EXPECT_TRUE(bob.ok());
  return Session{std::move(alice).value(), std::move(bob).value()};
}

Bytes Enc(DoubleRatchet& r, const std::string& text, RandomSource& rng) {
  auto m = r.Encrypt(AsBytes(text), rng);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  return m.ok() ? std::move(m).value() : Bytes{};
}

std::string Dec(DoubleRatchet& r, const Bytes& message, std::uint64_t now = kNow) {
  auto p = r.Decrypt(message, now);
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
  return p.ok() ? Text(*p) : std::string("<error>");
}

// Decrypt must fail with `code` and leave the state byte-for-byte unchanged.
void ExpectRejectedUnchanged(DoubleRatchet& r, ByteSpan message, Errc code,
                             std::uint64_t now = kNow) {
  SecretBytes before = r.Serialize();
  auto p = r.Decrypt(message, now);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, code) << p.error().message;
  EXPECT_TRUE(SameBytes(before, r.Serialize()));
}

// ---- known answers ----

TEST(DoubleRatchet, KdfChainStepMatchesSignalVector) {
  json v = json::parse(ReadFileOrDie(VectorPath("signal_kdf_chain_kat.json")))["KDF_CK"];
  Bytes ck = Hex(v["ck"].get<std::string>());
  ByteArray<32> mk_seed{};
  ByteArray<32> next_ck{};
  internal::KdfChainStep(ck, mk_seed, next_ck);
  EXPECT_EQ(ToHex(mk_seed), v["mk_seed"].get<std::string>());
  EXPECT_EQ(ToHex(next_ck), v["next_ck"].get<std::string>());

  // In place, as the ratchet uses it: the chain key is overwritten by its successor.
  ByteArray<32> chain{};
  std::copy(ck.begin(), ck.end(), chain.begin());
  internal::KdfChainStep(chain, mk_seed, chain);
  EXPECT_EQ(ToHex(chain), v["next_ck"].get<std::string>());
  EXPECT_EQ(ToHex(mk_seed), v["mk_seed"].get<std::string>());
}

// Expected values computed independently with Python's hmac/hashlib (RFC 5869
// HKDF written out by hand, hashlib.blake2b(digest_size=32)).
TEST(DoubleRatchet, BootstrapDerivationMatchesIndependentComputation) {
  Bytes k2(32);
  Bytes h(64);
  for (std::size_t i = 0; i < 32; ++i) k2[i] = static_cast<std::uint8_t>(i);
  for (std::size_t i = 0; i < 64; ++i) h[i] = static_cast<std::uint8_t>(0x40 + i);
  auto b = DeriveRatchetBootstrap(k2, h);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(ToHex(b->shared_key.expose()),
            "1bdf88ace957fd74ece86ec017a30be3140ab478c668796a36dcf979aac1a9d1");
  EXPECT_EQ(ToHex(b->header_key_a.expose()),
            "238331d7576f8b4aad97a6e432bcb8da983cc3387b5713aef79dff64bd07b856");
  EXPECT_EQ(ToHex(b->next_header_key_b.expose()),
            "ba6d98fd97c13b828111c4c624e99fb18c02bc6648b570b0772cd1ca9c240268");
  EXPECT_EQ(ToHex(b->associated_data),
            "5a8159a7ef5347bec5c63e66de8bec046ba7e454928c9bfa0e5ebe7e5535fb25");
}

TEST(DoubleRatchet, RootKeyDerivationMatchesIndependentComputation) {
  Bytes rk(32, 0xa5);
  Bytes dh(32);
  for (std::size_t i = 0; i < 32; ++i) dh[i] = static_cast<std::uint8_t>(0x80 + i);
  ByteArray<96> out{};
  internal::KdfRootStep(rk, dh, out);
  EXPECT_EQ(ToHex(out),
            "d0a59e2cf0620e397c4a93af89d9b5546405d68f22ff1518abb00e87a9b3805b"
            "f4e8ef5a6bdf1e5f8da48c015e70abcb1560a6d30a01e0e9e784c0f88a84535b"
            "f9b8ff516e2473370c74024d4285942b3f045972823ffb8d324705d2261318b6");
}

// The body's AEAD key is KDF_CK's message key as it is: HMAC-SHA256(CKr, 0x01),
// taken here from the receiver's stored state, opens the body with the
// associated data AD ‖ enc_header (docs/protocol/double-ratchet.md).
TEST(DoubleRatchet, BodyKeyIsTheChainStepMessageKeyItself) {
  Session s = MakeSession();
  DeterministicRandom rng(11);
  ASSERT_EQ(Dec(s.bob, Enc(s.alice, "first: a DH step", rng)), "first: a DH step");
  const std::string text = "second: the same chain";
  const Bytes m = Enc(s.alice, text, rng);

  constexpr std::size_t kOffAd = 2;
  constexpr std::size_t kOffCkr = 66 + 3 * 32;  // slots: DHs, RK, CKs, CKr, ...
  const SecretBytes state = s.bob.Serialize();
  ASSERT_EQ(state.size(), kRatchetStateFixedBytes);
  const ByteSpan ad = state.expose().subspan(kOffAd, kRatchetAssociatedDataBytes);
  const ByteSpan ckr = state.expose().subspan(kOffCkr, kRatchetKeyBytes);
  ASSERT_TRUE(std::equal(ad.begin(), ad.end(), s.bob.associated_data().begin()));

  static constexpr std::uint8_t kOne[1] = {0x01};
  ByteArray<32> mk{};
  HmacSha256(ckr, kOne, mk);
  Bytes body_ad(ad.begin(), ad.end());
  body_ad.insert(body_ad.end(), m.begin(), m.begin() + kRatchetEncryptedHeaderBytes);
  const ByteSpan all(m);
  Bytes plain(m.size() - kRatchetMessageOverheadBytes);
  ASSERT_TRUE(XChaChaDecrypt(mk, all.subspan(kRatchetEncryptedHeaderBytes, kRatchetNonceBytes),
                             body_ad,
                             all.subspan(kRatchetEncryptedHeaderBytes + kRatchetNonceBytes), plain)
                  .ok());
  EXPECT_EQ(Text(plain), text);
  EXPECT_EQ(Dec(s.bob, m), text);
}

TEST(DoubleRatchet, BootstrapRejectsWrongInputSizes) {
  Bytes k2(32, 1);
  EXPECT_EQ(DeriveRatchetBootstrap(Bytes(31, 1), Bytes(64, 2)).error().code,
            Errc::kInvalidArgument);
  EXPECT_EQ(DeriveRatchetBootstrap(k2, Bytes(31, 2)).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(DeriveRatchetBootstrap(k2, Bytes(65, 2)).error().code, Errc::kInvalidArgument);
  EXPECT_TRUE(DeriveRatchetBootstrap(k2, Bytes(32, 2)).ok());
}

// ---- round trips ----

TEST(DoubleRatchet, PingPongRoundTrip) {
  Session s = MakeSession();
  DeterministicRandom rng(7);
  for (int i = 0; i < 50; ++i) {
    std::string a = "alice " + std::to_string(i);
    EXPECT_EQ(Dec(s.bob, Enc(s.alice, a, rng)), a);
    std::string b = "bob " + std::to_string(i);
    EXPECT_EQ(Dec(s.alice, Enc(s.bob, b, rng)), b);
  }
  EXPECT_EQ(s.alice.skipped_key_count(), 0u);
  EXPECT_EQ(s.bob.skipped_key_count(), 0u);
}

TEST(DoubleRatchet, OneWayBurstThenReply) {
  Session s = MakeSession();
  DeterministicRandom rng(8);
  for (int i = 0; i < 300; ++i) {
    std::string a = "burst " + std::to_string(i);
    EXPECT_EQ(Dec(s.bob, Enc(s.alice, a, rng)), a);
  }
  for (int i = 0; i < 300; ++i) {
    std::string b = "reply " + std::to_string(i);
    EXPECT_EQ(Dec(s.alice, Enc(s.bob, b, rng)), b);
  }
  EXPECT_EQ(Dec(s.bob, Enc(s.alice, "again", rng)), "again");
}

TEST(DoubleRatchet, LongAlternatingRunsOfRandomLengths) {
  Session s = MakeSession(3);
  DeterministicRandom rng(9);
  int sent = 0;
  for (int turn = 0; turn < 200; ++turn) {
    const bool from_alice = turn % 2 == 0;
    const int run = 1 + rng.Array<1>()[0] % 6;
    for (int i = 0; i < run; ++i, ++sent) {
      std::string text(static_cast<std::size_t>(rng.Array<1>()[0]), 'x');
      text += std::to_string(sent);
      DoubleRatchet& from = from_alice ? s.alice : s.bob;
      DoubleRatchet& to = from_alice ? s.bob : s.alice;
      ASSERT_EQ(Dec(to, Enc(from, text, rng)), text);
    }
  }
}

TEST(DoubleRatchet, EmptyAndLargestPlaintextsRoundTrip) {
  Session s = MakeSession();
  DeterministicRandom rng(10);
  Bytes empty;
  auto m = s.alice.Encrypt(empty, rng);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->size(), kRatchetMessageOverheadBytes);
  auto p = s.bob.Decrypt(*m, kNow);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->empty());

  Bytes big(kMaxRatchetPlaintextBytes, 0x5a);
  auto m2 = s.bob.Encrypt(big, rng);
  ASSERT_TRUE(m2.ok());
  EXPECT_EQ(m2->size(), kMaxRatchetMessageBytes);
  auto p2 = s.alice.Decrypt(*m2, kNow);
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(*p2, big);
}

TEST(DoubleRatchet, OversizedPlaintextIsRejectedWithoutStateChange) {
  Session s = MakeSession();
  DeterministicRandom rng(11);
  SecretBytes before = s.alice.Serialize();
  auto m = s.alice.Encrypt(Bytes(kMaxRatchetPlaintextBytes + 1), rng);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, Errc::kLimitExceeded);
  EXPECT_TRUE(SameBytes(before, s.alice.Serialize()));
}

TEST(DoubleRatchet, ShortAndOversizedMessagesAreRejected) {
  Session s = MakeSession();
  ExpectRejectedUnchanged(s.bob, Bytes(kRatchetMessageOverheadBytes - 1), Errc::kMalformed);
  ExpectRejectedUnchanged(s.bob, Bytes(kMaxRatchetMessageBytes + 1), Errc::kLimitExceeded);
  ExpectRejectedUnchanged(s.bob, Bytes(kRatchetMessageOverheadBytes), Errc::kAuthenticationFailed);
}

TEST(DoubleRatchet, BobCannotSendBeforeHisFirstMessageIn) {
  Session s = MakeSession();
  DeterministicRandom rng(12);
  EXPECT_TRUE(s.alice.CanSend());
  EXPECT_FALSE(s.bob.CanSend());
  auto m = s.bob.Encrypt(AsBytes("too early"), rng);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(Dec(s.bob, Enc(s.alice, "hello", rng)), "hello");
  EXPECT_TRUE(s.bob.CanSend());
}

TEST(DoubleRatchet, MessageReflectedToItsSenderIsRejected) {
  Session s = MakeSession();
  DeterministicRandom rng(13);
  Bytes a1 = Enc(s.alice, "a1", rng);
  ExpectRejectedUnchanged(s.alice, a1, Errc::kAuthenticationFailed);
  EXPECT_EQ(Dec(s.bob, a1), "a1");
  Bytes b1 = Enc(s.bob, "b1", rng);
  ExpectRejectedUnchanged(s.bob, b1, Errc::kAuthenticationFailed);
  EXPECT_EQ(Dec(s.alice, b1), "b1");
}

TEST(DoubleRatchet, SmallOrderPeerRatchetKeyFailsEncryptWithoutStateChange) {
  RatchetBootstrap boot = FixedBootstrap(4);
  ByteArray<32> small_order{};
  small_order[0] = 1;  // the point of order 1 (RFC 7748: all-zero output)
  auto alice = DoubleRatchet::InitAlice(boot, small_order);
  ASSERT_TRUE(alice.ok());
  DeterministicRandom rng(14);
  SecretBytes before = alice->Serialize();
  auto m = alice->Encrypt(AsBytes("x"), rng);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, Errc::kCryptoFailure);
  EXPECT_TRUE(SameBytes(before, alice->Serialize()));
  EXPECT_EQ(DoubleRatchet::InitAlice(boot, ByteArray<32>{}).error().code, Errc::kInvalidArgument);
}

TEST(DoubleRatchet, InitBobRejectsAKeyPairThatDoesNotMatch) {
  RatchetBootstrap boot = FixedBootstrap(5);
  DeterministicRandom rng(15);
  X25519KeyPair kp = X25519Generate(rng);
  kp.public_key[0] ^= 1;
  EXPECT_EQ(DoubleRatchet::InitBob(boot, kp).error().code, Errc::kInvalidArgument);
}

// ---- out of order, MAX_SKIP ----

TEST(DoubleRatchet, OutOfOrderWithinAChainDecryptsEachOnce) {
  Session s = MakeSession();
  DeterministicRandom rng(16);
  std::vector<Bytes> msgs;
  for (int i = 0; i < 10; ++i) msgs.push_back(Enc(s.alice, "m" + std::to_string(i), rng));
  const int order[] = {3, 0, 9, 1, 2, 8, 4, 7, 5, 6};
  for (int i : order)
    EXPECT_EQ(Dec(s.bob, msgs[static_cast<std::size_t>(i)]), "m" + std::to_string(i));
  EXPECT_EQ(s.bob.skipped_key_count(), 0u);
  for (const Bytes& m : msgs) ExpectRejectedUnchanged(s.bob, m, Errc::kAuthenticationFailed);
}

TEST(DoubleRatchet, OutOfOrderAcrossDhStepsDecryptsLateMessages) {
  Session s = MakeSession();
  DeterministicRandom rng(17);
  Bytes a0 = Enc(s.alice, "a0", rng);
  Bytes a1 = Enc(s.alice, "a1", rng);
  Bytes a2 = Enc(s.alice, "a2", rng);
  EXPECT_EQ(Dec(s.bob, a2), "a2");  // first contact with a gap: a0, a1 skipped
  EXPECT_EQ(s.bob.skipped_key_count(), 2u);
  Bytes b0 = Enc(s.bob, "b0", rng);
  Bytes b1 = Enc(s.bob, "b1", rng);
  EXPECT_EQ(Dec(s.alice, b1), "b1");
  Bytes a3 = Enc(s.alice, "a3", rng);  // new chain, PN = 3
  Bytes a4 = Enc(s.alice, "a4", rng);
  EXPECT_EQ(Dec(s.bob, a4), "a4");
  EXPECT_EQ(s.bob.skipped_key_count(), 3u);  // a0, a1 (old chain), a3
  Bytes b2 = Enc(s.bob, "b2", rng);          // Bob's new chain, PN = 2
  EXPECT_EQ(Dec(s.alice, b2), "b2");         // b0 was stored when b1 arrived
  EXPECT_EQ(Dec(s.alice, b0), "b0");
  EXPECT_EQ(Dec(s.bob, a1), "a1");
  EXPECT_EQ(Dec(s.bob, a3), "a3");
  EXPECT_EQ(Dec(s.bob, a0), "a0");
  EXPECT_EQ(s.bob.skipped_key_count(), 0u);
  EXPECT_EQ(s.alice.skipped_key_count(), 0u);
  for (const Bytes* m : {&a0, &a1, &a2, &a3, &a4}) {
    ExpectRejectedUnchanged(s.bob, *m, Errc::kAuthenticationFailed);
  }
  for (const Bytes* m : {&b0, &b1, &b2}) {
    ExpectRejectedUnchanged(s.alice, *m, Errc::kAuthenticationFailed);
  }
}

TEST(DoubleRatchet, MessageExactlyMaxSkipAheadIsAccepted) {
  Session s = MakeSession();
  DeterministicRandom rng(18);
  std::vector<Bytes> msgs;
  for (std::uint32_t i = 0; i <= kMaxSkip; ++i)
    msgs.push_back(Enc(s.alice, std::to_string(i), rng));
  EXPECT_EQ(Dec(s.bob, msgs.back()), std::to_string(kMaxSkip));  // skips exactly kMaxSkip
  EXPECT_EQ(s.bob.skipped_key_count(), kMaxSkip);
  EXPECT_EQ(Dec(s.bob, msgs[0]), "0");
}

TEST(DoubleRatchet, MessageBeyondMaxSkipIsRejectedWithoutStateChange) {
  Session s = MakeSession();
  DeterministicRandom rng(19);
  std::vector<Bytes> msgs;
  for (std::uint32_t i = 0; i <= kMaxSkip + 2; ++i) {
    msgs.push_back(Enc(s.alice, std::to_string(i), rng));
  }
  // New chain: N = kMaxSkip + 1 would skip kMaxSkip + 1 keys.
  ExpectRejectedUnchanged(s.bob, msgs[kMaxSkip + 1], Errc::kLimitExceeded);
  EXPECT_EQ(Dec(s.bob, msgs[0]), "0");
  // Current chain: from Nr = 1, N = kMaxSkip + 2 skips kMaxSkip + 1.
  ExpectRejectedUnchanged(s.bob, msgs[kMaxSkip + 2], Errc::kLimitExceeded);
  EXPECT_EQ(Dec(s.bob, msgs[kMaxSkip + 1]), std::to_string(kMaxSkip + 1));
  EXPECT_EQ(Dec(s.bob, msgs[kMaxSkip + 2]), std::to_string(kMaxSkip + 2));
}

TEST(DoubleRatchet, PreviousChainGapBeyondMaxSkipAtDhStepIsRejected) {
  Session s = MakeSession();
  DeterministicRandom rng(21);
  std::vector<Bytes> chain1;
  for (std::uint32_t i = 0; i <= kMaxSkip + 1; ++i) chain1.push_back(Enc(s.alice, "c1", rng));
  EXPECT_EQ(Dec(s.bob, chain1[0]), "c1");
  // Bob replies; Alice starts a new chain with PN = kMaxSkip + 2 while Bob has
  // Nr = 1: the previous chain would need kMaxSkip + 1 skipped keys.
  Bytes b = Enc(s.bob, "b", rng);
  EXPECT_EQ(Dec(s.alice, b), "b");
  Bytes next = Enc(s.alice, "c2", rng);
  ExpectRejectedUnchanged(s.bob, next, Errc::kLimitExceeded);
  EXPECT_EQ(Dec(s.bob, chain1[1]), "c1");  // closing the gap makes it acceptable
  EXPECT_EQ(Dec(s.bob, next), "c2");
}

// ---- tampering, replay, AD ----

// Flips every bit of `message` in turn: each copy is rejected and changes nothing;
// the untouched message then decrypts.
void FlipEveryBit(DoubleRatchet& receiver, const Bytes& message, const std::string& expected) {
  SecretBytes before = receiver.Serialize();
  for (std::size_t bit = 0; bit < message.size() * 8; ++bit) {
    Bytes bad = message;
    bad[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    auto p = receiver.Decrypt(bad, kNow);
    ASSERT_FALSE(p.ok()) << "bit " << bit;
    ASSERT_TRUE(SameBytes(before, receiver.Serialize())) << "bit " << bit;
  }
  EXPECT_EQ(Dec(receiver, message), expected);
}

TEST(DoubleRatchet, TamperedHeaderOrBodyEveryBitIsRejectedAndChangesNothing) {
  Session s = MakeSession();
  DeterministicRandom rng(22);
  // A message that starts a chain (DH step at the receiver).
  Bytes a0 = Enc(s.alice, "first message", rng);
  Bytes a1 = Enc(s.alice, "second, in the chain", rng);
  Bytes a2 = Enc(s.alice, "third, skipped then late", rng);
  Bytes a3 = Enc(s.alice, "fourth", rng);
  FlipEveryBit(s.bob, a0, "first message");
  FlipEveryBit(s.bob, a1, "second, in the chain");      // current chain
  FlipEveryBit(s.bob, a3, "fourth");                    // skips a2
  FlipEveryBit(s.bob, a2, "third, skipped then late");  // from the skipped store
}

TEST(DoubleRatchet, ReplayedMessageIsRejected) {
  Session s = MakeSession();
  DeterministicRandom rng(23);
  Bytes a0 = Enc(s.alice, "a0", rng);
  Bytes a1 = Enc(s.alice, "a1", rng);
  Bytes a2 = Enc(s.alice, "a2", rng);
  EXPECT_EQ(Dec(s.bob, a0), "a0");
  ExpectRejectedUnchanged(s.bob, a0, Errc::kAuthenticationFailed);  // current chain
  EXPECT_EQ(Dec(s.bob, a2), "a2");
  EXPECT_EQ(Dec(s.bob, a1), "a1");
  ExpectRejectedUnchanged(s.bob, a1, Errc::kAuthenticationFailed);  // used skipped key
  // After DH steps each way, the old chain's messages are still refused.
  EXPECT_EQ(Dec(s.alice, Enc(s.bob, "b0", rng)), "b0");
  EXPECT_EQ(Dec(s.bob, Enc(s.alice, "a3", rng)), "a3");
  for (const Bytes* m : {&a0, &a1, &a2}) {
    ExpectRejectedUnchanged(s.bob, *m, Errc::kAuthenticationFailed);
  }
}

TEST(DoubleRatchet, WrongAssociatedDataIsRejected) {
  RatchetBootstrap boot_a = FixedBootstrap(6);
  RatchetBootstrap boot_b = FixedBootstrap(6);
  boot_b.associated_data[31] ^= 1;  // same keys, another handshake binding
  DeterministicRandom key_rng(66);
  X25519KeyPair invite = X25519Generate(key_rng);
  auto alice = DoubleRatchet::InitAlice(boot_a, invite.public_key);
  auto bob = DoubleRatchet::InitBob(boot_b, invite);
  ASSERT_TRUE(alice.ok() && bob.ok());
  DeterministicRandom rng(24);
  Bytes m = Enc(*alice, "bound to the handshake", rng);
  ExpectRejectedUnchanged(*bob, m, Errc::kAuthenticationFailed);

  // The same message decrypts for a Bob with the right binding.
  auto bob_ok = DoubleRatchet::InitBob(boot_a, invite);
  ASSERT_TRUE(bob_ok.ok());
  EXPECT_EQ(Dec(*bob_ok, m), "bound to the handshake");
}

TEST(DoubleRatchet, MessageForAnotherSessionIsRejected) {
  Session s1 = MakeSession(30);
  Session s2 = MakeSession(31);
  DeterministicRandom rng(25);
  Bytes m = Enc(s1.alice, "s1", rng);
  ExpectRejectedUnchanged(s2.bob, m, Errc::kAuthenticationFailed);
}

// ---- skipped-key cap and expiry ----

TEST(DoubleRatchet, SkippedKeyStoreIsCappedAndEvictsOldest) {
  Session s = MakeSession();
  DeterministicRandom rng(26);
  // Three chains from Alice, each with kMaxSkip messages Bob skips.
  std::vector<Bytes> first_of_chain;
  for (int chain = 0; chain < 3; ++chain) {
    std::vector<Bytes> msgs;
    for (std::uint32_t i = 0; i <= kMaxSkip; ++i) {
      msgs.push_back(Enc(s.alice, "c" + std::to_string(chain) + "-" + std::to_string(i), rng));
    }
    EXPECT_EQ(Dec(s.bob, msgs.back()),
              "c" + std::to_string(chain) + "-" + std::to_string(kMaxSkip));
    first_of_chain.push_back(msgs.front());
    EXPECT_EQ(Dec(s.alice, Enc(s.bob, "turn", rng)), "turn");
  }
  EXPECT_EQ(s.bob.skipped_key_count(), kMaxSkippedKeys);
  // The oldest chain's keys were evicted; the two later chains' keys are there.
  ExpectRejectedUnchanged(s.bob, first_of_chain[0], Errc::kAuthenticationFailed);
  EXPECT_EQ(Dec(s.bob, first_of_chain[1]), "c1-0");
  EXPECT_EQ(Dec(s.bob, first_of_chain[2]), "c2-0");
  EXPECT_EQ(s.bob.skipped_key_count(), kMaxSkippedKeys - 2);
}

TEST(DoubleRatchet, SkippedKeysExpireAfterMaxAge) {
  Session s = MakeSession();
  DeterministicRandom rng(27);
  std::vector<Bytes> msgs;
  for (int i = 0; i < 4; ++i) msgs.push_back(Enc(s.alice, "m" + std::to_string(i), rng));
  EXPECT_EQ(Dec(s.bob, msgs[3], kNow), "m3");
  EXPECT_EQ(s.bob.skipped_key_count(), 3u);
  // Exactly at the maximum age a key is still usable.
  EXPECT_EQ(Dec(s.bob, msgs[0], kNow + kSkippedKeyMaxAgeSeconds), "m0");
  // One second later it is not, and the failure changes nothing.
  ExpectRejectedUnchanged(s.bob, msgs[1], Errc::kAuthenticationFailed,
                          kNow + kSkippedKeyMaxAgeSeconds + 1);
  EXPECT_EQ(s.bob.skipped_key_count(), 2u);
  // A clock that went backwards does not expire anything.
  EXPECT_EQ(Dec(s.bob, msgs[1], kNow - 100), "m1");
  EXPECT_EQ(s.bob.skipped_key_count(), 1u);
  s.bob.DropExpiredSkippedKeys(kNow + kSkippedKeyMaxAgeSeconds);
  EXPECT_EQ(s.bob.skipped_key_count(), 1u);
  s.bob.DropExpiredSkippedKeys(kNow + kSkippedKeyMaxAgeSeconds + 1);
  EXPECT_EQ(s.bob.skipped_key_count(), 0u);
  ExpectRejectedUnchanged(s.bob, msgs[2], Errc::kAuthenticationFailed);
}

TEST(DoubleRatchet, SuccessfulDecryptDropsExpiredKeys) {
  Session s = MakeSession();
  DeterministicRandom rng(28);
  Bytes m0 = Enc(s.alice, "m0", rng);
  Bytes m1 = Enc(s.alice, "m1", rng);
  Bytes m2 = Enc(s.alice, "m2", rng);
  Bytes m3 = Enc(s.alice, "m3", rng);
  EXPECT_EQ(Dec(s.bob, m1, kNow), "m1");
  EXPECT_EQ(s.bob.skipped_key_count(), 1u);  // m0
  EXPECT_EQ(Dec(s.bob, m3, kNow + 10), "m3");
  EXPECT_EQ(s.bob.skipped_key_count(), 2u);  // m0, m2
  // A success after m0's key expired drops it; m2's key is younger and stays.
  EXPECT_EQ(Dec(s.alice, Enc(s.bob, "b", rng), kNow), "b");
  EXPECT_EQ(Dec(s.bob, Enc(s.alice, "a", rng), kNow + kSkippedKeyMaxAgeSeconds + 1), "a");
  EXPECT_EQ(s.bob.skipped_key_count(), 1u);
  ExpectRejectedUnchanged(s.bob, m0, Errc::kAuthenticationFailed);
  EXPECT_EQ(Dec(s.bob, m2, kNow + kSkippedKeyMaxAgeSeconds + 10), "m2");
  EXPECT_EQ(s.bob.skipped_key_count(), 0u);
}

// ---- confirmation mixing ----

TEST(DoubleRatchet, ConfirmationMixingKeepsBothSidesInStep) {
  Session s = MakeSession();
  DeterministicRandom rng(29);
  EXPECT_EQ(Dec(s.bob, Enc(s.alice, "request", rng)), "request");
  // The KK messages travel inside the ratchet: msg1 from Bob, msg2 from Alice.
  EXPECT_EQ(Dec(s.alice, Enc(s.bob, "kk1", rng)), "kk1");
  Bytes kk2 = Enc(s.alice, "kk2", rng);
  ByteArray<32> k1{};
  ByteArray<32> k2{};
  k1.fill(0x11);
  k2.fill(0x22);
  ASSERT_TRUE(s.alice.MixConfirmation(k1, k2).ok());  // sender: right after encrypting
  EXPECT_EQ(Dec(s.bob, kk2), "kk2");
  ASSERT_TRUE(s.bob.MixConfirmation(k1, k2).ok());  // receiver: right after decrypting
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(Dec(s.alice, Enc(s.bob, "b" + std::to_string(i), rng)), "b" + std::to_string(i));
    EXPECT_EQ(Dec(s.bob, Enc(s.alice, "a" + std::to_string(i), rng)), "a" + std::to_string(i));
  }
}

TEST(DoubleRatchet, ConfirmationMixingChangesTheNextChain) {
  // The same conversation with and without mixing: the first message after the
  // mix differs, so the mixed value reaches the keys.
  auto run = [](bool mix) {
    Session s = MakeSession();
    DeterministicRandom rng(30);
    EXPECT_EQ(Dec(s.bob, Enc(s.alice, "request", rng)), "request");
    if (mix) {
      ByteArray<32> k{};
      k.fill(0x33);
      EXPECT_TRUE(s.alice.MixConfirmation(k, k).ok());
      EXPECT_TRUE(s.bob.MixConfirmation(k, k).ok());
    }
    return Enc(s.bob, "after", rng);
  };
  Bytes plain = run(false);
  Bytes mixed = run(true);
  // Same random draws, so header nonce and DH key agree; the body key differs.
  ASSERT_EQ(plain.size(), mixed.size());
  EXPECT_TRUE(std::equal(plain.begin(), plain.begin() + kRatchetEncryptedHeaderBytes,
                         mixed.begin()));  // header keys were derived before the mix
  EXPECT_NE(plain, mixed);
}

TEST(DoubleRatchet, MismatchedConfirmationCannotDecryptAfterNextDhStep) {
  Session s = MakeSession();
  DeterministicRandom rng(31);
  EXPECT_EQ(Dec(s.bob, Enc(s.alice, "request", rng)), "request");
  EXPECT_EQ(Dec(s.alice, Enc(s.bob, "reply", rng)), "reply");
  ByteArray<32> k1{};
  ByteArray<32> k2{};
  k1.fill(0x44);
  k2.fill(0x55);
  ASSERT_TRUE(s.alice.MixConfirmation(k1, k2).ok());
  k2[0] ^= 1;  // an impostor finished KK with other keys
  ASSERT_TRUE(s.bob.MixConfirmation(k1, k2).ok());
  // Alice's next message starts a chain from the mixed root: Bob cannot read it.
  Bytes m = Enc(s.alice, "confirmed?", rng);
  ExpectRejectedUnchanged(s.bob, m, Errc::kAuthenticationFailed);
  // Nor any later one.
  ExpectRejectedUnchanged(s.bob, Enc(s.alice, "still?", rng), Errc::kAuthenticationFailed);
}

TEST(DoubleRatchet, MixConfirmationRejectsWrongKeySizes) {
  Session s = MakeSession();
  SecretBytes before = s.alice.Serialize();
  EXPECT_EQ(s.alice.MixConfirmation(Bytes(31), Bytes(32)).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(s.alice.MixConfirmation(Bytes(32), Bytes(33)).error().code, Errc::kInvalidArgument);
  EXPECT_TRUE(SameBytes(before, s.alice.Serialize()));
}

// ---- persistence ----

TEST(DoubleRatchet, SerializeParseRoundTripMidConversationThenContinue) {
  Session s = MakeSession();
  DeterministicRandom rng(32);
  Bytes a0 = Enc(s.alice, "a0", rng);
  Bytes a1 = Enc(s.alice, "a1", rng);
  Bytes a2 = Enc(s.alice, "a2", rng);
  EXPECT_EQ(Dec(s.bob, a2), "a2");
  Bytes b0 = Enc(s.bob, "b0", rng);
  Bytes b1 = Enc(s.bob, "b1", rng);
  EXPECT_EQ(Dec(s.alice, b1), "b1");

  for (DoubleRatchet* r : {&s.alice, &s.bob}) {
    SecretBytes stored = r->Serialize();
    EXPECT_LE(stored.size(), kMaxRatchetStateBytes);
    auto parsed = DoubleRatchet::Parse(stored.expose());
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_TRUE(SameBytes(stored, parsed->Serialize()));
    *r = std::move(parsed).value();
  }
  EXPECT_EQ(s.bob.skipped_key_count(), 2u);
  EXPECT_EQ(Dec(s.bob, a0), "a0");
  EXPECT_EQ(Dec(s.alice, b0), "b0");
  EXPECT_EQ(Dec(s.bob, Enc(s.alice, "a3", rng)), "a3");
  EXPECT_EQ(Dec(s.bob, a1), "a1");
  EXPECT_EQ(Dec(s.alice, Enc(s.bob, "b2", rng)), "b2");
}

TEST(DoubleRatchet, FreshStatesOfBothRolesRoundTrip) {
  Session s = MakeSession();
  for (const DoubleRatchet* r : {&s.alice, &s.bob}) {
    SecretBytes stored = r->Serialize();
    EXPECT_EQ(stored.size(), kRatchetStateFixedBytes);
    auto parsed = DoubleRatchet::Parse(stored.expose());
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_TRUE(SameBytes(stored, parsed->Serialize()));
  }
}

TEST(DoubleRatchet, MovedFromStateRefusesEveryCall) {
  Session s = MakeSession();
  DoubleRatchet taken = std::move(s.alice);
  DeterministicRandom rng(33);
  EXPECT_EQ(s.alice.Encrypt(AsBytes("x"), rng).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(s.alice.Decrypt(Bytes(200), kNow).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(s.alice.MixConfirmation(Bytes(32), Bytes(32)).error().code, Errc::kInvalidArgument);
  EXPECT_FALSE(s.alice.CanSend());
  EXPECT_TRUE(s.alice.Serialize().empty());
  EXPECT_EQ(Dec(s.bob, Enc(taken, "still works", rng)), "still works");
}

// A state with skipped keys, serialized, for the malformed catalogue.
SecretBytes StateWithSkippedKeys() {
  Session s = MakeSession();
  DeterministicRandom rng(34);
  std::vector<Bytes> msgs;
  for (int i = 0; i < 3; ++i) msgs.push_back(Enc(s.alice, "m", rng));
  EXPECT_EQ(Dec(s.bob, msgs[2]), "m");
  EXPECT_EQ(Dec(s.alice, Enc(s.bob, "r", rng)), "r");
  return s.bob.Serialize();
}

Errc ParseError(const Bytes& b) {
  auto r = DoubleRatchet::Parse(b);
  return r.ok() ? Errc::kInternal : r.error().code;
}

Bytes ToBytes(const SecretBytes& s) { return Bytes(s.expose().begin(), s.expose().end()); }

TEST(DoubleRatchet, MalformedStateTruncatedAtEveryLengthIsRejected) {
  Bytes good = ToBytes(StateWithSkippedKeys());
  ASSERT_EQ(good.size(), kRatchetStateFixedBytes + 2 * kRatchetSkippedEntryBytes);
  ASSERT_TRUE(DoubleRatchet::Parse(good).ok());
  for (std::size_t len = 0; len < good.size(); ++len) {
    Bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(len));
    EXPECT_EQ(ParseError(cut), Errc::kMalformed) << "length " << len;
  }
  Bytes longer = good;
  longer.push_back(0);
  EXPECT_EQ(ParseError(longer), Errc::kMalformed);
}

TEST(DoubleRatchet, MalformedStateCatalogue) {
  const Bytes good = ToBytes(StateWithSkippedKeys());
  auto with = [&](auto&& edit) {
    Bytes b = good;
    edit(b);
    return ParseError(b);
  };
  auto put_u32 = [](Bytes& b, std::size_t off, std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
      b[off + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
  };
  constexpr std::size_t kFlags = 1;
  constexpr std::size_t kDhr = 34;
  constexpr std::size_t kKeys = 66;
  constexpr std::size_t kCount = 334;

  EXPECT_EQ(with([](Bytes& b) { b[0] = 0; }), Errc::kUnsupported);
  EXPECT_EQ(with([](Bytes& b) { b[0] = 2; }), Errc::kUnsupported);
  EXPECT_EQ(ParseError(Bytes(kMaxRatchetStateBytes + 1, 1)), Errc::kLimitExceeded);
  EXPECT_EQ(with([](Bytes& b) { b[kFlags] |= 0x80; }), Errc::kMalformed);       // unknown flag
  EXPECT_EQ(with([&](Bytes& b) { put_u32(b, kCount, 3); }), Errc::kMalformed);  // count > entries
  EXPECT_EQ(with([&](Bytes& b) { put_u32(b, kCount, 1); }), Errc::kMalformed);  // count < entries
  EXPECT_EQ(with([&](Bytes& b) { put_u32(b, kCount, kMaxSkippedKeys + 1); }), Errc::kMalformed);
  EXPECT_EQ(with([&](Bytes& b) { put_u32(b, kCount, 0xffffffff); }), Errc::kMalformed);

  // The stored state is Bob's after his reply: DHs, DHr, CKs, CKr, HKs, HKr.
  ASSERT_EQ(good[kFlags], 0x3f);
  EXPECT_EQ(with([](Bytes& b) { b[kFlags] = 0x3f & ~0x04; }), Errc::kCorrupt);  // HKs without CKs
  EXPECT_EQ(with([](Bytes& b) { b[kFlags] = 0x3f & ~0x08; }), Errc::kCorrupt);  // HKr without CKr
  EXPECT_EQ(with([](Bytes& b) { b[kFlags] = 0x3f & ~0x01; }), Errc::kCorrupt);  // no ratchet key
  EXPECT_EQ(with([](Bytes& b) { b[kFlags] = 0x3f | 0x40; }), Errc::kCorrupt);   // pending with DHs
  EXPECT_EQ(with([](Bytes& b) { b[kFlags] = 0x3f & ~0x02; }),
            Errc::kCorrupt);  // chains without DHr
  EXPECT_EQ(with([&](Bytes& b) { std::fill_n(b.begin() + kDhr, 32, 0); }), Errc::kCorrupt);

  // A fresh Bob (DHs only) with bytes in absent fields.
  Session s = MakeSession();
  const Bytes fresh_bob = ToBytes(s.bob.Serialize());
  ASSERT_EQ(fresh_bob[kFlags], 0x01);
  for (std::size_t off : {kDhr, kKeys + 2 * 32, kKeys + 3 * 32, kKeys + 4 * 32, kKeys + 5 * 32}) {
    Bytes b = fresh_bob;
    b[off + 7] = 1;
    EXPECT_EQ(ParseError(b), Errc::kMalformed) << "offset " << off;
  }
  // A fresh Alice (pending DH step, no ratchet key) with a private key present.
  const Bytes fresh_alice = ToBytes(s.alice.Serialize());
  ASSERT_EQ(fresh_alice[kFlags], 0x42);
  Bytes b = fresh_alice;
  b[kKeys] = 1;
  EXPECT_EQ(ParseError(b), Errc::kMalformed);
  b = fresh_alice;
  b[kFlags] = 0x40;  // pending without a peer key
  EXPECT_EQ(ParseError(b), Errc::kCorrupt);
}

TEST(DoubleRatchet, EveryByteMutationOfAStateParsesOrFailsCleanly) {
  // Each single-byte change either is refused with a parse error or yields a
  // state that serializes back to exactly the mutated bytes (canonical form).
  const Bytes good = ToBytes(StateWithSkippedKeys());
  for (std::size_t i = 0; i < good.size(); ++i) {
    Bytes b = good;
    b[i] ^= 0xff;
    auto r = DoubleRatchet::Parse(b);
    if (r.ok()) {
      EXPECT_EQ(ToBytes(r->Serialize()), b) << "byte " << i;
    } else {
      const Errc c = r.error().code;
      EXPECT_TRUE(c == Errc::kMalformed || c == Errc::kCorrupt || c == Errc::kUnsupported)
          << "byte " << i;
    }
  }
}

}  // namespace
}  // namespace rhizome::crypto

namespace rhizome::crypto {
namespace {

// A peer that leaves one gap in each of many chains must not make every later
// message cost a trial decryption per chain: at most kMaxSkippedChains chains
// keep skipped keys, the oldest giving way whole.
TEST(DoubleRatchet, GapsInManyChainsKeepOnlyTheNewestChainsKeys) {
  Session s = MakeSession(77);
  DeterministicRandom rng(78);
  std::vector<Bytes> withheld;  // the first message of each of Alice's chains
  for (std::size_t round = 0; round < kMaxSkippedChains + 4; ++round) {
    withheld.push_back(Enc(s.alice, "gap " + std::to_string(round), rng));
    EXPECT_EQ(Dec(s.bob, Enc(s.alice, "after gap", rng)), "after gap");
    EXPECT_EQ(Dec(s.alice, Enc(s.bob, "reply", rng)), "reply");  // a new chain each way
  }
  EXPECT_EQ(s.bob.skipped_key_count(), kMaxSkippedChains);
  // The oldest chains' keys are gone: their late messages are refused, unchanged.
  for (std::size_t i = 0; i < 4; ++i) {
    SecretBytes before = s.bob.Serialize();
    EXPECT_FALSE(s.bob.Decrypt(withheld[i], kNow).ok()) << i;
    EXPECT_TRUE(SameBytes(before, s.bob.Serialize()));
  }
  // The newest chains' late messages still arrive, once.
  for (std::size_t i = 4; i < withheld.size(); ++i) {
    EXPECT_EQ(Dec(s.bob, withheld[i]), "gap " + std::to_string(i));
  }
  EXPECT_EQ(s.bob.skipped_key_count(), 0u);
}

// Keys stamped by a clock that ran far ahead expire once it is corrected,
// instead of staying until real time catches up; a small step back keeps them.
TEST(DoubleRatchet, SkippedKeysStampedFarInTheFutureExpire) {
  constexpr std::uint64_t kDay = 24 * 3600;
  Session s = MakeSession(91);
  DeterministicRandom rng(92);
  Bytes late = Enc(s.alice, "late", rng);
  auto on_time = s.bob.Decrypt(Enc(s.alice, "on time", rng), kNow + 100 * kDay);
  ASSERT_TRUE(on_time.ok());
  ASSERT_EQ(s.bob.skipped_key_count(), 1u);
  s.bob.DropExpiredSkippedKeys(kNow + 99 * kDay);  // one day back: kept
  EXPECT_EQ(s.bob.skipped_key_count(), 1u);
  s.bob.DropExpiredSkippedKeys(kNow);  // 100 days back: the stamp is not believable
  EXPECT_EQ(s.bob.skipped_key_count(), 0u);
  EXPECT_FALSE(s.bob.Decrypt(late, kNow).ok());
}

}  // namespace
}  // namespace rhizome::crypto
