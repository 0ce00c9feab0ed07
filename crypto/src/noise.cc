// The Noise Protocol Framework, revision 34. See noise.h and docs/protocol/noise.md.
#include "rhizome/crypto/noise.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "rhizome/crypto/aead.h"
#include "rhizome/crypto/hash.h"
#include "rhizome/crypto/random.h"

namespace rhizome::crypto {

namespace {

using T = NoiseToken;

// ---------------------------------------------------------------------------
// Pattern tables (Noise §7.4 one-way, §7.5 fundamental interactive).

struct PatternDef {
  std::string_view name;
  bool one_way;
  std::string_view pre_initiator;  // space-separated tokens
  std::string_view pre_responder;
  // Messages alternate, starting with the initiator; empty = no more messages.
  std::array<std::string_view, 3> messages;
};

// Noise §7.4 (one-way) and §7.5 (fundamental interactive), written as in the spec.
constexpr PatternDef kPatterns[] = {
    {"N", true, "", "s", {"e es"}},
    {"K", true, "s", "s", {"e es ss"}},
    {"X", true, "", "s", {"e es s ss"}},
    {"NN", false, "", "", {"e", "e ee"}},
    {"NK", false, "", "s", {"e es", "e ee"}},
    {"NX", false, "", "", {"e", "e ee s es"}},
    {"XN", false, "", "", {"e", "e ee", "s se"}},
    {"XK", false, "", "s", {"e es", "e ee", "s se"}},
    {"XX", false, "", "", {"e", "e ee s es", "s se"}},
    {"KN", false, "s", "", {"e", "e ee se"}},
    {"KK", false, "s", "s", {"e es ss", "e ee se"}},
    {"KX", false, "s", "", {"e", "e ee se s es"}},
    {"IN", false, "", "", {"e s", "e ee se"}},
    {"IK", false, "", "s", {"e es s ss", "e ee se"}},
    {"IX", false, "", "", {"e s", "e ee se s es"}},
};

struct TokenName {
  std::string_view text;
  NoiseToken token;
};
constexpr TokenName kTokenNames[] = {{"e", T::kE},   {"s", T::kS},   {"ee", T::kEe},
                                     {"es", T::kEs}, {"se", T::kSe}, {"ss", T::kSs}};

// "e es s ss" -> {kE, kEs, kS, kSs}. The tables above use only known names
// (every pattern is exercised by the vector tests).
std::vector<NoiseToken> Tokens(std::string_view text) {
  std::vector<NoiseToken> out;
  while (!text.empty()) {
    const std::size_t sp = text.find(' ');
    const std::string_view word = text.substr(0, sp);
    text = sp == std::string_view::npos ? std::string_view{} : text.substr(sp + 1);
    for (const auto& tn : kTokenNames) {
      if (tn.text == word) out.push_back(tn.token);
    }
  }
  return out;
}

bool Contains(const std::vector<NoiseToken>& tokens, NoiseToken t) {
  return std::find(tokens.begin(), tokens.end(), t) != tokens.end();
}

// ---------------------------------------------------------------------------
// Hash functions (Noise §4.3, §12.8 and §12.9): HASH, HMAC, HKDF.

std::size_t HashLen(NoiseHashFunction f) { return f == NoiseHashFunction::kBlake2b ? 64 : 32; }

// out = HASH(a || b); out.size() == HashLen(f).
void Hash2(NoiseHashFunction f, ByteSpan a, ByteSpan b, MutableByteSpan out) {
  if (f == NoiseHashFunction::kBlake2b) {
    Blake2b h(kBlake2b512Bytes);
    h.Update(a).Update(b);
    h.Final(out.first(kBlake2b512Bytes));
  } else {
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, a.data(), a.size());
    crypto_hash_sha256_update(&st, b.data(), b.size());
    crypto_hash_sha256_final(&st, out.data());
    sodium_memzero(&st, sizeof(st));
  }
}

// out = HMAC-HASH(key, data); out.size() >= HashLen(f).
void Hmac(NoiseHashFunction f, ByteSpan key, ByteSpan data, MutableByteSpan out) {
  if (f == NoiseHashFunction::kBlake2b) {
    HmacBlake2b512(key, data, out.first<kBlake2b512Bytes>());
  } else {
    HmacSha256(key, data, out.first<kSha256Bytes>());
  }
}

// Noise §4.3 HKDF(chaining_key, input_key_material, num_outputs) with 2 or 3
// outputs, each HashLen(f) bytes, written to out1..out3 (out3 may be empty).
void Hkdf(NoiseHashFunction f, ByteSpan chaining_key, ByteSpan ikm, MutableByteSpan out1,
          MutableByteSpan out2, MutableByteSpan out3) {
  const std::size_t hl = HashLen(f);
  StackSecret<kNoiseMaxHashBytes> temp_key;
  Hmac(f, chaining_key, ikm, temp_key.expose_mut());
  const ByteSpan tk = temp_key.expose().first(hl);

  const std::uint8_t one = 0x01;
  Hmac(f, tk, ByteSpan(&one, 1), out1);

  StackSecret<kNoiseMaxHashBytes + 1> buf;
  auto b = buf.expose_mut();
  std::memcpy(b.data(), out1.data(), hl);
  b[hl] = 0x02;
  Hmac(f, tk, b.first(hl + 1), out2);
  if (out3.empty()) return;
  std::memcpy(b.data(), out2.data(), hl);
  b[hl] = 0x03;
  Hmac(f, tk, b.first(hl + 1), out3);
}

// ---------------------------------------------------------------------------
// ChaChaPoly with the Noise nonce (§12.3): 4 zero bytes || 64-bit LE counter.

ByteArray<kChaChaIetfNonceBytes> NonceBytes(std::uint64_t n) {
  ByteArray<kChaChaIetfNonceBytes> nonce{};
  for (std::size_t i = 0; i < 8; ++i) {
    nonce[4 + i] = static_cast<std::uint8_t>(n >> (8 * i));
  }
  return nonce;
}

Status Seal(ByteSpan key, std::uint64_t n, ByteSpan ad, ByteSpan pt, MutableByteSpan out) {
  const auto nonce = NonceBytes(n);
  return ChaChaIetfEncrypt(key, nonce, ad, pt, out);
}

Status Open(ByteSpan key, std::uint64_t n, ByteSpan ad, ByteSpan ct, MutableByteSpan out) {
  const auto nonce = NonceBytes(n);
  return ChaChaIetfDecrypt(key, nonce, ad, ct, out);
}

constexpr Error kFailedState{Errc::kInvalidArgument, "Noise handshake has failed"};

}  // namespace

