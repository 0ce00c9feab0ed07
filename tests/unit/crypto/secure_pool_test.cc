// The secure pool behind small SecretBytes (crypto/src/secure_pool.h).
#include "secure_pool.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "rhizome/crypto/init.h"
#include "rhizome/crypto/secret.h"

namespace rhizome::crypto::internal {
namespace {

bool AllZero(const std::uint8_t* p, std::size_t n) {
  return std::all_of(p, p + n, [](std::uint8_t x) { return x == 0; });
}

// Lines of /proc/self/maps: each is one memory mapping.
std::size_t MappingCount() {
  std::ifstream maps("/proc/self/maps");
  std::size_t lines = 0;
  for (std::string line; std::getline(maps, line);) ++lines;
  return lines;
}

TEST(SecurePool, AllocationsOfEverySizeAreZeroedDistinctAndWritable) {
  std::vector<std::pair<std::uint8_t*, std::size_t>> live;
  std::set<std::uint8_t*> seen;
  for (std::size_t size : {1u, 31u, 32u, 33u, 64u, 100u, 128u, 200u, 256u, 300u, 512u}) {
    for (int i = 0; i < 50; ++i) {
      std::uint8_t* p = SecurePoolAllocate(size);
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(AllZero(p, size));
      EXPECT_TRUE(seen.insert(p).second) << "a live slot was handed out twice";
      std::memset(p, 0xA5, size);
      live.emplace_back(p, size);
    }
  }
  // Nothing written to one slot leaked into another.
  for (auto [p, size] : live) {
    EXPECT_TRUE(std::all_of(p, p + size, [](std::uint8_t x) { return x == 0xA5; }));
  }
  for (auto [p, size] : live) SecurePoolFree(p, size);
}

TEST(SecurePool, ZeroAndOversizeRequestsAreRefused) {
  EXPECT_EQ(SecurePoolAllocate(0), nullptr);
  EXPECT_EQ(SecurePoolAllocate(kSecurePoolMaxBytes + 1), nullptr);
}

TEST(SecurePool, AFreedSlotIsWipedBeforeItIsReused) {
  // Fill a whole class, free everything, then allocate again: every slot we
  // get back (the same memory) must read as zeros.
  std::vector<std::uint8_t*> first;
  for (int i = 0; i < 3000; ++i) {
    std::uint8_t* p = SecurePoolAllocate(48);
    ASSERT_NE(p, nullptr);
    std::memset(p, 0x5C, 48);
    first.push_back(p);
  }
  const std::set<std::uint8_t*> old(first.begin(), first.end());
  for (std::uint8_t* p : first) SecurePoolFree(p, 48);
  std::size_t reused = 0;
  std::vector<std::uint8_t*> second;
  for (int i = 0; i < 3000; ++i) {
    std::uint8_t* p = SecurePoolAllocate(48);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(AllZero(p, 48));
    reused += old.count(p);
    second.push_back(p);
  }
  EXPECT_GT(reused, 0u) << "the test must look at recycled memory to mean anything";
  for (std::uint8_t* p : second) SecurePoolFree(p, 48);
}

TEST(SecurePool, TenThousandKeysShareAFewMappingsInsteadOfThirtyThousand) {
  // With sodium_malloc per secret this costs three mappings per key and
  // would exhaust vm.max_map_count near 20,000 keys.
  const std::size_t maps_before = MappingCount();
  const SecurePoolStats before = GetSecurePoolStats();
  std::vector<SecretBytes> keys;
  keys.reserve(10'000);
  for (int i = 0; i < 10'000; ++i) keys.emplace_back(32);
  const SecurePoolStats during = GetSecurePoolStats();
  EXPECT_EQ(during.slots_in_use - before.slots_in_use, 10'000u);
  EXPECT_LE(during.bytes_mapped - before.bytes_mapped, 6u * 64 * 1024);  // 32 B slots, 2048 a chunk
  EXPECT_LT(MappingCount(), maps_before + 20);
  keys.clear();
  const SecurePoolStats after = GetSecurePoolStats();
  EXPECT_EQ(after.slots_in_use, before.slots_in_use);
  EXPECT_LE(after.chunks, before.chunks + 1) << "empty chunks beyond one spare are unmapped";
}

TEST(SecurePool, LargeSecretsStillUseTheirOwnGuardedRegion) {
  const SecurePoolStats before = GetSecurePoolStats();
  SecretBytes big(kSecurePoolMaxBytes + 1);
  EXPECT_EQ(GetSecurePoolStats().slots_in_use, before.slots_in_use);
  SecretBytes small(kSecurePoolMaxBytes);
  EXPECT_EQ(GetSecurePoolStats().slots_in_use, before.slots_in_use + 1);
}

TEST(SecurePool, ConcurrentAllocationAndFreeKeepEverySlotDistinct) {
  constexpr int kPerThread = 20'000;
  auto work = [](std::vector<std::uint8_t*>* kept, std::uint8_t tag) {
    for (int i = 0; i < kPerThread; ++i) {
      std::uint8_t* p = SecurePoolAllocate(32);
      if (p == nullptr) return;
      std::memset(p, tag, 32);
      if (i % 2 == 0) {
        kept->push_back(p);
      } else {
        SecurePoolFree(p, 32);
      }
    }
  };
  std::vector<std::uint8_t*> a, b;
  std::thread ta(work, &a, std::uint8_t{1});
  std::thread tb(work, &b, std::uint8_t{2});
  ta.join();
  tb.join();
  ASSERT_EQ(a.size(), kPerThread / 2u);
  ASSERT_EQ(b.size(), kPerThread / 2u);
  for (auto* p : a) EXPECT_TRUE(std::all_of(p, p + 32, [](std::uint8_t x) { return x == 1; }));
  for (auto* p : b) EXPECT_TRUE(std::all_of(p, p + 32, [](std::uint8_t x) { return x == 2; }));
  std::set<std::uint8_t*> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  EXPECT_EQ(all.size(), a.size() + b.size());
  for (auto* p : a) SecurePoolFree(p, 32);
  for (auto* p : b) SecurePoolFree(p, 32);
}

TEST(SecurePoolDeathTest, DoubleFreeAbortsInsteadOfHandingASlotOutTwice) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        std::uint8_t* p = SecurePoolAllocate(32);
        SecurePoolFree(p, 32);
        SecurePoolFree(p, 32);
      },
      "");
}

TEST(SecurePoolDeathTest, FreeingAPointerThePoolDoesNotOwnAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        std::uint8_t* p = SecurePoolAllocate(64);
        SecurePoolFree(p + 8, 64);  // inside a chunk but not a slot start
      },
      "");
  EXPECT_DEATH(
      {
        std::uint8_t* p = SecurePoolAllocate(64);
        SecurePoolFree(p, 32);  // wrong size class for the slot
      },
      "");
  static std::uint8_t not_ours[64];
  EXPECT_DEATH(SecurePoolFree(not_ours, 64), "");
}

