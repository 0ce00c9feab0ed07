// Noise framework: protocol-name parsing, the HandshakeState lifecycle and the
// transport CipherState (nonces, limits, Rekey). Known answers are in
// noise_vectors_test.cc, attacks in noise_negative_test.cc.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "rhizome/crypto/aead.h"
#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/noise.h"
#include "rhizome/crypto/random.h"
#include "test_support.h"

namespace rhizome::crypto {
namespace {

class NoiseStateInitEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { ASSERT_TRUE(Init().ok()); }
};
[[maybe_unused]] auto* const kInitEnv =
    ::testing::AddGlobalTestEnvironment(new NoiseStateInitEnvironment);

using Tok = NoiseToken;

std::string Name(const std::string& pattern, const char* hash = "BLAKE2b") {
  return "Noise_" + pattern + "_25519_ChaChaPoly_" + hash;
}

// Both parties of one handshake with fresh keys from a deterministic RNG.
struct Pair {
  X25519KeyPair init_s;
  X25519KeyPair resp_s;
  std::vector<SecretBytes> psks;
  std::optional<NoiseHandshakeState> init;
  std::optional<NoiseHandshakeState> resp;
};

void MakePair(const std::string& name, Pair& p, std::uint64_t seed = 1) {
  DeterministicRandom rng(seed);
  p.init_s = X25519Generate(rng);
  p.resp_s = X25519Generate(rng);
  auto protocol = NoiseProtocol::Parse(name);
  ASSERT_TRUE(protocol.ok()) << name;
  for (std::size_t i = 0; i < protocol->psk_count(); ++i) {
    p.psks.push_back(SecretBytes::Random(rng, 32));
  }
  for (NoiseRole role : {NoiseRole::kInitiator, NoiseRole::kResponder}) {
    const bool is_init = role == NoiseRole::kInitiator;
    NoiseHandshakeConfig c;
    c.protocol_name = name;
    c.role = role;
    c.prologue = AsBytes("rhizome test prologue");
    if (protocol->NeedsLocalStatic(role)) c.local_static = is_init ? &p.init_s : &p.resp_s;
    if (protocol->NeedsRemoteStatic(role)) {
      c.remote_static = is_init ? p.resp_s.public_key : p.init_s.public_key;
    }
    c.psks = p.psks;
    auto hs = NoiseHandshakeState::Create(c, rng);
    ASSERT_TRUE(hs.ok()) << name << ": " << hs.error().message;
    (is_init ? p.init : p.resp).emplace(std::move(hs).value());
  }
}

// Runs the whole handshake with small payloads; returns the transports.
void RunHandshake(Pair& p, NoiseTransport& init_t, NoiseTransport& resp_t) {
  std::size_t i = 0;
  while (!p.init->IsComplete()) {
    NoiseHandshakeState& w = p.init->IsMyTurn() ? *p.init : *p.resp;
    NoiseHandshakeState& r = p.init->IsMyTurn() ? *p.resp : *p.init;
    ASSERT_TRUE(w.IsMyTurn());
    ASSERT_FALSE(r.IsMyTurn());
    const std::string payload = "handshake payload " + std::to_string(i++);
    const std::size_t overhead = w.NextMessageOverhead();
    EXPECT_EQ(overhead, r.NextMessageOverhead());
    auto msg = w.WriteMessage(AsBytes(payload));
    ASSERT_TRUE(msg.ok()) << msg.error().message;
    EXPECT_EQ(msg->size(), payload.size() + overhead);
    auto got = r.ReadMessage(*msg);
    ASSERT_TRUE(got.ok()) << got.error().message;
    EXPECT_EQ(*got, Bytes(payload.begin(), payload.end()));
  }
  ASSERT_TRUE(p.resp->IsComplete());
  auto a = p.init->Split();
  auto b = p.resp->Split();
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  init_t = std::move(a).value();
  resp_t = std::move(b).value();
}

TEST(NoiseProtocolTest, ParsesRhizomePatternsIntoTokenTables) {
  auto xk = NoiseProtocol::Parse("Noise_XK_25519_ChaChaPoly_BLAKE2b");
  ASSERT_TRUE(xk.ok());
  EXPECT_EQ(xk->hash(), NoiseHashFunction::kBlake2b);
  EXPECT_EQ(xk->hash_len(), 64u);
  EXPECT_FALSE(xk->one_way());
  EXPECT_TRUE(xk->initiator_premessage().empty());
  EXPECT_EQ(xk->responder_premessage(), std::vector<Tok>{Tok::kS});
  ASSERT_EQ(xk->messages().size(), 3u);
  EXPECT_EQ(xk->messages()[0].tokens, (std::vector<Tok>{Tok::kE, Tok::kEs}));
  EXPECT_EQ(xk->messages()[1].tokens, (std::vector<Tok>{Tok::kE, Tok::kEe}));
  EXPECT_EQ(xk->messages()[2].tokens, (std::vector<Tok>{Tok::kS, Tok::kSe}));
  EXPECT_TRUE(xk->messages()[0].from_initiator);
  EXPECT_FALSE(xk->messages()[1].from_initiator);
  EXPECT_TRUE(xk->NeedsLocalStatic(NoiseRole::kInitiator));
  EXPECT_TRUE(xk->NeedsRemoteStatic(NoiseRole::kInitiator));
  EXPECT_FALSE(xk->NeedsRemoteStatic(NoiseRole::kResponder));

  auto nkpsk0 = NoiseProtocol::Parse("Noise_NKpsk0_25519_ChaChaPoly_BLAKE2b");
  ASSERT_TRUE(nkpsk0.ok());
  EXPECT_EQ(nkpsk0->psk_count(), 1u);
  EXPECT_EQ(nkpsk0->messages()[0].tokens, (std::vector<Tok>{Tok::kPsk, Tok::kE, Tok::kEs}));
  EXPECT_FALSE(nkpsk0->NeedsLocalStatic(NoiseRole::kInitiator));

  auto xkpsk3 = NoiseProtocol::Parse("Noise_XKpsk3_25519_ChaChaPoly_SHA256");
  ASSERT_TRUE(xkpsk3.ok());
  EXPECT_EQ(xkpsk3->hash_len(), 32u);
  EXPECT_EQ(xkpsk3->messages()[2].tokens, (std::vector<Tok>{Tok::kS, Tok::kSe, Tok::kPsk}));

  auto xpsk1 = NoiseProtocol::Parse("Noise_Xpsk1_25519_ChaChaPoly_BLAKE2b");
  ASSERT_TRUE(xpsk1.ok());
  EXPECT_TRUE(xpsk1->one_way());
  ASSERT_EQ(xpsk1->messages().size(), 1u);
  EXPECT_EQ(xpsk1->messages()[0].tokens,
            (std::vector<Tok>{Tok::kE, Tok::kEs, Tok::kS, Tok::kSs, Tok::kPsk}));

  auto multi = NoiseProtocol::Parse("Noise_XXpsk0+psk3_25519_ChaChaPoly_BLAKE2b");
  ASSERT_TRUE(multi.ok());
  EXPECT_EQ(multi->psk_count(), 2u);
  EXPECT_EQ(multi->messages()[0].tokens.front(), Tok::kPsk);
  EXPECT_EQ(multi->messages()[2].tokens.back(), Tok::kPsk);

  auto kk = NoiseProtocol::Parse("Noise_KK_25519_ChaChaPoly_BLAKE2b");
  ASSERT_TRUE(kk.ok());
  EXPECT_EQ(kk->initiator_premessage(), std::vector<Tok>{Tok::kS});
  EXPECT_EQ(kk->responder_premessage(), std::vector<Tok>{Tok::kS});
}

TEST(NoiseProtocolTest, RejectsUnsupportedAndMalformedNames) {
  for (const char* name :
       {"Noise_XXfallback_25519_ChaChaPoly_BLAKE2b", "Noise_XXhfs_25519_ChaChaPoly_BLAKE2b",
        "Noise_X1K_25519_ChaChaPoly_BLAKE2b", "Noise_ZZ_25519_ChaChaPoly_BLAKE2b",
        "Noise_XK_448_ChaChaPoly_BLAKE2b", "Noise_XK_25519_AESGCM_BLAKE2b",
        "Noise_XK_25519_ChaChaPoly_BLAKE2s", "Noise_XK_25519_ChaChaPoly_SHA512"}) {
    auto p = NoiseProtocol::Parse(name);
    ASSERT_FALSE(p.ok()) << name;
    EXPECT_EQ(p.error().code, Errc::kUnsupported) << name;
  }
  for (const char* name :
       {"", "Noise", "Noise_XK_25519_ChaChaPoly", "Noise_XK+25519_ChaChaPoly_BLAKE2b",
        "Noise_XK_25519_ChaChaPoly_BLAKE2b_", "Noise_XK_25519_ChaChaPoly_BLAKE2b_x",
        "Noisy_XK_25519_ChaChaPoly_BLAKE2b", "Noise__25519_ChaChaPoly_BLAKE2b",
        "Noise_XKpsk4_25519_ChaChaPoly_BLAKE2b", "Noise_NNpsk3_25519_ChaChaPoly_BLAKE2b",
        "Noise_XKpsk0+psk0_25519_ChaChaPoly_BLAKE2b", "Noise_XKpsk0+_25519_ChaChaPoly_BLAKE2b",
        "Noise_XKpsk01_25519_ChaChaPoly_BLAKE2b", "Noise_XKpskx_25519_ChaChaPoly_BLAKE2b",
        "Noise_Xpsk2_25519_ChaChaPoly_BLAKE2b"}) {
    auto p = NoiseProtocol::Parse(name);
    ASSERT_FALSE(p.ok()) << name;
    EXPECT_TRUE(p.error().code == Errc::kMalformed || p.error().code == Errc::kUnsupported) << name;
  }
  const std::string long_name = "Noise_XK_25519_ChaChaPoly_BLAKE2b" + std::string(300, 'x');
  auto p = NoiseProtocol::Parse(long_name);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, Errc::kMalformed);
}

