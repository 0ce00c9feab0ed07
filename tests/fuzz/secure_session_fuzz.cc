// Fuzz target: a SecureSession responder (relay kind: NKpsk0; peer kind: XK)
// fed attacker-chosen bytes in attacker-chosen splits.
//
// Input: byte 0 picks the kind (bit 0) and the chunk size for feeding
// (bits 1..7: 1 + value). The rest is the byte stream from the "initiator".
// Invariants (abort on violation): after an error the session is failed and
// stays failed; a call that leaves the session unestablished without an error
// delivered nothing; a failed session delivers nothing more.
//
// Regenerating the corpus: run the replay binary with
//   RHIZOME_WRITE_CORPUS_DIR=tests/fuzz/corpus/secure_session
// which writes honest initiator streams (with transport frames) for both kinds
// under the fixed keys below, and a few damaged ones.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/protocol/secure_session.h"

namespace {

using rhizome::Bytes;
using rhizome::ByteSpan;
using namespace rhizome::crypto;
using namespace rhizome::protocol;

#define FUZZ_CHECK(cond)       \
  do {                         \
    if (!(cond)) std::abort(); \
  } while (0)

struct Keys {
  X25519KeyPair responder;
  X25519KeyPair initiator;
  SecretBytes psk{32};
};

Keys& FixedKeys() {
  static Keys* keys = [] {
    DeterministicRandom rng(20261128);
    auto* k = new Keys{X25519Generate(rng), X25519Generate(rng)};
    return k;
  }();
  return *keys;
}

SecureSessionConfig ResponderConfig(ChannelKind kind) {
  auto& k = FixedKeys();
  SecureSessionConfig c;
  c.kind = kind;
  c.role = NoiseRole::kResponder;
  c.local_statics = {&k.responder};
  if (kind == ChannelKind::kClientToRelay) {
    c.psk = &k.psk;
  } else {
    c.authorize_initiator = [](ByteSpan key) {
      return rhizome::ConstantTimeEqual(key, FixedKeys().initiator.public_key);
    };
  }
  return c;
}

// An honest initiator's stream: handshake messages plus two transport frames.
// The responder's replies are computed by a real responder on the way.
Bytes HonestStream(ChannelKind kind, std::uint64_t seed) {
  auto& k = FixedKeys();
  DeterministicRandom rng(seed);
  SecureSessionConfig ic;
  ic.kind = kind;
  ic.role = NoiseRole::kInitiator;
  ic.remote_static = k.responder.public_key;
  if (kind == ChannelKind::kClientToRelay) {
    ic.psk = &k.psk;
  } else {
    ic.local_statics = {&k.initiator};
  }
  auto init = SecureSession::Create(ic, rng);
  DeterministicRandom responder_rng(1);  // as LLVMFuzzerTestOneInput's responder
  auto resp = SecureSession::Create(ResponderConfig(kind), responder_rng);
  Bytes stream, to_resp, to_init;
  std::vector<Bytes> got;
  (void)init->Start(to_resp);
  for (int i = 0; i < 4 && !to_resp.empty(); ++i) {
    stream.insert(stream.end(), to_resp.begin(), to_resp.end());
    (void)resp->OnBytes(to_resp, to_init, got);
    to_resp.clear();
    (void)init->OnBytes(to_init, to_resp, got);
    to_init.clear();
  }
  (void)init->Seal(rhizome::AsBytes("first transport message"), stream);
  (void)init->Seal(rhizome::AsBytes("second"), stream);
  return stream;
}

void WriteCorpus(const std::string& dir) {
  int n = 0;
  auto write = [&](std::uint8_t head, const Bytes& body) {
    std::ofstream out(dir + "/seed-" + std::to_string(n++), std::ios::binary);
    out.put(static_cast<char>(head));
    out.write(reinterpret_cast<const char*>(body.data()), static_cast<std::streamsize>(body.size()));
  };
  for (std::uint8_t kind = 0; kind < 2; ++kind) {
    auto ck = kind == 0 ? ChannelKind::kClientToRelay : ChannelKind::kPeerLink;
    Bytes honest = HonestStream(ck, 1);
    {
      // The seed must really establish and deliver, or the corpus is worthless.
      DeterministicRandom rng(1);
      auto check = SecureSession::Create(ResponderConfig(ck), rng);
      Bytes out;
      std::vector<Bytes> got;
      FUZZ_CHECK(check->OnBytes(honest, out, got).ok());
      FUZZ_CHECK(check->established() && got.size() == 2);
    }
    write(static_cast<std::uint8_t>(kind | (127 << 1)), honest);  // whole chunks
    write(static_cast<std::uint8_t>(kind | (0 << 1)), honest);    // byte by byte
    write(static_cast<std::uint8_t>(kind | (6 << 1)), honest);    // 7-byte chunks
    Bytes damaged = honest;
    damaged[damaged.size() / 2] ^= 0x20;
    write(static_cast<std::uint8_t>(kind | (127 << 1)), damaged);
    write(static_cast<std::uint8_t>(kind), Bytes{0xFF, 0xFF, 0x00});  // oversized prefix
    write(static_cast<std::uint8_t>(kind), Bytes{0x00, 0x00});        // zero-length frame
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (!Init()) std::abort();
  if (const char* dir = std::getenv("RHIZOME_WRITE_CORPUS_DIR")) WriteCorpus(dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const auto kind = (data[0] & 1) ? ChannelKind::kPeerLink : ChannelKind::kClientToRelay;
  const std::size_t chunk = 1 + (data[0] >> 1);
  DeterministicRandom rng(1);
  auto session = SecureSession::Create(ResponderConfig(kind), rng);
  FUZZ_CHECK(session.ok());
  ByteSpan input(data + 1, size - 1);
  Bytes out;
  std::vector<Bytes> got;
  bool failed = false;
  for (std::size_t i = 0; i < input.size(); i += chunk) {
    const bool was_established = session->established();
    auto piece = input.subspan(i, std::min(chunk, input.size() - i));
    const std::size_t delivered_before = got.size();
    auto st = session->OnBytes(piece, out, got);
    if (!st) {
      FUZZ_CHECK(session->failed());
      failed = true;
    }
    if (failed) {
      FUZZ_CHECK(!session->established());
    }
    // A call that ends without an established session delivered nothing, unless
    // it established the session and then failed on a later frame.
    if (st.ok() && !was_established && !session->established()) {
      FUZZ_CHECK(got.size() == delivered_before);
    }
  }
  if (failed) {
    const std::size_t before = got.size();
    FUZZ_CHECK(!session->OnBytes(input, out, got).ok());
    FUZZ_CHECK(got.size() == before);
  }
  return 0;
}
