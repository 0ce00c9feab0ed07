#include "rhizome/protocol/first_contact.h"

#include <algorithm>
#include <span>

#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/noise.h"
#include "rhizome/crypto/random.h"
#include "rhizome/wire/v1/contact.pb.h"
#include "wire_codec.h"

namespace rhizome::protocol {

namespace {

namespace wire = rhizome::wire::v1;

constexpr std::string_view kXpsk1Protocol = "Noise_Xpsk1_25519_ChaChaPoly_BLAKE2b";
constexpr std::string_view kKkProtocol = "Noise_KK_25519_ChaChaPoly_BLAKE2b";
constexpr std::string_view kPskLabel = "rhizome/v1/invite-psk";
constexpr std::string_view kSendKeyLabel = "rhizome/v1/invite-send";
constexpr std::string_view kRequestIdLabel = "rhizome/v1/contact-request-id";
// The session AD of double-ratchet.md, recomputed by Parse as a consistency check.
constexpr std::string_view kRatchetAdLabel = "rhizome/v1/dr-ad";
constexpr std::uint32_t kContactFormatVersion = 1;

// Stored-state layout (docs/protocol/first-contact.md "Stored state").
constexpr std::size_t kOffVersion = 0;
constexpr std::size_t kOffRole = 1;
constexpr std::size_t kOffState = 2;
constexpr std::size_t kOffFailure = 3;
constexpr std::size_t kOffHash = 4;
constexpr std::size_t kOffFingerprint = kOffHash + kFirstContactHandshakeHashBytes;  // 68
constexpr std::size_t kOffInviteSecret = kOffFingerprint + kInviteFingerprintBytes;  // 84
constexpr std::size_t kOffKkEphemeral = kOffInviteSecret + kInviteSecretBytes;       // 116
constexpr std::size_t kOffCardLength = kOffKkEphemeral + crypto::kX25519Bytes;      // 148
static_assert(kOffCardLength + 4 == kPendingContactFixedBytes);

constexpr Error kNotConfirmed{Errc::kInvalidArgument, "contact is not confirmed"};
constexpr Error kWrongStep{Errc::kMalformed, "unexpected first-contact step"};
constexpr Error kCardMismatch{Errc::kAuthenticationFailed,
                              "inviter's card does not match the invite"};
constexpr Error kConfirmationFailed{Errc::kAuthenticationFailed, "contact confirmation failed"};

Error Malformed(const char* message) { return Error{Errc::kMalformed, message}; }

enum class Step : std::uint32_t {
  kHello = wire::CONTACT_STEP_HELLO,
  kInviterCard = wire::CONTACT_STEP_INVITER_CARD,
  kAcceptorCard = wire::CONTACT_STEP_ACCEPTOR_CARD,
  kConfirm = wire::CONTACT_STEP_CONFIRM,
};

bool StepHasCard(Step s) { return s == Step::kInviterCard || s == Step::kAcceptorCard; }
bool StepHasConfirmation(Step s) { return s == Step::kAcceptorCard || s == Step::kConfirm; }

void WipeMessage(wire::ContactMessage& m) { internal::WipeField(m.mutable_card()); }
void WipeMessage(wire::ContactRequest& m) {
  if (m.has_reply_queue()) internal::WipeSecrets(*m.mutable_reply_queue());
}

template <class M>
class ScopedMessageWipe {
 public:
  explicit ScopedMessageWipe(M& m) : m_(m) {}
  ~ScopedMessageWipe() { WipeMessage(m_); }
  ScopedMessageWipe(const ScopedMessageWipe&) = delete;
  ScopedMessageWipe& operator=(const ScopedMessageWipe&) = delete;

