#include "rhizome/crypto/double_ratchet.h"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <utility>

#include "rhizome/crypto/aead.h"
#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/random.h"

namespace rhizome::crypto {

namespace {

constexpr std::string_view kInfoSk = "rhizome/v1/dr-sk";
constexpr std::string_view kInfoHk = "rhizome/v1/dr-hk";
constexpr std::string_view kInfoAd = "rhizome/v1/dr-ad";
constexpr std::string_view kInfoRk = "rhizome/v1/dr-rk";
constexpr std::string_view kInfoConfirm = "rhizome/v1/confirm";

// Slots of keys_, kRatchetKeyBytes each. The serialized state stores them in
// this order (docs/protocol/double-ratchet.md).
enum Slot : std::size_t {
  kSlotDhs = 0,  // our ratchet private key
  kSlotRk,
  kSlotCks,
  kSlotCkr,
  kSlotHks,
  kSlotHkr,
  kSlotNhks,
  kSlotNhkr,
  kSlotCount,
};

// flags_ bits (also the serialized flag byte).
constexpr std::uint8_t kHasDhs = 1 << 0;
constexpr std::uint8_t kHasDhr = 1 << 1;
constexpr std::uint8_t kHasCks = 1 << 2;
constexpr std::uint8_t kHasCkr = 1 << 3;
constexpr std::uint8_t kHasHks = 1 << 4;
constexpr std::uint8_t kHasHkr = 1 << 5;
// The peer's new ratchet key was received: the next Encrypt starts a new
// sending chain with a fresh ratchet key pair.
constexpr std::uint8_t kSendStepPending = 1 << 6;
constexpr std::uint8_t kKnownFlags = 0x7f;

// Serialized layout offsets.
constexpr std::size_t kOffVersion = 0;
constexpr std::size_t kOffFlags = 1;
constexpr std::size_t kOffAd = 2;
constexpr std::size_t kOffDhr = kOffAd + kRatchetAssociatedDataBytes;     // 34
constexpr std::size_t kOffKeys = kOffDhr + kX25519Bytes;                  // 66
constexpr std::size_t kOffNs = kOffKeys + kSlotCount * kRatchetKeyBytes;  // 322
constexpr std::size_t kOffNr = kOffNs + 4;
constexpr std::size_t kOffPn = kOffNr + 4;
constexpr std::size_t kOffSkippedCount = kOffPn + 4;  // 334
static_assert(kOffSkippedCount + 4 == kRatchetStateFixedBytes);

// Skipped entry layout: hk (32) ‖ n u32be ‖ mk (32) ‖ stored_at u64be.
constexpr std::size_t kEntHk = 0;
constexpr std::size_t kEntN = 32;
constexpr std::size_t kEntMk = 36;
constexpr std::size_t kEntStoredAt = 68;
static_assert(kEntStoredAt + 8 == kRatchetSkippedEntryBytes);

void PutU32(std::uint8_t* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}
std::uint32_t GetU32(const std::uint8_t* p) noexcept {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | p[i];
  return v;
}
void PutU64(std::uint8_t* p, std::uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (56 - 8 * i));
}
std::uint64_t GetU64(const std::uint8_t* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

bool AllZero(ByteSpan bytes) noexcept {
  std::uint8_t acc = 0;
  for (std::uint8_t b : bytes) acc = static_cast<std::uint8_t>(acc | b);
  return acc == 0;
}

struct Header {
  ByteArray<kX25519Bytes> dh{};
  std::uint32_t pn = 0;
  std::uint32_t n = 0;
};

// Trial-decrypts an encrypted header (nonce ‖ ciphertext ‖ tag) under `hk`.
bool OpenHeader(ByteSpan hk, ByteSpan ad, ByteSpan enc_header, Header& out) noexcept {
  ByteArray<kRatchetHeaderBytes> plain{};
  if (!XChaChaDecrypt(hk, enc_header.first(kRatchetNonceBytes), ad,
                      enc_header.subspan(kRatchetNonceBytes), plain)) {
    return false;
  }
  std::memcpy(out.dh.data(), plain.data(), kX25519Bytes);
  out.pn = GetU32(plain.data() + 32);
  out.n = GetU32(plain.data() + 36);
  return true;
}

// Older than the maximum age, or stamped more than that far in the future (by
// a clock that ran ahead and was corrected: such keys would otherwise never
// expire until real time caught up).
bool Expired(std::uint64_t stored_at, std::uint64_t now) noexcept {
  if (now >= stored_at) return now - stored_at > kSkippedKeyMaxAgeSeconds;
  return stored_at - now > kSkippedKeyMaxAgeSeconds;
}

// Derives `count` message keys from chain key `ck` (advanced in place) into
// `keys` (32 bytes each).
void DeriveChainKeys(std::span<std::uint8_t, kRatchetKeyBytes> ck, std::size_t count,
                     MutableByteSpan keys) noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    internal::KdfChainStep(ck, std::span<std::uint8_t, 32>(keys.data() + 32 * i, 32), ck);
  }
}