// Every supported pattern, both hashes, with and without PSKs: the handshake
// completes, both sides agree on h and on each other's static keys, and the
// transports carry data both ways (one way for N, K, X).
TEST(NoiseHandshakeTest, EverySupportedPatternRoundTrips) {
  const char* bases[] = {"N",  "K",  "X",  "NN", "NK", "NX", "XN", "XK",
                         "XX", "KN", "KK", "KX", "IN", "IK", "IX"};
  std::size_t ran = 0;
  for (const char* hash : {"BLAKE2b", "SHA256"}) {
    for (const char* base : bases) {
      for (const char* mods : {"", "psk0", "psk1", "psk0+psk1"}) {
        const std::string name = Name(std::string(base) + mods, hash);
        SCOPED_TRACE(name);
        Pair p;
        MakePair(name, p);
        NoiseTransport it, rt;
        RunHandshake(p, it, rt);
        if (HasFatalFailure()) return;
        EXPECT_EQ(p.init->HandshakeHash(), p.resp->HandshakeHash());
        EXPECT_EQ(p.init->HandshakeHash().size(), p.init->protocol().hash_len());
        const auto& protocol = p.init->protocol();
        if (protocol.NeedsLocalStatic(NoiseRole::kResponder)) {
          ASSERT_TRUE(p.init->RemoteStatic().has_value());
          EXPECT_EQ(*p.init->RemoteStatic(), p.resp_s.public_key);
        } else {
          EXPECT_FALSE(p.init->RemoteStatic().has_value());
        }
        if (protocol.NeedsLocalStatic(NoiseRole::kInitiator)) {
          ASSERT_TRUE(p.resp->RemoteStatic().has_value());
          EXPECT_EQ(*p.resp->RemoteStatic(), p.init_s.public_key);
        }
        for (int round = 0; round < 3; ++round) {
          const std::string a = "to responder " + std::to_string(round);
          auto ct = it.send.EncryptWithAd(AsBytes("ad"), AsBytes(a));
          ASSERT_TRUE(ct.ok());
          auto pt = rt.receive.DecryptWithAd(AsBytes("ad"), *ct);
          ASSERT_TRUE(pt.ok());
          EXPECT_EQ(*pt, Bytes(a.begin(), a.end()));
          if (protocol.one_way()) {
            EXPECT_FALSE(rt.send.HasKey());
            EXPECT_FALSE(it.receive.HasKey());
            continue;
          }
          const std::string b = "to initiator " + std::to_string(round);
          auto ct2 = rt.send.EncryptWithAd({}, AsBytes(b));
          ASSERT_TRUE(ct2.ok());
          auto pt2 = it.receive.DecryptWithAd({}, *ct2);
          ASSERT_TRUE(pt2.ok());
          EXPECT_EQ(*pt2, Bytes(b.begin(), b.end()));
        }
        ++ran;
      }
    }
  }
  EXPECT_EQ(ran, 2u * 15u * 4u);
}

