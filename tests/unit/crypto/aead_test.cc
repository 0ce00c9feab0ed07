// XChaCha20-Poly1305 and ChaCha20-Poly1305-IETF: known answers, tampering,
// argument checks, in-place operation.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "rhizome/crypto/aead.h"
#include "rhizome/crypto/random.h"
#include "test_support.h"

namespace rhizome::crypto {
namespace {

using rhizome::testing::Hex;

const char kSunscreen[] =
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
    "sunscreen would be it.";

TEST(ChaChaIetf, Rfc8439Section282AeadVector) {
  // RFC 8439 §2.8.2: nonce = constant 07000000 || IV 4041424344454647.
  const Bytes key = Hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  const Bytes nonce = Hex("070000004041424344454647");
  const Bytes ad = Hex("50515253c0c1c2c3c4c5c6c7");
  const ByteSpan pt = AsBytes(kSunscreen);
  ASSERT_EQ(pt.size(), 114u);
  const std::string expected_ct =
      "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92"
      "728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b"
      "4831d7bc3ff4def08e4b7a9de576d26586cec64b6116";
  const std::string expected_tag = "1ae10b594f09e26a7e902ecbd0600691";

  Bytes ct(pt.size() + kAeadTagBytes);
  ASSERT_TRUE(ChaChaIetfEncrypt(key, nonce, ad, pt, ct).ok());
  EXPECT_EQ(ToHex(ByteSpan(ct).first(pt.size())), expected_ct);
  EXPECT_EQ(ToHex(ByteSpan(ct).last(kAeadTagBytes)), expected_tag);

  Bytes back(pt.size());
  ASSERT_TRUE(ChaChaIetfDecrypt(key, nonce, ad, Hex(expected_ct + expected_tag), back).ok());
  EXPECT_TRUE(std::equal(back.begin(), back.end(), pt.begin(), pt.end()));
}

TEST(XChaCha, DraftIrtfCfrgXchachaA31Vector) {
  // draft-irtf-cfrg-xchacha-03, Appendix A.3.1 (AEAD_XChaCha20_Poly1305).
  const Bytes key = Hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  const Bytes nonce = Hex("404142434445464748494a4b4c4d4e4f5051525354555657");
  const Bytes ad = Hex("50515253c0c1c2c3c4c5c6c7");
  const ByteSpan pt = AsBytes(kSunscreen);
  const std::string expected_ct =
      "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda"
      "7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b23835"
      "65d3fff921f9664c97637da9768812f615c68b13b52e";
  const std::string expected_tag = "c0875924c1c7987947deafd8780acf49";

  Bytes ct(pt.size() + kAeadTagBytes);
  ASSERT_TRUE(XChaChaEncrypt(key, nonce, ad, pt, ct).ok());
  EXPECT_EQ(ToHex(ByteSpan(ct).first(pt.size())), expected_ct);
  EXPECT_EQ(ToHex(ByteSpan(ct).last(kAeadTagBytes)), expected_tag);

  Bytes back(pt.size());
  ASSERT_TRUE(XChaChaDecrypt(key, nonce, ad, Hex(expected_ct + expected_tag), back).ok());
  EXPECT_TRUE(std::equal(back.begin(), back.end(), pt.begin(), pt.end()));
}

// Both AEADs run through the same negative tests.
struct Aead {
  const char* name;
  std::size_t nonce_bytes;
  Status (*encrypt)(ByteSpan, ByteSpan, ByteSpan, ByteSpan, MutableByteSpan);
  Status (*decrypt)(ByteSpan, ByteSpan, ByteSpan, ByteSpan, MutableByteSpan);
};

const Aead kAeads[] = {
    {"XChaCha20-Poly1305", kXChaChaNonceBytes, &XChaChaEncrypt, &XChaChaDecrypt},
    {"ChaCha20-Poly1305-IETF", kChaChaIetfNonceBytes, &ChaChaIetfEncrypt, &ChaChaIetfDecrypt},
};

struct Sealed {
  Bytes key, nonce, ad, pt, ct;
};

Sealed SealSample(const Aead& aead, std::uint64_t seed) {
  DeterministicRandom rng(seed);
  Sealed s;
  s.key.resize(kAeadKeyBytes);
  s.nonce.resize(aead.nonce_bytes);
  s.ad.resize(16);
  s.pt.resize(64);
  rng.Fill(s.key);
  rng.Fill(s.nonce);
  rng.Fill(s.ad);
  rng.Fill(s.pt);
  s.ct.resize(s.pt.size() + kAeadTagBytes);
  EXPECT_TRUE(aead.encrypt(s.key, s.nonce, s.ad, s.pt, s.ct).ok());
  return s;
}

// Decrypts and checks the result is an authentication failure with a zeroed output.
void ExpectRejected(const Aead& aead, ByteSpan key, ByteSpan nonce, ByteSpan ad, ByteSpan ct,
                    const std::string& what) {
  Bytes out(ct.size() - kAeadTagBytes, 0x5a);
  auto st = aead.decrypt(key, nonce, ad, ct, out);
  ASSERT_FALSE(st.ok()) << what;
  EXPECT_EQ(st.error().code, Errc::kAuthenticationFailed) << what;
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](std::uint8_t b) { return b == 0; }))
      << what << ": output not zeroed";
}