constexpr Error kErrMovedFrom{Errc::kInvalidArgument, "ratchet state was moved from"};
constexpr Error kErrHeader{Errc::kAuthenticationFailed, "ratchet header does not authenticate"};
constexpr Error kErrBody{Errc::kAuthenticationFailed, "ratchet body does not authenticate"};
constexpr Error kErrKeyGone{Errc::kAuthenticationFailed,
                            "ratchet message key already used, evicted or expired"};
constexpr Error kErrTooManySkipped{Errc::kLimitExceeded,
                                   "ratchet message skips more than kMaxSkip keys"};

}  // namespace

namespace internal {

void KdfChainStep(ByteSpan ck, std::span<std::uint8_t, 32> message_key,
                  std::span<std::uint8_t, 32> next_ck) noexcept {
  static constexpr std::uint8_t kMessageConstant[1] = {0x01};
  static constexpr std::uint8_t kChainConstant[1] = {0x02};
  // Both MACs are under `ck`: its key schedule is computed once (6 SHA-256
  // blocks instead of 8). `ck` is absorbed before either output is written, so
  // the outputs may alias it.
  const HmacSha256Key mac(ck);
  mac.Mac(kMessageConstant, message_key);
  mac.Mac(kChainConstant, next_ck);
}

void KdfRootStep(ByteSpan rk, ByteSpan dh_out, std::span<std::uint8_t, 96> out) noexcept {
  (void)HkdfSha256(rk, dh_out, AsBytes(kInfoRk), out);  // 96 bytes: cannot fail
}

}  // namespace internal

Result<RatchetBootstrap> DeriveRatchetBootstrap(ByteSpan noise_k2, ByteSpan handshake_hash) {
  if (noise_k2.size() != kRatchetKeyBytes) {
    return Error{Errc::kInvalidArgument, "ratchet bootstrap: k2 must be 32 bytes"};
  }
  if (handshake_hash.size() < kMinHandshakeHashBytes ||
      handshake_hash.size() > kMaxHandshakeHashBytes) {
    return Error{Errc::kInvalidArgument, "ratchet bootstrap: handshake hash must be 32..64 bytes"};
  }
  RatchetBootstrap b{SecretBytes(kRatchetKeyBytes),
                     SecretBytes(kRatchetKeyBytes),
                     SecretBytes(kRatchetKeyBytes),
                     {}};
  Bytes info;
  info.reserve(kInfoSk.size() + handshake_hash.size());
  Append(info, AsBytes(kInfoSk));
  Append(info, handshake_hash);
  RHIZOME_TRY(HkdfSha256({}, noise_k2, info, b.shared_key.expose_mut()));

  StackSecret<64> hk;
  RHIZOME_TRY(HkdfSha256({}, b.shared_key.expose(), AsBytes(kInfoHk), hk.expose_mut()));
  std::memcpy(b.header_key_a.expose_mut().data(), hk.expose().data(), 32);
  std::memcpy(b.next_header_key_b.expose_mut().data(), hk.expose().data() + 32, 32);

  Blake2b h(kBlake2b256Bytes);
  h.Update(AsBytes(kInfoAd)).Update(handshake_hash);
  h.Final(b.associated_data);
  return b;
}

DoubleRatchet::DoubleRatchet() : keys_(kSlotCount * kRatchetKeyBytes) {}
DoubleRatchet::~DoubleRatchet() = default;

DoubleRatchet::DoubleRatchet(DoubleRatchet&& other) noexcept
    : keys_(std::move(other.keys_)),
      skipped_(std::move(other.skipped_)),
      skipped_count_(std::exchange(other.skipped_count_, 0)),
      ad_(other.ad_),
      dhs_public_(other.dhs_public_),
      dhr_(other.dhr_),
      flags_(std::exchange(other.flags_, 0)),
      ns_(std::exchange(other.ns_, 0)),
      nr_(std::exchange(other.nr_, 0)),
      pn_(std::exchange(other.pn_, 0)) {}

DoubleRatchet& DoubleRatchet::operator=(DoubleRatchet&& other) noexcept {
  if (this != &other) {
    keys_ = std::move(other.keys_);
    skipped_ = std::move(other.skipped_);
    skipped_count_ = std::exchange(other.skipped_count_, 0);
    ad_ = other.ad_;
    dhs_public_ = other.dhs_public_;
    dhr_ = other.dhr_;
    flags_ = std::exchange(other.flags_, 0);
    ns_ = std::exchange(other.ns_, 0);
    nr_ = std::exchange(other.nr_, 0);
    pn_ = std::exchange(other.pn_, 0);
  }
  return *this;
}

std::span<std::uint8_t, kRatchetKeyBytes> DoubleRatchet::Key(std::size_t slot) noexcept {
  return std::span<std::uint8_t, kRatchetKeyBytes>(
      keys_.expose_mut().data() + slot * kRatchetKeyBytes, kRatchetKeyBytes);
}