TEST(NoiseHandshakeTest, OneWayUnusedDirectionRefusesToWork) {
  Pair p;
  MakePair(Name("Xpsk1"), p);
  NoiseTransport it, rt;
  RunHandshake(p, it, rt);
  auto e = rt.send.EncryptWithAd({}, AsBytes("x"));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, Errc::kInvalidArgument);
  auto d = it.receive.DecryptWithAd({}, Bytes(20, 0));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, Errc::kInvalidArgument);
  EXPECT_FALSE(NoiseCipherState().EncryptWithAd({}, AsBytes("x")).ok());
}

TEST(NoiseHandshakeTest, SplitOnlyOnceAndOnlyWhenComplete) {
  Pair p;
  MakePair(Name("NN"), p);
  auto early = p.init->Split();
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.error().code, Errc::kInvalidArgument);
  NoiseTransport it, rt;
  RunHandshake(p, it, rt);
  EXPECT_FALSE(p.init->Split().ok());
  EXPECT_FALSE(p.resp->Split().ok());
  EXPECT_TRUE(p.init->IsComplete());
  // No more handshake messages after completion.
  EXPECT_FALSE(p.init->WriteMessage({}).ok());
}

TEST(NoiseHandshakeTest, WritingOutOfTurnFailsTheState) {
  Pair p;
  MakePair(Name("XK"), p);
  EXPECT_FALSE(p.resp->IsMyTurn());
  auto w = p.resp->WriteMessage({});
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, Errc::kInvalidArgument);
  EXPECT_TRUE(p.resp->IsFailed());
  auto r = p.init->ReadMessage(Bytes(64, 0));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(p.init->IsFailed());
}

