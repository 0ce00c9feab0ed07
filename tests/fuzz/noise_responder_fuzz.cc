// Fuzz target: a Noise responder (fixed static key, fixed ephemeral, fixed
// PSK) for the three patterns Rhizome answers: XK (peer links), NKpsk0 (relay)
// and Xpsk1 (first contact), fed attacker-chosen handshake and transport bytes.
//
// Input layout: byte 0 chooses the pattern (byte0 % 3: XK, NKpsk0, Xpsk1) and
// the mode (bit 7).
// - Raw mode (bit 7 clear): the rest is a sequence of frames, each a 2-byte
//   big-endian length and that many bytes (a short last frame takes what is
//   left). Frame 0 is the initiator's first message; for XK the responder then
//   writes message 2 and reads frame 1 as message 3; once complete, the
//   remaining frames are transport messages.
// - Damage mode (bit 7 set): an honest initiator runs the handshake and the
//   rest of the input is XORed over the stream of its handshake messages.
//   Invariant: a message left unchanged must be accepted with its payload, a
//   changed one must be rejected ("damaged => must fail, undamaged => must
//   succeed").
//
// Invariants checked in both modes (abort on violation): a failed
// ReadMessage/WriteMessage leaves the state failed and every later call
// errors; a completed handshake splits; a failed transport decryption leaves
// the nonce unchanged.
//
// Regenerating the corpus (needed only if the keys or payloads here change):
//   g++ -std=c++20 -DRHIZOME_NOISE_FUZZ_WRITE_CORPUS -Icrypto/include
//       tests/fuzz/noise_responder_fuzz.cc BUILD/crypto/librhizome_crypto.a -lsodium -o gen
//   ./gen tests/fuzz/corpus/noise_responder
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/noise.h"
#include "rhizome/crypto/random.h"

