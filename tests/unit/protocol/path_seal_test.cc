// The per-path seal (DESIGN §9, §11; docs/protocol/path-seal.md): round trips
// at every blob-size boundary, fresh ephemeral keys, flip-any-bit, wrong keys,
// sizes, low-order keys, the malformed catalogue past the AEAD, and a
// known-answer file checked twice: against the implementation and against
// libsodium's primitives called directly (with a hand-written HKDF on
// crypto_auth_hmacsha256), so a wrong label, order or split fails here.
//
// The known answers (tests/vectors/rhizome_path_seal_kat.json) are
// self-generated. Regenerate only after a deliberate format change:
//   RHIZOME_REGENERATE_KAT=1 protocol_unit_tests --gtest_filter='PathSealKat.*'
#include "rhizome/protocol/path_seal.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "rhizome/crypto/random.h"
#include "test_support.h"
#include "wire_test_util.h"

namespace rhizome::protocol {
namespace {

using crypto::DeterministicRandom;
using nlohmann::json;

constexpr std::string_view kLabel = "rhizome/v1/path-seal";

crypto::X25519KeyPair FixedKeyPair(std::uint8_t first) {
  Bytes sk(32);
  for (std::size_t i = 0; i < sk.size(); ++i) sk[i] = static_cast<std::uint8_t>(first + i);
  return crypto::X25519FromSecret(sk).value();
}

Bytes Payload(std::size_t size, std::uint8_t salt = 0) {
  Bytes b(size);
  for (std::size_t i = 0; i < size; ++i) b[i] = static_cast<std::uint8_t>(i * 7 + salt);
  return b;
}

Errc CodeOf(const Result<Bytes>& r) { return r.ok() ? Errc::kInternal : r.error().code; }

// --- An independent sealer: libsodium called directly -------------------------

// RFC 5869 HKDF-SHA256 on libsodium's HMAC-SHA256, salt = 32 zero bytes.
Bytes IndependentHkdf(const Bytes& ikm, const Bytes& info, std::size_t length) {
  unsigned char salt[32] = {0};
  unsigned char prk[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, salt, sizeof salt);
  crypto_auth_hmacsha256_update(&st, ikm.data(), ikm.size());
  crypto_auth_hmacsha256_final(&st, prk);
  Bytes okm;
  Bytes t;
  for (std::uint8_t counter = 1; okm.size() < length; ++counter) {
    crypto_auth_hmacsha256_init(&st, prk, sizeof prk);
    crypto_auth_hmacsha256_update(&st, t.data(), t.size());
    crypto_auth_hmacsha256_update(&st, info.data(), info.size());
    crypto_auth_hmacsha256_update(&st, &counter, 1);
    t.resize(crypto_auth_hmacsha256_BYTES);
    crypto_auth_hmacsha256_final(&st, t.data());
    okm.insert(okm.end(), t.begin(), t.end());
  }
  okm.resize(length);
  return okm;
}

struct IndependentSeal {
  Bytes eph_pk, dh, key, nonce, blob;
};

// eph_pk || XChaCha20-Poly1305(key, nonce, label || eph_pk, inner), where
// key || nonce = HKDF(-, X25519(eph_sk, recipient_pk), label || eph_pk || recipient_pk, 56).
IndependentSeal SealIndependently(const Bytes& eph_sk, ByteSpan recipient_pk, const Bytes& inner) {
  IndependentSeal s;
  s.eph_pk.resize(32);
  s.dh.resize(32);
  EXPECT_EQ(crypto_scalarmult_base(s.eph_pk.data(), eph_sk.data()), 0);
  EXPECT_EQ(crypto_scalarmult(s.dh.data(), eph_sk.data(), recipient_pk.data()), 0);
  Bytes info(kLabel.begin(), kLabel.end());
  info.insert(info.end(), s.eph_pk.begin(), s.eph_pk.end());
  info.insert(info.end(), recipient_pk.begin(), recipient_pk.end());
  const Bytes okm = IndependentHkdf(s.dh, info, 56);
  s.key.assign(okm.begin(), okm.begin() + 32);
  s.nonce.assign(okm.begin() + 32, okm.end());
  Bytes ad(kLabel.begin(), kLabel.end());
  ad.insert(ad.end(), s.eph_pk.begin(), s.eph_pk.end());
  Bytes ct(inner.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  unsigned long long ct_len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(ct.data(), &ct_len, inner.data(), inner.size(),
                                             ad.data(), ad.size(), nullptr, s.nonce.data(),
                                             s.key.data());
  EXPECT_EQ(ct_len, ct.size());
  s.blob = s.eph_pk;
  s.blob.insert(s.blob.end(), ct.begin(), ct.end());
  return s;
}

// An inner plaintext for a blob of `blob_size` bytes: u32be(prefix) || body,
// zero-filled to blob_size - 48 bytes.
Bytes Inner(std::size_t blob_size, std::uint32_t prefix, const Bytes& body) {
  Bytes inner(blob_size - 48, 0);
  inner[0] = static_cast<std::uint8_t>(prefix >> 24);
  inner[1] = static_cast<std::uint8_t>(prefix >> 16);
  inner[2] = static_cast<std::uint8_t>(prefix >> 8);
  inner[3] = static_cast<std::uint8_t>(prefix);
  std::copy(body.begin(), body.end(), inner.begin() + 4);
  return inner;
}

// A blob with a correct AEAD around an arbitrary inner plaintext.
Bytes SealInner(const crypto::X25519KeyPair& recipient, const Bytes& inner, std::uint64_t seed) {
  DeterministicRandom rng(seed);
  Bytes eph_sk(32);
  rng.Fill(eph_sk);
  return SealIndependently(eph_sk, recipient.public_key, inner).blob;
}

// --- Behaviour -----------------------------------------------------------------

TEST(PathSeal, RoundTripsAtEveryBlobSizeBoundary) {
  testing::InitCryptoOnce();
  static_assert(kPathSealOverheadBytes == 52);
  static_assert(kMaxPathSealPayloadBytes == 17356);
  const std::pair<std::size_t, std::size_t> cases[] = {
      {0, 512},     {1, 512},     {460, 512},    {461, 1280},    {1228, 1280},
      {1229, 4352}, {4300, 4352}, {4301, 17408}, {17355, 17408}, {kMaxPathSealPayloadBytes, 17408},
  };
  const auto recipient = FixedKeyPair(1);
  DeterministicRandom rng(7);
  for (auto [size, blob_size] : cases) {
    const Bytes payload = Payload(size, static_cast<std::uint8_t>(size));
    auto blob = SealForPath(payload, recipient.public_key, rng);
    ASSERT_TRUE(blob.ok()) << size;
    EXPECT_EQ(blob->size(), blob_size) << size;
    EXPECT_EQ(blob->size(), RelayBlobSizeFor(size + kPathSealOverheadBytes)) << size;
    auto opened = OpenPathSeal(*blob, recipient);
    ASSERT_TRUE(opened.ok()) << size;
    EXPECT_EQ(*opened, payload) << size;
  }
}

TEST(PathSeal, OneByteOverTheLargestPayloadIsRefused) {
  testing::InitCryptoOnce();
  const auto recipient = FixedKeyPair(1);
  DeterministicRandom rng(7);
  auto r = SealForPath(Payload(kMaxPathSealPayloadBytes + 1), recipient.public_key, rng);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kLimitExceeded);
  EXPECT_STREQ(r.error().message, "payload too large for a relay blob");
  EXPECT_EQ(CodeOf(SealForPath(Payload(70000), recipient.public_key, rng)), Errc::kLimitExceeded);
}

TEST(PathSeal, TwoSealsOfOnePayloadToOneKeyDiffer) {
  testing::InitCryptoOnce();
  const auto recipient = FixedKeyPair(1);
  const Bytes payload = Payload(300);
  auto a = SealForPath(payload, recipient.public_key, crypto::SystemRandom());
  auto b = SealForPath(payload, recipient.public_key, crypto::SystemRandom());
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->size(), b->size());
  EXPECT_NE(Bytes(a->begin(), a->begin() + 32), Bytes(b->begin(), b->begin() + 32));
  // Not just the ephemeral key: the ciphertext differs too.
  EXPECT_NE(Bytes(a->begin() + 32, a->begin() + 64), Bytes(b->begin() + 32, b->begin() + 64));
  EXPECT_EQ(OpenPathSeal(*a, recipient).value(), payload);
  EXPECT_EQ(OpenPathSeal(*b, recipient).value(), payload);
}

TEST(PathSeal, FlipAnyBitIsRejected) {
  testing::InitCryptoOnce();
  const auto recipient = FixedKeyPair(1);
  DeterministicRandom rng(11);
  const Bytes payload = Payload(100);
  const Bytes blob = SealForPath(payload, recipient.public_key, rng).value();
  ASSERT_EQ(blob.size(), 512u);
  for (std::size_t bit = 0; bit < blob.size() * 8; ++bit) {
    Bytes damaged = blob;
    damaged[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    auto r = OpenPathSeal(damaged, recipient);
    ASSERT_FALSE(r.ok()) << "bit " << bit;
    ASSERT_EQ(r.error().code, Errc::kAuthenticationFailed) << "bit " << bit;
    ASSERT_STREQ(r.error().message, "sealed blob does not open");
  }
  EXPECT_EQ(OpenPathSeal(blob, recipient).value(), payload);
}

TEST(PathSeal, WrongRecipientKeyDoesNotOpen) {
  testing::InitCryptoOnce();
  const auto recipient = FixedKeyPair(1);
  const auto other = FixedKeyPair(2);
  DeterministicRandom rng(12);
  const Bytes blob = SealForPath(Payload(40), recipient.public_key, rng).value();
  EXPECT_EQ(CodeOf(OpenPathSeal(blob, other)), Errc::kAuthenticationFailed);
  // The right secret key with another public key: the recipient key is bound
  // into the derivation, so this fails too.
  crypto::X25519KeyPair mixed{other.public_key, recipient.secret_key.Clone()};
  EXPECT_EQ(CodeOf(OpenPathSeal(blob, mixed)), Errc::kAuthenticationFailed);
}

TEST(PathSeal, TruncatedOrExtendedBlobIsRejectedBeforeDecryption) {
  testing::InitCryptoOnce();
  const auto recipient = FixedKeyPair(1);
  DeterministicRandom rng(13);
  const Bytes small = SealForPath(Payload(40), recipient.public_key, rng).value();
  const Bytes large = SealForPath(Payload(17000), recipient.public_key, rng).value();
  ASSERT_EQ(large.size(), kMaxBlobBytes);

  Bytes truncated(small.begin(), small.end() - 1);
  auto r = OpenPathSeal(truncated, recipient);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kMalformed);
  EXPECT_STREQ(r.error().message, "blob size is not a relay blob size");
  Bytes extended = small;
  extended.push_back(0);
  EXPECT_EQ(CodeOf(OpenPathSeal(extended, recipient)), Errc::kMalformed);
  // Cut to the next smaller class size: the size is fine, the AEAD is not.
  Bytes cut(large.begin(), large.begin() + 4352);
  EXPECT_EQ(CodeOf(OpenPathSeal(cut, recipient)), Errc::kAuthenticationFailed);
  // Past the largest blob: the limit is checked first.
  Bytes oversized = large;
  oversized.push_back(0);
  r = OpenPathSeal(oversized, recipient);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kLimitExceeded);
  EXPECT_EQ(CodeOf(OpenPathSeal(Bytes(65536, 0), recipient)), Errc::kLimitExceeded);
}

