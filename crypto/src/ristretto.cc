#include "rhizome/crypto/ristretto.h"

#include <sodium.h>

#include <cstring>

#include "rhizome/crypto/random.h"
#include "rhizome/crypto/secret.h"

namespace rhizome::crypto {

static_assert(crypto_core_ristretto255_BYTES == kRistrettoPointBytes);
static_assert(crypto_core_ristretto255_SCALARBYTES == kRistrettoScalarBytes);
static_assert(crypto_core_ristretto255_HASHBYTES == kRistrettoHashBytes);

RistrettoScalar::~RistrettoScalar() { Wipe(b_); }

Result<RistrettoScalar> RistrettoScalar::Decode(ByteSpan bytes) {
  if (bytes.size() != kRistrettoScalarBytes) return Error{Errc::kMalformed, "scalar must be 32 bytes"};
  // Canonical iff reducing the zero-extended value leaves it unchanged (POLLS.md §1).
  StackSecret<64> wide;  // the scalar may be a secret key: wiped on scope exit
  std::memcpy(wide.expose_mut().data(), bytes.data(), 32);
  RistrettoScalar s;
  crypto_core_ristretto255_scalar_reduce(s.b_.data(), wide.expose().data());
  if (sodium_memcmp(s.b_.data(), bytes.data(), 32) != 0) {
    return Error{Errc::kMalformed, "scalar is not canonical"};
  }
  return s;
}

Result<RistrettoScalar> RistrettoScalar::FromWide(ByteSpan bytes64) {
  if (bytes64.size() != 64) return Error{Errc::kInvalidArgument, "wide scalar must be 64 bytes"};
  RistrettoScalar s;
  crypto_core_ristretto255_scalar_reduce(s.b_.data(), bytes64.data());
  return s;
}

RistrettoScalar RistrettoScalar::Random(RandomSource& rng) {
  StackSecret<64> wide;
  RistrettoScalar s;
  do {
    rng.Fill(wide.expose_mut());
    crypto_core_ristretto255_scalar_reduce(s.b_.data(), wide.expose().data());
  } while (s.IsZero());
  return s;
}

RistrettoScalar RistrettoScalar::Add(const RistrettoScalar& o) const {
  RistrettoScalar r;
  crypto_core_ristretto255_scalar_add(r.b_.data(), b_.data(), o.b_.data());
  return r;
}
RistrettoScalar RistrettoScalar::Sub(const RistrettoScalar& o) const {
  RistrettoScalar r;
  crypto_core_ristretto255_scalar_sub(r.b_.data(), b_.data(), o.b_.data());
  return r;
}
RistrettoScalar RistrettoScalar::Mul(const RistrettoScalar& o) const {
  RistrettoScalar r;
  crypto_core_ristretto255_scalar_mul(r.b_.data(), b_.data(), o.b_.data());
  return r;
}
bool RistrettoScalar::IsZero() const { return sodium_is_zero(b_.data(), b_.size()) == 1; }

Result<RistrettoPoint> RistrettoPoint::Decode(ByteSpan bytes) {
  if (bytes.size() != kRistrettoPointBytes) return Error{Errc::kMalformed, "point must be 32 bytes"};
  // SECURITY: libsodium 1.0.18 ignores bit 255; a second encoding of one key
  // image would let one voter vote twice (POLLS.md §1).
  if ((bytes[31] & 0x80) != 0) return Error{Errc::kMalformed, "point encoding has bit 255 set"};
  if (sodium_is_zero(bytes.data(), bytes.size()) == 1) {
    return Error{Errc::kMalformed, "point is the identity"};
  }
  if (crypto_core_ristretto255_is_valid_point(bytes.data()) != 1) {
    return Error{Errc::kMalformed, "invalid ristretto255 encoding"};
  }
  RistrettoPoint p;
  std::memcpy(p.b_.data(), bytes.data(), 32);
  return p;
}

Result<RistrettoPoint> RistrettoPoint::FromHash(ByteSpan hash64) {
  if (hash64.size() != kRistrettoHashBytes) {
    return Error{Errc::kInvalidArgument, "hash-to-point input must be 64 bytes"};
  }
  RistrettoPoint p;
  crypto_core_ristretto255_from_hash(p.b_.data(), hash64.data());
  return p;
}

Result<RistrettoPoint> RistrettoPoint::MulBase(const RistrettoScalar& s) {
  RistrettoPoint p;
  if (crypto_scalarmult_ristretto255_base(p.b_.data(), s.bytes().data()) != 0) {
    return Error{Errc::kCryptoFailure, "scalar multiplication gave the identity"};
  }
  return p;
}

Result<RistrettoPoint> RistrettoPoint::Mul(const RistrettoScalar& s) const {
  RistrettoPoint p;
  if (crypto_scalarmult_ristretto255(p.b_.data(), s.bytes().data(), b_.data()) != 0) {
    return Error{Errc::kCryptoFailure, "scalar multiplication gave the identity"};
  }
  return p;
}

RistrettoPoint RistrettoPoint::Add(const RistrettoPoint& o) const {
  RistrettoPoint p;
  if (crypto_core_ristretto255_add(p.b_.data(), b_.data(), o.b_.data()) != 0) p.b_.fill(0);
  return p;
}

RistrettoPoint RistrettoPoint::Sub(const RistrettoPoint& o) const {
  RistrettoPoint p;
  if (crypto_core_ristretto255_sub(p.b_.data(), b_.data(), o.b_.data()) != 0) p.b_.fill(0);
  return p;
}

}  // namespace rhizome::crypto