TEST(NoiseHandshakeTest, CreateChecksKeysAgainstThePattern) {
  DeterministicRandom rng(7);
  const X25519KeyPair s = X25519Generate(rng);
  const SecretBytes psk = SecretBytes::Random(rng, 32);
  const SecretBytes short_psk = SecretBytes::Random(rng, 16);
  auto code_of = [&](NoiseHandshakeConfig c) {
    auto r = NoiseHandshakeState::Create(c, rng);
    return r.ok() ? Errc{} : r.error().code;
  };
  const std::string xk = Name("XK");
  NoiseHandshakeConfig c;
  c.protocol_name = xk;
  c.role = NoiseRole::kInitiator;
  c.remote_static = s.public_key;
  EXPECT_EQ(code_of(c), Errc::kInvalidArgument);  // XK initiator needs its static key
  c.local_static = &s;
  EXPECT_EQ(code_of(c), Errc{});
  c.remote_static.reset();
  EXPECT_EQ(code_of(c), Errc::kInvalidArgument);  // and the responder's

  const std::string nn = Name("NN");
  NoiseHandshakeConfig n;
  n.protocol_name = nn;
  EXPECT_EQ(code_of(n), Errc{});
  n.remote_static = s.public_key;  // NN never checks a remote static key
  EXPECT_EQ(code_of(n), Errc::kInvalidArgument);
  n.remote_static.reset();
  n.local_static = &s;
  EXPECT_EQ(code_of(n), Errc::kInvalidArgument);

  const std::string nkpsk0 = Name("NKpsk0");
  NoiseHandshakeConfig k;
  k.protocol_name = nkpsk0;
  k.remote_static = s.public_key;
  EXPECT_EQ(code_of(k), Errc::kInvalidArgument);  // missing PSK
  k.psks = std::span<const SecretBytes>(&short_psk, 1);
  EXPECT_EQ(code_of(k), Errc::kInvalidArgument);  // PSK of the wrong size
  k.psks = std::span<const SecretBytes>(&psk, 1);
  EXPECT_EQ(code_of(k), Errc{});

  // The responder of a one-way pattern sends no ephemeral.
  const std::string x = Name("N");
  NoiseHandshakeConfig o;
  o.protocol_name = x;
  o.role = NoiseRole::kResponder;
  o.local_static = &s;
  o.fixed_ephemeral = &psk;
  EXPECT_EQ(code_of(o), Errc::kInvalidArgument);

  NoiseHandshakeConfig bad;
  bad.protocol_name = "Noise_QQ_25519_ChaChaPoly_BLAKE2b";
  EXPECT_EQ(code_of(bad), Errc::kUnsupported);

  const Bytes huge(kNoiseMaxPrologueBytes + 1, 0);
  NoiseHandshakeConfig pro;
  pro.protocol_name = nn;
  pro.prologue = huge;
  EXPECT_EQ(code_of(pro), Errc::kLimitExceeded);
}