void FlipBit(Bytes& b, std::size_t bit) { b[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8)); }

TEST(Aead, UntamperedMessageDecrypts) {
  for (const auto& aead : kAeads) {
    SCOPED_TRACE(aead.name);
    Sealed s = SealSample(aead, 1);
    Bytes out(s.pt.size());
    ASSERT_TRUE(aead.decrypt(s.key, s.nonce, s.ad, s.ct, out).ok());
    EXPECT_EQ(out, s.pt);
  }
}

TEST(Aead, FlippingAnyBitOfCiphertextOrTagIsRejected) {
  for (const auto& aead : kAeads) {
    SCOPED_TRACE(aead.name);
    Sealed s = SealSample(aead, 2);
    for (std::size_t bit = 0; bit < s.ct.size() * 8; ++bit) {
      Bytes ct = s.ct;
      FlipBit(ct, bit);
      ExpectRejected(aead, s.key, s.nonce, s.ad, ct, "ciphertext/tag bit " + std::to_string(bit));
    }
  }
}

TEST(Aead, FlippingAnyBitOfNonceIsRejected) {
  for (const auto& aead : kAeads) {
    SCOPED_TRACE(aead.name);
    Sealed s = SealSample(aead, 3);
    for (std::size_t bit = 0; bit < s.nonce.size() * 8; ++bit) {
      Bytes nonce = s.nonce;
      FlipBit(nonce, bit);
      ExpectRejected(aead, s.key, nonce, s.ad, s.ct, "nonce bit " + std::to_string(bit));
    }
  }
}

TEST(Aead, FlippingAnyBitOfAssociatedDataIsRejected) {
  for (const auto& aead : kAeads) {
    SCOPED_TRACE(aead.name);
    Sealed s = SealSample(aead, 4);
    for (std::size_t bit = 0; bit < s.ad.size() * 8; ++bit) {
      Bytes ad = s.ad;
      FlipBit(ad, bit);
      ExpectRejected(aead, s.key, s.nonce, ad, s.ct, "AD bit " + std::to_string(bit));
    }
    // Dropped, extended or truncated associated data.
    ExpectRejected(aead, s.key, s.nonce, {}, s.ct, "empty AD");
    Bytes longer = s.ad;
    longer.push_back(0);
    ExpectRejected(aead, s.key, s.nonce, longer, s.ct, "extended AD");
    ExpectRejected(aead, s.key, s.nonce, ByteSpan(s.ad).first(15), s.ct, "truncated AD");
  }
}

TEST(Aead, WrongKeyIsRejected) {
  for (const auto& aead : kAeads) {
    SCOPED_TRACE(aead.name);
    Sealed s = SealSample(aead, 5);
    for (std::size_t bit = 0; bit < s.key.size() * 8; bit += 7) {
      Bytes key = s.key;
      FlipBit(key, bit);
      ExpectRejected(aead, key, s.nonce, s.ad, s.ct, "key bit " + std::to_string(bit));
    }
    ExpectRejected(aead, Bytes(kAeadKeyBytes, 0), s.nonce, s.ad, s.ct, "zero key");
  }
}

TEST(Aead, TruncatedOrExtendedCiphertextIsRejected) {
  for (const auto& aead : kAeads) {
    SCOPED_TRACE(aead.name);
    Sealed s = SealSample(aead, 6);
    // Every truncation that still holds a tag fails authentication...
    for (std::size_t len = kAeadTagBytes; len < s.ct.size(); ++len) {
      ExpectRejected(aead, s.key, s.nonce, s.ad, ByteSpan(s.ct).first(len),
                     "truncated to " + std::to_string(len));
    }
    // ...shorter than a tag is not even a ciphertext.
    for (std::size_t len = 0; len < kAeadTagBytes; ++len) {
      Bytes out;
      auto st = aead.decrypt(s.key, s.nonce, s.ad, ByteSpan(s.ct).first(len), out);
      ASSERT_FALSE(st.ok());
      EXPECT_EQ(st.error().code, Errc::kInvalidArgument) << len;
    }
    Bytes longer = s.ct;
    longer.push_back(0);
    ExpectRejected(aead, s.key, s.nonce, s.ad, longer, "extended");
  }
}