TEST(PathSeal, EverySizeNotARelayBlobSizeIsRejected) {
  testing::InitCryptoOnce();
  const auto recipient = FixedKeyPair(1);
  const Bytes buffer(kMaxBlobBytes + 1, 0x5a);
  for (std::size_t n = 0; n <= kMaxBlobBytes + 1; ++n) {
    if (IsRelayBlobSize(n)) continue;
    const Errc want = n > kMaxBlobBytes ? Errc::kLimitExceeded : Errc::kMalformed;
    ASSERT_EQ(CodeOf(OpenPathSeal(ByteSpan(buffer).first(n), recipient)), want) << n;
  }
}

TEST(PathSeal, LowOrderRecipientKeyIsRefused) {
  testing::InitCryptoOnce();
  DeterministicRandom rng(14);
  // The all-zero key, u = 1, and a point of order 8 (RFC 7748 §6.1's
  // requirement: such keys give an all-zero shared secret).
  const Bytes low_order[] = {
      Bytes(32, 0),
      testing::Hex("0100000000000000000000000000000000000000000000000000000000000000"),
      testing::Hex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
  };
  for (const Bytes& key : low_order) {
    auto r = SealForPath(Payload(10), key, rng);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
    EXPECT_STREQ(r.error().message, "seal key is a low-order point");
  }
  EXPECT_EQ(CodeOf(SealForPath(Payload(10), Bytes(31, 9), rng)), Errc::kInvalidArgument);
}