std::span<const std::uint8_t, kRatchetKeyBytes> DoubleRatchet::Key(
    std::size_t slot) const noexcept {
  return std::span<const std::uint8_t, kRatchetKeyBytes>(
      keys_.expose().data() + slot * kRatchetKeyBytes, kRatchetKeyBytes);
}

Result<DoubleRatchet> DoubleRatchet::InitAlice(const RatchetBootstrap& bootstrap,
                                               ByteSpan peer_ratchet_public_key) {
  if (bootstrap.shared_key.size() != kRatchetKeyBytes ||
      bootstrap.header_key_a.size() != kRatchetKeyBytes ||
      bootstrap.next_header_key_b.size() != kRatchetKeyBytes) {
    return Error{Errc::kInvalidArgument, "ratchet init: bootstrap keys must be 32 bytes"};
  }
  if (peer_ratchet_public_key.size() != kX25519Bytes || AllZero(peer_ratchet_public_key)) {
    return Error{Errc::kInvalidArgument, "ratchet init: peer key must be 32 non-zero bytes"};
  }
  // RatchetInitAliceHE, with the DH step deferred to the first Encrypt: there
  // HKs = NHKs (= HKa here) and RK, CKs, NHKs = KDF_RK(SK, DH(DHs, DHr)).
  DoubleRatchet r;
  r.ad_ = bootstrap.associated_data;
  std::memcpy(r.dhr_.data(), peer_ratchet_public_key.data(), kX25519Bytes);
  std::memcpy(r.Key(kSlotRk).data(), bootstrap.shared_key.expose().data(), kRatchetKeyBytes);
  std::memcpy(r.Key(kSlotNhks).data(), bootstrap.header_key_a.expose().data(), kRatchetKeyBytes);
  std::memcpy(r.Key(kSlotNhkr).data(), bootstrap.next_header_key_b.expose().data(),
              kRatchetKeyBytes);
  r.flags_ = kHasDhr | kSendStepPending;
  return r;
}

Result<DoubleRatchet> DoubleRatchet::InitBob(const RatchetBootstrap& bootstrap,
                                             const X25519KeyPair& own_ratchet_key_pair) {
  if (bootstrap.shared_key.size() != kRatchetKeyBytes ||
      bootstrap.header_key_a.size() != kRatchetKeyBytes ||
      bootstrap.next_header_key_b.size() != kRatchetKeyBytes) {
    return Error{Errc::kInvalidArgument, "ratchet init: bootstrap keys must be 32 bytes"};
  }
  if (own_ratchet_key_pair.secret_key.size() != kX25519Bytes) {
    return Error{Errc::kInvalidArgument, "ratchet init: secret key must be 32 bytes"};
  }
  ByteArray<kX25519Bytes> derived{};
  if (!X25519PublicKey(own_ratchet_key_pair.secret_key.expose(), derived) ||
      derived != own_ratchet_key_pair.public_key) {
    return Error{Errc::kInvalidArgument, "ratchet init: public key does not match the secret"};
  }
  // RatchetInitBobHE: RK = SK, HKs = HKr = none, NHKs = NHKb, NHKr = HKa.
  DoubleRatchet r;
  r.ad_ = bootstrap.associated_data;
  r.dhs_public_ = own_ratchet_key_pair.public_key;
  std::memcpy(r.Key(kSlotDhs).data(), own_ratchet_key_pair.secret_key.expose().data(),
              kX25519Bytes);
  std::memcpy(r.Key(kSlotRk).data(), bootstrap.shared_key.expose().data(), kRatchetKeyBytes);
  std::memcpy(r.Key(kSlotNhks).data(), bootstrap.next_header_key_b.expose().data(),
              kRatchetKeyBytes);
  std::memcpy(r.Key(kSlotNhkr).data(), bootstrap.header_key_a.expose().data(), kRatchetKeyBytes);
  r.flags_ = kHasDhs;
  return r;
}

bool DoubleRatchet::CanSend() const noexcept {
  return !keys_.empty() && (Has(kSendStepPending) || Has(kHasCks));
}