// ---------------------------------------------------------------------------
// NoiseProtocol

Result<NoiseProtocol> NoiseProtocol::Parse(std::string_view name) {
  constexpr Error kBadName{Errc::kMalformed, "malformed Noise protocol name"};
  if (name.empty() || name.size() > kNoiseMaxProtocolNameBytes) return kBadName;

  std::array<std::string_view, 5> parts;
  std::size_t count = 0;
  std::string_view rest = name;
  while (true) {
    const std::size_t pos = rest.find('_');
    if (count == parts.size()) return kBadName;
    parts[count++] = rest.substr(0, pos);
    if (pos == std::string_view::npos) break;
    rest.remove_prefix(pos + 1);
  }
  if (count != parts.size() || parts[0] != "Noise") return kBadName;
  for (auto p : parts) {
    if (p.empty()) return kBadName;
  }
  if (parts[2] != "25519") return Error{Errc::kUnsupported, "unsupported Noise DH function"};
  if (parts[3] != "ChaChaPoly") return Error{Errc::kUnsupported, "unsupported Noise cipher"};

  NoiseProtocol p;
  p.name_ = std::string(name);
  if (parts[4] == "BLAKE2b") {
    p.hash_ = NoiseHashFunction::kBlake2b;
  } else if (parts[4] == "SHA256") {
    p.hash_ = NoiseHashFunction::kSha256;
  } else {
    return Error{Errc::kUnsupported, "unsupported Noise hash function"};
  }

  // Pattern: an upper-case base name, then modifiers separated by '+'.
  std::string_view pattern = parts[1];
  std::size_t base_len = 0;
  while (base_len < pattern.size() && pattern[base_len] >= 'A' && pattern[base_len] <= 'Z') {
    ++base_len;
  }
  const std::string_view base = pattern.substr(0, base_len);
  const PatternDef* def = nullptr;
  for (const auto& d : kPatterns) {
    if (d.name == base) def = &d;
  }
  if (def == nullptr) return Error{Errc::kUnsupported, "unsupported Noise handshake pattern"};

  p.one_way_ = def->one_way;
  p.pre_initiator_ = Tokens(def->pre_initiator);
  p.pre_responder_ = Tokens(def->pre_responder);
  bool from_initiator = true;
  for (std::string_view m : def->messages) {
    if (m.empty()) break;
    p.messages_.push_back(NoiseMessagePattern{from_initiator, Tokens(m)});
    from_initiator = !from_initiator;
  }

  std::string_view mods = pattern.substr(base_len);
  std::array<bool, kNoiseMaxPsks> seen{};
  while (!mods.empty()) {
    const std::size_t plus = mods.find('+');
    const std::string_view mod = mods.substr(0, plus);
    if (plus == std::string_view::npos) {
      mods = {};
    } else {
      mods.remove_prefix(plus + 1);
      if (mods.empty()) return kBadName;  // trailing '+'
    }
    if (mod.size() < 4 || mod.substr(0, 3) != "psk") {
      return Error{Errc::kUnsupported, "unsupported Noise pattern modifier"};
    }
    const std::string_view digits = mod.substr(3);
    // One or two digits, no leading zero (the name is hashed as written).
    if (digits.size() > 2 || (digits.size() == 2 && digits[0] == '0')) return kBadName;
    std::size_t n = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return kBadName;
      n = n * 10 + static_cast<std::size_t>(c - '0');
    }
    if (n > p.messages_.size() || seen[n]) return kBadName;
    seen[n] = true;
    if (n == 0) {
      auto& first = p.messages_.front().tokens;
      first.insert(first.begin(), NoiseToken::kPsk);
    } else {
      p.messages_[n - 1].tokens.push_back(NoiseToken::kPsk);
    }
    ++p.psk_count_;
  }
  return p;
}