TEST(PathSeal, LowOrderEphemeralKeyIsRejected) {
  testing::InitCryptoOnce();
  const auto recipient = FixedKeyPair(1);
  DeterministicRandom rng(15);
  Bytes blob = SealForPath(Payload(10), recipient.public_key, rng).value();
  std::fill(blob.begin(), blob.begin() + 32, 0);
  auto r = OpenPathSeal(blob, recipient);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kAuthenticationFailed);
  EXPECT_STREQ(r.error().message, "sealed blob does not open");
}

// --- Malformed catalogue past the AEAD (blobs sealed correctly by the test) ---

TEST(PathSeal, IndependentSealerAgreesWithTheImplementation) {
  testing::InitCryptoOnce();
  // Guards the catalogue below: its blobs are real seals, not noise.
  const auto recipient = FixedKeyPair(1);
  const Bytes body = Payload(10);
  EXPECT_EQ(OpenPathSeal(SealInner(recipient, Inner(512, 10, body), 1), recipient).value(), body);
}

TEST(PathSeal, NonZeroFillIsRejected) {
  testing::InitCryptoOnce();
  const auto recipient = FixedKeyPair(1);
  const Bytes body = Payload(10);
  for (std::size_t at : {4u + 10u, 200u, 512u - 48u - 1u}) {
    Bytes inner = Inner(512, 10, body);
    inner[at] = 0x01;
    auto r = OpenPathSeal(SealInner(recipient, inner, at), recipient);
    ASSERT_FALSE(r.ok()) << at;
    EXPECT_EQ(r.error().code, Errc::kMalformed) << at;
    EXPECT_STREQ(r.error().message, "path seal fill is not zero");
  }
  // Random fill (what an earlier draft of padding.md said) is refused too.
  Bytes inner = Inner(1280, 10, body);
  DeterministicRandom rng(16);
  rng.Fill(MutableByteSpan(inner).subspan(14));
  EXPECT_EQ(CodeOf(OpenPathSeal(SealInner(recipient, inner, 17), recipient)), Errc::kMalformed);
}