Result<Bytes> DoubleRatchet::Encrypt(ByteSpan plaintext, RandomSource& rng) {
  if (keys_.empty()) return kErrMovedFrom;
  if (plaintext.size() > kMaxRatchetPlaintextBytes) {
    return Error{Errc::kLimitExceeded, "ratchet plaintext longer than kMaxRatchetPlaintextBytes"};
  }
  const bool step = Has(kSendStepPending);
  if (!step && !Has(kHasCks)) {
    return Error{Errc::kInvalidArgument, "ratchet cannot send before it has received a message"};
  }
  if (!step && ns_ == UINT32_MAX) {
    return Error{Errc::kLimitExceeded, "ratchet sending chain exhausted"};
  }

  // Everything is derived into temporaries; the state changes only at the end.
  StackSecret<kX25519Bytes> new_dhs;
  ByteArray<kX25519Bytes> new_dhs_public{};
  StackSecret<96> root_out;  // RK ‖ CKs ‖ NHKs of a new sending chain
  StackSecret<kRatchetKeyBytes> chain_key;
  if (step) {
    rng.Fill(new_dhs.expose_mut());
    RHIZOME_TRY(X25519PublicKey(new_dhs.expose(), new_dhs_public));
    StackSecret<kX25519Bytes> dh_out;
    RHIZOME_TRY(X25519(new_dhs.expose(), dhr_, dh_out.expose_mut()));
    internal::KdfRootStep(Key(kSlotRk), dh_out.expose(), root_out.expose_mut());
    std::memcpy(chain_key.expose_mut().data(), root_out.expose().data() + 32, 32);
  } else {
    std::memcpy(chain_key.expose_mut().data(), Key(kSlotCks).data(), 32);
  }
  const std::uint32_t n = step ? 0 : ns_;
  const std::uint32_t pn = step ? ns_ : pn_;
  const auto& dh_public = step ? new_dhs_public : dhs_public_;
  ByteSpan header_key = step ? ByteSpan(Key(kSlotNhks)) : ByteSpan(Key(kSlotHks));

  // SECURITY: the body key is KDF_CK's message key itself, used for this one
  // message (docs/protocol/double-ratchet.md, "Why no message-key HKDF").
  StackSecret<32> message_key;
  internal::KdfChainStep(chain_key.expose(), message_key.expose_mut(), chain_key.expose_mut());

  ByteArray<kRatchetHeaderBytes> header{};
  std::memcpy(header.data(), dh_public.data(), kX25519Bytes);
  PutU32(header.data() + 32, pn);
  PutU32(header.data() + 36, n);

  Bytes out(kRatchetMessageOverheadBytes + plaintext.size());
  MutableByteSpan all(out);
  auto header_nonce = all.first(kRatchetNonceBytes);
  auto enc_header = all.first(kRatchetEncryptedHeaderBytes);
  auto body_nonce = all.subspan(kRatchetEncryptedHeaderBytes, kRatchetNonceBytes);
  auto body = all.subspan(kRatchetEncryptedHeaderBytes + kRatchetNonceBytes);
  // Both nonces in one draw (one randombytes_buf call instead of two).
  ByteArray<2 * kRatchetNonceBytes> nonces{};
  rng.Fill(nonces);
  std::memcpy(header_nonce.data(), nonces.data(), kRatchetNonceBytes);
  std::memcpy(body_nonce.data(), nonces.data() + kRatchetNonceBytes, kRatchetNonceBytes);
  RHIZOME_TRY(
      XChaChaEncrypt(header_key, header_nonce, ad_, header,
                     all.subspan(kRatchetNonceBytes, kRatchetHeaderBytes + kRatchetTagBytes)));
  ByteArray<kRatchetAssociatedDataBytes + kRatchetEncryptedHeaderBytes> body_ad{};
  std::memcpy(body_ad.data(), ad_.data(), kRatchetAssociatedDataBytes);
  std::memcpy(body_ad.data() + kRatchetAssociatedDataBytes, enc_header.data(),
              kRatchetEncryptedHeaderBytes);
  RHIZOME_TRY(XChaChaEncrypt(message_key.expose(), body_nonce, body_ad, plaintext, body));

  // Commit.
  if (step) {
    pn_ = ns_;
    ns_ = 0;
    std::memcpy(Key(kSlotHks).data(), Key(kSlotNhks).data(), kRatchetKeyBytes);
    std::memcpy(Key(kSlotRk).data(), root_out.expose().data(), kRatchetKeyBytes);
    std::memcpy(Key(kSlotNhks).data(), root_out.expose().data() + 64, kRatchetKeyBytes);
    std::memcpy(Key(kSlotDhs).data(), new_dhs.expose().data(), kX25519Bytes);
    dhs_public_ = new_dhs_public;
    flags_ = static_cast<std::uint8_t>((flags_ & ~kSendStepPending) | kHasDhs | kHasHks);
  }
  std::memcpy(Key(kSlotCks).data(), chain_key.expose().data(), kRatchetKeyBytes);
  flags_ |= kHasCks;
  ns_ = n + 1;
  return out;
}