TEST(NoiseHandshakeTest, EphemeralKeysComeFromTheRandomSource) {
  // Two handshakes with different RNG seeds differ; with equal seeds they match.
  auto first_message = [](std::uint64_t seed) {
    Pair p;
    MakePair(Name("NN"), p, seed);
    auto m = p.init->WriteMessage({});
    EXPECT_TRUE(m.ok());
    return m.ok() ? *m : Bytes{};
  };
  EXPECT_EQ(first_message(5), first_message(5));
  EXPECT_NE(first_message(5), first_message(6));
  EXPECT_EQ(first_message(5).size(), 32u);
}

// --- CipherState ---

TEST(NoiseCipherStateTest, NonceAtItsLimitRefusesToEncryptOrDecrypt) {
  const Bytes key(32, 0x42);
  auto cs = NoiseCipherState::FromKey(key);
  ASSERT_TRUE(cs.ok());
  cs->SetNonce(kNoiseMaxNonce - 1);
  auto last = cs->EncryptWithAd({}, AsBytes("last"));
  ASSERT_TRUE(last.ok());  // 2^64-2 is the last usable nonce
  EXPECT_EQ(cs->nonce(), kNoiseMaxNonce);
  auto refused = cs->EncryptWithAd({}, AsBytes("one too many"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::kLimitExceeded);
  EXPECT_EQ(cs->nonce(), kNoiseMaxNonce);

  auto rx = NoiseCipherState::FromKey(key);
  ASSERT_TRUE(rx.ok());
  rx->SetNonce(kNoiseMaxNonce - 1);
  auto ok = rx->DecryptWithAd({}, *last);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, Bytes({'l', 'a', 's', 't'}));
  auto refused_rx = rx->DecryptWithAd({}, *last);
  ASSERT_FALSE(refused_rx.ok());
  EXPECT_EQ(refused_rx.error().code, Errc::kLimitExceeded);
}

TEST(NoiseCipherStateTest, UsesFourZeroBytesAndLittleEndianCounterAsNonce) {
  const Bytes key(32, 0x07);
  auto cs = NoiseCipherState::FromKey(key);
  ASSERT_TRUE(cs.ok());
  cs->SetNonce(0x0102030405060708ull);
  auto ct = cs->EncryptWithAd(AsBytes("ad"), AsBytes("hello"));
  ASSERT_TRUE(ct.ok());
  const Bytes nonce = {0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1};
  Bytes expected(5 + 16);
  ASSERT_TRUE(ChaChaIetfEncrypt(key, nonce, AsBytes("ad"), AsBytes("hello"), expected).ok());
  EXPECT_EQ(*ct, expected);
}

