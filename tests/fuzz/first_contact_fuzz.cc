// Fuzz target: first contact (protocol/first_contact.h).
//
// A fixed, deterministic setup (two identities, one invite, one honest run of
// the exchange) is built once. Byte 0 selects the mode (byte % 3):
// - 0: the rest is a contact request given to OpenContactRequest. Invariant:
//   it opens if and only if it is byte-identical to the honest request (any
//   other accepted input would be a forgery or malleability), and an opened
//   request yields a reply that the honest acceptor takes.
// - 1: byte 1 % 3 picks a pending contact (acceptor in kRequestSent, inviter
//   in kAwaitingCard, acceptor in kConfirming) and the rest is a message given
//   to HandleMessage. Invariants: it succeeds if and only if it is the honest
//   next message; a failed call leaves the state byte-for-byte unchanged (no
//   fuzzed input can be authenticated, so none may move it to kFailed).
// - 2: the rest is a stored state given to PendingContact::Parse. Invariant:
//   a state that parses serialises to exactly the input; a confirmed one can
//   encrypt; any other one handles a garbage message without changing.
//
// Regenerating the corpus: run the replay binary with
//   RHIZOME_WRITE_CORPUS_DIR=tests/fuzz/corpus/first_contact
// which writes the seeds built in WriteCorpus() below.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "rhizome/protocol/first_contact.h"
#include "rhizome/protocol/identity.h"

using rhizome::Bytes;
using rhizome::ByteSpan;
using rhizome::crypto::DeterministicRandom;
using rhizome::crypto::SecretBytes;
namespace p = rhizome::protocol;
namespace crypto = rhizome::crypto;

#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) std::abort(); \
  } while (0)