Result<Bytes> DoubleRatchet::Decrypt(ByteSpan message, std::uint64_t now) {
  if (keys_.empty()) return kErrMovedFrom;
  if (message.size() < kRatchetMessageOverheadBytes) {
    return Error{Errc::kMalformed, "ratchet message shorter than its overhead"};
  }
  if (message.size() > kMaxRatchetMessageBytes) {
    return Error{Errc::kLimitExceeded, "ratchet message longer than kMaxRatchetMessageBytes"};
  }
  const ByteSpan enc_header = message.first(kRatchetEncryptedHeaderBytes);
  const ByteSpan body_nonce = message.subspan(kRatchetEncryptedHeaderBytes, kRatchetNonceBytes);
  const ByteSpan body = message.subspan(kRatchetEncryptedHeaderBytes + kRatchetNonceBytes);
  ByteArray<kRatchetAssociatedDataBytes + kRatchetEncryptedHeaderBytes> body_ad{};
  std::memcpy(body_ad.data(), ad_.data(), kRatchetAssociatedDataBytes);
  std::memcpy(body_ad.data() + kRatchetAssociatedDataBytes, enc_header.data(),
              kRatchetEncryptedHeaderBytes);
  Bytes plaintext(body.size() - kRatchetTagBytes);
  Header header;

  // 1. Stored skipped keys (TrySkippedMessageKeysHE). Entries of one chain are
  // stored next to each other, so each run of equal header keys costs one
  // trial decryption.
  bool old_chain_header = false;
  for (std::size_t i = 0; i < skipped_count_;) {
    const ByteSpan hk(Entry(i) + kEntHk, kRatchetKeyBytes);
    std::size_t end = i + 1;
    while (end < skipped_count_ &&
           ConstantTimeEqual(ByteSpan(Entry(end) + kEntHk, kRatchetKeyBytes), hk)) {
      ++end;
    }
    if (OpenHeader(hk, ad_, enc_header, header)) {
      for (std::size_t k = i; k < end; ++k) {
        const std::uint8_t* e = Entry(k);
        if (GetU32(e + kEntN) != header.n || Expired(GetU64(e + kEntStoredAt), now)) continue;
        if (!XChaChaDecrypt(ByteSpan(e + kEntMk, kRatchetKeyBytes), body_nonce, body_ad, body,
                            plaintext)) {
          return kErrBody;
        }
        RemoveSkipped(k);
        DropExpiredSkippedKeys(now);
        return plaintext;
      }
      // A header of a chain we hold keys for, but not this message's key: unless
      // it is the current chain (handled below), it is a replay or too late.
      old_chain_header = true;
      break;
    }
    i = end;
  }

  // 2. The current receiving chain.
  if (Has(kHasHkr) && OpenHeader(Key(kSlotHkr), ad_, enc_header, header)) {
    if (header.dh != dhr_) {
      return Error{Errc::kAuthenticationFailed, "ratchet key changed within a chain"};
    }
    if (header.n < nr_) return kErrKeyGone;
    if (header.n - nr_ > kMaxSkip || header.n == UINT32_MAX) return kErrTooManySkipped;
    const std::size_t skip = header.n - nr_;
    StackSecret<kRatchetKeyBytes> chain_key;
    std::memcpy(chain_key.expose_mut().data(), Key(kSlotCkr).data(), kRatchetKeyBytes);
    SecretBytes skipped_keys(skip * kRatchetKeyBytes);
    DeriveChainKeys(chain_key.expose_mut(), skip, skipped_keys.expose_mut());
    StackSecret<32> message_key;
    internal::KdfChainStep(chain_key.expose(), message_key.expose_mut(), chain_key.expose_mut());
    if (!XChaChaDecrypt(message_key.expose(), body_nonce, body_ad, body, plaintext)) {
      return kErrBody;
    }
    ReserveSkipped(skipped_count_ + skip);  // may throw bad_alloc: nothing changed yet
    // Commit.
    DropExpiredSkippedKeys(now);
    AppendSkipped(Key(kSlotHkr), nr_, skipped_keys.expose(), now);
    std::memcpy(Key(kSlotCkr).data(), chain_key.expose().data(), kRatchetKeyBytes);
    nr_ = header.n + 1;
    return plaintext;
  }

  // 3. The next header key: the peer started a new chain (a DH ratchet step).
  if (!OpenHeader(Key(kSlotNhkr), ad_, enc_header, header)) {
    return old_chain_header ? kErrKeyGone : kErrHeader;
  }
  if (!Has(kHasDhs)) {
    return Error{Errc::kAuthenticationFailed, "ratchet cannot accept a new chain before sending"};
  }
  std::size_t old_skip = 0;
  if (Has(kHasCkr) && header.pn > nr_) {
    if (header.pn - nr_ > kMaxSkip) return kErrTooManySkipped;
    old_skip = header.pn - nr_;
  }
  if (header.n > kMaxSkip) return kErrTooManySkipped;
  const std::size_t new_skip = header.n;

  StackSecret<kX25519Bytes> dh_out;
  RHIZOME_TRY(X25519(Key(kSlotDhs), header.dh, dh_out.expose_mut()));
  StackSecret<96> root_out;  // RK ‖ CKr ‖ NHKr
  internal::KdfRootStep(Key(kSlotRk), dh_out.expose(), root_out.expose_mut());

  SecretBytes skipped_keys((old_skip + new_skip) * kRatchetKeyBytes);
  StackSecret<kRatchetKeyBytes> chain_key;
  if (old_skip > 0) {
    std::memcpy(chain_key.expose_mut().data(), Key(kSlotCkr).data(), kRatchetKeyBytes);
    DeriveChainKeys(chain_key.expose_mut(), old_skip,
                    skipped_keys.expose_mut().first(old_skip * kRatchetKeyBytes));
  }
  std::memcpy(chain_key.expose_mut().data(), root_out.expose().data() + 32, kRatchetKeyBytes);
  DeriveChainKeys(chain_key.expose_mut(), new_skip,
                  skipped_keys.expose_mut().subspan(old_skip * kRatchetKeyBytes));
  StackSecret<32> message_key;
  internal::KdfChainStep(chain_key.expose(), message_key.expose_mut(), chain_key.expose_mut());
  if (!XChaChaDecrypt(message_key.expose(), body_nonce, body_ad, body, plaintext)) {
    return kErrBody;
  }
  ReserveSkipped(skipped_count_ + old_skip + new_skip);  // may throw: nothing changed yet

  // Commit: keys of the previous chain (under HKr), then of the new chain (under
  // the old NHKr, which becomes HKr); then the receiving half of the DH step.
  DropExpiredSkippedKeys(now);
  if (old_skip > 0) {
    AppendSkipped(Key(kSlotHkr), nr_, skipped_keys.expose().first(old_skip * kRatchetKeyBytes),
                  now);
  }
  AppendSkipped(Key(kSlotNhkr), 0, skipped_keys.expose().subspan(old_skip * kRatchetKeyBytes), now);
  std::memcpy(Key(kSlotHkr).data(), Key(kSlotNhkr).data(), kRatchetKeyBytes);
  std::memcpy(Key(kSlotRk).data(), root_out.expose().data(), kRatchetKeyBytes);
  std::memcpy(Key(kSlotNhkr).data(), root_out.expose().data() + 64, kRatchetKeyBytes);
  std::memcpy(Key(kSlotCkr).data(), chain_key.expose().data(), kRatchetKeyBytes);
  dhr_ = header.dh;
  nr_ = header.n + 1;
  // SECURITY: our old ratchet private key (possibly the invite key) and the old
  // sending chain are no longer needed: wipe them now. The next Encrypt makes a
  // new key pair and chain (the lazy sending half of the step).
  Wipe(Key(kSlotDhs));
  Wipe(Key(kSlotCks));
  Wipe(Key(kSlotHks));
  dhs_public_.fill(0);
  flags_ = static_cast<std::uint8_t>((flags_ & ~(kHasDhs | kHasCks | kHasHks)) | kHasDhr | kHasCkr |
                                     kHasHkr | kSendStepPending);
  return plaintext;
}

