// NoiseHandshakeState::SplitKeys: the raw Split() keys that first contact
// needs (DESIGN §6: k2 of Noise_Xpsk1 for the ratchet bootstrap, k1 || k2 of
// Noise_KK for the confirmation mix).
#include <gtest/gtest.h>

#include <optional>

#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/noise.h"
#include "rhizome/crypto/random.h"

namespace rhizome::crypto {
namespace {

// Runs one KK handshake with fixed keys and ephemerals, so that two runs are
// byte-identical; returns the finished initiator and responder.
struct Finished {
  std::optional<NoiseHandshakeState> init, resp;
};

Finished RunKk() {
  DeterministicRandom rng(42);
  const X25519KeyPair a = X25519Generate(rng), b = X25519Generate(rng);
  const SecretBytes ea = SecretBytes::Random(rng, 32), eb = SecretBytes::Random(rng, 32);
  Finished f;
  for (bool initiator : {true, false}) {
    NoiseHandshakeConfig c;
    c.protocol_name = "Noise_KK_25519_ChaChaPoly_BLAKE2b";
    c.role = initiator ? NoiseRole::kInitiator : NoiseRole::kResponder;
    c.local_static = initiator ? &a : &b;
    c.remote_static = initiator ? b.public_key : a.public_key;
    c.fixed_ephemeral = initiator ? &ea : &eb;
    auto hs = NoiseHandshakeState::Create(c, rng);
    EXPECT_TRUE(hs.ok());
    (initiator ? f.init : f.resp).emplace(std::move(hs).value());
  }
  auto m1 = f.init->WriteMessage({});
  EXPECT_TRUE(m1.ok() && f.resp->ReadMessage(*m1).ok());
  auto m2 = f.resp->WriteMessage({});
  EXPECT_TRUE(m2.ok() && f.init->ReadMessage(*m2).ok());
  return f;
}

TEST(NoiseSplitKeys, KeysAreThoseOfSplitInNoiseOrder) {
  ASSERT_TRUE(Init().ok());
  Finished x = RunKk(), y = RunKk();
  auto transport = x.init->Split();
  auto keys = y.init->SplitKeys();
  ASSERT_TRUE(transport.ok() && keys.ok());
  ASSERT_EQ(keys->k1.size(), 32u);
  ASSERT_EQ(keys->k2.size(), 32u);
  // k1 encrypts initiator -> responder, k2 the other way.
  auto c1 = NoiseCipherState::FromKey(keys->k1.expose());
  auto c2 = NoiseCipherState::FromKey(keys->k2.expose());
  ASSERT_TRUE(c1.ok() && c2.ok());
  const Bytes msg = {1, 2, 3};
  EXPECT_EQ(transport->send.EncryptWithAd({}, msg).value(), c1->EncryptWithAd({}, msg).value());
  auto from_resp = y.resp->WriteMessage({});  // complete: refused
  EXPECT_FALSE(from_resp.ok());
  auto resp_keys = x.resp->SplitKeys();
  ASSERT_TRUE(resp_keys.ok());
  EXPECT_TRUE(resp_keys->k1.ConstantTimeEquals(keys->k1));
  EXPECT_TRUE(resp_keys->k2.ConstantTimeEquals(keys->k2));
  auto back = c2->EncryptWithAd({}, msg);
  EXPECT_EQ(transport->receive.DecryptWithAd({}, *back).value(), msg);
  // Once only, and not before completion.
  EXPECT_EQ(y.init->SplitKeys().error().code, Errc::kInvalidArgument);
  EXPECT_EQ(x.init->SplitKeys().error().code, Errc::kInvalidArgument);
}

TEST(NoiseSplitKeys, OneWayPatternGivesBothKeysToBothSides) {
  ASSERT_TRUE(Init().ok());
  DeterministicRandom rng(7);
  const X25519KeyPair s = X25519Generate(rng), rs = X25519Generate(rng);
  const SecretBytes psk = SecretBytes::Random(rng, 32);
  NoiseHandshakeConfig ci;
  ci.protocol_name = "Noise_Xpsk1_25519_ChaChaPoly_BLAKE2b";
  ci.local_static = &s;
  ci.remote_static = rs.public_key;
  ci.psks = std::span<const SecretBytes>(&psk, 1);
  NoiseHandshakeConfig cr = ci;
  cr.role = NoiseRole::kResponder;
  cr.local_static = &rs;
  cr.remote_static.reset();
  auto init = NoiseHandshakeState::Create(ci, rng);
  auto resp = NoiseHandshakeState::Create(cr, rng);
  ASSERT_TRUE(init.ok() && resp.ok());
  EXPECT_EQ(init->SplitKeys().error().code, Errc::kInvalidArgument);  // not complete
  auto m = init->WriteMessage({});
  ASSERT_TRUE(m.ok() && resp->ReadMessage(*m).ok());
  auto ki = init->SplitKeys();
  auto kr = resp->SplitKeys();
  ASSERT_TRUE(ki.ok() && kr.ok());
  EXPECT_TRUE(ki->k1.ConstantTimeEquals(kr->k1));
  EXPECT_TRUE(ki->k2.ConstantTimeEquals(kr->k2));
  EXPECT_FALSE(ki->k1.ConstantTimeEquals(ki->k2));
}

}  // namespace
}  // namespace rhizome::crypto