 private:
  M& m_;
};

Result<crypto::SecretBytes> DeriveFromInviteSecret(ByteSpan invite_secret,
                                                   std::string_view label) {
  if (invite_secret.size() != kInviteSecretBytes) {
    return Error{Errc::kInvalidArgument, "invite secret is not 32 bytes"};
  }
  crypto::SecretBytes out(32);
  RHIZOME_TRY(crypto::HkdfSha256({}, invite_secret, AsBytes(label), out.expose_mut()));
  return out;
}

ContactRequestId RequestId(ByteSpan h) {
  crypto::Blake2b hash(crypto::kBlake2b256Bytes);
  hash.Update(AsBytes(kRequestIdLabel)).Update(h);
  ContactRequestId id{};
  hash.Final(id);
  return id;
}

ByteArray<crypto::kRatchetAssociatedDataBytes> RatchetAd(ByteSpan h) {
  crypto::Blake2b hash(crypto::kBlake2b256Bytes);
  hash.Update(AsBytes(kRatchetAdLabel)).Update(h);
  ByteArray<crypto::kRatchetAssociatedDataBytes> ad{};
  hash.Final(ad);
  return ad;
}

Status CheckSelf(const ContactSelf& self) {
  if (self.noise_key.secret_key.size() != crypto::kX25519Bytes ||
      !ConstantTimeEqual(self.card.noise_key, self.noise_key.public_key)) {
    return Error{Errc::kInvalidArgument, "own card does not carry this Noise key"};
  }
  return {};
}

// ContactMessage -> padded plaintext of one ratchet message.
Result<Bytes> EncodeStep(Step step, const ContactCard* card, ByteSpan confirmation,
                         PaddingPolicy padding) {
  wire::ContactMessage m;
  ScopedMessageWipe wipe(m);
  m.set_version(kContactFormatVersion);
  m.set_step(static_cast<wire::ContactStep>(step));
  if (card != nullptr) {
    auto card_bytes = SerializeContactCard(*card);
    if (!card_bytes) return card_bytes.error();
    crypto::WipeOnExit wipe_card(*card_bytes);
    m.set_card(internal::ToField(*card_bytes));
  }
  if (!confirmation.empty()) m.set_confirmation(internal::ToField(confirmation));
  auto content =
      internal::SerializeBounded(m, kMaxPaddableBytes, "first-contact message is too large");
  if (!content) return content.error();
  crypto::WipeOnExit wipe_content(*content);
  return Pad(*content, padding);
}

struct DecodedStep {
  Step step = Step::kHello;
  std::optional<ContactCard> card;
  Bytes confirmation;
};

// Padded plaintext -> a ContactMessage that must be `expected`.
Result<DecodedStep> DecodeStep(ByteSpan padded, Step expected) {
  auto content = Unpad(padded);
  if (!content) return content.error();
  crypto::WipeOnExit wipe_content(*content);
  wire::ContactMessage m;
  ScopedMessageWipe wipe(m);
  RHIZOME_TRY(internal::ParseBounded(m, *content, kMaxPaddableBytes,
                                     "first-contact message is too large",
                                     "first-contact message does not parse"));
  if (m.version() == 0) return Malformed("first-contact message has no version");
  if (m.version() != kContactFormatVersion) {
    return Error{Errc::kUnsupported, "first-contact message version is not supported"};
  }
  const auto raw_step = static_cast<std::uint32_t>(m.step());
  if (raw_step == 0) return Malformed("first-contact message has no step");
  if (raw_step > static_cast<std::uint32_t>(Step::kConfirm)) {
    return Error{Errc::kUnsupported, "first-contact step is not supported"};
  }
  DecodedStep out;
  out.step = static_cast<Step>(raw_step);
  if (out.step != expected) return kWrongStep;
  if (StepHasCard(out.step) == m.card().empty()) {
    return Malformed("first-contact card is missing or unexpected");
  }
  if (StepHasConfirmation(out.step) == m.confirmation().empty()) {
    return Malformed("first-contact confirmation is missing or unexpected");
  }
  if (!m.confirmation().empty()) {
    if (m.confirmation().size() != kConfirmationMessageBytes) {
      return Malformed("confirmation message is not 48 bytes");
    }
    const ByteSpan c = internal::FieldBytes(m.confirmation());
    out.confirmation.assign(c.begin(), c.end());
  }
  if (!m.card().empty()) {
    auto card = ParseContactCard(internal::FieldBytes(m.card()));
    if (!card) return card.error();
    out.card = std::move(card).value();
  }
  return out;
}

crypto::NoiseHandshakeConfig KkConfig(crypto::NoiseRole role, ByteSpan h,
                                      const crypto::X25519KeyPair& local,
                                      const PublicKey& remote) {
  crypto::NoiseHandshakeConfig config;
  config.protocol_name = kKkProtocol;
  config.role = role;
  config.prologue = h;
  config.local_static = &local;
  config.remote_static = remote;
  return config;
}

void PutU32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}

std::uint32_t GetU32(const std::uint8_t* p) {
  return (static_cast<std::uint32_t>(p[0]) << 24) | (static_cast<std::uint32_t>(p[1]) << 16) |
         (static_cast<std::uint32_t>(p[2]) << 8) | static_cast<std::uint32_t>(p[3]);
}

}  // namespace