Status DoubleRatchet::MixConfirmation(ByteSpan k1, ByteSpan k2) {
  if (keys_.empty()) return kErrMovedFrom;
  if (k1.size() != 32 || k2.size() != 32) {
    return Error{Errc::kInvalidArgument, "ratchet confirmation keys must be 32 bytes each"};
  }
  StackSecret<64> ikm;
  std::memcpy(ikm.expose_mut().data(), k1.data(), 32);
  std::memcpy(ikm.expose_mut().data() + 32, k2.data(), 32);
  StackSecret<kRatchetKeyBytes> rk;
  RHIZOME_TRY(HkdfSha256(Key(kSlotRk), ikm.expose(), AsBytes(kInfoConfirm), rk.expose_mut()));
  std::memcpy(Key(kSlotRk).data(), rk.expose().data(), kRatchetKeyBytes);
  return {};
}

// ---- skipped-key store ----

std::uint8_t* DoubleRatchet::Entry(std::size_t index) noexcept {
  return skipped_.expose_mut().data() + index * kRatchetSkippedEntryBytes;
}

const std::uint8_t* DoubleRatchet::Entry(std::size_t index) const noexcept {
  return skipped_.expose().data() + index * kRatchetSkippedEntryBytes;
}

void DoubleRatchet::ReserveSkipped(std::size_t entries) {
  entries = std::min(entries, kMaxSkippedKeys);
  const std::size_t capacity = skipped_.size() / kRatchetSkippedEntryBytes;
  if (entries <= capacity) return;
  const std::size_t new_capacity =
      std::min(kMaxSkippedKeys, std::max({entries, 2 * capacity, std::size_t{16}}));
  SecretBytes grown(new_capacity * kRatchetSkippedEntryBytes);
  if (skipped_count_ > 0) {
    std::memcpy(grown.expose_mut().data(), skipped_.expose().data(),
                skipped_count_ * kRatchetSkippedEntryBytes);
  }
  skipped_ = std::move(grown);  // the old block is wiped on release
}

void DoubleRatchet::RemoveSkipped(std::size_t index) noexcept {
  std::uint8_t* base = Entry(0);
  const std::size_t tail = skipped_count_ - index - 1;
  if (tail > 0) {
    std::memmove(base + index * kRatchetSkippedEntryBytes,
                 base + (index + 1) * kRatchetSkippedEntryBytes, tail * kRatchetSkippedEntryBytes);
  }
  --skipped_count_;
  Wipe({base + skipped_count_ * kRatchetSkippedEntryBytes, kRatchetSkippedEntryBytes});
}

