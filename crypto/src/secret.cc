#include "rhizome/crypto/secret.h"

#include <sodium.h>

#include <new>
#include <utility>

#include "rhizome/crypto/random.h"

namespace rhizome::crypto {

void Wipe(MutableByteSpan bytes) noexcept {
  if (!bytes.empty()) sodium_memzero(bytes.data(), bytes.size());
}

SecretBytes::SecretBytes(std::size_t size) : size_(size) {
  if (size == 0) return;
  // sodium_malloc aborts before sodium_init(); make the order impossible to get wrong.
  static const bool sodium_ready = sodium_init() >= 0;
  if (!sodium_ready) throw std::bad_alloc();
  data_ = static_cast<std::uint8_t*>(sodium_malloc(size));
  if (data_ == nullptr) throw std::bad_alloc();
  sodium_memzero(data_, size);
}

SecretBytes::~SecretBytes() {
  if (data_ != nullptr) sodium_free(data_);  // sodium_free wipes before unmapping
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) sodium_free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SecretBytes SecretBytes::CopyFrom(ByteSpan bytes) {
  SecretBytes s(bytes.size());
  if (!bytes.empty()) std::copy(bytes.begin(), bytes.end(), s.data_);
  return s;
}

SecretBytes SecretBytes::Random(RandomSource& rng, std::size_t size) {
  SecretBytes s(size);
  rng.Fill(s.expose_mut());
  return s;
}

bool SecretBytes::ConstantTimeEquals(const SecretBytes& other) const noexcept {
  return ConstantTimeEqual(expose(), other.expose());
}

SecretBytes SecretBytes::Clone() const { return CopyFrom(expose()); }

}  // namespace rhizome::crypto