std::size_t NoiseProtocol::hash_len() const { return HashLen(hash_); }

bool NoiseProtocol::NeedsLocalStatic(NoiseRole role) const {
  const bool initiator = role == NoiseRole::kInitiator;
  if (Contains(initiator ? pre_initiator_ : pre_responder_, NoiseToken::kS)) return true;
  for (const auto& m : messages_) {
    if (m.from_initiator == initiator && Contains(m.tokens, NoiseToken::kS)) return true;
  }
  return false;
}

bool NoiseProtocol::NeedsRemoteStatic(NoiseRole role) const {
  const bool initiator = role == NoiseRole::kInitiator;
  return Contains(initiator ? pre_responder_ : pre_initiator_, NoiseToken::kS);
}

bool NoiseProtocol::SendsEphemeral(NoiseRole role) const {
  const bool initiator = role == NoiseRole::kInitiator;
  for (const auto& m : messages_) {
    if (m.from_initiator == initiator && Contains(m.tokens, NoiseToken::kE)) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// NoiseCipherState

Result<NoiseCipherState> NoiseCipherState::FromKey(ByteSpan key) {
  if (key.size() != kNoiseKeyBytes) {
    return Error{Errc::kInvalidArgument, "Noise cipher key must be 32 bytes"};
  }
  NoiseCipherState cs;
  cs.key_ = SecretBytes::CopyFrom(key);
  return cs;
}

Status NoiseCipherState::EncryptWithAd(ByteSpan ad, ByteSpan plaintext, MutableByteSpan out) {
  if (!HasKey()) return Error{Errc::kInvalidArgument, "Noise cipher state has no key"};
  if (plaintext.size() > kNoiseMaxTransportPayloadBytes) {
    return Error{Errc::kLimitExceeded, "Noise plaintext exceeds the message limit"};
  }
  if (out.size() != plaintext.size() + kNoiseTagBytes) {
    return Error{Errc::kInvalidArgument, "Noise encrypt: wrong output size"};
  }
  if (n_ == kNoiseMaxNonce) return Error{Errc::kLimitExceeded, "Noise nonce exhausted"};
  RHIZOME_TRY(Seal(key_.expose(), n_, ad, plaintext, out));
  ++n_;
  return {};
}

Result<Bytes> NoiseCipherState::EncryptWithAd(ByteSpan ad, ByteSpan plaintext) {
  if (plaintext.size() > kNoiseMaxTransportPayloadBytes) {
    return Error{Errc::kLimitExceeded, "Noise plaintext exceeds the message limit"};
  }
  Bytes out(plaintext.size() + kNoiseTagBytes);
  RHIZOME_TRY(EncryptWithAd(ad, plaintext, out));
  return out;
}

Status NoiseCipherState::DecryptWithAd(ByteSpan ad, ByteSpan ciphertext, MutableByteSpan out) {
  if (!HasKey()) return Error{Errc::kInvalidArgument, "Noise cipher state has no key"};
  if (ciphertext.size() > kNoiseMaxMessageBytes) {
    return Error{Errc::kLimitExceeded, "Noise message exceeds the message limit"};
  }
  if (ciphertext.size() < kNoiseTagBytes) {
    return Error{Errc::kMalformed, "Noise message shorter than its tag"};
  }
  if (out.size() != ciphertext.size() - kNoiseTagBytes) {
    return Error{Errc::kInvalidArgument, "Noise decrypt: wrong output size"};
  }
  if (n_ == kNoiseMaxNonce) return Error{Errc::kLimitExceeded, "Noise nonce exhausted"};
  RHIZOME_TRY(Open(key_.expose(), n_, ad, ciphertext, out));
  ++n_;
  return {};
}

Result<Bytes> NoiseCipherState::DecryptWithAd(ByteSpan ad, ByteSpan ciphertext) {
  if (ciphertext.size() > kNoiseMaxMessageBytes) {
    return Error{Errc::kLimitExceeded, "Noise message exceeds the message limit"};
  }
  if (ciphertext.size() < kNoiseTagBytes) {
    return Error{Errc::kMalformed, "Noise message shorter than its tag"};
  }
  Bytes out(ciphertext.size() - kNoiseTagBytes);
  RHIZOME_TRY(DecryptWithAd(ad, ciphertext, out));
  return out;
}

Status NoiseCipherState::Rekey() {
  if (!HasKey()) return Error{Errc::kInvalidArgument, "Noise cipher state has no key"};
  const std::array<std::uint8_t, kNoiseKeyBytes> zeros{};
  StackSecret<kNoiseKeyBytes + kNoiseTagBytes> tmp;
  RHIZOME_TRY(Seal(key_.expose(), kNoiseMaxNonce, {}, zeros, tmp.expose_mut()));
  std::memcpy(key_.expose_mut().data(), tmp.expose().data(), kNoiseKeyBytes);
  return {};
}

// ---------------------------------------------------------------------------
// NoiseHandshakeState

struct NoiseHandshakeState::Impl {
  enum class Phase : std::uint8_t { kRunning, kComplete, kSplit, kFailed };

  // Layout of the secret arena (one SecretBytes for the whole handshake).
  static constexpr std::size_t kCkOff = 0;                           // chaining key
  static constexpr std::size_t kKOff = kCkOff + kNoiseMaxHashBytes;  // handshake cipher key
  static constexpr std::size_t kSOff = kKOff + kNoiseKeyBytes;       // static private key
  static constexpr std::size_t kEOff = kSOff + kNoiseDhBytes;        // ephemeral private key
  static constexpr std::size_t kPskOff = kEOff + kNoiseDhBytes;      // PSKs
  static constexpr std::size_t kArenaBytes = kPskOff + kNoiseMaxPsks * kNoisePskBytes;

  NoiseProtocol protocol;
  NoiseRole role = NoiseRole::kInitiator;
  bool initiator = true;
  NoiseHashFunction hash = NoiseHashFunction::kBlake2b;
  std::size_t hash_len = 64;
  bool psk_mode = false;

  SecretBytes arena{kArenaBytes};
  ByteArray<kNoiseMaxHashBytes> h{};
  bool has_k = false;
  std::uint64_t n = 0;

  bool has_s = false;
  ByteArray<kNoiseDhBytes> s_pub{};
  bool has_e = false;  // drawn at Create; "sent" once its token is written
  bool e_sent = false;
  ByteArray<kNoiseDhBytes> e_pub{};
  bool has_rs = false;
  ByteArray<kNoiseDhBytes> rs{};
  bool has_re = false;
  ByteArray<kNoiseDhBytes> re{};
  std::size_t next_psk = 0;

  std::size_t next_message = 0;
  Phase phase = Phase::kRunning;

  MutableByteSpan ck() { return arena.expose_mut().subspan(kCkOff, hash_len); }
  MutableByteSpan k() { return arena.expose_mut().subspan(kKOff, kNoiseKeyBytes); }
  MutableByteSpan s_priv() { return arena.expose_mut().subspan(kSOff, kNoiseDhBytes); }
  MutableByteSpan e_priv() { return arena.expose_mut().subspan(kEOff, kNoiseDhBytes); }
  MutableByteSpan psk(std::size_t i) {
    return arena.expose_mut().subspan(kPskOff + i * kNoisePskBytes, kNoisePskBytes);
  }
  ByteSpan hv() const { return ByteSpan(h).first(hash_len); }

  // SECURITY: a failed handshake wipes every secret and refuses all further use.
  Error Fail(Error e) {
    phase = Phase::kFailed;
    Wipe(arena.expose_mut());
    has_k = false;
    return e;
  }

  // --- SymmetricState (Noise §5.2) ---

  void InitializeSymmetric(std::string_view name) {
    h.fill(0);
    const ByteSpan nb = AsBytes(name);
    if (nb.size() <= hash_len) {
      std::copy(nb.begin(), nb.end(), h.begin());
    } else {
      Hash2(hash, nb, {}, h);
    }
    std::copy_n(h.begin(), hash_len, ck().begin());
    has_k = false;
    n = 0;
  }

  void MixHash(ByteSpan data) {
    ByteArray<kNoiseMaxHashBytes> prev = h;
    Hash2(hash, ByteSpan(prev).first(hash_len), data, h);
  }

  void MixKey(ByteSpan ikm) {
    StackSecret<kNoiseMaxHashBytes> out1, out2;
    Hkdf(hash, ck(), ikm, out1.expose_mut(), out2.expose_mut(), {});
    std::copy_n(out1.expose().begin(), hash_len, ck().begin());
    std::copy_n(out2.expose().begin(), kNoiseKeyBytes, k().begin());  // truncated to 32
    has_k = true;
    n = 0;
  }

  void MixKeyAndHash(ByteSpan ikm) {
    StackSecret<kNoiseMaxHashBytes> out1, out2, out3;
    Hkdf(hash, ck(), ikm, out1.expose_mut(), out2.expose_mut(), out3.expose_mut());
    std::copy_n(out1.expose().begin(), hash_len, ck().begin());
    MixHash(out2.expose().first(hash_len));
    std::copy_n(out3.expose().begin(), kNoiseKeyBytes, k().begin());
    has_k = true;
    n = 0;
  }

  // Appends EncryptAndHash(pt) to `out`.
  Status EncryptAndHash(ByteSpan pt, Bytes& out) {
    const std::size_t start = out.size();
    if (!has_k) {
      Append(out, pt);
    } else {
      if (n == kNoiseMaxNonce) return Error{Errc::kLimitExceeded, "Noise nonce exhausted"};
      out.resize(start + pt.size() + kNoiseTagBytes);
      RHIZOME_TRY(Seal(k(), n, hv(), pt, MutableByteSpan(out).subspan(start)));
      ++n;
    }
    MixHash(ByteSpan(out).subspan(start));
    return {};
  }

  // pt.size() must be ct.size() - (has_k ? 16 : 0).
  Status DecryptAndHash(ByteSpan ct, MutableByteSpan pt) {
    if (!has_k) {
      std::copy(ct.begin(), ct.end(), pt.begin());
    } else {
      if (n == kNoiseMaxNonce) return Error{Errc::kLimitExceeded, "Noise nonce exhausted"};
      RHIZOME_TRY(Open(k(), n, hv(), ct, pt));
      ++n;
    }
    MixHash(ct);
    return {};
  }

  // --- DH tokens ---

  Status MixDh(NoiseToken token) {
    // es: initiator DH(e, rs), responder DH(s, re); se: the mirror image.
    bool local_e = false;
    bool remote_e = false;
    switch (token) {
      case NoiseToken::kEe:
        local_e = true;
        remote_e = true;
        break;
      case NoiseToken::kEs:
        local_e = initiator;
        remote_e = !initiator;
        break;
      case NoiseToken::kSe:
        local_e = !initiator;
        remote_e = initiator;
        break;
      case NoiseToken::kSs:
        break;
      default:
        return Error{Errc::kInternal, "Noise: not a DH token"};
    }
    if ((local_e ? !e_sent : !has_s) || (remote_e ? !has_re : !has_rs)) {
      return Error{Errc::kInternal, "Noise pattern uses a key it does not have"};
    }
    StackSecret<kNoiseDhBytes> dh;
    RHIZOME_TRY(X25519(local_e ? e_priv() : s_priv(), remote_e ? ByteSpan(re) : ByteSpan(rs),
                       dh.expose_mut()));
    MixKey(dh.expose());
    return {};
  }

  std::size_t Overhead(const NoiseMessagePattern& m) const {
    bool k_set = has_k;
    std::size_t size = 0;
    for (NoiseToken t : m.tokens) {
      switch (t) {
        case NoiseToken::kE:
          size += kNoiseDhBytes;
          if (psk_mode) k_set = true;
          break;
        case NoiseToken::kS:
          size += kNoiseDhBytes + (k_set ? kNoiseTagBytes : 0);
          break;
        default:
          k_set = true;
          break;
      }
    }
    return size + (k_set ? kNoiseTagBytes : 0);
  }

  Status CheckTurn(bool writing) const {
    if (phase == Phase::kFailed) return kFailedState;
    if (phase != Phase::kRunning) {
      return Error{Errc::kInvalidArgument, "Noise handshake is already complete"};
    }
    if (protocol.messages()[next_message].from_initiator != (initiator == writing)) {
      return Error{Errc::kInvalidArgument, "Noise handshake: not this side's turn"};
    }
    return {};
  }

  void Advance() {
    if (++next_message == protocol.messages().size()) phase = Phase::kComplete;
  }

  Result<Bytes> Write(ByteSpan payload) {
    RHIZOME_TRY(CheckTurn(true));
    const NoiseMessagePattern& m = protocol.messages()[next_message];
    const std::size_t overhead = Overhead(m);
    if (payload.size() > kNoiseMaxMessageBytes - overhead) {
      return Error{Errc::kLimitExceeded, "Noise handshake message exceeds the limit"};
    }
    Bytes out;
    out.reserve(overhead + payload.size());
    for (NoiseToken t : m.tokens) {
      switch (t) {
        case NoiseToken::kE:
          if (!has_e) return Error{Errc::kInternal, "Noise: no ephemeral key"};
          Append(out, e_pub);
          MixHash(e_pub);
          if (psk_mode) MixKey(e_pub);
          e_sent = true;
          break;
        case NoiseToken::kS:
          if (!has_s) return Error{Errc::kInternal, "Noise: no static key"};
          RHIZOME_TRY(EncryptAndHash(s_pub, out));
          break;
        case NoiseToken::kPsk:
          MixKeyAndHash(psk(next_psk++));
          break;
        default:
          RHIZOME_TRY(MixDh(t));
          break;
      }
    }
    RHIZOME_TRY(EncryptAndHash(payload, out));
    Advance();
    return out;
  }

  Result<Bytes> Read(ByteSpan message) {
    RHIZOME_TRY(CheckTurn(false));
    if (message.size() > kNoiseMaxMessageBytes) {
      return Error{Errc::kLimitExceeded, "Noise handshake message exceeds the limit"};
    }
    constexpr Error kShort{Errc::kMalformed, "Noise handshake message too short"};
    const NoiseMessagePattern& m = protocol.messages()[next_message];
    ByteSpan rest = message;
    for (NoiseToken t : m.tokens) {
      switch (t) {
        case NoiseToken::kE:
          if (rest.size() < kNoiseDhBytes) return kShort;
          std::copy_n(rest.begin(), kNoiseDhBytes, re.begin());
          has_re = true;
          rest = rest.subspan(kNoiseDhBytes);
          MixHash(re);
          if (psk_mode) MixKey(re);
          break;
        case NoiseToken::kS: {
          const std::size_t len = kNoiseDhBytes + (has_k ? kNoiseTagBytes : 0);
          if (rest.size() < len) return kShort;
          ByteArray<kNoiseDhBytes> key{};
          RHIZOME_TRY(DecryptAndHash(rest.first(len), key));
          rs = key;
          has_rs = true;
          rest = rest.subspan(len);
          break;
        }
        case NoiseToken::kPsk:
          MixKeyAndHash(psk(next_psk++));
          break;
        default:
          RHIZOME_TRY(MixDh(t));
          break;
      }
    }
    if (has_k && rest.size() < kNoiseTagBytes) return kShort;
    Bytes payload(rest.size() - (has_k ? kNoiseTagBytes : 0));
    if (auto st = DecryptAndHash(rest, payload); !st) {
      Wipe(payload);  // SECURITY: nothing partially decrypted leaves this function
      return st.error();
    }
    Advance();
    return payload;
  }
};

NoiseHandshakeState::NoiseHandshakeState(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NoiseHandshakeState::NoiseHandshakeState(NoiseHandshakeState&&) noexcept = default;
NoiseHandshakeState& NoiseHandshakeState::operator=(NoiseHandshakeState&&) noexcept = default;
NoiseHandshakeState::~NoiseHandshakeState() = default;

Result<NoiseHandshakeState> NoiseHandshakeState::Create(const NoiseHandshakeConfig& config,
                                                        RandomSource& rng) {
  auto parsed = NoiseProtocol::Parse(config.protocol_name);
  if (!parsed) return parsed.error();
  NoiseProtocol& protocol = parsed.value();
  const NoiseRole role = config.role;

  if (config.prologue.size() > kNoiseMaxPrologueBytes) {
    return Error{Errc::kLimitExceeded, "Noise prologue exceeds its limit"};
  }
  const bool needs_s = protocol.NeedsLocalStatic(role);
  if (needs_s != (config.local_static != nullptr)) {
    return Error{Errc::kInvalidArgument, needs_s ? "Noise pattern needs a local static key"
                                                 : "Noise pattern does not use a local static key"};
  }
  if (needs_s && config.local_static->secret_key.size() != kNoiseDhBytes) {
    return Error{Errc::kInvalidArgument, "Noise static key must be 32 bytes"};
  }
  const bool needs_rs = protocol.NeedsRemoteStatic(role);
  if (needs_rs != config.remote_static.has_value()) {
    return Error{Errc::kInvalidArgument,
                 needs_rs ? "Noise pattern needs the peer's static key"
                          : "Noise pattern does not take the peer's static key in advance"};
  }
  if (config.psks.size() != protocol.psk_count()) {
    return Error{Errc::kInvalidArgument, "wrong number of Noise PSKs for the pattern"};
  }
  for (const auto& psk : config.psks) {
    if (psk.size() != kNoisePskBytes) {
      return Error{Errc::kInvalidArgument, "Noise PSK must be 32 bytes"};
    }
  }
  const bool sends_e = protocol.SendsEphemeral(role);
  if (config.fixed_ephemeral != nullptr) {
    if (!sends_e) {
      return Error{Errc::kInvalidArgument, "Noise pattern sends no ephemeral key for this role"};
    }
    if (config.fixed_ephemeral->size() != kNoiseDhBytes) {
      return Error{Errc::kInvalidArgument, "Noise ephemeral key must be 32 bytes"};
    }
  }

  auto impl = std::make_unique<Impl>();
  Impl& st = *impl;
  st.role = role;
  st.initiator = role == NoiseRole::kInitiator;
  st.hash = protocol.hash();
  st.hash_len = protocol.hash_len();
  st.psk_mode = protocol.psk_count() > 0;
  st.protocol = std::move(protocol);

  if (needs_s) {
    std::copy_n(config.local_static->secret_key.expose().begin(), kNoiseDhBytes,
                st.s_priv().begin());
    st.s_pub = config.local_static->public_key;
    st.has_s = true;
  }
  if (needs_rs) {
    st.rs = *config.remote_static;
    st.has_rs = true;
  }
  for (std::size_t i = 0; i < config.psks.size(); ++i) {
    std::copy_n(config.psks[i].expose().begin(), kNoisePskBytes, st.psk(i).begin());
  }
  if (sends_e) {
    if (config.fixed_ephemeral != nullptr) {
      std::copy_n(config.fixed_ephemeral->expose().begin(), kNoiseDhBytes, st.e_priv().begin());
    } else {
      rng.Fill(st.e_priv());
    }
    RHIZOME_TRY(X25519PublicKey(st.e_priv(), st.e_pub));
    st.has_e = true;
  }

  st.InitializeSymmetric(st.protocol.name());
  st.MixHash(config.prologue);
  // Pre-messages: the initiator's keys first (Noise §7.1). The supported
  // patterns only have `s` in pre-messages.
  for (bool initiator_side : {true, false}) {
    const auto& pre =
        initiator_side ? st.protocol.initiator_premessage() : st.protocol.responder_premessage();
    for (NoiseToken t : pre) {
      if (t != NoiseToken::kS) return Error{Errc::kInternal, "Noise: unsupported pre-message"};
      st.MixHash(initiator_side == st.initiator ? st.s_pub : st.rs);
    }
  }
  return NoiseHandshakeState(std::move(impl));
}

const NoiseProtocol& NoiseHandshakeState::protocol() const { return impl_->protocol; }
NoiseRole NoiseHandshakeState::role() const { return impl_->role; }

bool NoiseHandshakeState::IsMyTurn() const {
  return impl_->phase == Impl::Phase::kRunning &&
         impl_->protocol.messages()[impl_->next_message].from_initiator == impl_->initiator;
}

bool NoiseHandshakeState::IsComplete() const {
  return impl_->phase == Impl::Phase::kComplete || impl_->phase == Impl::Phase::kSplit;
}

bool NoiseHandshakeState::IsFailed() const { return impl_->phase == Impl::Phase::kFailed; }

std::size_t NoiseHandshakeState::NextMessageOverhead() const {
  if (impl_->phase != Impl::Phase::kRunning) return 0;
  return impl_->Overhead(impl_->protocol.messages()[impl_->next_message]);
}

Result<Bytes> NoiseHandshakeState::WriteMessage(ByteSpan payload) {
  auto r = impl_->Write(payload);
  if (!r) return impl_->Fail(r.error());
  return r;
}

Result<Bytes> NoiseHandshakeState::ReadMessage(ByteSpan message) {
  auto r = impl_->Read(message);
  if (!r) return impl_->Fail(r.error());
  return r;
}

Result<NoiseTransport> NoiseHandshakeState::Split() {
  auto keys = SplitKeys();
  if (!keys) return keys.error();
  auto c1 = NoiseCipherState::FromKey(keys->k1.expose());
  auto c2 = NoiseCipherState::FromKey(keys->k2.expose());
  if (!c1 || !c2) return Error{Errc::kInternal, "Noise split failed"};

  const Impl& st = *impl_;
  NoiseTransport t;
  if (st.protocol.one_way()) {
    // Noise §7.2: only c1 is used, initiator to responder.
    (st.initiator ? t.send : t.receive) = std::move(c1.value());
  } else if (st.initiator) {
    t.send = std::move(c1.value());
    t.receive = std::move(c2.value());
  } else {
    t.send = std::move(c2.value());
    t.receive = std::move(c1.value());
  }
  return t;
}

Result<NoiseSplitKeys> NoiseHandshakeState::SplitKeys() {
  Impl& st = *impl_;
  if (st.phase == Impl::Phase::kFailed) return kFailedState;
  if (st.phase == Impl::Phase::kRunning) {
    return Error{Errc::kInvalidArgument, "Noise handshake is not complete"};
  }
  if (st.phase == Impl::Phase::kSplit) {
    return Error{Errc::kInvalidArgument, "Noise handshake was already split"};
  }
  StackSecret<kNoiseMaxHashBytes> k1, k2;
  Hkdf(st.hash, st.ck(), {}, k1.expose_mut(), k2.expose_mut(), {});
  NoiseSplitKeys keys{SecretBytes::CopyFrom(k1.expose().first(kNoiseKeyBytes)),
                      SecretBytes::CopyFrom(k2.expose().first(kNoiseKeyBytes))};
  // SECURITY: the chaining key and handshake secrets are no longer needed.
  Wipe(st.arena.expose_mut());
  st.has_k = false;
  st.phase = Impl::Phase::kSplit;
  return keys;
}

Bytes NoiseHandshakeState::HandshakeHash() const {
  const ByteSpan h = impl_->hv();
  return Bytes(h.begin(), h.end());
}

std::optional<ByteArray<kNoiseDhBytes>> NoiseHandshakeState::RemoteStatic() const {
  if (!impl_->has_rs || impl_->phase == Impl::Phase::kFailed) return std::nullopt;
  return impl_->rs;
}

}  // namespace rhizome::crypto