TEST(PathSeal, OversizedLengthPrefixIsRejected) {
  testing::InitCryptoOnce();
  const auto recipient = FixedKeyPair(1);
  for (std::size_t blob_size : kRelayBlobSizes) {
    const auto max = static_cast<std::uint32_t>(blob_size - kPathSealOverheadBytes);
    for (std::uint32_t prefix : {max + 1, max + 4, 0x7fffffffu, 0xffffffffu}) {
      auto r = OpenPathSeal(SealInner(recipient, Inner(blob_size, prefix, {}), prefix), recipient);
      ASSERT_FALSE(r.ok()) << blob_size << " " << prefix;
      EXPECT_EQ(r.error().code, Errc::kMalformed);
      EXPECT_STREQ(r.error().message, "path seal length prefix is too large");
    }
  }
}

TEST(PathSeal, LengthPrefixExactlyAtTheMaximumOpens) {
  testing::InitCryptoOnce();
  const auto recipient = FixedKeyPair(1);
  for (std::size_t blob_size : kRelayBlobSizes) {
    const std::size_t max = blob_size - kPathSealOverheadBytes;
    const Bytes body = Payload(max, 3);  // no fill at all
    auto r = OpenPathSeal(
        SealInner(recipient, Inner(blob_size, static_cast<std::uint32_t>(max), body), blob_size),
        recipient);
    ASSERT_TRUE(r.ok()) << blob_size;
    EXPECT_EQ(*r, body);
  }
}