// Builds PendingContact values for the free functions below (the constructor
// is private so that no other code makes a half-initialised contact).
struct FirstContactAccess {
  static PendingContact Make(ContactRole role, ContactState state) {
    PendingContact c;
    c.role_ = role;
    c.state_ = state;
    return c;
  }
  static PendingContact& Set(PendingContact& c, ByteSpan h, crypto::DoubleRatchet ratchet) {
    std::copy_n(h.begin(), kFirstContactHandshakeHashBytes, c.h_.begin());
    c.ratchet_ = std::move(ratchet);
    return c;
  }
  static void SetAcceptorInvite(PendingContact& c, const Invite& invite) {
    c.fingerprint_ = invite.fingerprint;
    c.invite_secret_ = invite.invite_secret.Clone();
  }
};

// --- Invite keys ---------------------------------------------------------------

Result<crypto::SecretBytes> InviteSendKey(ByteSpan invite_secret) {
  return DeriveFromInviteSecret(invite_secret, kSendKeyLabel);
}

Result<crypto::SecretBytes> InvitePsk(ByteSpan invite_secret) {
  return DeriveFromInviteSecret(invite_secret, kPskLabel);
}

Bytes FirstContactPrologue(const ByteArray<kInviteFingerprintBytes>& fingerprint) {
  Bytes p(kFirstContactPrologueLabel.begin(), kFirstContactPrologueLabel.end());
  p.push_back(static_cast<std::uint8_t>(kFirstContactVersion >> 8));
  p.push_back(static_cast<std::uint8_t>(kFirstContactVersion & 0xff));
  Append(p, fingerprint);
  return p;
}

// --- Inviter: making an invite ------------------------------------------------

Result<MadeInvite> MakeInvite(const InviteOptions& options, std::uint64_t now,
                              crypto::RandomSource& rng) {
  if (options.relay == nullptr) return Error{Errc::kInvalidArgument, "invite needs a relay"};
  if (options.expires_at <= now) {
    return Error{Errc::kInvalidArgument, "invite expiry is not in the future"};
  }
  if (IsAllZero(options.identity_key)) {
    return Error{Errc::kInvalidArgument, "identity key is all zeros"};
  }
  MadeInvite made;
  made.state.key_pair = crypto::X25519Generate(rng);
  made.state.invite_secret = crypto::SecretBytes::Random(rng, kInviteSecretBytes);
  auto fingerprint = InviteFingerprint(made.state.invite_secret.expose(), options.identity_key);
  if (!fingerprint) return fingerprint.error();
  made.state.fingerprint = *fingerprint;
  made.state.expires_at = options.expires_at;
  made.state.multi_use = options.multi_use;

  made.invite.invite_key = made.state.key_pair.public_key;
  made.invite.invite_secret = made.state.invite_secret.Clone();
  made.invite.fingerprint = made.state.fingerprint;
  made.invite.expires_at = options.expires_at;
  made.invite.relay = options.relay->Clone();
  made.invite.request_queue_id = options.request_queue_id;
  made.invite.multi_use = options.multi_use;
  made.invite.direct_addresses = options.direct_addresses;
  RHIZOME_TRY(ValidateInvite(made.invite));
  return made;
}

Status RecordOpenedRequest(InviterInvite& invite, const ContactRequestId& id) {
  if (invite.consumed()) return Error{Errc::kInvalidArgument, "invite has been used"};
  if (!invite.multi_use) {
    // SECURITY: DESIGN §6.3: a single-use invite's private key is deleted after
    // the first request, so no later request (a replay included) opens.
    invite.key_pair.secret_key = crypto::SecretBytes();
    invite.invite_secret = crypto::SecretBytes();
    return {};
  }
  if (std::find(invite.opened_requests.begin(), invite.opened_requests.end(), id) !=
      invite.opened_requests.end()) {
    return Error{Errc::kAlreadyExists, "contact request was already received"};
  }
  if (invite.opened_requests.size() >= kMaxInviteRequests) {
    return Error{Errc::kLimitExceeded, "invite has taken its most requests"};
  }
  invite.opened_requests.push_back(id);
  return {};
}

