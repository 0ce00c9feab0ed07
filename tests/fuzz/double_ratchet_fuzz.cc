// Fuzz target: the Double Ratchet (crypto/double_ratchet.h).
//
// Byte 0 selects the mode:
// - even: Parse. The rest is a serialized state. A state that parses must
//   serialize back to exactly the input (one encoding per state); then an
//   honest message is decrypted and one is encrypted with it, and each call
//   that fails must leave the state unchanged.
// - odd: a two-party session driven by the remaining bytes, one operation per
//   byte (byte % 11) with operand bytes after it (missing ones read as 0):
//     0/1  Alice / Bob sends (operand: plaintext filler length)
//     2/3  deliver an in-flight message to Bob / Alice (operand: index)
//     4    drop an in-flight message (direction, index)
//     5    duplicate: deliver and keep it in flight (direction, index)
//     6    restart a party from Serialize() -> Parse() (which)
//     7    deliver a copy with one bit flipped (direction, index, bit lo, bit hi)
//     8    reflect a message back to its sender (direction, index)
//     9    replay any message ever sent in a direction (direction, index)
//     10   both sides mix the same confirmation value, when nothing is
//          undelivered (value)
//   Invariants (abort() on violation): an honest message delivered to its
//   recipient decrypts if and only if it has not been decrypted before, and
//   then to exactly its plaintext; a tampered or reflected message never
//   decrypts; every failed call leaves the state byte-for-byte unchanged; Bob
//   can encrypt exactly when CanSend() says so; restart preserves the state.
//   Sends are capped below kMaxSkip per input and the clock stays within the
//   skipped-key lifetime, so no honest message may legitimately be refused.
//
// Regenerating the corpus: run the replay binary with
//   RHIZOME_WRITE_CORPUS_DIR=tests/fuzz/corpus/double_ratchet
// which writes the seeds built in WriteCorpus() below.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "rhizome/crypto/double_ratchet.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"

namespace {

using rhizome::Bytes;
using rhizome::ByteSpan;
using namespace rhizome::crypto;

#define FUZZ_CHECK(cond)       \
  do {                         \
    if (!(cond)) std::abort(); \
  } while (0)

constexpr std::size_t kMaxSends = 900;  // < kMaxSkip: no honest message exceeds MAX_SKIP
constexpr std::uint64_t kStart = 1'800'000'000;

struct Fixed {
  RatchetBootstrap boot;
  X25519KeyPair invite;
  Bytes honest_message;  // Alice's first message, for Parse mode
};

const Fixed& Setup() {
  static const Fixed* fixed = [] {
    if (!Init()) std::abort();
    DeterministicRandom rng(20261201);
    auto k2 = rng.Array<32>();
    auto h = rng.Array<64>();
    auto boot = DeriveRatchetBootstrap(k2, h);
    FUZZ_CHECK(boot.ok());
    auto* f = new Fixed{std::move(boot).value(), X25519Generate(rng), {}};
    auto alice = DoubleRatchet::InitAlice(f->boot, f->invite.public_key);
    FUZZ_CHECK(alice.ok());
    auto m = alice->Encrypt(rhizome::AsBytes("honest"), rng);
    FUZZ_CHECK(m.ok());
    f->honest_message = std::move(m).value();
    return f;
  }();
  return *fixed;
}

bool SameState(const SecretBytes& a, const SecretBytes& b) {
  return a.size() == b.size() &&
         std::equal(a.expose().begin(), a.expose().end(), b.expose().begin());
}

void ParseMode(ByteSpan in) {
  auto parsed = DoubleRatchet::Parse(in);
  if (!parsed.ok()) return;
  DoubleRatchet& r = *parsed;
  SecretBytes s = r.Serialize();
  FUZZ_CHECK(s.size() == in.size() && std::equal(in.begin(), in.end(), s.expose().begin()));
  SecretBytes before = r.Serialize();
  auto p = r.Decrypt(Setup().honest_message, kStart);
  if (!p.ok()) FUZZ_CHECK(SameState(before, r.Serialize()));
  DeterministicRandom rng(1);
  const bool can_send = r.CanSend();
  before = r.Serialize();
  auto m = r.Encrypt(rhizome::AsBytes("x"), rng);
  if (!m.ok()) {
    FUZZ_CHECK(SameState(before, r.Serialize()));
  } else {
    FUZZ_CHECK(can_send && m->size() == kRatchetMessageOverheadBytes + 1);
  }
}

struct Message {
  std::size_t id;
  Bytes bytes;
  Bytes plaintext;
};

struct Party {
  DoubleRatchet ratchet;
  DeterministicRandom rng;
};

class Session {
 public:
  Session()
      : a_{Must(DoubleRatchet::InitAlice(Setup().boot, Setup().invite.public_key)),
           DeterministicRandom(11)},
        b_{Must(DoubleRatchet::InitBob(Setup().boot, Setup().invite)), DeterministicRandom(12)} {}