TEST(Aead, WrongSizesAreInvalidArgument) {
  for (const auto& aead : kAeads) {
    SCOPED_TRACE(aead.name);
    Sealed s = SealSample(aead, 7);
    Bytes ct(s.pt.size() + kAeadTagBytes);
    Bytes pt(s.pt.size());
    const Bytes short_key(kAeadKeyBytes - 1), long_key(kAeadKeyBytes + 1);
    const Bytes short_nonce(aead.nonce_bytes - 1), long_nonce(aead.nonce_bytes + 1);
    // The other AEAD's nonce length is wrong for this one.
    const Bytes other_nonce(aead.nonce_bytes == kXChaChaNonceBytes ? kChaChaIetfNonceBytes
                                                                   : kXChaChaNonceBytes);
    for (const Bytes* key : {&short_key, &long_key}) {
      EXPECT_EQ(aead.encrypt(*key, s.nonce, s.ad, s.pt, ct).error().code, Errc::kInvalidArgument);
      EXPECT_EQ(aead.decrypt(*key, s.nonce, s.ad, s.ct, pt).error().code, Errc::kInvalidArgument);
    }
    for (const Bytes* nonce : {&short_nonce, &long_nonce, &other_nonce}) {
      EXPECT_EQ(aead.encrypt(s.key, *nonce, s.ad, s.pt, ct).error().code, Errc::kInvalidArgument);
      EXPECT_EQ(aead.decrypt(s.key, *nonce, s.ad, s.ct, pt).error().code, Errc::kInvalidArgument);
    }
    EXPECT_EQ(aead.encrypt(s.key, s.nonce, s.ad, s.pt, MutableByteSpan(ct).first(ct.size() - 1))
                  .error()
                  .code,
              Errc::kInvalidArgument);
    Bytes ct_long(ct.size() + 1);
    EXPECT_EQ(aead.encrypt(s.key, s.nonce, s.ad, s.pt, ct_long).error().code,
              Errc::kInvalidArgument);
    EXPECT_EQ(aead.decrypt(s.key, s.nonce, s.ad, s.ct, MutableByteSpan(pt).first(pt.size() - 1))
                  .error()
                  .code,
              Errc::kInvalidArgument);
    Bytes pt_long(pt.size() + 1);
    EXPECT_EQ(aead.decrypt(s.key, s.nonce, s.ad, s.ct, pt_long).error().code,
              Errc::kInvalidArgument);
  }
}

TEST(Aead, InPlaceEncryptAndDecryptMatchOutOfPlace) {
  for (const auto& aead : kAeads) {
    SCOPED_TRACE(aead.name);
    Sealed s = SealSample(aead, 8);
    // Encrypt in place: the plaintext is the head of the output buffer.
    Bytes buf(s.pt.size() + kAeadTagBytes);
    std::copy(s.pt.begin(), s.pt.end(), buf.begin());
    ASSERT_TRUE(
        aead.encrypt(s.key, s.nonce, s.ad, ByteSpan(buf).first(s.pt.size()), buf).ok());
    EXPECT_EQ(buf, s.ct);
    // Decrypt in place: the plaintext lands at the head of the ciphertext buffer.
    ASSERT_TRUE(
        aead.decrypt(s.key, s.nonce, s.ad, buf, MutableByteSpan(buf).first(s.pt.size())).ok());
    EXPECT_TRUE(std::equal(s.pt.begin(), s.pt.end(), buf.begin()));
    // A tampered in-place decryption fails and leaves no plaintext behind.
    Bytes bad = s.ct;
    bad.back() ^= 1;
    auto st = aead.decrypt(s.key, s.nonce, s.ad, bad, MutableByteSpan(bad).first(s.pt.size()));
    EXPECT_EQ(st.error().code, Errc::kAuthenticationFailed);
    EXPECT_TRUE(std::all_of(bad.begin(), bad.begin() + static_cast<std::ptrdiff_t>(s.pt.size()),
                            [](std::uint8_t b) { return b == 0; }));
  }
}

TEST(Aead, EmptyPlaintextAndEmptyAssociatedDataWork) {
  for (const auto& aead : kAeads) {
    SCOPED_TRACE(aead.name);
    const Bytes key(kAeadKeyBytes, 1);
    const Bytes nonce(aead.nonce_bytes, 2);
    Bytes tag(kAeadTagBytes);
    ASSERT_TRUE(aead.encrypt(key, nonce, {}, {}, tag).ok());
    EXPECT_NE(tag, Bytes(kAeadTagBytes, 0));
    Bytes nothing;
    EXPECT_TRUE(aead.decrypt(key, nonce, {}, tag, nothing).ok());
    tag[0] ^= 1;
    EXPECT_EQ(aead.decrypt(key, nonce, {}, tag, nothing).error().code,
              Errc::kAuthenticationFailed);
  }
}

TEST(Aead, DifferentNoncesGiveDifferentCiphertexts) {
  for (const auto& aead : kAeads) {
    SCOPED_TRACE(aead.name);
    Sealed a = SealSample(aead, 9);
    Bytes nonce = a.nonce;
    nonce[0] ^= 1;
    Bytes ct(a.ct.size());
    ASSERT_TRUE(aead.encrypt(a.key, nonce, a.ad, a.pt, ct).ok());
    EXPECT_NE(ct, a.ct);
  }
}

}  // namespace
}  // namespace rhizome::crypto
