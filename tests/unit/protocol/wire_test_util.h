// Helpers for the wire-format tests: a tiny hand-written protobuf encoder (so
// tests build inputs from the documented field numbers, independent of the
// generated code, and can write any malformed value), sample values of every
// format, and crypto::Init for the whole binary. Tests only.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/sign.h"
#include "rhizome/protocol/contact_card.h"
#include "rhizome/protocol/envelope.h"
#include "rhizome/protocol/identity.h"
#include "rhizome/protocol/invite.h"
#include "rhizome/protocol/relay_address.h"
#include "rhizome/protocol/transport.h"

namespace rhizome::testing {

// Builds protobuf wire bytes field by field (docs/protocol/*.md field numbers).
class PbWriter {
 public:
  PbWriter& Varint(std::uint32_t field, std::uint64_t value) {
    Key(field, 0);
    PutVarint(value);
    return *this;
  }
  PbWriter& Len(std::uint32_t field, ByteSpan value) {
    Key(field, 2);
    PutVarint(value.size());
    Append(out_, value);
    return *this;
  }
  PbWriter& Len(std::uint32_t field, std::string_view value) { return Len(field, AsBytes(value)); }
  PbWriter& Msg(std::uint32_t field, const PbWriter& inner) { return Len(field, inner.bytes()); }
  // A 16-byte or 32-byte field filled with one byte value.
  PbWriter& Filled(std::uint32_t field, std::size_t size, std::uint8_t value) {
    return Len(field, Bytes(size, value));
  }
  PbWriter& Raw(ByteSpan raw) {
    Append(out_, raw);
    return *this;
  }
  const Bytes& bytes() const { return out_; }

 private:
  void Key(std::uint32_t field, std::uint32_t wire_type) {
    PutVarint((static_cast<std::uint64_t>(field) << 3) | wire_type);
  }
  void PutVarint(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<std::uint8_t>(v | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<std::uint8_t>(v));
  }
  Bytes out_;
};

inline void InitCryptoOnce() {
  static const bool ok = crypto::Init().ok();
  ASSERT_TRUE(ok);
}

// A valid relay address (optionally with an access psk).
inline protocol::RelayAddress SampleRelay(crypto::RandomSource& rng, bool with_psk = false) {
  protocol::RelayAddress a;
  a.noise_key = crypto::X25519Generate(rng).public_key;
  a.signing_key = crypto::Ed25519Generate(rng).public_key;
  a.host = "relay.example.org";
  a.port = 4433;
  a.versions = {1};
  if (with_psk) a.psk = crypto::SecretBytes::Random(rng, protocol::kRelayPskBytes);
  return a;
}

inline protocol::MessageQueue SampleQueue(crypto::RandomSource& rng) {
  protocol::MessageQueue q;
  q.relay = SampleRelay(rng, true);
  q.sender_id = rng.Array<16>();
  q.send_key = crypto::SecretBytes::Random(rng, protocol::kSendKeyBytes);
  q.seal_key = crypto::X25519Generate(rng).public_key;
  return q;
}

// A valid card for a fresh identity (so its device certificate verifies).
inline protocol::ContactCard SampleCard(crypto::RandomSource& rng) {
  auto id = protocol::GenerateIdentity("Ana", rng);
  EXPECT_TRUE(id.ok());
  protocol::ContactCard c;
  c.display_name = id->display_name;
  c.identity_key = id->signing.public_key;
  c.noise_key = id->noise.public_key;
  c.device_certificate = id->certificate;
  c.versions = {1};
  c.queues.push_back(SampleQueue(rng));
  c.direct_addresses.push_back({"192.0.2.7", 7000});
  return c;
}

inline protocol::Invite SampleInvite(crypto::RandomSource& rng) {
  protocol::Invite i;
  i.invite_key = crypto::X25519Generate(rng).public_key;
  i.invite_secret = crypto::SecretBytes::Random(rng, protocol::kInviteSecretBytes);
  i.fingerprint = rng.Array<16>();
  i.expires_at = 1767225600;  // 2026-01-01
  i.relay = SampleRelay(rng);
  i.request_queue_id = rng.Array<16>();
  return i;
}

inline protocol::Envelope SampleEnvelope(crypto::RandomSource& rng, std::uint64_t seq = 2) {
  protocol::Envelope e;
  e.message_id = rng.Array<16>();
  e.seq = seq;
  if (seq > 1) e.prev_hash = rng.Array<32>();
  e.type = protocol::EnvelopeType::kText;
  e.sent_at_ms = 1767225600123;
  const std::string_view text = "Meeting moved to Thursday, 18:00.";
  e.body.assign(text.begin(), text.end());
  return e;
}

inline std::string ToString(const Bytes& b) { return std::string(b.begin(), b.end()); }

// Base class that initialises libsodium once per process (SecretBytes needs it).
class WireTest : public ::testing::Test {
 protected:
  void SetUp() override { InitCryptoOnce(); }
  crypto::DeterministicRandom rng_{20240611};
};

}  // namespace rhizome::testing
