#include "rhizome/crypto/secret.h"

#include <sodium.h>

#include <new>
#include <utility>

#include "rhizome/crypto/random.h"
#include "secure_pool.h"

namespace rhizome::crypto {

void Wipe(MutableByteSpan bytes) noexcept {
  if (!bytes.empty()) sodium_memzero(bytes.data(), bytes.size());
}

namespace {

// Small secrets come from the secure pool (secure_pool.h says why), larger
// ones from sodium_malloc. The size alone tells which, so freeing needs no tag.
void Release(std::uint8_t* data, std::size_t size) noexcept {
  if (data == nullptr) return;
  if (size <= internal::kSecurePoolMaxBytes) {
    internal::SecurePoolFree(data, size);
  } else {
    sodium_free(data);  // sodium_free wipes before unmapping
  }
}

}  // namespace

SecretBytes::SecretBytes(std::size_t size) : size_(size) {
  if (size == 0) return;
  // sodium_malloc aborts before sodium_init(); make the order impossible to get wrong.
  static const bool sodium_ready = sodium_init() >= 0;
  if (!sodium_ready) throw std::bad_alloc();
  data_ = size <= internal::kSecurePoolMaxBytes
              ? internal::SecurePoolAllocate(size)
              : static_cast<std::uint8_t*>(sodium_malloc(size));
  if (data_ == nullptr) {
    size_ = 0;
    throw std::bad_alloc();
  }
  sodium_memzero(data_, size);
}

SecretBytes::~SecretBytes() { Release(data_, size_); }

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Release(data_, size_);
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