TEST(SecurePool, AForkedChildTouchingAParentsSecretCrashesInsteadOfReadingZeros) {
  // With MADV_WIPEONFORK the child would read a zero key and compute with a
  // publicly known key pair; with MADV_DONTFORK it has no such memory at all.
  std::uint8_t* p = SecurePoolAllocate(32);
  ASSERT_NE(p, nullptr);
  std::memset(p, 0x77, 32);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    volatile std::uint8_t* q = p;
    _exit(q[0] == 0 ? 42 : 43);  // reaching this is the failure
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_FALSE(WIFEXITED(status) && (WEXITSTATUS(status) == 42 || WEXITSTATUS(status) == 43))
      << "the child read the secret's memory";
  EXPECT_EQ(p[0], 0x77);  // the parent's copy is untouched
  SecurePoolFree(p, 32);
}

TEST(SecurePool, AForkedChildStartsWithAnEmptyPoolItCanUse) {
  std::uint8_t* p = SecurePoolAllocate(32);  // the parent has a chunk mapped
  ASSERT_NE(p, nullptr);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const SecurePoolStats start = GetSecurePoolStats();
    std::uint8_t* q = SecurePoolAllocate(32);
    if (q == nullptr || start.chunks != 0 || start.slots_in_use != 0) _exit(2);
    std::memset(q, 0x11, 32);
    SecurePoolFree(q, 32);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  SecurePoolFree(p, 32);
}

TEST(SecurePool, ASlotFreedWithASmallerSizeIsStillWipedWhole) {
  std::vector<std::uint8_t*> taken;
  for (int i = 0; i < 4000; ++i) {
    std::uint8_t* p = SecurePoolAllocate(64);
    ASSERT_NE(p, nullptr);
    std::memset(p, 0xEE, 64);
    taken.push_back(p);
  }
  for (std::uint8_t* p : taken) SecurePoolFree(p, 33);  // same class, smaller size
  for (int i = 0; i < 4000; ++i) {
    std::uint8_t* p = SecurePoolAllocate(64);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(AllZero(p, 64));
    taken[static_cast<std::size_t>(i)] = p;
  }
  for (std::uint8_t* p : taken) SecurePoolFree(p, 64);
}

TEST(SecurePool, PoolMemoryIsExcludedFromCoreDumps) {
  // /proc/self/smaps shows the VmFlags of each mapping; "dd" = MADV_DONTDUMP.
  std::uint8_t* p = SecurePoolAllocate(32);
  ASSERT_NE(p, nullptr);
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  std::ifstream smaps("/proc/self/smaps");
  bool inside = false, checked = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2) {  // a mapping's first line
      inside = address >= lo && address < hi;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) {
      EXPECT_NE(line.find(" dd"), std::string::npos) << line;  // MADV_DONTDUMP
      EXPECT_NE(line.find(" dc"), std::string::npos) << line;  // MADV_DONTFORK
      checked = true;
      break;
    }
  }
  EXPECT_TRUE(checked) << "found no mapping holding the slot";
  SecurePoolFree(p, 32);
}

#if defined(__SANITIZE_ADDRESS__)
TEST(SecurePoolDeathTest, SanitizerCatchesAnOverflowIntoTheNextSlot) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        std::uint8_t* p = SecurePoolAllocate(20);
        volatile std::uint8_t* q = p;
        q[20] = 1;  // one byte past the allocation, still inside the 32-byte slot
      },
      "use-after-poison|AddressSanitizer");
}
#endif

}  // namespace
}  // namespace rhizome::crypto::internal
