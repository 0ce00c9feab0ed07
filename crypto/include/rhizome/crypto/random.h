// Injectable randomness.
//
// Every key generation and nonce in Rhizome takes a RandomSource&, so tests can
// run deterministically. Production code uses SystemRandom() (the OS CSPRNG via
// libsodium's randombytes_buf). DeterministicRandom is for tests and known-answer
// transcripts only: it must never reach a production code path.
//
// Thread safety: SystemRandom() is safe from any thread; a DeterministicRandom
// object is not.
#pragma once

#include <cstdint>

#include "rhizome/crypto/bytes.h"

namespace rhizome::crypto {

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual void Fill(MutableByteSpan out) = 0;

  template <std::size_t N>
  ByteArray<N> Array() {
    ByteArray<N> a;
    Fill(a);
    return a;
  }
};

// The OS CSPRNG. Never fails after crypto::Init().
RandomSource& SystemRandom();

// ChaCha20 keystream from a 32-byte seed (libsodium's randombytes_buf_deterministic),
// advanced by a counter so successive calls give fresh bytes. Tests only.
class DeterministicRandom final : public RandomSource {
 public:
  explicit DeterministicRandom(std::uint64_t seed);
  ~DeterministicRandom() override;
  void Fill(MutableByteSpan out) override;

 private:
  ByteArray<32> seed_;
  std::uint64_t counter_ = 0;
};

}  // namespace rhizome::crypto
