// SecurePool: the allocator behind small SecretBytes (internal to crypto).
//
// Why not sodium_malloc for every secret: each sodium_malloc maps its own
// guard pages, so one 32-byte key costs three memory mappings and two resident
// pages (8 KiB). A relay holding two cipher keys per connection would spend
// 16 KiB per idle connection and hit the kernel's mapping limit
// (vm.max_map_count, 65530 by default) near 10,000 connections.
//
// The pool carves fixed slots (32, 64, 128, 256 or 512 bytes) out of 64 KiB
// chunks.
// Each chunk is one mapping with a guard page on both sides, locked in memory
// where RLIMIT_MEMLOCK allows (best effort, as sodium_malloc does; counted in
// SecurePoolStats::unlocked_chunks when refused), excluded from core dumps
// (MADV_DONTDUMP) and absent from forked children (MADV_DONTFORK: a child that
// touches a parent's secret crashes instead of reading zeros; children exec
// or _exit). The lock is held across fork() (pthread_atfork). Free slots are tracked in a bitmap outside
// the chunk, so no allocator metadata sits next to secret bytes. A slot is
// wiped when freed; a chunk that becomes empty is unmapped unless it is the
// last spare of its class.
// What is lost against sodium_malloc: a guard page per allocation. Sanitizer
// builds get back more than that: every byte outside a live allocation is
// poisoned for AddressSanitizer, so an overflow into a neighbouring slot is
// reported at the faulting byte.
//
// Larger secrets (> kSecurePoolMaxBytes) still use sodium_malloc.
// Thread safety: all functions are safe to call from any thread (one mutex).
#pragma once

#include <cstddef>
#include <cstdint>

namespace rhizome::crypto::internal {

inline constexpr std::size_t kSecurePoolMaxBytes = 512;

// Returns zeroed memory for 1..kSecurePoolMaxBytes bytes, or nullptr if the
// system refuses memory.
std::uint8_t* SecurePoolAllocate(std::size_t size) noexcept;

// Wipes `size` bytes at `p` and returns the slot. `p` must come from
// SecurePoolAllocate(size) with the same size; a pointer the pool does not own
// aborts the process (a corrupted free would otherwise hand a slot out twice).
void SecurePoolFree(std::uint8_t* p, std::size_t size) noexcept;

// Counters for tests and benchmarks.
struct SecurePoolStats {
  std::size_t chunks = 0;           // mapped chunks
  std::size_t slots_in_use = 0;     // live allocations
  std::size_t bytes_mapped = 0;     // data pages mapped (guard pages excluded)
  std::size_t unlocked_chunks = 0;  // chunks mlock refused (RLIMIT_MEMLOCK): may be swapped
};
SecurePoolStats GetSecurePoolStats() noexcept;

}  // namespace rhizome::crypto::internal