// --- Acceptor ------------------------------------------------------------------

Result<BuiltContactRequest> BuildContactRequest(const Invite& invite,
                                                const MessageQueue& reply_queue,
                                                std::uint64_t now, crypto::RandomSource& rng,
                                                PaddingPolicy padding) {
  RHIZOME_TRY(ValidateInvite(invite));
  if (InviteExpired(invite, now)) return Error{Errc::kInvalidArgument, "invite has expired"};
  RHIZOME_TRY(ValidateMessageQueue(reply_queue));

  // The payload: the reply queue, padded. It holds the queue's send key.
  Bytes payload;
  crypto::WipeOnExit wipe_payload(payload);
  {
    wire::ContactRequest m;
    ScopedMessageWipe wipe(m);
    m.set_version(kContactFormatVersion);
    internal::MessageQueueToProto(reply_queue, m.mutable_reply_queue());
    auto content =
        internal::SerializeBounded(m, kMaxPaddableBytes, "reply queue is too large");
    if (!content) return content.error();
    crypto::WipeOnExit wipe_content(*content);
    auto padded = Pad(*content, padding);
    if (!padded) return padded.error();
    payload = std::move(padded).value();
  }

  auto psk = InvitePsk(invite.invite_secret.expose());
  if (!psk) return psk.error();
  const Bytes prologue = FirstContactPrologue(invite.fingerprint);
  // SECURITY: a fresh per-request static key, never the identity (DESIGN
  // §6.1); it is wiped when this function returns.
  const crypto::X25519KeyPair request_key = crypto::X25519Generate(rng);
  crypto::NoiseHandshakeConfig config;
  config.protocol_name = kXpsk1Protocol;
  config.role = crypto::NoiseRole::kInitiator;
  config.prologue = prologue;
  config.local_static = &request_key;
  config.remote_static = invite.invite_key;
  config.psks = std::span<const crypto::SecretBytes>(&*psk, 1);
  auto hs = crypto::NoiseHandshakeState::Create(config, rng);
  if (!hs) return hs.error();
  auto noise_message = hs->WriteMessage(payload);
  if (!noise_message) return noise_message.error();
  auto keys = hs->SplitKeys();
  if (!keys) return keys.error();
  const Bytes h = hs->HandshakeHash();

  auto boot = crypto::DeriveRatchetBootstrap(keys->k2.expose(), h);
  if (!boot) return boot.error();
  auto ratchet = crypto::DoubleRatchet::InitAlice(*boot, invite.invite_key);
  if (!ratchet) return ratchet.error();
  // The hello is always in the smallest class: its content is fixed, so a
  // larger class would hide nothing, and the inviter can find it by length.
  auto hello = EncodeStep(Step::kHello, nullptr, {}, PaddingPolicy::kSmallestFitting);
  if (!hello) return hello.error();
  auto hello_message = ratchet->Encrypt(*hello, rng);
  if (!hello_message) return hello_message.error();
  if (hello_message->size() != kHelloMessageBytes) {
    return Error{Errc::kInternal, "hello message has the wrong size"};
  }

  BuiltContactRequest out{
      std::move(noise_message).value(),
      FirstContactAccess::Make(ContactRole::kAcceptor, ContactState::kRequestSent)};
  Append(out.request, *hello_message);
  FirstContactAccess::Set(out.contact, h, std::move(ratchet).value());
  FirstContactAccess::SetAcceptorInvite(out.contact, invite);
  return out;
}

// --- Inviter -------------------------------------------------------------------

