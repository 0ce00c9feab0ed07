// Fuzz target: the profile key-file parser (storage/src/key_file.h).
//
// Invariants checked on every input:
// - ParseKeyFile never crashes, and accepts only files of exactly
//   kKeyFileBytes whose Argon2id parameters pass Validate() (so nothing
//   downstream can be asked for more than kArgon2MaxMemLimit).
// - An accepted file serializes back to the same bytes.
// - For accepted files with cheap parameters, unwrapping with the corpus
//   passphrase ("fuzz") either fails cleanly or yields a 32-byte key.
#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "key_file.h"
#include "rhizome/crypto/init.h"

namespace {
// Unwrap only when Argon2id stays cheap, so fuzzing runs fast.
constexpr std::uint64_t kMaxFuzzMemBytes = 1u << 20;
constexpr std::uint64_t kMaxFuzzOps = 3;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rhizome;
  if (!crypto::Init()) std::abort();
  const ByteSpan input(data, size);
  auto parsed = storage::ParseKeyFile(input);
  if (!parsed) return 0;
  if (size != storage::kKeyFileBytes || !parsed->params.Validate()) std::abort();
  const Bytes again = storage::SerializeKeyFile(*parsed);
  if (again.size() != size || !std::equal(again.begin(), again.end(), data)) std::abort();
  if (parsed->params.mem_limit <= kMaxFuzzMemBytes && parsed->params.ops_limit <= kMaxFuzzOps) {
    auto key = storage::UnwrapDatabaseKey(*parsed, AsBytes("fuzz"));
    if (key && key->size() != storage::kKeyFileWrappedKeyBytes) std::abort();
  }
  return 0;
}