namespace {

using rhizome::Bytes;
using rhizome::ByteSpan;
using namespace rhizome::crypto;

#define FUZZ_CHECK(cond)       \
  do {                         \
    if (!(cond)) std::abort(); \
  } while (0)

constexpr const char* kProtocols[] = {
    "Noise_XK_25519_ChaChaPoly_BLAKE2b",
    "Noise_NKpsk0_25519_ChaChaPoly_BLAKE2b",
    "Noise_Xpsk1_25519_ChaChaPoly_BLAKE2b",
};

struct Keys {
  X25519KeyPair resp_static;
  X25519KeyPair init_static;
  SecretBytes resp_ephemeral;
  SecretBytes init_ephemeral;
  std::vector<SecretBytes> psks;  // one PSK
};

const Keys& FixedKeys() {
  static const Keys* keys = [] {
    FUZZ_CHECK(Init().ok());
    auto* k = new Keys;
    k->resp_static = std::move(X25519FromSecret(Bytes(32, 0xA1))).value();
    k->init_static = std::move(X25519FromSecret(Bytes(32, 0xB2))).value();
    k->resp_ephemeral = SecretBytes::CopyFrom(Bytes(32, 0xC3));
    k->init_ephemeral = SecretBytes::CopyFrom(Bytes(32, 0xD4));
    k->psks.push_back(SecretBytes::CopyFrom(Bytes(32, 0x00)));  // an open relay's PSK
    return k;
  }();
  return *keys;
}

class NullRandom final : public RandomSource {
 public:
  void Fill(rhizome::MutableByteSpan) override { std::abort(); }  // ephemerals are fixed
};

NoiseHandshakeState MakeSide(std::size_t which, NoiseRole role) {
  const Keys& k = FixedKeys();
  auto protocol = NoiseProtocol::Parse(kProtocols[which]);
  FUZZ_CHECK(protocol.ok());
  const bool init = role == NoiseRole::kInitiator;
  NoiseHandshakeConfig c;
  c.protocol_name = kProtocols[which];
  c.role = role;
  const Bytes prologue = {'r', 'h', 'i', 'z', 'o', 'm', 'e', 0x01};
  c.prologue = prologue;
  if (protocol->NeedsLocalStatic(role)) c.local_static = init ? &k.init_static : &k.resp_static;
  if (protocol->NeedsRemoteStatic(role)) c.remote_static = k.resp_static.public_key;
  if (protocol->psk_count() > 0) c.psks = k.psks;
  if (protocol->SendsEphemeral(role))
    c.fixed_ephemeral = init ? &k.init_ephemeral : &k.resp_ephemeral;
  NullRandom rng;
  auto hs = NoiseHandshakeState::Create(c, rng);
  FUZZ_CHECK(hs.ok());
  return std::move(hs).value();
}

Bytes InitiatorPayload(std::size_t which, std::size_t message) {
  if (which == 1) return {};  // NKpsk0 message 1 is replayable: empty (DESIGN §5)
  return Bytes{'h', 'e', 'l', 'l', 'o', static_cast<std::uint8_t>('0' + message)};
}

void CheckFailedForGood(NoiseHandshakeState& hs) {
  FUZZ_CHECK(hs.IsFailed());
  FUZZ_CHECK(!hs.IsComplete());
  FUZZ_CHECK(!hs.RemoteStatic().has_value());
  FUZZ_CHECK(!hs.ReadMessage(Bytes(64, 0)).ok());
  FUZZ_CHECK(!hs.WriteMessage({}).ok());
  FUZZ_CHECK(!hs.Split().ok());
}

void Transport(NoiseHandshakeState& resp, const std::vector<ByteSpan>& frames, std::size_t next) {
  auto t = resp.Split();
  FUZZ_CHECK(t.ok());
  FUZZ_CHECK(!resp.Split().ok());
  for (; next < frames.size(); ++next) {
    const std::uint64_t before = t->receive.nonce();
    auto pt = t->receive.DecryptWithAd({}, frames[next]);
    if (pt.ok()) {
      FUZZ_CHECK(t->receive.nonce() == before + 1);
      FUZZ_CHECK(pt->size() + kNoiseTagBytes == frames[next].size());
      if (t->send.HasKey()) FUZZ_CHECK(t->send.EncryptWithAd({}, *pt).ok());
    } else {
      FUZZ_CHECK(t->receive.nonce() == before);
    }
  }
}

void RawMode(std::size_t which, ByteSpan rest) {
  std::vector<ByteSpan> frames;
  while (!rest.empty()) {
    std::size_t len = rest.size() >= 2 ? (std::size_t{rest[0]} << 8 | rest[1]) : 0;
    rest = rest.subspan(std::min<std::size_t>(2, rest.size()));
    len = std::min(len, rest.size());
    frames.push_back(rest.first(len));
    rest = rest.subspan(len);
  }
  if (frames.empty()) return;

  NoiseHandshakeState resp = MakeSide(which, NoiseRole::kResponder);
  std::size_t next = 0;
  while (!resp.IsComplete()) {
    if (resp.IsMyTurn()) {
      auto w = resp.WriteMessage(Bytes{'o', 'k'});
      FUZZ_CHECK(w.ok());  // the honest side's write never fails once reads passed
      FUZZ_CHECK(w->size() <= kNoiseMaxMessageBytes);
      continue;
    }
    if (next == frames.size()) return;
    const ByteSpan msg = frames[next++];
    auto r = resp.ReadMessage(msg);
    if (!r.ok()) {
      CheckFailedForGood(resp);
      return;
    }
    FUZZ_CHECK(r->size() <= msg.size());
  }
  FUZZ_CHECK(!resp.IsFailed());
  Transport(resp, frames, next);
}

void DamageMode(std::size_t which, ByteSpan mask) {
  NoiseHandshakeState init = MakeSide(which, NoiseRole::kInitiator);
  NoiseHandshakeState resp = MakeSide(which, NoiseRole::kResponder);
  std::size_t offset = 0;  // position in the stream of initiator messages
  std::size_t message = 0;
  while (!resp.IsComplete()) {
    if (resp.IsMyTurn()) {
      auto w = resp.WriteMessage({});
      FUZZ_CHECK(w.ok());
      FUZZ_CHECK(init.ReadMessage(*w).ok());
      continue;
    }
    const Bytes payload = InitiatorPayload(which, message++);
    auto w = init.WriteMessage(payload);
    FUZZ_CHECK(w.ok());
    Bytes msg = std::move(w).value();
    bool damaged = false;
    for (std::size_t i = 0; i < msg.size() && offset + i < mask.size(); ++i) {
      msg[i] ^= mask[offset + i];
      damaged = damaged || mask[offset + i] != 0;
    }
    offset += msg.size();
    auto r = resp.ReadMessage(msg);
    if (damaged) {
      FUZZ_CHECK(!r.ok());
      CheckFailedForGood(resp);
      return;
    }
    FUZZ_CHECK(r.ok());
    FUZZ_CHECK(*r == payload);
  }
  FUZZ_CHECK(init.IsComplete());
  FUZZ_CHECK(init.HandshakeHash() == resp.HandshakeHash());
  FUZZ_CHECK(resp.RemoteStatic().has_value() == (which != 1));
  auto ti = init.Split();
  auto tr = resp.Split();
  FUZZ_CHECK(ti.ok() && tr.ok());
  auto ct = ti->send.EncryptWithAd({}, mask);
  if (mask.size() <= kNoiseMaxTransportPayloadBytes) {
    FUZZ_CHECK(ct.ok());
    auto pt = tr->receive.DecryptWithAd({}, *ct);
    FUZZ_CHECK(pt.ok() && Bytes(mask.begin(), mask.end()) == *pt);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)FixedKeys();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)FixedKeys();
  if (size == 0) return 0;
  const std::size_t which = data[0] % 3;
  const ByteSpan rest(data + 1, size - 1);
  if (data[0] & 0x80) {
    DamageMode(which, rest);
  } else {
    RawMode(which, rest);
  }
  return 0;
}

