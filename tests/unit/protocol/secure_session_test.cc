#include "rhizome/protocol/secure_session.h"

#include <gtest/gtest.h>

#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/protocol/frame.h"
#include "rhizome/protocol/version.h"

namespace rhizome::protocol {
namespace {

using crypto::NoiseRole;

class SecureSessionTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(crypto::Init()); }

  SecureSessionConfig RelayClient(const crypto::SecretBytes& psk) {
    SecureSessionConfig c;
    c.kind = ChannelKind::kClientToRelay;
    c.role = NoiseRole::kInitiator;
    c.remote_static = relay_key_.public_key;
    c.psk = &psk;
    return c;
  }
  SecureSessionConfig RelayServer(const crypto::SecretBytes& psk) {
    SecureSessionConfig c;
    c.kind = ChannelKind::kClientToRelay;
    c.role = NoiseRole::kResponder;
    c.local_statics = {&relay_key_};
    c.psk = &psk;
    return c;
  }
  SecureSessionConfig PeerInitiator() {
    SecureSessionConfig c;
    c.kind = ChannelKind::kPeerLink;
    c.role = NoiseRole::kInitiator;
    c.local_statics = {&alice_};
    c.remote_static = bob_.public_key;
    return c;
  }
  SecureSessionConfig PeerResponder(bool known = true) {
    SecureSessionConfig c;
    c.kind = ChannelKind::kPeerLink;
    c.role = NoiseRole::kResponder;
    c.local_statics = {&bob_};
    c.authorize_initiator = [this, known](ByteSpan key) {
      return known && ConstantTimeEqual(key, alice_.public_key);
    };
    return c;
  }

  // Moves bytes between the two sessions until neither has anything to send.
  // `chunk` splits every transmission into pieces of that size.
  static ::testing::AssertionResult Pump(SecureSession& a, SecureSession& b, Bytes a_out,
                                         std::size_t chunk = 65536) {
    Bytes to_b = std::move(a_out), to_a;
    std::vector<Bytes> got;
    for (int round = 0; round < 8 && (!to_b.empty() || !to_a.empty()); ++round) {
      for (std::size_t i = 0; i < to_b.size(); i += chunk) {
        auto piece = ByteSpan(to_b).subspan(i, std::min(chunk, to_b.size() - i));
        if (auto st = b.OnBytes(piece, to_a, got); !st) {
          return ::testing::AssertionFailure() << "b: " << st.error().message;
        }
      }
      to_b.clear();
      for (std::size_t i = 0; i < to_a.size(); i += chunk) {
        auto piece = ByteSpan(to_a).subspan(i, std::min(chunk, to_a.size() - i));
        if (auto st = a.OnBytes(piece, to_b, got); !st) {
          return ::testing::AssertionFailure() << "a: " << st.error().message;
        }
      }
      to_a.clear();
    }
    return ::testing::AssertionSuccess();
  }

  crypto::DeterministicRandom rng_{7};
  crypto::X25519KeyPair relay_key_ = crypto::X25519Generate(rng_);
  crypto::X25519KeyPair alice_ = crypto::X25519Generate(rng_);
  crypto::X25519KeyPair bob_ = crypto::X25519Generate(rng_);
  crypto::SecretBytes open_psk_ = crypto::SecretBytes(32);
};

TEST_F(SecureSessionTest, ClientAndRelayEstablishAndExchangeInAnySplit) {
  for (std::size_t chunk : {1u, 2u, 3u, 17u, 65536u}) {
    auto client = SecureSession::Create(RelayClient(open_psk_), rng_);
    auto relay = SecureSession::Create(RelayServer(open_psk_), rng_);
    ASSERT_TRUE(client && relay);
    Bytes out;
    ASSERT_TRUE(client->Start(out));
    ASSERT_TRUE(Pump(*client, *relay, out, chunk));
    ASSERT_TRUE(client->established());
    ASSERT_TRUE(relay->established());
    EXPECT_EQ(client->version(), kWireVersionV1);
    EXPECT_EQ(relay->version(), kWireVersionV1);
    EXPECT_EQ(Bytes(client->handshake_hash().begin(), client->handshake_hash().end()),
              Bytes(relay->handshake_hash().begin(), relay->handshake_hash().end()));
    EXPECT_EQ(client->handshake_hash().size(), 64u);
    EXPECT_FALSE(relay->remote_static()) << "the client stays anonymous";

    Bytes wire;
    ASSERT_TRUE(client->Seal(AsBytes("first"), wire));
    ASSERT_TRUE(client->Seal(AsBytes("second"), wire));
    std::vector<Bytes> got;
    Bytes reply;
    for (std::size_t i = 0; i < wire.size(); i += chunk) {
      ASSERT_TRUE(relay->OnBytes(ByteSpan(wire).subspan(i, std::min(chunk, wire.size() - i)),
                                 reply, got));
    }
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0], Bytes(AsBytes("first").begin(), AsBytes("first").end()));
    EXPECT_EQ(got[1], Bytes(AsBytes("second").begin(), AsBytes("second").end()));
    EXPECT_TRUE(reply.empty());
  }
}

