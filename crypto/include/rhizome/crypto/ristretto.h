// ristretto255 group elements and scalars, with the strict decoding rules of
// POLLS.md §1.
//
// - A point decodes only if bit 255 is clear, it is not the all-zero encoding,
//   and libsodium calls it valid. SECURITY: libsodium 1.0.18 alone accepts a
//   point with bit 255 set as the same point; without this rule one voter could
//   vote twice (vectors/ristretto255_kat.json, noncanonical_KI_attack).
// - A scalar decodes only if canonical (< l).
// - Multiplication by a zero scalar, or giving the identity, is an error.
//   Addition may give the identity (encoded as 32 zero bytes).
//
// Thread safety: value types, pure functions.
#pragma once

#include <cstddef>

#include "rhizome/crypto/bytes.h"

namespace rhizome::crypto {

class RandomSource;

inline constexpr std::size_t kRistrettoPointBytes = 32;
inline constexpr std::size_t kRistrettoScalarBytes = 32;
inline constexpr std::size_t kRistrettoHashBytes = 64;

class RistrettoScalar {
 public:
  // Errors: kMalformed if not 32 bytes or not canonical.
  static Result<RistrettoScalar> Decode(ByteSpan bytes);
  // Reduces 64 bytes mod l. Errors: kInvalidArgument if not 64 bytes.
  static Result<RistrettoScalar> FromWide(ByteSpan bytes64);
  // Uniform non-zero scalar.
  static RistrettoScalar Random(RandomSource& rng);

  RistrettoScalar Add(const RistrettoScalar& o) const;
  RistrettoScalar Sub(const RistrettoScalar& o) const;
  RistrettoScalar Mul(const RistrettoScalar& o) const;
  bool IsZero() const;

  const ByteArray<32>& bytes() const { return b_; }
  // Scalars may be secret keys: wiped on destruction.
  ~RistrettoScalar();
  RistrettoScalar(const RistrettoScalar&) = default;
  RistrettoScalar& operator=(const RistrettoScalar&) = default;

 private:
  RistrettoScalar() = default;
  ByteArray<32> b_{};
};

class RistrettoPoint {
 public:
  // Strict decoding (see above). Errors: kMalformed.
  static Result<RistrettoPoint> Decode(ByteSpan bytes);
  // crypto_core_ristretto255_from_hash. Errors: kInvalidArgument if not 64 bytes.
  static Result<RistrettoPoint> FromHash(ByteSpan hash64);
  // s·G. Errors: kCryptoFailure for a zero scalar or identity result.
  static Result<RistrettoPoint> MulBase(const RistrettoScalar& s);

  // s·P. Errors: kCryptoFailure for a zero scalar or identity result.
  Result<RistrettoPoint> Mul(const RistrettoScalar& s) const;
  // P + Q; the identity is allowed (32 zero bytes).
  RistrettoPoint Add(const RistrettoPoint& o) const;
  RistrettoPoint Sub(const RistrettoPoint& o) const;

  const ByteArray<32>& bytes() const { return b_; }
  friend bool operator==(const RistrettoPoint& a, const RistrettoPoint& b) { return a.b_ == b.b_; }

 private:
  RistrettoPoint() = default;
  ByteArray<32> b_{};
};

}  // namespace rhizome::crypto