TEST(PathSeal, SmallPayloadInALargerClassOpens) {
  testing::InitCryptoOnce();
  // SealForPath picks the smallest size; a receiver still reads a sender that
  // chose a larger one (documented in path_seal.h).
  const auto recipient = FixedKeyPair(1);
  const Bytes body = Payload(5);
  EXPECT_EQ(OpenPathSeal(SealInner(recipient, Inner(4352, 5, body), 3), recipient).value(), body);
  EXPECT_EQ(OpenPathSeal(SealInner(recipient, Inner(512, 0, {}), 4), recipient).value(), Bytes{});
}

// --- Known answers -------------------------------------------------------------

constexpr const char* kKatFile = "rhizome_path_seal_kat.json";

struct KatCase {
  std::uint64_t rng_seed;
  std::uint8_t recipient_first_byte;
  Bytes payload;
};

std::vector<KatCase> KatCases() {
  const std::string text = "a Double Ratchet message would go here";
  return {
      {20260101, 0x01, {}},
      {20260102, 0x01, Bytes(text.begin(), text.end())},
      {20260103, 0x41, Payload(461)},  // one byte past the 512-byte blob
  };
}

json RecordVector(const KatCase& c) {
  const auto recipient = FixedKeyPair(c.recipient_first_byte);
  DeterministicRandom rng(c.rng_seed);
  Bytes blob = SealForPath(c.payload, recipient.public_key, rng).value();
  DeterministicRandom copy(c.rng_seed);  // X25519Generate draws the secret first
  Bytes eph_sk(32);
  copy.Fill(eph_sk);
  const IndependentSeal s = SealIndependently(
      eph_sk, recipient.public_key,
      Inner(blob.size(), static_cast<std::uint32_t>(c.payload.size()), c.payload));
  return {{"rng_seed", c.rng_seed},
          {"recipient_secret_key", ToHex(recipient.secret_key.expose())},
          {"recipient_public_key", ToHex(recipient.public_key)},
          {"payload", ToHex(c.payload)},
          {"ephemeral_secret_key", ToHex(eph_sk)},
          {"ephemeral_public_key", ToHex(s.eph_pk)},
          {"shared_secret", ToHex(s.dh)},
          {"key", ToHex(s.key)},
          {"nonce", ToHex(s.nonce)},
          {"blob", ToHex(blob)}};
}

json LoadKat() {
  return json::parse(rhizome::testing::ReadFileOrDie(rhizome::testing::VectorPath(kKatFile)));
}

Bytes H(const json& v) { return rhizome::testing::Hex(v.get<std::string>()); }