  void Run(ByteSpan program) {
    std::size_t pos = 0;
    auto next = [&]() -> std::uint8_t { return pos < program.size() ? program[pos++] : 0; };
    while (pos < program.size()) {
      const std::uint8_t op = static_cast<std::uint8_t>(next() % 11);
      now_ += 1;
      switch (op) {
        case 0:
        case 1:
          Send(op == 0, next());
          break;
        case 2:
        case 3: {
          const int dir = op == 2 ? 0 : 1;  // 0: Alice -> Bob
          const std::uint8_t idx = next();
          if (flight_[dir].empty()) break;
          const std::size_t i = idx % flight_[dir].size();
          Message m = std::move(flight_[dir][i]);
          flight_[dir].erase(flight_[dir].begin() + static_cast<std::ptrdiff_t>(i));
          Deliver(dir, m);
          break;
        }
        case 4: {
          const int dir = next() & 1;
          const std::uint8_t idx = next();
          if (flight_[dir].empty()) break;
          flight_[dir].erase(flight_[dir].begin() +
                             static_cast<std::ptrdiff_t>(idx % flight_[dir].size()));
          break;
        }
        case 5: {
          const int dir = next() & 1;
          const std::uint8_t idx = next();
          if (flight_[dir].empty()) break;
          Deliver(dir, flight_[dir][idx % flight_[dir].size()]);
          break;
        }
        case 6:
          Restart((next() & 1) == 0 ? a_ : b_);
          break;
        case 7: {
          const int dir = next() & 1;
          const std::uint8_t idx = next();
          const std::size_t bit = next() | (std::size_t{next()} << 8);
          if (history_[dir].empty()) break;
          Bytes bad = history_[dir][idx % history_[dir].size()].bytes;
          const std::size_t b = bit % (bad.size() * 8);
          bad[b / 8] ^= static_cast<std::uint8_t>(1u << (b % 8));
          MustFail(dir == 0 ? b_ : a_, bad);
          break;
        }
        case 8: {
          const int dir = next() & 1;
          const std::uint8_t idx = next();
          if (history_[dir].empty()) break;
          MustFail(dir == 0 ? a_ : b_, history_[dir][idx % history_[dir].size()].bytes);
          break;
        }
        case 9: {
          const int dir = next() & 1;
          const std::uint8_t idx = next();
          if (history_[dir].empty()) break;
          Message m = history_[dir][idx % history_[dir].size()];
          Deliver(dir, m);
          break;
        }
        case 10: {
          const std::uint8_t v = next();
          if (undelivered_ != 0) break;
          std::uint8_t k1[32];
          std::uint8_t k2[32];
          std::memset(k1, v, sizeof k1);
          std::memset(k2, static_cast<std::uint8_t>(v ^ 0x5a), sizeof k2);
          FUZZ_CHECK(a_.ratchet.MixConfirmation(k1, k2).ok());
          FUZZ_CHECK(b_.ratchet.MixConfirmation(k1, k2).ok());
          break;
        }
      }
    }
  }

 private:
  static DoubleRatchet Must(rhizome::Result<DoubleRatchet> r) {
    FUZZ_CHECK(r.ok());
    return std::move(r).value();
  }