TEST_F(SecureSessionTest, PeersEstablishWithXkAndLearnEachOther) {
  auto a = SecureSession::Create(PeerInitiator(), rng_);
  auto b = SecureSession::Create(PeerResponder(), rng_);
  ASSERT_TRUE(a && b);
  Bytes out;
  ASSERT_TRUE(a->Start(out));
  ASSERT_TRUE(Pump(*a, *b, out));
  ASSERT_TRUE(a->established() && b->established());
  EXPECT_EQ(*b->remote_static(), alice_.public_key);
  EXPECT_EQ(*a->remote_static(), bob_.public_key);
  Bytes wire;
  ASSERT_TRUE(b->Seal(AsBytes("hello alice"), wire));
  std::vector<Bytes> got;
  Bytes none;
  ASSERT_TRUE(a->OnBytes(wire, none, got));
  ASSERT_EQ(got.size(), 1u);
}

TEST_F(SecureSessionTest, TransportFrameInTheSameChunkAsTheLastHandshakeMessageIsDelivered) {
  auto a = SecureSession::Create(PeerInitiator(), rng_);
  auto b = SecureSession::Create(PeerResponder(), rng_);
  Bytes m1, m2, m3;
  std::vector<Bytes> got;
  ASSERT_TRUE(a->Start(m1));
  ASSERT_TRUE(b->OnBytes(m1, m2, got));
  ASSERT_TRUE(a->OnBytes(m2, m3, got));
  ASSERT_TRUE(a->established());
  ASSERT_TRUE(a->Seal(AsBytes("right behind"), m3));  // same buffer as message 3
  Bytes none;
  ASSERT_TRUE(b->OnBytes(m3, none, got));
  ASSERT_TRUE(b->established());
  ASSERT_EQ(got.size(), 1u);
}

TEST_F(SecureSessionTest, UnknownInitiatorIsDroppedAfterMessageThree) {
  auto a = SecureSession::Create(PeerInitiator(), rng_);
  auto b = SecureSession::Create(PeerResponder(/*known=*/false), rng_);
  Bytes out;
  ASSERT_TRUE(a->Start(out));
  auto r = Pump(*a, *b, out);
  EXPECT_FALSE(r);
  EXPECT_TRUE(b->failed());
  EXPECT_FALSE(b->established());
}

TEST_F(SecureSessionTest, WrongRelayKeyFailsTheHandshake) {
  auto cfg = RelayClient(open_psk_);
  cfg.remote_static = alice_.public_key;  // not the relay's key
  auto client = SecureSession::Create(cfg, rng_);
  auto relay = SecureSession::Create(RelayServer(open_psk_), rng_);
  Bytes out;
  ASSERT_TRUE(client->Start(out));
  Bytes reply;
  std::vector<Bytes> got;
  auto st = relay->OnBytes(out, reply, got);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kAuthenticationFailed);
  EXPECT_STREQ(st.error().message, "handshake failed");
  EXPECT_TRUE(reply.empty());
}

TEST_F(SecureSessionTest, WrongAccessKeyFailsTheHandshake) {
  auto closed = crypto::SecretBytes::Random(rng_, 32);
  auto client = SecureSession::Create(RelayClient(open_psk_), rng_);
  auto relay = SecureSession::Create(RelayServer(closed), rng_);
  Bytes out;
  ASSERT_TRUE(client->Start(out));
  EXPECT_FALSE(Pump(*client, *relay, out));
  EXPECT_TRUE(relay->failed());
}

