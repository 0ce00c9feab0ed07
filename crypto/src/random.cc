#include "rhizome/crypto/random.h"

#include <sodium.h>

#include <cstring>

#include "rhizome/crypto/secret.h"

namespace rhizome::crypto {

namespace {
class OsRandom final : public RandomSource {
 public:
  void Fill(MutableByteSpan out) override {
    if (!out.empty()) randombytes_buf(out.data(), out.size());
  }
};
}  // namespace

RandomSource& SystemRandom() {
  static OsRandom instance;
  return instance;
}

DeterministicRandom::DeterministicRandom(std::uint64_t seed) {
  seed_.fill(0);
  for (int i = 0; i < 8; ++i) seed_[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(seed >> (8 * i));
}

DeterministicRandom::~DeterministicRandom() { Wipe(seed_); }

void DeterministicRandom::Fill(MutableByteSpan out) {
  if (out.empty()) return;
  // Each call uses a fresh seed: H(seed || counter), so successive calls differ.
  ByteArray<40> input;
  std::memcpy(input.data(), seed_.data(), 32);
  for (int i = 0; i < 8; ++i) input[32 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(counter_ >> (8 * i));
  ++counter_;
  ByteArray<32> call_seed;
  crypto_generichash(call_seed.data(), call_seed.size(), input.data(), input.size(), nullptr, 0);
  randombytes_buf_deterministic(out.data(), out.size(), call_seed.data());
  Wipe(call_seed);
}

}  // namespace rhizome::crypto
