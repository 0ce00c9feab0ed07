#include "secure_pool.h"

#include <sodium.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <bit>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define RHIZOME_POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RHIZOME_POOL_ASAN 1
#endif
#endif

#if defined(RHIZOME_POOL_ASAN)
#include <sanitizer/asan_interface.h>
#define RHIZOME_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define RHIZOME_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define RHIZOME_POISON(p, n) ((void)(p), (void)(n))
#define RHIZOME_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace rhizome::crypto::internal {

namespace {

constexpr std::size_t kChunkDataBytes = 64 * 1024;
constexpr std::size_t kMinSlotBytes = 32;
constexpr std::size_t kClassCount = 5;  // 32, 64, 128, 256, 512
constexpr std::size_t kMaxSlotsPerChunk = kChunkDataBytes / kMinSlotBytes;
constexpr std::size_t kBitmapWords = kMaxSlotsPerChunk / 64;

static_assert(kMinSlotBytes << (kClassCount - 1) == kSecurePoolMaxBytes);

std::size_t ClassOf(std::size_t size) {
  std::size_t cls = 0;
  while ((kMinSlotBytes << cls) < size) ++cls;
  return cls;
}

struct Chunk {
  std::uint8_t* mapping = nullptr;  // guard page, data, guard page
  std::size_t mapping_bytes = 0;
  std::uint8_t* data = nullptr;
  std::size_t cls = 0;
  std::size_t slot_bytes = 0;
  std::size_t slots = 0;
  std::size_t used = 0;
  bool locked = false;  // mlock succeeded
  std::array<std::uint64_t, kBitmapWords> bitmap{};  // 1 = in use

  std::uint8_t* TakeSlot() {
    for (std::size_t w = 0; w * 64 < slots; ++w) {
      if (bitmap[w] == ~std::uint64_t{0}) continue;
      const auto bit = static_cast<std::size_t>(std::countr_one(bitmap[w]));
      const std::size_t index = w * 64 + bit;
      if (index >= slots) break;
      bitmap[w] |= std::uint64_t{1} << bit;
      ++used;
      return data + index * slot_bytes;
    }
    return nullptr;
  }
};

class Pool {
 public:
  std::uint8_t* Allocate(std::size_t size) noexcept {
    const std::size_t cls = ClassOf(size);
    std::lock_guard lock(mutex_);
    try {
      for (Chunk* chunk : classes_[cls]) {
        if (chunk->used < chunk->slots) return Hand(chunk->TakeSlot(), size);
      }
      Chunk* chunk = MapChunk(cls);
      if (chunk == nullptr) return nullptr;
      return Hand(chunk->TakeSlot(), size);
    } catch (const std::bad_alloc&) {
      return nullptr;
    }
  }

  void Free(std::uint8_t* p, std::size_t size) noexcept {
    std::lock_guard lock(mutex_);
    auto it = by_address_.upper_bound(reinterpret_cast<std::uintptr_t>(p));
    if (it == by_address_.begin()) std::abort();
    --it;
    Chunk* chunk = it->second;
    const auto offset = static_cast<std::size_t>(p - chunk->data);
    if (p < chunk->data || offset >= kChunkDataBytes || offset % chunk->slot_bytes != 0 ||
        chunk->cls != ClassOf(size)) {
      std::abort();
    }
    const std::size_t index = offset / chunk->slot_bytes;
    const std::uint64_t mask = std::uint64_t{1} << (index % 64);
    if ((chunk->bitmap[index / 64] & mask) == 0) std::abort();  // double free
    // The whole slot, not just `size`: a slot comes back zeroed whatever size
    // it is handed out for next.
    RHIZOME_UNPOISON(p, chunk->slot_bytes);
    sodium_memzero(p, chunk->slot_bytes);
    RHIZOME_POISON(p, chunk->slot_bytes);
    chunk->bitmap[index / 64] &= ~mask;
    --chunk->used;
    --in_use_;
    if (chunk->used == 0) MaybeUnmap(chunk);
  }

  SecurePoolStats Stats() noexcept {
    std::lock_guard lock(mutex_);
    SecurePoolStats s;
    s.chunks = by_address_.size();
    for (const auto& [address, chunk] : by_address_) s.unlocked_chunks += chunk->locked ? 0 : 1;
    s.slots_in_use = in_use_;
    s.bytes_mapped = s.chunks * kChunkDataBytes;
    return s;
  }

 private:
  std::uint8_t* Hand(std::uint8_t* p, std::size_t size) {
    RHIZOME_UNPOISON(p, size);
    ++in_use_;
    return p;
  }