TEST_F(SecureSessionTest, PeerLinkMessageIsRejectedByARelay) {
  // Same static key on both, different kind in the prologue and pattern.
  auto cfg = PeerInitiator();
  cfg.remote_static = relay_key_.public_key;
  auto peer = SecureSession::Create(cfg, rng_);
  auto relay = SecureSession::Create(RelayServer(open_psk_), rng_);
  Bytes out;
  ASSERT_TRUE(peer->Start(out));
  EXPECT_FALSE(Pump(*peer, *relay, out));
  EXPECT_TRUE(relay->failed());
}

TEST_F(SecureSessionTest, NoCommonVersionIsRefusedBeforeAnyByteIsSent) {
  auto cfg = RelayClient(open_psk_);
  cfg.peer_versions = {7, 9};
  auto client = SecureSession::Create(cfg, rng_);
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().code, Errc::kUnsupported);
}

TEST_F(SecureSessionTest, PrologueBindsVersionAndKind) {
  EXPECT_EQ(SessionPrologue(1, ChannelKind::kClientToRelay),
            (Bytes{'r', 'h', 'i', 'z', 'o', 'm', 'e', 0x00, 0x01, 0x01}));
  EXPECT_EQ(SessionPrologue(0x0203, ChannelKind::kPeerLink),
            (Bytes{'r', 'h', 'i', 'z', 'o', 'm', 'e', 0x02, 0x03, 0x02}));
}

TEST_F(SecureSessionTest, DowngradedPrologueFailsTheHandshake) {
  // An initiator that claims version 0 (as a downgrading middlebox would make it).
  crypto::NoiseHandshakeConfig hc;
  hc.protocol_name = "Noise_NKpsk0_25519_ChaChaPoly_BLAKE2b";
  hc.role = NoiseRole::kInitiator;
  Bytes prologue = SessionPrologue(0, ChannelKind::kClientToRelay);
  hc.prologue = prologue;
  hc.remote_static = relay_key_.public_key;
  hc.psks = std::span<const crypto::SecretBytes>(&open_psk_, 1);
  auto hs = crypto::NoiseHandshakeState::Create(hc, rng_);
  ASSERT_TRUE(hs);
  auto m1 = hs->WriteMessage({});
  ASSERT_TRUE(m1);
  auto relay = SecureSession::Create(RelayServer(open_psk_), rng_);
  Bytes frame = *EncodeFrame(*m1), reply;
  std::vector<Bytes> got;
  EXPECT_FALSE(relay->OnBytes(frame, reply, got));
}

TEST_F(SecureSessionTest, NonEmptyFirstPayloadIsRejected) {
  // SECURITY: NKpsk0's first message is replayable; nothing may ride on it.
  crypto::NoiseHandshakeConfig hc;
  hc.protocol_name = "Noise_NKpsk0_25519_ChaChaPoly_BLAKE2b";
  hc.role = NoiseRole::kInitiator;
  Bytes prologue = SessionPrologue(kWireVersionV1, ChannelKind::kClientToRelay);
  hc.prologue = prologue;
  hc.remote_static = relay_key_.public_key;
  hc.psks = std::span<const crypto::SecretBytes>(&open_psk_, 1);
  auto hs = crypto::NoiseHandshakeState::Create(hc, rng_);
  auto m1 = hs->WriteMessage(AsBytes("SEND queue 1"));
  ASSERT_TRUE(m1);
  auto relay = SecureSession::Create(RelayServer(open_psk_), rng_);
  Bytes frame = *EncodeFrame(*m1), reply;
  std::vector<Bytes> got;
  auto st = relay->OnBytes(frame, reply, got);
  ASSERT_FALSE(st);
  EXPECT_STREQ(st.error().message, "handshake payload must be empty");
  EXPECT_TRUE(reply.empty());
  EXPECT_TRUE(got.empty());
}