#ifdef RHIZOME_NOISE_FUZZ_WRITE_CORPUS
// Writes the seed corpus: honest transcripts in raw mode plus malformed inputs.
#include <fstream>

namespace {

void Frame(Bytes& out, ByteSpan msg) {
  out.push_back(static_cast<std::uint8_t>(msg.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(msg.size()));
  out.insert(out.end(), msg.begin(), msg.end());
}

// Honest initiator messages for pattern `which` (and one transport message).
std::vector<Bytes> HonestInitiatorMessages(std::size_t which) {
  NoiseHandshakeState init = MakeSide(which, NoiseRole::kInitiator);
  NoiseHandshakeState resp = MakeSide(which, NoiseRole::kResponder);
  std::vector<Bytes> out;
  std::size_t message = 0;
  while (!init.IsComplete()) {
    if (init.IsMyTurn()) {
      auto w = init.WriteMessage(InitiatorPayload(which, message++));
      FUZZ_CHECK(w.ok() && resp.ReadMessage(*w).ok());
      out.push_back(*w);
    } else {
      auto w = resp.WriteMessage(Bytes{'o', 'k'});  // what RawMode's responder writes
      FUZZ_CHECK(w.ok() && init.ReadMessage(*w).ok());
    }
  }
  auto t = init.Split();
  FUZZ_CHECK(t.ok());
  auto ct = t->send.EncryptWithAd({}, Bytes{'p', 'i', 'n', 'g'});
  FUZZ_CHECK(ct.ok());
  out.push_back(*ct);
  return out;
}

void Write(const std::string& dir, const std::string& name, const Bytes& bytes) {
  std::ofstream f(dir + "/" + name, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string dir = argv[1];
  const char* names[] = {"xk", "nkpsk0", "xpsk1"};
  for (std::size_t which = 0; which < 3; ++which) {
    const auto msgs = HonestInitiatorMessages(which);
    Bytes full{static_cast<std::uint8_t>(which)};
    for (const auto& m : msgs) Frame(full, m);
    Write(dir, std::string(names[which]) + "_valid_transcript", full);
    Bytes first{static_cast<std::uint8_t>(which)};
    Frame(first, msgs[0]);
    Write(dir, std::string(names[which]) + "_valid_first_message", first);
    Bytes truncated{static_cast<std::uint8_t>(which)};
    Frame(truncated, ByteSpan(msgs[0]).first(msgs[0].size() - 1));
    Write(dir, std::string(names[which]) + "_truncated_first_message", truncated);
    Bytes small_order{static_cast<std::uint8_t>(which)};
    Bytes zero_e = msgs[0];
    std::fill(zero_e.begin(), zero_e.begin() + 32, 0);
    Frame(small_order, zero_e);
    Write(dir, std::string(names[which]) + "_small_order_ephemeral", small_order);
    Write(dir, std::string(names[which]) + "_damage_none",
          Bytes{static_cast<std::uint8_t>(0x80 | which), 0, 0, 0, 0});
    Write(dir, std::string(names[which]) + "_damage_one_bit",
          Bytes{static_cast<std::uint8_t>(0x80 | which), 0, 0, 0, 0x10});
  }
  Write(dir, "empty", Bytes{});
  Write(dir, "selector_only", Bytes{0x00});
  Write(dir, "oversized_length_prefix", Bytes{0x00, 0xff, 0xff, 0x01, 0x02});
  Bytes junk{0x01};
  for (int i = 0; i < 80; ++i) junk.push_back(static_cast<std::uint8_t>(i * 37 + 11));
  Write(dir, "junk", junk);
  return 0;
}
#endif
