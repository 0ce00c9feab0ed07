// Primitive costs (issue 2 §4): X25519, Ed25519, both AEADs, Argon2id.
//
// Every AEAD, DH and signature figure is measured twice, through Rhizome's
// wrappers (rhizome::crypto) and through the raw libsodium call they wrap, so
// the overhead of the wrappers is visible (target: within 10%).
// Figures are printed, never asserted (DESIGN §14). docs/benchmarks.md holds
// the commands and the recorded results.
#include <benchmark/benchmark.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "rhizome/crypto/aead.h"
#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/pwhash.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/sign.h"

namespace {

namespace rc = rhizome::crypto;
using rhizome::Bytes;
using rhizome::ByteArray;

// ---- X25519 ---------------------------------------------------------------

void BM_X25519Generate_Wrapper(benchmark::State& state) {
  for (auto _ : state) {
    rc::X25519KeyPair kp = rc::X25519Generate(rc::SystemRandom());
    benchmark::DoNotOptimize(kp.public_key.data());
  }
}
BENCHMARK(BM_X25519Generate_Wrapper);

void BM_X25519Generate_Raw(benchmark::State& state) {
  unsigned char pk[crypto_box_PUBLICKEYBYTES];
  unsigned char sk[crypto_box_SECRETKEYBYTES];
  for (auto _ : state) {
    randombytes_buf(sk, sizeof sk);
    benchmark::DoNotOptimize(crypto_scalarmult_base(pk, sk));
    benchmark::DoNotOptimize(pk);
  }
  sodium_memzero(sk, sizeof sk);
}
BENCHMARK(BM_X25519Generate_Raw);

void BM_X25519DH_Wrapper(benchmark::State& state) {
  rc::X25519KeyPair a = rc::X25519Generate(rc::SystemRandom());
  rc::X25519KeyPair b = rc::X25519Generate(rc::SystemRandom());
  ByteArray<32> shared{};
  for (auto _ : state) {
    auto st = rc::X25519(a.secret_key.expose(), b.public_key, shared);
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(shared.data());
  }
}
BENCHMARK(BM_X25519DH_Wrapper);

void BM_X25519DH_Raw(benchmark::State& state) {
  unsigned char a_sk[32], b_sk[32], b_pk[32], shared[32];
  randombytes_buf(a_sk, sizeof a_sk);
  randombytes_buf(b_sk, sizeof b_sk);
  if (crypto_scalarmult_base(b_pk, b_sk) != 0) std::abort();
  for (auto _ : state) {
    benchmark::DoNotOptimize(crypto_scalarmult(shared, a_sk, b_pk));
    benchmark::DoNotOptimize(shared);
  }
}
BENCHMARK(BM_X25519DH_Raw);

// ---- Ed25519 --------------------------------------------------------------

constexpr std::size_t kSignedMessageBytes = 128;  // about a key certificate

void BM_Ed25519Sign_Wrapper(benchmark::State& state) {
  rc::Ed25519KeyPair kp = rc::Ed25519Generate(rc::SystemRandom());
  Bytes msg(kSignedMessageBytes, 0x42);
  for (auto _ : state) {
    auto sig = rc::Ed25519Sign(kp.secret_key, msg);
    benchmark::DoNotOptimize(sig);
  }
}
BENCHMARK(BM_Ed25519Sign_Wrapper);

void BM_Ed25519Sign_Raw(benchmark::State& state) {
  unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_keypair(pk, sk);
  Bytes msg(kSignedMessageBytes, 0x42);
  unsigned char sig[crypto_sign_BYTES];
  for (auto _ : state) {
    crypto_sign_detached(sig, nullptr, msg.data(), msg.size(), sk);
    benchmark::DoNotOptimize(sig);
  }
  sodium_memzero(sk, sizeof sk);
}
BENCHMARK(BM_Ed25519Sign_Raw);

void BM_Ed25519Verify_Wrapper(benchmark::State& state) {
  rc::Ed25519KeyPair kp = rc::Ed25519Generate(rc::SystemRandom());
  Bytes msg(kSignedMessageBytes, 0x42);
  auto sig = rc::Ed25519Sign(kp.secret_key, msg);
  if (!sig.ok()) std::abort();
  for (auto _ : state) {
    auto st = rc::Ed25519Verify(kp.public_key, msg, *sig);
    if (!st.ok()) state.SkipWithError("verification failed");
    benchmark::DoNotOptimize(st);
  }
}
BENCHMARK(BM_Ed25519Verify_Wrapper);

void BM_Ed25519Verify_Raw(benchmark::State& state) {
  unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_keypair(pk, sk);
  Bytes msg(kSignedMessageBytes, 0x42);
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, msg.data(), msg.size(), sk);
  for (auto _ : state) {
    int rc_ = crypto_sign_verify_detached(sig, msg.data(), msg.size(), pk);
    if (rc_ != 0) state.SkipWithError("verification failed");
    benchmark::DoNotOptimize(rc_);
  }
  sodium_memzero(sk, sizeof sk);
}
BENCHMARK(BM_Ed25519Verify_Raw);