TEST(PathSealKat, ImplementationReproducesTheKnownBlobs) {
  testing::InitCryptoOnce();
  const char* regenerate = std::getenv("RHIZOME_REGENERATE_KAT");
  if (regenerate != nullptr && std::string(regenerate) == "1") {
    json doc;
    doc["description"] =
        "Rhizome per-path seal known answers (docs/protocol/path-seal.md). Self-generated "
        "regression vectors, not from any external source; checked against libsodium's "
        "primitives called directly in tests/unit/protocol/path_seal_test.cc.";
    doc["regenerate"] =
        "RHIZOME_REGENERATE_KAT=1 protocol_unit_tests --gtest_filter='PathSealKat.*'";
    doc["ephemeral_from"] =
        "the first 32 bytes of DeterministicRandom(rng_seed) (crypto/random.h: "
        "libsodium randombytes_buf_deterministic)";
    for (const KatCase& c : KatCases()) doc["vectors"].push_back(RecordVector(c));
    std::ofstream file(rhizome::testing::VectorPath(kKatFile));
    file << doc.dump(1) << "\n";
    ASSERT_TRUE(file.good());
    return;
  }
  const json doc = LoadKat();
  ASSERT_EQ(doc["vectors"].size(), 3u);
  for (const json& v : doc["vectors"]) {
    const auto recipient = crypto::X25519FromSecret(H(v["recipient_secret_key"])).value();
    ASSERT_EQ(Bytes(recipient.public_key.begin(), recipient.public_key.end()),
              H(v["recipient_public_key"]));
    DeterministicRandom rng(v["rng_seed"].get<std::uint64_t>());
    auto blob = SealForPath(H(v["payload"]), recipient.public_key, rng);
    ASSERT_TRUE(blob.ok());
    EXPECT_EQ(ToHex(*blob), v["blob"].get<std::string>()) << v["rng_seed"];
    auto opened = OpenPathSeal(H(v["blob"]), recipient);
    ASSERT_TRUE(opened.ok());
    EXPECT_EQ(*opened, H(v["payload"]));
  }
}

TEST(PathSealKat, KnownBlobsMatchLibsodiumPrimitivesDirectly) {
  testing::InitCryptoOnce();
  const json doc = LoadKat();
  ASSERT_EQ(doc["vectors"].size(), 3u);
  for (const json& v : doc["vectors"]) {
    const Bytes recipient_sk = H(v["recipient_secret_key"]);
    Bytes recipient_pk(32);
    ASSERT_EQ(crypto_scalarmult_base(recipient_pk.data(), recipient_sk.data()), 0);
    EXPECT_EQ(recipient_pk, H(v["recipient_public_key"]));
    // The ephemeral secret is the first 32 bytes of the seeded generator.
    Bytes seeded(32);
    const std::uint64_t seed = v["rng_seed"].get<std::uint64_t>();
    DeterministicRandom(seed).Fill(seeded);
    EXPECT_EQ(seeded, H(v["ephemeral_secret_key"]));

    const Bytes payload = H(v["payload"]);
    const Bytes blob = H(v["blob"]);
    ASSERT_EQ(blob.size(), RelayBlobSizeFor(payload.size() + 52));
    const IndependentSeal s =
        SealIndependently(H(v["ephemeral_secret_key"]), recipient_pk,
                          Inner(blob.size(), static_cast<std::uint32_t>(payload.size()), payload));
    EXPECT_EQ(s.eph_pk, H(v["ephemeral_public_key"]));
    EXPECT_EQ(s.dh, H(v["shared_secret"]));
    EXPECT_EQ(s.key, H(v["key"]));
    EXPECT_EQ(s.nonce, H(v["nonce"]));
    EXPECT_EQ(ToHex(s.blob), v["blob"].get<std::string>()) << seed;

    // And the file's blob opens with libsodium directly to the expected inner.
    Bytes inner(blob.size() - 48);
    Bytes ad(kLabel.begin(), kLabel.end());
    ad.insert(ad.end(), blob.begin(), blob.begin() + 32);
    unsigned long long inner_len = 0;
    ASSERT_EQ(crypto_aead_xchacha20poly1305_ietf_decrypt(
                  inner.data(), &inner_len, nullptr, blob.data() + 32, blob.size() - 32, ad.data(),
                  ad.size(), s.nonce.data(), s.key.data()),
              0);
    EXPECT_EQ(inner, Inner(blob.size(), static_cast<std::uint32_t>(payload.size()), payload));
  }
}

}  // namespace
}  // namespace rhizome::protocol