TEST_F(SecureSessionTest, ReplayedFirstMessageCannotCarryTheOriginalTraffic) {
  auto client = SecureSession::Create(RelayClient(open_psk_), rng_);
  auto relay = SecureSession::Create(RelayServer(open_psk_), rng_);
  Bytes m1;
  ASSERT_TRUE(client->Start(m1));
  ASSERT_TRUE(Pump(*client, *relay, m1));
  Bytes traffic;
  ASSERT_TRUE(client->Seal(AsBytes("DEL queue"), traffic));
  // An observer replays message 1 and the recorded traffic to a fresh responder.
  auto relay2 = SecureSession::Create(RelayServer(open_psk_), rng_);
  Bytes reply;
  std::vector<Bytes> got;
  ASSERT_TRUE(relay2->OnBytes(m1, reply, got));  // replayable by design...
  EXPECT_FALSE(relay2->OnBytes(traffic, reply, got));  // ...but new keys: nothing decrypts
  EXPECT_TRUE(got.empty());
}

TEST_F(SecureSessionTest, FlippedBitInAnyHandshakeFrameIsRejected) {
  for (int which = 0; which < 3; ++which) {
    // Record a clean XK transcript, then flip each bit of frame `which`.
    auto a0 = SecureSession::Create(PeerInitiator(), rng_);
    auto b0 = SecureSession::Create(PeerResponder(), rng_);
    Bytes m1, m2, m3;
    std::vector<Bytes> got;
    ASSERT_TRUE(a0->Start(m1));
    ASSERT_TRUE(b0->OnBytes(m1, m2, got));
    ASSERT_TRUE(a0->OnBytes(m2, m3, got));
    Bytes& target = which == 0 ? m1 : which == 1 ? m2 : m3;
    for (std::size_t bit = kFrameHeaderBytes * 8; bit < target.size() * 8; ++bit) {
      Bytes bad = target;
      bad[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      Bytes out;
      if (which == 0) {
        auto b = SecureSession::Create(PeerResponder(), rng_);
        EXPECT_FALSE(b->OnBytes(bad, out, got)) << "m1 bit " << bit;
      } else if (which == 1) {
        // Replay into a fresh initiator with the same ephemeral is impossible; use a
        // fresh pair and flip their message 2.
        auto a = SecureSession::Create(PeerInitiator(), rng_);
        auto b = SecureSession::Create(PeerResponder(), rng_);
        Bytes n1, n2;
        ASSERT_TRUE(a->Start(n1));
        ASSERT_TRUE(b->OnBytes(n1, n2, got));
        n2[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
        EXPECT_FALSE(a->OnBytes(n2, out, got)) << "m2 bit " << bit;
        EXPECT_FALSE(a->established());
      } else {
        auto a = SecureSession::Create(PeerInitiator(), rng_);
        auto b = SecureSession::Create(PeerResponder(), rng_);
        Bytes n1, n2, n3;
        ASSERT_TRUE(a->Start(n1));
        ASSERT_TRUE(b->OnBytes(n1, n2, got));
        ASSERT_TRUE(a->OnBytes(n2, n3, got));
        n3[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
        EXPECT_FALSE(b->OnBytes(n3, out, got)) << "m3 bit " << bit;
        EXPECT_FALSE(b->established());
      }
    }
  }
}

TEST_F(SecureSessionTest, FlippedBitInATransportFrameIsRejectedAndTheSessionStaysFailed) {
  auto client = SecureSession::Create(RelayClient(open_psk_), rng_);
  auto relay = SecureSession::Create(RelayServer(open_psk_), rng_);
  Bytes m1;
  ASSERT_TRUE(client->Start(m1));
  ASSERT_TRUE(Pump(*client, *relay, m1));
  Bytes frame;
  ASSERT_TRUE(client->Seal(AsBytes("payload bytes"), frame));
  for (std::size_t bit = kFrameHeaderBytes * 8; bit < frame.size() * 8; ++bit) {
    // Fresh pair per bit: a failed session is failed for good.
    auto c = SecureSession::Create(RelayClient(open_psk_), rng_);
    auto r = SecureSession::Create(RelayServer(open_psk_), rng_);
    Bytes n1;
    ASSERT_TRUE(c->Start(n1));
    ASSERT_TRUE(Pump(*c, *r, n1));
    Bytes f;
    ASSERT_TRUE(c->Seal(AsBytes("payload bytes"), f));
    f[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    Bytes out;
    std::vector<Bytes> got;
    EXPECT_FALSE(r->OnBytes(f, out, got)) << "bit " << bit;
    EXPECT_TRUE(got.empty());
    EXPECT_TRUE(r->failed());
    Bytes good;
    ASSERT_TRUE(c->Seal(AsBytes("later"), good));
    EXPECT_FALSE(r->OnBytes(good, out, got)) << "a failed session must stay failed";
  }
}

TEST_F(SecureSessionTest, OversizedHandshakeFrameIsRejectedFromItsLengthPrefix) {
  auto relay = SecureSession::Create(RelayServer(open_psk_), rng_);
  Bytes prefix = {0x04, 0x01};  // 1025 > kMaxHandshakeFrameBytes, no body sent
  Bytes out;
  std::vector<Bytes> got;
  auto st = relay->OnBytes(prefix, out, got);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kLimitExceeded);
}

TEST_F(SecureSessionTest, ZeroLengthHandshakeFrameIsRejected) {
  auto relay = SecureSession::Create(RelayServer(open_psk_), rng_);
  Bytes prefix = {0x00, 0x00};
  Bytes out;
  std::vector<Bytes> got;
  EXPECT_FALSE(relay->OnBytes(prefix, out, got));
}

TEST_F(SecureSessionTest, GarbageIsRejected) {
  crypto::DeterministicRandom junk(99);
  for (int i = 0; i < 50; ++i) {
    auto relay = SecureSession::Create(RelayServer(open_psk_), rng_);
    Bytes g(2 + 48 + static_cast<std::size_t>(i));
    junk.Fill(g);
    g[0] = 0;
    g[1] = static_cast<std::uint8_t>(g.size() - 2);
    Bytes out;
    std::vector<Bytes> got;
    EXPECT_FALSE(relay->OnBytes(g, out, got));
    EXPECT_TRUE(out.empty());
  }
}

TEST_F(SecureSessionTest, RelayInKeyRotationAcceptsOldAndNewKeys) {
  auto next = crypto::X25519Generate(rng_);
  for (int pick = 0; pick < 2; ++pick) {
    auto server_cfg = RelayServer(open_psk_);
    server_cfg.local_statics = {&relay_key_, &next};
    auto client_cfg = RelayClient(open_psk_);
    client_cfg.remote_static = pick == 0 ? relay_key_.public_key : next.public_key;
    auto client = SecureSession::Create(client_cfg, rng_);
    auto relay = SecureSession::Create(server_cfg, rng_);
    Bytes out;
    ASSERT_TRUE(client->Start(out));
    ASSERT_TRUE(Pump(*client, *relay, out));
    EXPECT_TRUE(relay->established());
    EXPECT_EQ(relay->local_static_index(), static_cast<std::size_t>(pick));
  }
}

TEST_F(SecureSessionTest, SealIsRefusedBeforeTheHandshakeAndForBadSizes) {
  auto client = SecureSession::Create(RelayClient(open_psk_), rng_);
  Bytes out;
  EXPECT_FALSE(client->Seal(AsBytes("early"), out));
  EXPECT_TRUE(out.empty());
  auto relay = SecureSession::Create(RelayServer(open_psk_), rng_);
  ASSERT_TRUE(client->Start(out));
  ASSERT_TRUE(Pump(*client, *relay, out));
  Bytes big(kMaxSessionPayloadBytes + 1, 0x41), wire;
  EXPECT_FALSE(client->Seal(big, wire));
  EXPECT_FALSE(client->Seal({}, wire));
  EXPECT_TRUE(wire.empty());
  Bytes max(kMaxSessionPayloadBytes, 0x41);
  EXPECT_TRUE(client->Seal(max, wire));
  EXPECT_EQ(wire.size(), kMaxFrameBytes + kFrameHeaderBytes);
}

TEST_F(SecureSessionTest, ConfigurationMistakesAreRefused) {
  auto cfg = RelayClient(open_psk_);
  cfg.remote_static.reset();
  EXPECT_FALSE(SecureSession::Create(cfg, rng_));
  cfg = RelayClient(open_psk_);
  cfg.psk = nullptr;
  EXPECT_FALSE(SecureSession::Create(cfg, rng_));
  auto peer = PeerResponder();
  peer.authorize_initiator = nullptr;
  EXPECT_FALSE(SecureSession::Create(peer, rng_));
  auto short_psk = crypto::SecretBytes(16);
  EXPECT_FALSE(SecureSession::Create(RelayClient(short_psk), rng_));
}

}  // namespace
}  // namespace rhizome::protocol