Result<OpenedContactRequest> OpenContactRequest(const InviterInvite& invite, ByteSpan request,
                                                const ContactSelf& self, std::uint64_t now,
                                                crypto::RandomSource& rng,
                                                PaddingPolicy padding) {
  if (invite.consumed()) return Error{Errc::kNotFound, "invite has been used"};
  if (now >= invite.expires_at) return Error{Errc::kNotFound, "invite has expired"};
  if (request.size() > kMaxContactRequestBytes) {
    return Error{Errc::kLimitExceeded, "contact request is too large"};
  }
  if (request.size() < kMinContactRequestBytes) return Malformed("contact request is too short");
  if (invite.multi_use && invite.opened_requests.size() >= kMaxInviteRequests) {
    return Error{Errc::kLimitExceeded, "invite has taken its most requests"};
  }
  RHIZOME_TRY(CheckSelf(self));

  const ByteSpan noise_message = request.first(request.size() - kHelloMessageBytes);
  const ByteSpan hello_message = request.last(kHelloMessageBytes);
  auto psk = InvitePsk(invite.invite_secret.expose());
  if (!psk) return psk.error();
  const Bytes prologue = FirstContactPrologue(invite.fingerprint);
  crypto::NoiseHandshakeConfig config;
  config.protocol_name = kXpsk1Protocol;
  config.role = crypto::NoiseRole::kResponder;
  config.prologue = prologue;
  config.local_static = &invite.key_pair;
  config.psks = std::span<const crypto::SecretBytes>(&*psk, 1);
  auto hs = crypto::NoiseHandshakeState::Create(config, rng);
  if (!hs) return hs.error();
  auto payload = hs->ReadMessage(noise_message);
  if (!payload) return payload.error();
  crypto::WipeOnExit wipe_payload(*payload);
  auto keys = hs->SplitKeys();
  if (!keys) return keys.error();
  const Bytes h = hs->HandshakeHash();
  const ContactRequestId request_id = RequestId(h);
  if (std::find(invite.opened_requests.begin(), invite.opened_requests.end(), request_id) !=
      invite.opened_requests.end()) {
    return Error{Errc::kAlreadyExists, "contact request was already received"};
  }

  auto content = Unpad(*payload);
  if (!content) return content.error();
  crypto::WipeOnExit wipe_content(*content);
  wire::ContactRequest m;
  ScopedMessageWipe wipe(m);
  RHIZOME_TRY(internal::ParseBounded(m, *content, kMaxPaddableBytes,
                                     "contact request is too large",
                                     "contact request does not parse"));
  if (m.version() == 0) return Malformed("contact request has no version");
  if (m.version() != kContactFormatVersion) {
    return Error{Errc::kUnsupported, "contact request version is not supported"};
  }
  if (!m.has_reply_queue()) return Malformed("contact request has no reply queue");
  auto reply_queue = internal::MessageQueueFromProto(m.reply_queue());
  if (!reply_queue) return reply_queue.error();

  auto boot = crypto::DeriveRatchetBootstrap(keys->k2.expose(), h);
  if (!boot) return boot.error();
  auto ratchet = crypto::DoubleRatchet::InitBob(*boot, invite.key_pair);
  if (!ratchet) return ratchet.error();
  auto hello = ratchet->Decrypt(hello_message, now);
  if (!hello) return hello.error();
  auto decoded = DecodeStep(*hello, Step::kHello);
  if (!decoded) return decoded.error();

  auto plaintext = EncodeStep(Step::kInviterCard, &self.card, {}, padding);
  if (!plaintext) return plaintext.error();
  crypto::WipeOnExit wipe_plaintext(*plaintext);
  auto reply = ratchet->Encrypt(*plaintext, rng);
  if (!reply) return reply.error();

  OpenedContactRequest out{
      std::move(reply_queue).value(), request_id, std::move(reply).value(),
      FirstContactAccess::Make(ContactRole::kInviter, ContactState::kAwaitingCard)};
  FirstContactAccess::Set(out.contact, h, std::move(ratchet).value());
  return out;
}

// --- PendingContact ------------------------------------------------------------

PendingContact::PendingContact() = default;
PendingContact::~PendingContact() = default;
PendingContact::PendingContact(PendingContact&&) noexcept = default;
PendingContact& PendingContact::operator=(PendingContact&&) noexcept = default;

Result<PendingContact> PendingContact::Clone() const {
  const crypto::SecretBytes state = Serialize();
  return Parse(state.expose());
}