// ---- AEAD -----------------------------------------------------------------
//
// Each benchmark encrypts a message of state.range(0) bytes (with 16 bytes of
// associated data) into a preallocated buffer; the Decrypt ones open it.
// The wrapper and the raw call see identical buffers.

constexpr std::size_t kAdBytes = 16;

struct AeadFixture {
  explicit AeadFixture(std::size_t n, std::size_t nonce_bytes)
      : key(rc::kAeadKeyBytes), nonce(nonce_bytes), ad(kAdBytes), pt(n), ct(n + rc::kAeadTagBytes),
        out(n) {
    randombytes_buf(key.data(), key.size());
    randombytes_buf(nonce.data(), nonce.size());
    randombytes_buf(ad.data(), ad.size());
    randombytes_buf(pt.data(), pt.size());
  }
  Bytes key, nonce, ad, pt, ct, out;
};

enum class Impl { kWrapper, kRaw };
enum class Cipher { kXChaCha, kChaChaIetf };

template <Cipher kCipher, Impl kImpl>
void Seal(AeadFixture& f) {
  if constexpr (kImpl == Impl::kWrapper) {
    auto st = kCipher == Cipher::kXChaCha ? rc::XChaChaEncrypt(f.key, f.nonce, f.ad, f.pt, f.ct)
                                          : rc::ChaChaIetfEncrypt(f.key, f.nonce, f.ad, f.pt, f.ct);
    benchmark::DoNotOptimize(st);
  } else if constexpr (kCipher == Cipher::kXChaCha) {
    crypto_aead_xchacha20poly1305_ietf_encrypt(f.ct.data(), nullptr, f.pt.data(), f.pt.size(),
                                               f.ad.data(), f.ad.size(), nullptr, f.nonce.data(),
                                               f.key.data());
  } else {
    crypto_aead_chacha20poly1305_ietf_encrypt(f.ct.data(), nullptr, f.pt.data(), f.pt.size(),
                                              f.ad.data(), f.ad.size(), nullptr, f.nonce.data(),
                                              f.key.data());
  }
}

template <Cipher kCipher, Impl kImpl>
bool Open(AeadFixture& f) {
  if constexpr (kImpl == Impl::kWrapper) {
    auto st = kCipher == Cipher::kXChaCha ? rc::XChaChaDecrypt(f.key, f.nonce, f.ad, f.ct, f.out)
                                          : rc::ChaChaIetfDecrypt(f.key, f.nonce, f.ad, f.ct, f.out);
    return st.ok();
  } else if constexpr (kCipher == Cipher::kXChaCha) {
    return crypto_aead_xchacha20poly1305_ietf_decrypt(f.out.data(), nullptr, nullptr, f.ct.data(),
                                                      f.ct.size(), f.ad.data(), f.ad.size(),
                                                      f.nonce.data(), f.key.data()) == 0;
  } else {
    return crypto_aead_chacha20poly1305_ietf_decrypt(f.out.data(), nullptr, nullptr, f.ct.data(),
                                                     f.ct.size(), f.ad.data(), f.ad.size(),
                                                     f.nonce.data(), f.key.data()) == 0;
  }
}

constexpr std::size_t NonceBytes(Cipher c) {
  return c == Cipher::kXChaCha ? rc::kXChaChaNonceBytes : rc::kChaChaIetfNonceBytes;
}