void DoubleRatchet::DropExpiredSkippedKeys(std::uint64_t now) noexcept {
  if (skipped_count_ == 0) return;
  std::uint8_t* base = Entry(0);
  std::size_t kept = 0;
  for (std::size_t i = 0; i < skipped_count_; ++i) {
    std::uint8_t* e = base + i * kRatchetSkippedEntryBytes;
    if (Expired(GetU64(e + kEntStoredAt), now)) continue;
    if (kept != i)
      std::memmove(base + kept * kRatchetSkippedEntryBytes, e, kRatchetSkippedEntryBytes);
    ++kept;
  }
  if (kept < skipped_count_) {
    Wipe({base + kept * kRatchetSkippedEntryBytes,
          (skipped_count_ - kept) * kRatchetSkippedEntryBytes});
  }
  skipped_count_ = kept;
}

void DoubleRatchet::AppendSkipped(std::span<const std::uint8_t, kRatchetKeyBytes> hk,
                                  std::uint32_t first_n, ByteSpan keys,
                                  std::uint64_t now) noexcept {
  const std::size_t count = keys.size() / kRatchetKeyBytes;
  if (count == 0) return;
  const std::size_t capacity = skipped_.size() / kRatchetSkippedEntryBytes;
  // SECURITY: the store is bounded; the oldest keys give way (a message that
  // late is lost, which the delivery layer's retries and receipts surface).
  if (skipped_count_ + count > capacity) {
    const std::size_t evict = skipped_count_ + count - capacity;
    std::uint8_t* base = Entry(0);
    std::memmove(base, base + evict * kRatchetSkippedEntryBytes,
                 (skipped_count_ - evict) * kRatchetSkippedEntryBytes);
    skipped_count_ -= evict;
    Wipe({base + skipped_count_ * kRatchetSkippedEntryBytes, evict * kRatchetSkippedEntryBytes});
  }
  for (std::size_t i = 0; i < count; ++i) {
    std::uint8_t* e = Entry(skipped_count_);
    std::memcpy(e + kEntHk, hk.data(), kRatchetKeyBytes);
    PutU32(e + kEntN, static_cast<std::uint32_t>(first_n + i));
    std::memcpy(e + kEntMk, keys.data() + i * kRatchetKeyBytes, kRatchetKeyBytes);
    PutU64(e + kEntStoredAt, now);
    ++skipped_count_;
  }
  // SECURITY: at most kMaxSkippedChains runs (each costs every incoming
  // message a trial decryption); the oldest chain gives way whole.
  while (CountSkippedChains() > kMaxSkippedChains) {
    const std::size_t first_run = RunEnd(0);
    std::uint8_t* base = Entry(0);
    std::memmove(base, base + first_run * kRatchetSkippedEntryBytes,
                 (skipped_count_ - first_run) * kRatchetSkippedEntryBytes);
    skipped_count_ -= first_run;
    Wipe({base + skipped_count_ * kRatchetSkippedEntryBytes, first_run * kRatchetSkippedEntryBytes});
  }
}

std::size_t DoubleRatchet::RunEnd(std::size_t begin) const noexcept {
  const ByteSpan hk(Entry(begin) + kEntHk, kRatchetKeyBytes);
  std::size_t end = begin + 1;
  while (end < skipped_count_ &&
         ConstantTimeEqual(ByteSpan(Entry(end) + kEntHk, kRatchetKeyBytes), hk)) {
    ++end;
  }
  return end;
}

std::size_t DoubleRatchet::CountSkippedChains() const noexcept {
  std::size_t runs = 0;
  for (std::size_t i = 0; i < skipped_count_; i = RunEnd(i)) ++runs;
  return runs;
}

// ---- persistence ----

SecretBytes DoubleRatchet::Serialize() const {
  if (keys_.empty()) return SecretBytes();
  SecretBytes out(kRatchetStateFixedBytes + skipped_count_ * kRatchetSkippedEntryBytes);
  std::uint8_t* p = out.expose_mut().data();
  p[kOffVersion] = kRatchetStateVersion;
  p[kOffFlags] = flags_;
  std::memcpy(p + kOffAd, ad_.data(), ad_.size());
  std::memcpy(p + kOffDhr, dhr_.data(), dhr_.size());
  std::memcpy(p + kOffKeys, keys_.expose().data(), keys_.size());
  PutU32(p + kOffNs, ns_);
  PutU32(p + kOffNr, nr_);
  PutU32(p + kOffPn, pn_);
  PutU32(p + kOffSkippedCount, static_cast<std::uint32_t>(skipped_count_));
  if (skipped_count_ > 0) {
    std::memcpy(p + kRatchetStateFixedBytes, skipped_.expose().data(),
                skipped_count_ * kRatchetSkippedEntryBytes);
  }
  return out;
}