namespace {

constexpr std::uint64_t kNow = 1800000000;

struct Person {
  p::Identity id;
  p::ContactCard card;
  p::ContactSelf self() const { return p::ContactSelf{card, id.noise}; }
};

p::RelayAddress MakeRelay(crypto::RandomSource& rng, const char* host) {
  p::RelayAddress a;
  a.noise_key = crypto::X25519Generate(rng).public_key;
  a.signing_key = crypto::Ed25519Generate(rng).public_key;
  a.host = host;
  a.port = 4433;
  a.versions = {1};
  return a;
}

p::MessageQueue MakeQueue(crypto::RandomSource& rng, const char* host) {
  p::MessageQueue q;
  q.relay = MakeRelay(rng, host);
  q.sender_id = rng.Array<16>();
  q.send_key = SecretBytes::Random(rng, p::kSendKeyBytes);
  q.seal_key = crypto::X25519Generate(rng).public_key;
  return q;
}

Person MakePerson(const char* name, crypto::RandomSource& rng) {
  auto id = p::GenerateIdentity(name, rng);
  FUZZ_CHECK(id.ok());
  Person person{std::move(id).value(), {}};
  person.card.display_name = person.id.display_name;
  person.card.identity_key = person.id.signing.public_key;
  person.card.noise_key = person.id.noise.public_key;
  person.card.device_certificate = person.id.certificate;
  person.card.versions = {1};
  person.card.queues.push_back(MakeQueue(rng, "inbox.example.org"));
  return person;
}

Bytes ToBytes(const SecretBytes& s) { return Bytes(s.expose().begin(), s.expose().end()); }

struct Fixed {
  Person alice;  // inviter
  Person bob;    // acceptor
  p::InviterInvite invite;
  Bytes request;
  Bytes inviter_card_message;   // to the acceptor in kRequestSent
  Bytes acceptor_card_message;  // to the inviter in kAwaitingCard
  Bytes confirm_message;        // to the acceptor in kConfirming
  Bytes state_request_sent, state_awaiting_card, state_confirming;
  Bytes state_confirmed_acceptor, state_confirmed_inviter;
};

const Fixed& Setup() {
  static const Fixed* fixed = [] {
    FUZZ_CHECK(crypto::Init().ok());
    DeterministicRandom ra(1), rb(2);
    auto* f = new Fixed{MakePerson("Alice", ra), MakePerson("Bob", rb), {}, {}, {}, {}, {}, {},
                        {}, {}, {}, {}};
    p::RelayAddress relay = MakeRelay(ra, "relay.example.org");
    p::InviteOptions o;
    o.identity_key = f->alice.id.signing.public_key;
    o.expires_at = kNow + 3600;
    o.relay = &relay;
    o.request_queue_id = ra.Array<16>();
    auto made = p::MakeInvite(o, kNow, ra);
    FUZZ_CHECK(made.ok());
    f->invite = std::move(made->state);
    auto req = p::BuildContactRequest(made->invite, MakeQueue(rb, "reply.example.net"), kNow, rb);
    FUZZ_CHECK(req.ok());
    f->request = req->request;
    f->state_request_sent = ToBytes(req->contact.Serialize());
    auto opened = p::OpenContactRequest(f->invite, f->request, f->alice.self(), kNow, ra);
    FUZZ_CHECK(opened.ok());
    f->inviter_card_message = opened->reply;
    f->state_awaiting_card = ToBytes(opened->contact.Serialize());
    auto b1 = req->contact.HandleMessage(opened->reply, f->bob.self(), kNow, rb);
    FUZZ_CHECK(b1.ok());
    f->acceptor_card_message = b1->reply;
    f->state_confirming = ToBytes(req->contact.Serialize());
    auto a2 = opened->contact.HandleMessage(b1->reply, f->alice.self(), kNow, ra);
    FUZZ_CHECK(a2.ok());
    f->confirm_message = a2->reply;
    f->state_confirmed_inviter = ToBytes(opened->contact.Serialize());
    FUZZ_CHECK(req->contact.HandleMessage(a2->reply, f->bob.self(), kNow, rb).ok());
    f->state_confirmed_acceptor = ToBytes(req->contact.Serialize());
    return f;
  }();
  return *fixed;
}

bool Equal(ByteSpan a, ByteSpan b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

void FuzzOpen(ByteSpan request) {
  const Fixed& f = Setup();
  DeterministicRandom rng(7);
  auto opened = p::OpenContactRequest(f.invite, request, f.alice.self(), kNow, rng);
  FUZZ_CHECK(opened.ok() == Equal(request, f.request));
  if (!opened) return;
  auto acceptor = p::PendingContact::Parse(f.state_request_sent);
  FUZZ_CHECK(acceptor.ok());
  FUZZ_CHECK(acceptor->HandleMessage(opened->reply, f.bob.self(), kNow, rng).ok());
}

void FuzzHandle(std::uint8_t which, ByteSpan message) {
  const Fixed& f = Setup();
  const Bytes* state = &f.state_request_sent;
  const Bytes* honest = &f.inviter_card_message;
  const Person* self = &f.bob;
  if (which % 3 == 1) {
    state = &f.state_awaiting_card;
    honest = &f.acceptor_card_message;
    self = &f.alice;
  } else if (which % 3 == 2) {
    state = &f.state_confirming;
    honest = &f.confirm_message;
  }
  auto contact = p::PendingContact::Parse(*state);
  FUZZ_CHECK(contact.ok());
  DeterministicRandom rng(9);
  auto r = contact->HandleMessage(message, self->self(), kNow, rng);
  FUZZ_CHECK(r.ok() == Equal(message, *honest));
  if (!r) FUZZ_CHECK(Equal(contact->Serialize().expose(), *state));
}

void FuzzParse(ByteSpan stored) {
  const Fixed& f = Setup();
  auto contact = p::PendingContact::Parse(stored);
  if (!contact) return;
  const SecretBytes again = contact->Serialize();
  FUZZ_CHECK(Equal(again.expose(), stored));
  DeterministicRandom rng(11);
  if (contact->confirmed()) {
    FUZZ_CHECK(contact->Encrypt(Bytes{1, 2, 3}, rng).ok());
    return;
  }
  const Person& self = contact->role() == p::ContactRole::kInviter ? f.alice : f.bob;
  const Bytes garbage(200, 0x5a);
  auto r = contact->HandleMessage(garbage, self.self(), kNow, rng);
  FUZZ_CHECK(!r.ok());
  FUZZ_CHECK(Equal(contact->Serialize().expose(), stored));
}

Bytes WithMode(std::uint8_t mode, ByteSpan rest) {
  Bytes out{mode};
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

void WriteFile(const std::string& dir, const char* name, const Bytes& bytes) {
  std::ofstream out(dir + "/" + name, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  FUZZ_CHECK(out.good());
}

void WriteCorpus(const std::string& dir) {
  const Fixed& f = Setup();
  WriteFile(dir, "open_honest", WithMode(0, f.request));
  Bytes truncated(f.request.begin(), f.request.end() - 1);
  WriteFile(dir, "open_truncated", WithMode(0, truncated));
  Bytes flipped = f.request;
  flipped[40] ^= 0x10;
  WriteFile(dir, "open_flipped_static", WithMode(0, flipped));
  Bytes hello_flipped = f.request;
  hello_flipped[hello_flipped.size() - 3] ^= 0x01;
  WriteFile(dir, "open_flipped_hello", WithMode(0, hello_flipped));
  const auto handle = [&](std::uint8_t which, const Bytes& m) {
    Bytes b{1, which};
    b.insert(b.end(), m.begin(), m.end());
    return b;
  };
  WriteFile(dir, "handle_inviter_card", handle(0, f.inviter_card_message));
  WriteFile(dir, "handle_acceptor_card", handle(1, f.acceptor_card_message));
  WriteFile(dir, "handle_confirm", handle(2, f.confirm_message));
  WriteFile(dir, "handle_wrong_state", handle(0, f.confirm_message));
  Bytes short_message(100, 0);
  WriteFile(dir, "handle_short", handle(1, short_message));
  WriteFile(dir, "parse_request_sent", WithMode(2, f.state_request_sent));
  WriteFile(dir, "parse_awaiting_card", WithMode(2, f.state_awaiting_card));
  WriteFile(dir, "parse_confirming", WithMode(2, f.state_confirming));
  WriteFile(dir, "parse_confirmed", WithMode(2, f.state_confirmed_acceptor));
  Bytes bad_role = f.state_request_sent;
  bad_role[1] = 2;
  WriteFile(dir, "parse_unreachable_role", WithMode(2, bad_role));
  Bytes failed(p::kPendingContactFixedBytes + 4, 0);
  failed[0] = 1;
  failed[1] = 1;
  failed[2] = 5;
  failed[3] = 2;
  WriteFile(dir, "parse_failed", WithMode(2, failed));
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
  switch (data[0] % 3) {
    case 0:
      FuzzOpen(rest);
      break;
    case 1:
      if (!rest.empty()) FuzzHandle(rest[0], rest.subspan(1));
      break;
    default:
      FuzzParse(rest);
      break;
  }
  return 0;
}