Result<ContactStep> PendingContact::HandleMessage(ByteSpan message, const ContactSelf& self,
                                                  std::uint64_t now, crypto::RandomSource& rng,
                                                  PaddingPolicy padding) {
  if (state_ == ContactState::kConfirmed || state_ == ContactState::kFailed) {
    return Error{Errc::kInvalidArgument, "contact takes no first-contact message now"};
  }
  if (message.size() > kMaxContactMessageBytes) {
    return Error{Errc::kLimitExceeded, "first-contact message is too large"};
  }
  RHIZOME_TRY(CheckSelf(self));

  // SECURITY: everything happens on a copy; *this changes only at the end of
  // a successful step, or moves to kFailed after an authenticated failure.
  auto next_or = Clone();
  if (!next_or) return next_or.error();
  PendingContact next = std::move(next_or).value();
  auto plaintext = next.ratchet_->Decrypt(message, now);
  if (!plaintext) return plaintext.error();
  crypto::WipeOnExit wipe_plaintext(*plaintext);

  const auto fail = [this](ContactFailure why, Error error) -> Error {
    *this = FirstContactAccess::Make(role_, ContactState::kFailed);
    failure_ = why;
    return error;
  };

  if (state_ == ContactState::kRequestSent) {
    // Acceptor: the inviter's card.
    auto step = DecodeStep(*plaintext, Step::kInviterCard);
    if (!step) return step.error();
    const ContactCard& card = *step->card;
    auto expected = InviteFingerprint(invite_secret_.expose(), card.identity_key);
    if (!expected) return expected.error();
    if (!ConstantTimeEqual(*expected, fingerprint_)) {
      // SECURITY: the invite named someone else: refuse this contact for good.
      return fail(ContactFailure::kCardDoesNotMatchInvite, kCardMismatch);
    }
    // Noise_KK message 1 to the card's Noise key. The ephemeral is drawn here
    // and kept until message 2 arrives, so the same handshake can be rebuilt
    // from storage (a Noise state is never persisted).
    crypto::SecretBytes ephemeral = crypto::SecretBytes::Random(rng, crypto::kX25519Bytes);
    auto config = KkConfig(crypto::NoiseRole::kInitiator, h_, self.noise_key, card.noise_key);
    config.fixed_ephemeral = &ephemeral;
    auto kk = crypto::NoiseHandshakeState::Create(config, rng);
    if (!kk) return kk.error();
    auto kk1 = kk->WriteMessage({});
    if (!kk1) return kk1.error();
    auto out = EncodeStep(Step::kAcceptorCard, &self.card, *kk1, padding);
    if (!out) return out.error();
    crypto::WipeOnExit wipe_out(*out);
    auto reply = next.ratchet_->Encrypt(*out, rng);
    if (!reply) return reply.error();
    next.state_ = ContactState::kConfirming;
    next.invite_secret_ = crypto::SecretBytes();
    next.kk_ephemeral_ = std::move(ephemeral);
    next.peer_card_ = std::move(step->card);
    *this = std::move(next);
    return ContactStep{std::move(reply).value(), state_};
  }

  if (state_ == ContactState::kAwaitingCard) {
    // Inviter: the acceptor's card and Noise_KK message 1.
    auto step = DecodeStep(*plaintext, Step::kAcceptorCard);
    if (!step) return step.error();
    const ContactCard& card = *step->card;
    auto kk = crypto::NoiseHandshakeState::Create(
        KkConfig(crypto::NoiseRole::kResponder, h_, self.noise_key, card.noise_key), rng);
    if (!kk) return kk.error();
    if (!kk->ReadMessage(step->confirmation)) {
      // SECURITY: the peer cannot prove it holds its card's Noise key.
      return fail(ContactFailure::kConfirmationFailed, kConfirmationFailed);
    }
    auto kk2 = kk->WriteMessage({});
    if (!kk2) return kk2.error();
    auto keys = kk->SplitKeys();
    if (!keys) return keys.error();
    auto out = EncodeStep(Step::kConfirm, nullptr, *kk2, padding);
    if (!out) return out.error();
    auto reply = next.ratchet_->Encrypt(*out, rng);
    if (!reply) return reply.error();
    // The sender of the last KK message mixes right after encrypting it.
    RHIZOME_TRY(next.ratchet_->MixConfirmation(keys->k1.expose(), keys->k2.expose()));
    next.state_ = ContactState::kConfirmed;
    next.peer_card_ = std::move(step->card);
    *this = std::move(next);
    return ContactStep{std::move(reply).value(), state_};
  }

  // kConfirming (acceptor): Noise_KK message 2.
  auto step = DecodeStep(*plaintext, Step::kConfirm);
  if (!step) return step.error();
  auto config =
      KkConfig(crypto::NoiseRole::kInitiator, h_, self.noise_key, peer_card_->noise_key);
  config.fixed_ephemeral = &kk_ephemeral_;
  auto kk = crypto::NoiseHandshakeState::Create(config, rng);
  if (!kk) return kk.error();
  if (!kk->WriteMessage({})) return Error{Errc::kInternal, "confirmation could not be rebuilt"};
  if (!kk->ReadMessage(step->confirmation)) {
    return fail(ContactFailure::kConfirmationFailed, kConfirmationFailed);
  }
  auto keys = kk->SplitKeys();
  if (!keys) return keys.error();
  // The receiver of the last KK message mixes right after decrypting it.
  RHIZOME_TRY(next.ratchet_->MixConfirmation(keys->k1.expose(), keys->k2.expose()));
  next.state_ = ContactState::kConfirmed;
  next.kk_ephemeral_ = crypto::SecretBytes();
  *this = std::move(next);
  return ContactStep{Bytes{}, state_};
}