Result<DoubleRatchet> DoubleRatchet::Parse(ByteSpan in) {
  if (in.size() > kMaxRatchetStateBytes) {
    return Error{Errc::kLimitExceeded, "ratchet state longer than kMaxRatchetStateBytes"};
  }
  if (in.empty()) return Error{Errc::kMalformed, "ratchet state is empty"};
  if (in[kOffVersion] != kRatchetStateVersion) {
    return Error{Errc::kUnsupported, "ratchet state version not supported"};
  }
  if (in.size() < kRatchetStateFixedBytes) {
    return Error{Errc::kMalformed, "ratchet state truncated"};
  }
  const std::uint8_t flags = in[kOffFlags];
  if ((flags & ~kKnownFlags) != 0) {
    return Error{Errc::kMalformed, "ratchet state has unknown flags"};
  }
  const std::uint32_t count = GetU32(in.data() + kOffSkippedCount);
  if (count > kMaxSkippedKeys) {
    return Error{Errc::kMalformed, "ratchet state skipped-key count above kMaxSkippedKeys"};
  }
  if (in.size() != kRatchetStateFixedBytes + count * kRatchetSkippedEntryBytes) {
    return Error{Errc::kMalformed, "ratchet state length does not match its count"};
  }

  // Flag combinations that reachable states have (docs/protocol/double-ratchet.md).
  auto has = [flags](std::uint8_t f) { return (flags & f) != 0; };
  bool consistent = has(kHasCks) == has(kHasHks) && has(kHasCkr) == has(kHasHkr) &&
                    (!has(kHasCkr) || has(kHasDhr)) && (!has(kHasCks) || has(kHasDhr));
  if (has(kSendStepPending)) {
    consistent = consistent && has(kHasDhr) && !has(kHasDhs) && !has(kHasCks);
  } else {
    consistent = consistent && has(kHasDhs) && (has(kHasCks) || !has(kHasDhr));
  }
  if (!consistent) return Error{Errc::kCorrupt, "ratchet state flags are inconsistent"};

  // Absent fields must be zero: one encoding per state.
  const ByteSpan dhr = in.subspan(kOffDhr, kX25519Bytes);
  if (!has(kHasDhr) && !AllZero(dhr)) {
    return Error{Errc::kMalformed, "ratchet state has bytes in an absent field"};
  }
  if (has(kHasDhr) && AllZero(dhr)) return Error{Errc::kCorrupt, "ratchet state peer key is zero"};
  const std::pair<std::size_t, std::uint8_t> optional_slots[] = {{kSlotDhs, kHasDhs},
                                                                 {kSlotCks, kHasCks},
                                                                 {kSlotCkr, kHasCkr},
                                                                 {kSlotHks, kHasHks},
                                                                 {kSlotHkr, kHasHkr}};
  for (const auto& [slot, flag] : optional_slots) {
    if (!has(flag) && !AllZero(in.subspan(kOffKeys + slot * kRatchetKeyBytes, kRatchetKeyBytes))) {
      return Error{Errc::kMalformed, "ratchet state has bytes in an absent field"};
    }
  }

  DoubleRatchet r;
  r.flags_ = flags;
  std::memcpy(r.ad_.data(), in.data() + kOffAd, kRatchetAssociatedDataBytes);
  std::memcpy(r.dhr_.data(), dhr.data(), kX25519Bytes);
  std::memcpy(r.keys_.expose_mut().data(), in.data() + kOffKeys, r.keys_.size());
  if (has(kHasDhs) && !X25519PublicKey(r.Key(kSlotDhs), r.dhs_public_)) {
    return Error{Errc::kCorrupt, "ratchet state private key is unusable"};
  }
  r.ns_ = GetU32(in.data() + kOffNs);
  r.nr_ = GetU32(in.data() + kOffNr);
  r.pn_ = GetU32(in.data() + kOffPn);
  if (count > 0) {
    r.skipped_ = SecretBytes(count * kRatchetSkippedEntryBytes);
    std::memcpy(r.skipped_.expose_mut().data(), in.data() + kRatchetStateFixedBytes,
                count * kRatchetSkippedEntryBytes);
    r.skipped_count_ = count;
    // The store as the code keeps it: at most kMaxSkippedChains runs, each
    // chain's keys in one run (a header key never in two runs), n strictly
    // increasing within a run. Anything else would make keys unreachable or
    // lookups ambiguous.
    if (r.CountSkippedChains() > kMaxSkippedChains) {
      return Error{Errc::kCorrupt, "ratchet state holds skipped keys of too many chains"};
    }
    for (std::size_t i = 0; i < count; i = r.RunEnd(i)) {
      const std::size_t end = r.RunEnd(i);
      for (std::size_t k = i + 1; k < end; ++k) {
        if (GetU32(r.Entry(k) + kEntN) <= GetU32(r.Entry(k - 1) + kEntN)) {
          return Error{Errc::kCorrupt, "ratchet state's skipped keys are out of order"};
        }
      }
      for (std::size_t j = end; j < count; j = r.RunEnd(j)) {
        if (ConstantTimeEqual(ByteSpan(r.Entry(j) + kEntHk, kRatchetKeyBytes),
                              ByteSpan(r.Entry(i) + kEntHk, kRatchetKeyBytes))) {
          return Error{Errc::kCorrupt, "ratchet state splits a chain's skipped keys"};
        }
      }
    }
  }
  return r;
}

}  // namespace rhizome::crypto