TEST(NoiseCipherStateTest, RekeyFollowsTheSpecAndKeepsTheNonce) {
  const Bytes key(32, 0x11);
  auto a = NoiseCipherState::FromKey(key);
  auto b = NoiseCipherState::FromKey(key);
  ASSERT_TRUE(a.ok() && b.ok());
  a->SetNonce(5);
  ASSERT_TRUE(a->Rekey().ok());
  EXPECT_EQ(a->nonce(), 5u);
  // REKEY(k) = ENCRYPT(k, 2^64-1, "", zeros[32])[0:32].
  const Bytes max_nonce = {0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  Bytes out(48);
  ASSERT_TRUE(ChaChaIetfEncrypt(key, max_nonce, {}, Bytes(32, 0), out).ok());
  auto expected = NoiseCipherState::FromKey(ByteSpan(out).first(32));
  ASSERT_TRUE(expected.ok());
  expected->SetNonce(5);
  auto x = a->EncryptWithAd({}, AsBytes("after rekey"));
  auto y = expected->EncryptWithAd({}, AsBytes("after rekey"));
  ASSERT_TRUE(x.ok() && y.ok());
  EXPECT_EQ(*x, *y);
  // The old key no longer decrypts.
  b->SetNonce(5);
  EXPECT_FALSE(b->DecryptWithAd({}, *x).ok());
}

TEST(NoiseCipherStateTest, RejectsReplayedTransportMessage) {
  Pair p;
  MakePair(Name("XK"), p);
  NoiseTransport it, rt;
  RunHandshake(p, it, rt);
  auto ct = it.send.EncryptWithAd({}, AsBytes("once"));
  ASSERT_TRUE(ct.ok());
  ASSERT_TRUE(rt.receive.DecryptWithAd({}, *ct).ok());
  auto again = rt.receive.DecryptWithAd({}, *ct);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::kAuthenticationFailed);
}

TEST(NoiseCipherStateTest, FailedDecryptionLeavesTheNonceUnchanged) {
  Pair p;
  MakePair(Name("NN"), p);
  NoiseTransport it, rt;
  RunHandshake(p, it, rt);
  auto ct = it.send.EncryptWithAd({}, AsBytes("payload"));
  ASSERT_TRUE(ct.ok());
  Bytes bad = *ct;
  bad[0] ^= 1;
  Bytes out(bad.size() - 16, 0xAA);
  auto st = rt.receive.DecryptWithAd({}, bad, out);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kAuthenticationFailed);
  EXPECT_EQ(out, Bytes(out.size(), 0));  // no plaintext left behind
  EXPECT_EQ(rt.receive.nonce(), 0u);
  auto good = rt.receive.DecryptWithAd({}, *ct);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(rt.receive.nonce(), 1u);
}

TEST(NoiseCipherStateTest, TransportMessagesAreLimitedTo65535Bytes) {
  auto cs = NoiseCipherState::FromKey(Bytes(32, 1));
  ASSERT_TRUE(cs.ok());
  const Bytes max_pt(kNoiseMaxTransportPayloadBytes, 0x55);
  auto ct = cs->EncryptWithAd({}, max_pt);
  ASSERT_TRUE(ct.ok());
  EXPECT_EQ(ct->size(), kNoiseMaxMessageBytes);
  auto too_big = cs->EncryptWithAd({}, Bytes(kNoiseMaxTransportPayloadBytes + 1, 0));
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.error().code, Errc::kLimitExceeded);

  auto rx = NoiseCipherState::FromKey(Bytes(32, 1));
  ASSERT_TRUE(rx.ok());
  auto oversized = rx->DecryptWithAd({}, Bytes(kNoiseMaxMessageBytes + 1, 0));
  ASSERT_FALSE(oversized.ok());
  EXPECT_EQ(oversized.error().code, Errc::kLimitExceeded);
  auto truncated = rx->DecryptWithAd({}, Bytes(15, 0));
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.error().code, Errc::kMalformed);
  auto ok = rx->DecryptWithAd({}, *ct);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, max_pt);
}

TEST(NoiseCipherStateTest, FromKeyRejectsWrongKeySize) {
  auto r = NoiseCipherState::FromKey(Bytes(31, 0));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
}

}  // namespace
}  // namespace rhizome::crypto