Result<Bytes> PendingContact::Encrypt(ByteSpan plaintext, crypto::RandomSource& rng) {
  if (state_ != ContactState::kConfirmed) return kNotConfirmed;
  return ratchet_->Encrypt(plaintext, rng);
}

Result<Bytes> PendingContact::Decrypt(ByteSpan message, std::uint64_t now) {
  if (state_ != ContactState::kConfirmed) return kNotConfirmed;
  return ratchet_->Decrypt(message, now);
}

Result<crypto::DoubleRatchet> PendingContact::TakeSession() {
  if (state_ != ContactState::kConfirmed) return kNotConfirmed;
  crypto::DoubleRatchet session = std::move(*ratchet_);
  *this = FirstContactAccess::Make(role_, ContactState::kFailed);
  return session;
}

crypto::SecretBytes PendingContact::Serialize() const {
  Bytes card;
  crypto::WipeOnExit wipe_card(card);
  if (peer_card_) {
    auto encoded = SerializeContactCard(*peer_card_);
    if (encoded) card = std::move(encoded).value();  // a stored card always validated
  }
  crypto::SecretBytes ratchet;
  if (ratchet_) ratchet = ratchet_->Serialize();

  crypto::SecretBytes out(kPendingContactFixedBytes + card.size() + 4 + ratchet.size());
  std::uint8_t* p = out.expose_mut().data();
  p[kOffVersion] = kPendingContactStateVersion;
  p[kOffRole] = static_cast<std::uint8_t>(role_);
  p[kOffState] = static_cast<std::uint8_t>(state_);
  p[kOffFailure] = static_cast<std::uint8_t>(failure_);
  std::copy(h_.begin(), h_.end(), p + kOffHash);
  std::copy(fingerprint_.begin(), fingerprint_.end(), p + kOffFingerprint);
  if (!invite_secret_.empty()) {
    std::copy_n(invite_secret_.expose().begin(), kInviteSecretBytes, p + kOffInviteSecret);
  }
  if (!kk_ephemeral_.empty()) {
    std::copy_n(kk_ephemeral_.expose().begin(), crypto::kX25519Bytes, p + kOffKkEphemeral);
  }
  PutU32(p + kOffCardLength, static_cast<std::uint32_t>(card.size()));
  std::copy(card.begin(), card.end(), p + kPendingContactFixedBytes);
  std::uint8_t* r = p + kPendingContactFixedBytes + card.size();
  PutU32(r, static_cast<std::uint32_t>(ratchet.size()));
  std::copy_n(ratchet.expose().begin(), ratchet.size(), r + 4);
  return out;
}

