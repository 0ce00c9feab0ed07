// Secret byte containers.
//
// SecretBytes lives in locked memory (mlock'ed where the OS allows), excluded
// from core dumps (MADV_DONTDUMP) and wiped on destruction. Secrets up to
// 512 bytes share guarded 64 KiB chunks of a secure pool (2,048 keys of 32
// bytes in one mapping); larger ones get their own sodium_malloc region with
// guard pages. crypto/src/secure_pool.h explains the trade.
// Pool memory is not inherited by fork(): a forked child must exec or _exit,
// and crashes if it touches a secret of its parent.
// It is move-only, has no operator== (use ConstantTimeEquals) and cannot be
// printed. Access goes through expose()/expose_mut() so every use is greppable.
//
// StackSecret<N> is for short-lived keys (per-message keys, DH outputs): a
// fixed array wiped when it leaves scope. Cheaper than SecretBytes (no lock,
// no allocation), but it can land in a core dump while it lives.
//
// Preconditions: crypto::Init() has succeeded before the first SecretBytes.
// Thread safety: allocation is thread-safe; one object is not safe to mutate
// from two threads.
#pragma once

#include <cstddef>
#include <cstdint>

#include "rhizome/crypto/bytes.h"

namespace rhizome::crypto {

class RandomSource;

// Wipes memory in a way the compiler will not optimise away.
void Wipe(MutableByteSpan bytes) noexcept;

// Wipes a plain byte buffer when it leaves scope: for buffers that briefly
// hold secrets on their way in or out of an encoding (a serialised invite, a
// card message carrying a send key). Not movable: it stays with its scope.
class WipeOnExit {
 public:
  explicit WipeOnExit(Bytes& bytes) noexcept : bytes_(bytes) {}
  ~WipeOnExit() { Wipe(bytes_); }
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;

 private:
  Bytes& bytes_;
};

class SecretBytes {
 public:
  SecretBytes() noexcept = default;  // empty
  // Zero-filled secret of `size` bytes. Throws std::bad_alloc if the secure
  // allocator fails (out of locked memory is an environment error).
  explicit SecretBytes(std::size_t size);
  ~SecretBytes();

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  // Copies `bytes` into a new secret. The caller wipes its own copy.
  static SecretBytes CopyFrom(ByteSpan bytes);
  static SecretBytes Random(RandomSource& rng, std::size_t size);

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  ByteSpan expose() const noexcept { return {data_, size_}; }
  MutableByteSpan expose_mut() noexcept { return {data_, size_}; }

  // Constant-time; false when sizes differ.
  bool ConstantTimeEquals(const SecretBytes& other) const noexcept;
  // An explicit, wiped deep copy (secrets are never copied implicitly).
  SecretBytes Clone() const;

 private:
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

// Fixed-size array wiped on scope exit. Not copyable, not movable: it stays
// where it was created.
template <std::size_t N>
class StackSecret {
 public:
  StackSecret() noexcept { data_.fill(0); }
  ~StackSecret() { Wipe(data_); }
  StackSecret(const StackSecret&) = delete;
  StackSecret& operator=(const StackSecret&) = delete;

  static constexpr std::size_t size() { return N; }
  std::span<const std::uint8_t, N> expose() const noexcept { return data_; }
  std::span<std::uint8_t, N> expose_mut() noexcept { return data_; }

 private:
  ByteArray<N> data_;
};

}  // namespace rhizome::crypto