  void Send(bool from_alice, std::uint8_t filler) {
    if (sends_ >= kMaxSends) return;
    Party& p = from_alice ? a_ : b_;
    const std::size_t id = sends_;
    Bytes plaintext(8 + filler, static_cast<std::uint8_t>(id));
    for (int i = 0; i < 8; ++i)
      plaintext[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(id >> (8 * i));
    const bool can_send = p.ratchet.CanSend();
    SecretBytes before = p.ratchet.Serialize();
    auto m = p.ratchet.Encrypt(plaintext, p.rng);
    FUZZ_CHECK(m.ok() == can_send);
    if (!m.ok()) {
      FUZZ_CHECK(SameState(before, p.ratchet.Serialize()));
      return;
    }
    FUZZ_CHECK(m->size() == kRatchetMessageOverheadBytes + plaintext.size());
    ++sends_;
    const int dir = from_alice ? 0 : 1;
    Message msg{id, std::move(m).value(), std::move(plaintext)};
    flight_[dir].push_back(msg);
    history_[dir].push_back(msg);
    decrypted_.push_back(false);
    ++undelivered_;
  }

  // Honest delivery of `m` (sent in direction `dir`) to its recipient.
  void Deliver(int dir, const Message& m) {
    Party& to = dir == 0 ? b_ : a_;
    SecretBytes before = to.ratchet.Serialize();
    auto p = to.ratchet.Decrypt(m.bytes, now_);
    const bool first = !decrypted_[m.id];
    FUZZ_CHECK(p.ok() == first);
    if (p.ok()) {
      FUZZ_CHECK(*p == m.plaintext);
      decrypted_[m.id] = true;
      --undelivered_;
    } else {
      FUZZ_CHECK(SameState(before, to.ratchet.Serialize()));
    }
  }

  void MustFail(Party& to, const Bytes& bytes) {
    SecretBytes before = to.ratchet.Serialize();
    auto p = to.ratchet.Decrypt(bytes, now_);
    FUZZ_CHECK(!p.ok());
    FUZZ_CHECK(SameState(before, to.ratchet.Serialize()));
  }

  static void Restart(Party& p) {
    SecretBytes stored = p.ratchet.Serialize();
    auto parsed = DoubleRatchet::Parse(stored.expose());
    FUZZ_CHECK(parsed.ok());
    p.ratchet = std::move(parsed).value();
    FUZZ_CHECK(SameState(stored, p.ratchet.Serialize()));
  }

  Party a_;
  Party b_;
  std::vector<Message> flight_[2];
  std::vector<Message> history_[2];
  std::vector<bool> decrypted_;
  std::size_t sends_ = 0;
  std::size_t undelivered_ = 0;
  std::uint64_t now_ = kStart;
};

void WriteFile(const std::string& dir, const char* name, const Bytes& bytes) {
  std::ofstream out(dir + "/" + name, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

Bytes WithMode(std::uint8_t mode, ByteSpan rest) {
  Bytes b{mode};
  b.insert(b.end(), rest.begin(), rest.end());
  return b;
}

void WriteCorpus(const std::string& dir) {
  const Fixed& f = Setup();
  DeterministicRandom rng(3);
  auto alice = DoubleRatchet::InitAlice(f.boot, f.invite.public_key);
  auto bob = DoubleRatchet::InitBob(f.boot, f.invite);
  FUZZ_CHECK(alice.ok() && bob.ok());
  WriteFile(dir, "parse_fresh_alice", WithMode(0, alice->Serialize().expose()));
  WriteFile(dir, "parse_fresh_bob", WithMode(0, bob->Serialize().expose()));
  std::vector<Bytes> msgs;
  for (int i = 0; i < 3; ++i) msgs.push_back(*alice->Encrypt(rhizome::AsBytes("m"), rng));
  FUZZ_CHECK(bob->Decrypt(msgs[2], kStart).ok());
  FUZZ_CHECK(alice->Decrypt(*bob->Encrypt(rhizome::AsBytes("r"), rng), kStart).ok());
  const SecretBytes mid = bob->Serialize();
  WriteFile(dir, "parse_bob_with_skipped_keys", WithMode(0, mid.expose()));
  WriteFile(dir, "parse_alice_pending_step", WithMode(0, alice->Serialize().expose()));
  WriteFile(dir, "parse_truncated", WithMode(0, mid.expose().first(200)));
  Bytes bad_version = WithMode(0, mid.expose());
  bad_version[1] = 2;
  WriteFile(dir, "parse_bad_version", bad_version);
  Bytes bad_flags = WithMode(0, mid.expose());
  bad_flags[2] = 0x7f;
  WriteFile(dir, "parse_inconsistent_flags", bad_flags);

  // Two-party programs (mode byte 1).
  WriteFile(dir, "session_ping_pong", {1, 0, 4, 2, 0, 1, 4, 3, 0, 0, 9, 2, 0, 1, 1, 3, 0});
  WriteFile(dir, "session_bob_sends_first", {1, 1, 0, 0, 0, 2, 0, 1, 0, 3, 0});
  WriteFile(dir, "session_reorder_across_steps", {1, 0, 1, 0, 2, 0, 3, 2, 2, 1, 0, 1, 0, 3, 1,
                                                  0, 0, 0, 1, 2, 1, 2, 0, 3, 0, 2, 0, 2, 0});
  WriteFile(dir, "session_drop_then_replay_from_history",
            {1, 0, 0, 0, 0, 4, 0, 0, 2, 0, 1, 0, 3, 0, 0, 0, 2, 0, 9, 0, 0, 9, 0, 0});
  WriteFile(dir, "session_duplicate_and_reflect",
            {1, 0, 5, 5, 0, 0, 5, 0, 0, 2, 0, 8, 0, 0, 1, 0, 8, 1, 0, 3, 0});
  WriteFile(dir, "session_restart_both",
            {1, 0, 0, 0, 0, 2, 1, 6, 1, 1, 0, 6, 0, 3, 0, 2, 0, 0, 0, 6, 1, 2, 0});
  WriteFile(dir, "session_tamper_every_part",
            {1, 0, 20, 7, 0, 0, 5, 0, 7, 0, 0, 30, 1, 7, 0, 0, 100, 2, 7, 0, 0, 200, 3, 2, 0});
  WriteFile(dir, "session_confirmation_mix",
            {1, 0, 0, 2, 0, 1, 0, 3, 0, 10, 7, 0, 0, 2, 0, 1, 0, 3, 0, 0, 0, 2, 0});
  Bytes burst{1};
  for (int i = 0; i < 120; ++i) burst.insert(burst.end(), {0, 0});
  for (int i = 0; i < 120; ++i) burst.insert(burst.end(), {2, static_cast<std::uint8_t>(i * 37)});
  burst.insert(burst.end(), {1, 0, 3, 0, 0, 0, 2, 0});
  WriteFile(dir, "session_burst_shuffled", burst);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  Setup();
  if (const char* dir = std::getenv("RHIZOME_WRITE_CORPUS_DIR")) WriteCorpus(dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Setup();
  if (size == 0) return 0;
  const ByteSpan rest(data + 1, size - 1);
  if ((data[0] & 1) == 0) {
    ParseMode(rest);
  } else {
    Session session;
    session.Run(rest);
  }
  return 0;
}