Result<PendingContact> PendingContact::Parse(ByteSpan s) {
  if (s.size() > kMaxPendingContactStateBytes) {
    return Error{Errc::kLimitExceeded, "contact state is too large"};
  }
  if (s.empty()) return Malformed("contact state is empty");
  if (s[kOffVersion] != kPendingContactStateVersion) {
    return Error{Errc::kUnsupported, "contact state version is not supported"};
  }
  if (s.size() < kPendingContactFixedBytes + 4) return Malformed("contact state is truncated");
  const std::uint32_t card_len = GetU32(s.data() + kOffCardLength);
  if (card_len > kMaxContactCardBytes ||
      s.size() < kPendingContactFixedBytes + std::size_t{card_len} + 4) {
    return Malformed("contact state card length is wrong");
  }
  const std::size_t ratchet_off = kPendingContactFixedBytes + card_len + 4;
  const std::uint32_t ratchet_len = GetU32(s.data() + ratchet_off - 4);
  if (s.size() != ratchet_off + std::size_t{ratchet_len}) {
    return Malformed("contact state length is wrong");
  }

  const std::uint8_t role = s[kOffRole];
  const std::uint8_t state = s[kOffState];
  const std::uint8_t failure = s[kOffFailure];
  if (role < 1 || role > 2) return Malformed("contact state role is unknown");
  if (state < 1 || state > 5) return Malformed("contact state is unknown");
  if (failure > 2) return Malformed("contact state failure is unknown");
  const auto r = static_cast<ContactRole>(role);
  const auto st = static_cast<ContactState>(state);
  const bool acceptor = r == ContactRole::kAcceptor;
  const bool reachable =
      st == ContactState::kConfirmed || st == ContactState::kFailed ||
      (acceptor && (st == ContactState::kRequestSent || st == ContactState::kConfirming)) ||
      (!acceptor && st == ContactState::kAwaitingCard);
  if (!reachable) return Error{Errc::kCorrupt, "contact state is not reachable for its role"};
  if (failure != 0 && st != ContactState::kFailed) {
    return Malformed("contact state has a failure but has not failed");
  }

  // Which fields each state holds; every other one must be all zero.
  const bool failed = st == ContactState::kFailed;
  const bool has_fp = acceptor && !failed;
  const bool has_secret = st == ContactState::kRequestSent;
  const bool has_ephemeral = st == ContactState::kConfirming;
  const bool has_card = !failed && (st == ContactState::kConfirming ||
                                    st == ContactState::kConfirmed);
  const auto field = [&](std::size_t off, std::size_t len) { return s.subspan(off, len); };
  if (failed != IsAllZero(field(kOffHash, kFirstContactHandshakeHashBytes))) {
    return Malformed("contact state handshake hash field is wrong");
  }
  if (has_fp == IsAllZero(field(kOffFingerprint, kInviteFingerprintBytes))) {
    return Malformed("contact state fingerprint field is wrong");
  }
  if (has_secret == IsAllZero(field(kOffInviteSecret, kInviteSecretBytes))) {
    return Malformed("contact state invite secret field is wrong");
  }
  if (has_ephemeral == IsAllZero(field(kOffKkEphemeral, crypto::kX25519Bytes))) {
    return Malformed("contact state ephemeral field is wrong");
  }
  if (has_card != (card_len != 0)) return Malformed("contact state card field is wrong");
  if (failed != (ratchet_len == 0)) return Malformed("contact state ratchet field is wrong");

  PendingContact c = FirstContactAccess::Make(r, st);
  c.failure_ = static_cast<ContactFailure>(failure);
  if (failed) return c;
  std::copy_n(s.begin() + kOffHash, kFirstContactHandshakeHashBytes, c.h_.begin());
  if (has_fp) std::copy_n(s.begin() + kOffFingerprint, kInviteFingerprintBytes, c.fingerprint_.begin());
  if (has_secret) {
    c.invite_secret_ = crypto::SecretBytes::CopyFrom(field(kOffInviteSecret, kInviteSecretBytes));
  }
  if (has_ephemeral) {
    c.kk_ephemeral_ = crypto::SecretBytes::CopyFrom(field(kOffKkEphemeral, crypto::kX25519Bytes));
  }
  if (has_card) {
    const ByteSpan stored_card = s.subspan(kPendingContactFixedBytes, card_len);
    auto card = ParseContactCard(stored_card);
    if (!card) return Error{Errc::kCorrupt, "stored peer card is invalid"};
    // Only the encoding Serialize() writes: a card with repeated or unknown
    // fields would parse to something else than the bytes it came from.
    auto canonical = SerializeContactCard(*card);
    if (!canonical || !std::equal(canonical->begin(), canonical->end(), stored_card.begin(),
                                  stored_card.end())) {
      return Error{Errc::kCorrupt, "stored peer card is not in its canonical encoding"};
    }
    c.peer_card_ = std::move(card).value();
  }
  auto ratchet = crypto::DoubleRatchet::Parse(s.subspan(ratchet_off, ratchet_len));
  if (!ratchet) return ratchet.error();
  // SECURITY: the session must belong to this handshake.
  if (!ConstantTimeEqual(ratchet->associated_data(), RatchetAd(c.h_))) {
    return Error{Errc::kCorrupt, "stored ratchet does not belong to this contact"};
  }
  c.ratchet_ = std::move(ratchet).value();
  return c;
}

}  // namespace rhizome::protocol
