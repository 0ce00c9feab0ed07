// Fuzz target: two profiles talking through client::Messenger (real SQLCipher
// profiles, real first contact, ratchet, path seals, dedup, receipts), with
// the network in the fuzzer's hands. The relay is an in-memory model of the
// relay's queue semantics (tests/support/memory_relay.h, after
// client/include/rhizome/client/relay_port.h: GET returns the oldest message
// until ACKed; SEND needs the queue's send key), which the fuzzer can damage:
// drop, duplicate, reorder, replay and corrupt stored blobs. Either side can
// be restarted from its database at any point.
//
// Input: after a fixed first contact (invite, accept, four passes), a
// sequence of operations, each an opcode byte (modulo 12) and one operand:
//   0 A sends a text        1 B sends a text
//   2 A sync pass           3 B sync pass
//   4 drop a stored blob    5 duplicate a stored blob
//   6 move a blob to the front of its queue (reorder)
//   7 flip one bit of a stored blob
//   8 restart A (Messenger and Profile closed, reopened from disk)
//   9 restart B
//   10 A's clock forward (operand * 60 s)    11 B's clock forward
//   (at most 64 steps of 4.25 h: the healing below still ends before the
//   outbox TTL, after which an undelivered text is given up by design)
// Then a healing phase: no more damage, clocks moved past every retry
// backoff, passes until quiet.
// Invariants (abort on violation):
// - every incoming message shown is a text its peer sent, at most once;
// - after healing, each side shows every text the other sent (the sender
//   retries until the receipt; a dropped blob is sent again), and every
//   outgoing text is "delivered";
// - no call fails except with the errors the API documents for the
//   situation (none in these schedules).
// One input costs two profile creations (Argon2id at the smallest cost): slow,
// like relay_engine. Corpus: tests/fuzz/corpus/messenger/.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "memory_relay.h"
#include "rhizome/client/messenger.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/protocol/identity.h"
#include "rhizome/storage/identity_store.h"
#include "rhizome/storage/profile.h"

namespace {

using namespace rhizome;
namespace fs = std::filesystem;

constexpr std::size_t kMaxOps = 64;
constexpr std::size_t kMaxMessagesPerSide = 24;

#define FUZZ_CHECK(cond)                                                     \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__); \
      std::abort();                                                          \
    }                                                                        \
  } while (0)

using testing::ConnectTo;
using testing::MemoryRelay;

struct Side {
  fs::path dir;
  std::string name;
  std::uint64_t clock = 1'800'000'000;
  crypto::DeterministicRandom rng;
  std::optional<storage::Profile> profile;
  std::optional<client::Messenger> messenger;
  std::vector<std::string> sent;

  Side(fs::path d, std::string n, std::uint64_t seed)
      : dir(std::move(d)), name(std::move(n)), rng(seed) {}
};

const ByteSpan kPass = AsBytes("fuzz");

void Open(Side& s, MemoryRelay& relay) {
  s.messenger.reset();
  s.profile.reset();
  auto p = storage::Profile::Open(s.dir, kPass);
  FUZZ_CHECK(p.ok());
  s.profile.emplace(std::move(*p));
  auto m = client::Messenger::Open(*s.profile, s.rng, ConnectTo(relay), [&s] { return s.clock; });
  FUZZ_CHECK(m.ok());
  s.messenger.emplace(std::move(*m));
}

void Create(Side& s, MemoryRelay& relay, const std::string& relay_text) {
  {
    auto p = storage::Profile::Create(s.dir, kPass, crypto::Argon2idParams{1, 8192}, s.rng);
    FUZZ_CHECK(p.ok());
    auto id = protocol::GenerateIdentity(s.name, s.rng);
    FUZZ_CHECK(id.ok());
    FUZZ_CHECK(storage::SaveIdentity(p->db(), *id).ok());
  }  // closed: Open takes the lock
  Open(s, relay);
  FUZZ_CHECK(s.messenger->AddRelay(relay_text).ok());
}

void Sync(Side& s) {
  auto r = s.messenger->Sync(std::chrono::seconds(30));
  FUZZ_CHECK(r.ok());
}

// The texts `s` shows as incoming, checking each is one `peer` sent, once.
std::vector<std::string> Incoming(Side& s, const Side& peer) {
  auto msgs = s.messenger->Read(std::nullopt);
  FUZZ_CHECK(msgs.ok());
  std::vector<std::string> in;
  std::set<std::string> seen;
  const std::set<std::string> sent(peer.sent.begin(), peer.sent.end());
  for (const auto& m : *msgs) {
    if (m.outgoing) continue;
    FUZZ_CHECK(sent.count(m.text) == 1);    // nothing the peer did not send
    FUZZ_CHECK(seen.insert(m.text).second);  // nothing twice
    in.push_back(m.text);
  }
  return in;
}