template <Cipher kCipher, Impl kImpl>
void BM_AeadEncrypt(benchmark::State& state) {
  AeadFixture f(static_cast<std::size_t>(state.range(0)), NonceBytes(kCipher));
  for (auto _ : state) {
    Seal<kCipher, kImpl>(f);
    benchmark::DoNotOptimize(f.ct.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}

template <Cipher kCipher, Impl kImpl>
void BM_AeadDecrypt(benchmark::State& state) {
  AeadFixture f(static_cast<std::size_t>(state.range(0)), NonceBytes(kCipher));
  Seal<kCipher, Impl::kRaw>(f);
  for (auto _ : state) {
    if (!Open<kCipher, kImpl>(f)) {
      state.SkipWithError("decryption failed");
      break;
    }
    benchmark::DoNotOptimize(f.out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}

// 256 B / 1 KiB / 16 KiB / 1 MiB: the padding classes (DESIGN §10) and a large chunk.
#define RHIZOME_AEAD_SIZES ->Arg(256)->Arg(1 << 10)->Arg(16 << 10)->Arg(1 << 20)

BENCHMARK_TEMPLATE(BM_AeadEncrypt, Cipher::kXChaCha, Impl::kWrapper) RHIZOME_AEAD_SIZES;
BENCHMARK_TEMPLATE(BM_AeadEncrypt, Cipher::kXChaCha, Impl::kRaw) RHIZOME_AEAD_SIZES;
BENCHMARK_TEMPLATE(BM_AeadDecrypt, Cipher::kXChaCha, Impl::kWrapper) RHIZOME_AEAD_SIZES;
BENCHMARK_TEMPLATE(BM_AeadDecrypt, Cipher::kXChaCha, Impl::kRaw) RHIZOME_AEAD_SIZES;
BENCHMARK_TEMPLATE(BM_AeadEncrypt, Cipher::kChaChaIetf, Impl::kWrapper) RHIZOME_AEAD_SIZES;
BENCHMARK_TEMPLATE(BM_AeadEncrypt, Cipher::kChaChaIetf, Impl::kRaw) RHIZOME_AEAD_SIZES;
BENCHMARK_TEMPLATE(BM_AeadDecrypt, Cipher::kChaChaIetf, Impl::kWrapper) RHIZOME_AEAD_SIZES;
BENCHMARK_TEMPLATE(BM_AeadDecrypt, Cipher::kChaChaIetf, Impl::kRaw) RHIZOME_AEAD_SIZES;

// Paired measurements of the wrapper overhead. On a shared machine, separate
// benchmarks for the wrapper and the raw call run at different moments and
// see different interference. Here every iteration times one wrapper call and
// one raw call back to back (alternating which goes first), and the counters
// report the minimum and the median of each, and their ratios. Preemption only
// ever adds time, so the minimums are the least disturbed figures.

double Median(std::vector<double>& v) {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

template <class WrapperFn, class RawFn>
void RunPaired(benchmark::State& state, WrapperFn&& wrapper, RawFn&& raw) {
  using Clock = std::chrono::steady_clock;
  std::vector<double> wrapper_ns, raw_ns;
  auto timed = [](auto& fn) {
    const auto t0 = Clock::now();
    fn();
    benchmark::ClobberMemory();
    return std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  };
  bool wrapper_first = true;
  for (auto _ : state) {
    if (wrapper_first) {
      wrapper_ns.push_back(timed(wrapper));
      raw_ns.push_back(timed(raw));
    } else {
      raw_ns.push_back(timed(raw));
      wrapper_ns.push_back(timed(wrapper));
    }
    wrapper_first = !wrapper_first;
  }
  if (wrapper_ns.empty()) return;
  const double w_min = *std::min_element(wrapper_ns.begin(), wrapper_ns.end());
  const double r_min = *std::min_element(raw_ns.begin(), raw_ns.end());
  const double w_med = Median(wrapper_ns);
  const double r_med = Median(raw_ns);
  state.counters["wrapper_min_ns"] = w_min;
  state.counters["raw_min_ns"] = r_min;
  state.counters["ratio_min"] = w_min / r_min;
  state.counters["wrapper_med_ns"] = w_med;
  state.counters["raw_med_ns"] = r_med;
  state.counters["ratio_med"] = w_med / r_med;
}

template <Cipher kCipher, bool kDecrypt>
void BM_AeadPaired(benchmark::State& state) {
  AeadFixture f(static_cast<std::size_t>(state.range(0)), NonceBytes(kCipher));
  Seal<kCipher, Impl::kRaw>(f);
  bool ok = true;
  if constexpr (kDecrypt) {
    RunPaired(
        state, [&] { ok &= Open<kCipher, Impl::kWrapper>(f); },
        [&] { ok &= Open<kCipher, Impl::kRaw>(f); });
  } else {
    RunPaired(
        state, [&] { Seal<kCipher, Impl::kWrapper>(f); }, [&] { Seal<kCipher, Impl::kRaw>(f); });
  }
  if (!ok) state.SkipWithError("decryption failed");
  // Each iteration processes the message twice (once per implementation).
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 * state.range(0));
}

BENCHMARK_TEMPLATE(BM_AeadPaired, Cipher::kXChaCha, false) RHIZOME_AEAD_SIZES;
BENCHMARK_TEMPLATE(BM_AeadPaired, Cipher::kXChaCha, true) RHIZOME_AEAD_SIZES;
BENCHMARK_TEMPLATE(BM_AeadPaired, Cipher::kChaChaIetf, false) RHIZOME_AEAD_SIZES;
BENCHMARK_TEMPLATE(BM_AeadPaired, Cipher::kChaChaIetf, true) RHIZOME_AEAD_SIZES;

void BM_X25519DHPaired(benchmark::State& state) {
  rc::X25519KeyPair a = rc::X25519Generate(rc::SystemRandom());
  rc::X25519KeyPair b = rc::X25519Generate(rc::SystemRandom());
  ByteArray<32> shared{};
  RunPaired(
      state, [&] { benchmark::DoNotOptimize(rc::X25519(a.secret_key.expose(), b.public_key, shared)); },
      [&] {
        benchmark::DoNotOptimize(
            crypto_scalarmult(shared.data(), a.secret_key.expose().data(), b.public_key.data()));
      });
}
BENCHMARK(BM_X25519DHPaired);

void BM_X25519GeneratePaired(benchmark::State& state) {
  unsigned char pk[32], sk[32];
  RunPaired(
      state,
      [&] {
        rc::X25519KeyPair kp = rc::X25519Generate(rc::SystemRandom());
        benchmark::DoNotOptimize(kp.public_key.data());
      },
      [&] {
        randombytes_buf(sk, sizeof sk);
        benchmark::DoNotOptimize(crypto_scalarmult_base(pk, sk));
      });
  sodium_memzero(sk, sizeof sk);
}
BENCHMARK(BM_X25519GeneratePaired);

void BM_Ed25519SignPaired(benchmark::State& state) {
  rc::Ed25519KeyPair kp = rc::Ed25519Generate(rc::SystemRandom());
  Bytes msg(kSignedMessageBytes, 0x42);
  unsigned char sig[crypto_sign_BYTES];
  RunPaired(
      state, [&] { benchmark::DoNotOptimize(rc::Ed25519Sign(kp.secret_key, msg)); },
      [&] {
        crypto_sign_detached(sig, nullptr, msg.data(), msg.size(), kp.secret_key.expose().data());
        benchmark::DoNotOptimize(sig);
      });
}
BENCHMARK(BM_Ed25519SignPaired);

void BM_Ed25519VerifyPaired(benchmark::State& state) {
  rc::Ed25519KeyPair kp = rc::Ed25519Generate(rc::SystemRandom());
  Bytes msg(kSignedMessageBytes, 0x42);
  auto sig = rc::Ed25519Sign(kp.secret_key, msg);
  if (!sig.ok()) std::abort();
  bool ok = true;
  RunPaired(
      state, [&] { ok &= rc::Ed25519Verify(kp.public_key, msg, *sig).ok(); },
      [&] {
        ok &= crypto_sign_verify_detached(sig->data(), msg.data(), msg.size(),
                                          kp.public_key.data()) == 0;
      });
  if (!ok) state.SkipWithError("verification failed");
}
BENCHMARK(BM_Ed25519VerifyPaired);

// ---- Argon2id -------------------------------------------------------------
//
// One key derivation per iteration, at the profile default (Moderate: 3 passes
// over 256 MiB) and at Interactive (2 passes over 64 MiB). Slow by design: run
// with a small --benchmark_min_time.

void BM_Argon2id(benchmark::State& state, rc::Argon2idParams params) {
  const Bytes pass = {'c', 'o', 'r', 'r', 'e', 'c', 't', ' ', 'h', 'o', 'r', 's', 'e'};
  Bytes salt(rc::kArgon2SaltBytes);
  randombytes_buf(salt.data(), salt.size());
  Bytes key(32);
  for (auto _ : state) {
    auto st = rc::Argon2id(pass, salt, params, key);
    if (!st.ok()) {
      state.SkipWithError(st.error().message);
      break;
    }
    benchmark::DoNotOptimize(key.data());
  }
  state.counters["mem_MiB"] = static_cast<double>(params.mem_limit >> 20);
  state.counters["passes"] = static_cast<double>(params.ops_limit);
}
BENCHMARK_CAPTURE(BM_Argon2id, Moderate, rc::Argon2idParams::Moderate())
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Argon2id, Interactive, rc::Argon2idParams::Interactive())
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  if (!rc::Init().ok()) {
    std::fprintf(stderr, "crypto_bench: libsodium failed to initialise\n");
    return 1;
  }
  benchmark::AddCustomContext("libsodium", sodium_version_string());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