  Chunk* MapChunk(std::size_t cls) {
    // The record first: if it cannot be allocated, nothing is mapped yet.
    auto chunk = std::make_unique<Chunk>();
    const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    const std::size_t total = kChunkDataBytes + 2 * page;
    void* mapping = mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapping == MAP_FAILED) return nullptr;
    auto* base = static_cast<std::uint8_t*>(mapping);
    std::uint8_t* data = base + page;
    if (mprotect(data, kChunkDataBytes, PROT_READ | PROT_WRITE) != 0) {
      munmap(mapping, total);
      return nullptr;
    }
    // Best effort, as sodium_malloc: locked where the limit allows (counted
    // when not), never in a core dump. MADV_DONTFORK: a forked child has no
    // such mapping at all, so a child that touches a parent's secret crashes
    // loudly instead of computing with silently zeroed keys (which
    // MADV_WIPEONFORK would give it). A child must exec or _exit.
    const bool locked = mlock(data, kChunkDataBytes) == 0;
#ifdef MADV_DONTDUMP
    (void)madvise(data, kChunkDataBytes, MADV_DONTDUMP);
#endif
#ifdef MADV_DONTFORK
    (void)madvise(data, kChunkDataBytes, MADV_DONTFORK);
#endif
    RHIZOME_POISON(data, kChunkDataBytes);

    chunk->locked = locked;
    chunk->mapping = base;
    chunk->mapping_bytes = total;
    chunk->data = data;
    chunk->cls = cls;
    chunk->slot_bytes = kMinSlotBytes << cls;
    chunk->slots = kChunkDataBytes / chunk->slot_bytes;
    Chunk* raw = chunk.get();
    try {
      classes_[cls].push_back(raw);
      by_address_.emplace(reinterpret_cast<std::uintptr_t>(data), raw);
    } catch (...) {
      std::erase(classes_[cls], raw);
      Unmap(*raw);
      throw;
    }
    chunk.release();  // owned through classes_ / by_address_ from here
    return raw;
  }

  // Keeps one empty chunk per class as a spare; unmaps the others.
  void MaybeUnmap(Chunk* chunk) noexcept {
    std::size_t empty = 0;
    for (Chunk* c : classes_[chunk->cls]) empty += c->used == 0 ? 1 : 0;
    if (empty <= 1) return;
    std::erase(classes_[chunk->cls], chunk);
    by_address_.erase(reinterpret_cast<std::uintptr_t>(chunk->data));
    Unmap(*chunk);
    delete chunk;
  }

  static void Unmap(Chunk& chunk) noexcept {
    // Every slot was wiped when freed. Unpoison so that a later mapping at the
    // same address is not reported by the sanitizer.
    RHIZOME_UNPOISON(chunk.data, kChunkDataBytes);
    if (chunk.locked) (void)munlock(chunk.data, kChunkDataBytes);
    munmap(chunk.mapping, chunk.mapping_bytes);
  }

  friend void AtForkPrepare() noexcept;
  friend void AtForkRelease() noexcept;
  friend void AtForkChild() noexcept;

  std::mutex mutex_;
  std::array<std::vector<Chunk*>, kClassCount> classes_;
  std::map<std::uintptr_t, Chunk*> by_address_;  // chunk data address -> chunk
  std::size_t in_use_ = 0;
};

Pool& ThePool();

// fork() while another thread holds the pool's lock would leave the child's
// copy locked forever: hold it across fork, release it on both sides.
void AtForkPrepare() noexcept { ThePool().mutex_.lock(); }
void AtForkRelease() noexcept { ThePool().mutex_.unlock(); }
// The child has none of the parent's chunk mappings (MADV_DONTFORK): it
// starts with an empty pool. The chunk records live on the ordinary heap,
// which the child does have, so they are freed normally; only the absent
// mappings are left alone.
void AtForkChild() noexcept {
  Pool& pool = ThePool();
  for (auto& [address, chunk] : pool.by_address_) {
    RHIZOME_UNPOISON(chunk->data, kChunkDataBytes);  // the range may be mapped anew
    delete chunk;
  }
  pool.by_address_.clear();
  for (auto& list : pool.classes_) list.clear();
  pool.in_use_ = 0;
  pool.mutex_.unlock();
}

// Never destroyed: secrets in static objects may be freed during exit, after
// a function-local static pool would be gone.
Pool& ThePool() {
  static Pool* pool = [] {
    auto* p = new Pool();
    (void)pthread_atfork(&AtForkPrepare, &AtForkRelease, &AtForkChild);
    return p;
  }();
  return *pool;
}

}  // namespace

std::uint8_t* SecurePoolAllocate(std::size_t size) noexcept {
  if (size == 0 || size > kSecurePoolMaxBytes) return nullptr;
  return ThePool().Allocate(size);
}

void SecurePoolFree(std::uint8_t* p, std::size_t size) noexcept {
  if (p == nullptr) return;
  if (size == 0 || size > kSecurePoolMaxBytes) std::abort();
  ThePool().Free(p, size);
}

SecurePoolStats GetSecurePoolStats() noexcept { return ThePool().Stats(); }

}  // namespace rhizome::crypto::internal