std::string RelayText() {
  auto text = testing::MemoryRelayAddressText();
  FUZZ_CHECK(text.ok());
  return *text;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool ready = crypto::Init().ok();
  FUZZ_CHECK(ready);
  static const std::string relay_text = RelayText();

  // tmpfs when there is one: the profiles' fsyncs are then free, and the
  // target runs ~20x faster (durability is not what it checks).
  std::string templ = fs::exists("/dev/shm") ? "/dev/shm/rhizome-messenger-fuzz-XXXXXX"
                                             : "/tmp/rhizome-messenger-fuzz-XXXXXX";
  FUZZ_CHECK(mkdtemp(templ.data()) != nullptr);
  const fs::path root = templ;
  {
    MemoryRelay relay;
    Side a(root / "a", "Fuzz A", 1);
    Side b(root / "b", "Fuzz B", 2);
    Create(a, relay, relay_text);
    Create(b, relay, relay_text);
    auto invite = a.messenger->CreateInvite(1, 3600, std::chrono::seconds(5));
    FUZZ_CHECK(invite.ok());
    FUZZ_CHECK(b.messenger->AcceptInvite(invite->code, "A", std::chrono::seconds(5)).ok());
    for (int i = 0; i < 2; ++i) {
      Sync(a);
      Sync(b);
    }
    auto contacts = a.messenger->ListContacts();
    FUZZ_CHECK(contacts.ok() && contacts->size() == 1 &&
               contacts->front().status == client::ContactStatus::kConfirmed);
    const std::string b_alias = contacts->front().alias;
    FUZZ_CHECK(relay.bad_blob_sizes == 0);

    std::size_t pos = 0;
    for (std::size_t op = 0; op < kMaxOps && pos + 1 < size; ++op, pos += 2) {
      const std::uint8_t code = data[pos] % 12;
      const std::uint8_t arg = data[pos + 1];
      auto blobs = relay.AllBlobs();
      switch (code) {
        case 0:
        case 1: {
          Side& s = code == 0 ? a : b;
          if (s.sent.size() >= kMaxMessagesPerSide) break;
          const std::string text = s.name + " #" + std::to_string(s.sent.size());
          auto sent = s.messenger->Send(code == 0 ? b_alias : "A", text);
          FUZZ_CHECK(sent.ok());
          s.sent.push_back(text);
          break;
        }
        case 2: Sync(a); break;
        case 3: Sync(b); break;
        case 4:
        case 5:
        case 6:
        case 7: {
          if (blobs.empty()) break;
          const auto& [rid, index] = blobs[arg % blobs.size()];
          auto& msgs = relay.by_recipient[rid].messages;
          if (code == 4) {
            msgs.erase(msgs.begin() + static_cast<std::ptrdiff_t>(index));
          } else if (code == 5) {
            msgs.emplace_back(relay.NewId(), msgs[index].second);
          } else if (code == 6) {
            auto m = msgs[index];
            msgs.erase(msgs.begin() + static_cast<std::ptrdiff_t>(index));
            msgs.push_front(std::move(m));
          } else {
            Bytes& blob = msgs[index].second;
            blob[(arg * 131u) % blob.size()] ^= static_cast<std::uint8_t>(1u << (arg % 8));
          }
          break;
        }
        case 8: Open(a, relay); break;
        case 9: Open(b, relay); break;
        case 10: a.clock += 60ull * arg; break;
        case 11: b.clock += 60ull * arg; break;
      }
      Incoming(a, b);  // the invariants hold at every step
      Incoming(b, a);
      FUZZ_CHECK(relay.bad_blob_sizes == 0);
    }

    // Healing: no more damage; retries become due; passes until quiet.
    for (int round = 0; round < 12; ++round) {
      a.clock += client::kMaxRetrySeconds + 1;
      b.clock += client::kMaxRetrySeconds + 1;
      Sync(a);
      Sync(b);
    }
    Sync(a);
    FUZZ_CHECK(relay.bad_blob_sizes == 0);  // every SEND padded to a relay blob size
    FUZZ_CHECK(Incoming(a, b).size() == b.sent.size());
    FUZZ_CHECK(Incoming(b, a).size() == a.sent.size());
    for (Side* s : {&a, &b}) {
      auto msgs = s->messenger->Read(std::nullopt);
      FUZZ_CHECK(msgs.ok());
      for (const auto& m : *msgs) {
        if (m.outgoing) FUZZ_CHECK(m.state == client::MessageState::kDelivered);
      }
    }
  }
  std::error_code ec;
  fs::remove_all(root, ec);
  return 0;
}
