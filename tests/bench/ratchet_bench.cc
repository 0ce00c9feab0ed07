// Double Ratchet benchmarks (issue 5 §6): Rhizome's ratchet per message against
// the crypto floor. Measured, never asserted (DESIGN §14). scripts/bench-ratchet.sh
// runs this binary and tests/bench/libsignal/bench.mjs (Signal's library) in one
// go and prints the ratios against the goals; docs/benchmarks.md records a run.
//
// One message = Encrypt by the sender + Decrypt by the receiver of a 1 KiB
// plaintext (crypto/double_ratchet.h), the decrypted bytes compared with the
// plaintext. The session is bootstrapped as tests/unit/crypto/double_ratchet_test.cc
// does (DeriveRatchetBootstrap from fixed Noise outputs, InitAlice with the
// invite public key, InitBob with the invite key pair), then warmed up with a
// few round trips. Encrypt draws from SystemRandom() (libsodium's
// randombytes_buf), as the client does. Two shapes:
//   - ping-pong: A->B, B->A alternating: every message starts a new sending
//     chain, i.e. a full DH ratchet step (the sender makes a key pair, one DH
//     and one root-KDF step; the receiver one DH and one root-KDF step);
//   - burst: A->B only: one symmetric chain step and the AEADs per message.
//
// The crypto floor, raw libsodium, no state handling, same plaintext, the
// decrypted bytes compared too (what exactly each includes):
//   step floor  (BM_PingPong_Floor), per message:
//     X25519 key generation (randombytes_buf 32 + crypto_scalarmult_base)
//     + 2 X25519 DH (crypto_scalarmult: the sender's and the receiver's)
//     + 2 root-key derivations HKDF-SHA256(salt = RK, ikm = DH output, info, 96 bytes)
//       built on crypto_auth_hmacsha256 exactly as crypto/hash.h does (extract
//       + 3 expand blocks = 4 HMACs each; the sender's and the receiver's)
//     + header AEAD: XChaCha20-Poly1305 encrypt + decrypt of the 40-byte header
//       (AD 32 bytes), nonce from randombytes_buf
//     + body AEAD: XChaCha20-Poly1305 encrypt + decrypt of 1 KiB (AD 32 + 80
//       bytes), nonce from randombytes_buf.
//     NOT included: the symmetric chain step and message-key derivation on
//     either side (the body key is taken from the root-KDF output), the
//     receiver's failed trial of the header under its current header key.
//   chain floor (BM_Burst_Floor), per message:
//     one chain step: HMAC-SHA256(CK, 0x01) and HMAC-SHA256(CK, 0x02)
//     + the same header AEAD and body AEAD encrypt + decrypt (with nonces).
//     NOT included: the receiver's chain step.
//   These are the floors the issue's goal names ("one key generation + two DH +
//   root-key derivations for a step; one chain step + one AEAD otherwise").
//   The protocol floors (BM_*_ProtocolFloor) add what Rhizome's byte format
//   makes both sides compute on top (docs/protocol/double-ratchet.md), still
//   raw libsodium without state handling:
//     step:  + a chain step on each side (its message-key output is the body
//              key: no separate message-key HKDF since 2026-11-29)
//            + the receiver's failed header trial under its current header key;
//     burst: + the receiver's chain step.
//   The gap between the protocol floor and ours is implementation overhead
//   (state copies, secure-memory temporaries and wiping, allocations, checks).
//
// Every benchmark's Time/CPU columns are the MEAN per message (ns), and the
// counter p50_ns is the median of per-message wall-clock times (steady_clock
// around each message). BM_Paired_* run one message of ours and one floor
// message in every iteration (alternating which goes first) and report both
// medians and their ratio: the two see the same interference from other
// processes, so the ratio holds up on a busy machine. (Their Time column is the
// sum of both and means nothing by itself.) BM_Part_* are the floor's pieces.
//
// The last line printed is machine-readable for scripts/bench-ratchet.sh:
//   RESULT pingpong_p50_ns=... pingpong_floor_p50_ns=... ...
// With --benchmark_repetitions, medians over repetitions are used.
#include <benchmark/benchmark.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/dh.h"
#include "rhizome/crypto/double_ratchet.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/random.h"
#include "summary_reporter.h"

namespace {

namespace rc = rhizome::crypto;
using rhizome::ByteSpan;
using rhizome::Bytes;
using Clock = std::chrono::steady_clock;
using rhizome::bench::Figures;
using rhizome::bench::FiguresByName;

constexpr std::size_t kPlaintextBytes = 1024;
constexpr std::uint64_t kNow = 1'800'000'000;  // a fixed Unix time, as in the unit test
constexpr std::size_t kHeaderBytes = rc::kRatchetHeaderBytes;              // 40
constexpr std::size_t kAdBytes = rc::kRatchetAssociatedDataBytes;          // 32
constexpr std::size_t kEncHeaderBytes = rc::kRatchetEncryptedHeaderBytes;  // 80
constexpr std::size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
static_assert(kNonceBytes == rc::kRatchetNonceBytes && kTagBytes == rc::kRatchetTagBytes);

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "ratchet_bench: %s\n", what);
  std::exit(1);
}

const Bytes& Plaintext() {
  static const Bytes p = [] {
    Bytes b(kPlaintextBytes);
    randombytes_buf(b.data(), b.size());
    return b;
  }();
  return p;
}

// ---- Per-message wall-clock samples --------------------------------------------

class Samples {
 public:
  Samples() { ns_.reserve(1 << 16); }
  void Add(Clock::duration d) {
    ns_.push_back(std::chrono::duration<double, std::nano>(d).count());
  }
  double Percentile(double p) {
    if (ns_.empty()) return 0;
    const auto k = static_cast<std::size_t>(p / 100.0 * static_cast<double>(ns_.size() - 1));
    std::nth_element(ns_.begin(), ns_.begin() + static_cast<std::ptrdiff_t>(k), ns_.end());
    return ns_[k];
  }

 private:
  std::vector<double> ns_;
};

// ---- Our ratchet, bootstrapped as in tests/unit/crypto/double_ratchet_test.cc ----

struct Session {
  rc::DoubleRatchet alice;
  rc::DoubleRatchet bob;
};

rc::RatchetBootstrap FixedBootstrap(std::uint64_t seed) {
  rc::DeterministicRandom rng(seed);
  auto k2 = rng.Array<32>();
  auto h = rng.Array<64>();
  auto b = rc::DeriveRatchetBootstrap(k2, h);
  if (!b.ok()) Die("DeriveRatchetBootstrap failed");
  return std::move(b).value();
}

Session MakeSession(std::uint64_t seed = 1) {
  rc::RatchetBootstrap boot = FixedBootstrap(seed);
  rc::DeterministicRandom key_rng(seed + 1000);
  rc::X25519KeyPair invite = rc::X25519Generate(key_rng);
  auto alice = rc::DoubleRatchet::InitAlice(boot, invite.public_key);
  auto bob = rc::DoubleRatchet::InitBob(boot, invite);
  if (!alice.ok() || !bob.ok()) Die("ratchet init failed");
  return Session{std::move(alice).value(), std::move(bob).value()};
}

// One message: Encrypt by `from`, Decrypt by `to`, plaintext compared.
bool Deliver(rc::DoubleRatchet& from, rc::DoubleRatchet& to) {
  const Bytes& plain = Plaintext();
  auto m = from.Encrypt(plain, rc::SystemRandom());
  if (!m.ok()) return false;
  auto p = to.Decrypt(*m, kNow);
  return p.ok() && p->size() == plain.size() &&
         std::memcmp(p->data(), plain.data(), plain.size()) == 0;
}

// A session in steady state: both sides have sent and received.
Session WarmSession() {
  Session s = MakeSession();
  for (int i = 0; i < 4; ++i) {
    if (!Deliver(s.alice, s.bob) || !Deliver(s.bob, s.alice)) Die("warm-up round trip failed");
  }
  return s;
}

class OursPingPong {
 public:
  bool Message() {
    const bool from_alice = (count_++ % 2) == 0;
    return from_alice ? Deliver(s_.alice, s_.bob) : Deliver(s_.bob, s_.alice);
  }

 private:
  Session s_ = WarmSession();
  std::uint64_t count_ = 0;
};

class OursBurst {
 public:
  bool Message() { return Deliver(s_.alice, s_.bob); }

 private:
  Session s_ = WarmSession();
};

// ---- The crypto floor: raw libsodium ---------------------------------------------

constexpr char kInfoRk[] = "rhizome/v1/dr-rk";

// HKDF-SHA256 (RFC 5869) on crypto_auth_hmacsha256, as crypto/src/hash.cc
// builds it (no wiping: the floor does only the arithmetic). out_len <= 255*32.
void RawHkdf(const std::uint8_t* salt, std::size_t salt_len, const std::uint8_t* ikm,
             std::size_t ikm_len, const char* info, std::uint8_t* out, std::size_t out_len) {
  static const std::uint8_t kZeroSalt[32] = {};
  if (salt_len == 0) {
    salt = kZeroSalt;
    salt_len = sizeof(kZeroSalt);
  }
  std::uint8_t prk[32];
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, salt, salt_len);
  crypto_auth_hmacsha256_update(&st, ikm, ikm_len);
  crypto_auth_hmacsha256_final(&st, prk);
  std::uint8_t t[32];
  std::size_t t_len = 0;
  const std::size_t info_len = std::strlen(info);
  std::size_t done = 0;
  for (std::uint8_t counter = 1; done < out_len; ++counter) {
    crypto_auth_hmacsha256_init(&st, prk, sizeof(prk));
    crypto_auth_hmacsha256_update(&st, t, t_len);
    crypto_auth_hmacsha256_update(&st, reinterpret_cast<const std::uint8_t*>(info), info_len);
    crypto_auth_hmacsha256_update(&st, &counter, 1);
    crypto_auth_hmacsha256_final(&st, t);
    t_len = sizeof(t);
    const std::size_t n = std::min(sizeof(t), out_len - done);
    std::memcpy(out + done, t, n);
    done += n;
  }
}

// Signal's KDF_CK: seed = HMAC(ck, 0x01), ck' = HMAC(ck, 0x02).
void RawChainStep(std::uint8_t ck[32], std::uint8_t seed[32]) {
  static const std::uint8_t kOne = 0x01;
  static const std::uint8_t kTwo = 0x02;
  crypto_auth_hmacsha256(seed, &kOne, 1, ck);
  crypto_auth_hmacsha256(ck, &kTwo, 1, ck);
}

// A message's two AEADs, raw: header (40 bytes under hk) and body (1 KiB
// under mk), encrypted by the sender and decrypted by the receiver, with
// random nonces; the receiver's plaintext is compared. `wrong_hk`, when given,
// is first tried on the header and must fail (the receiver's trial of its
// current header key before the next one, on a DH step).
class RawWire {
 public:
  RawWire() {
    randombytes_buf(ad_, sizeof(ad_));
    randombytes_buf(header_, sizeof(header_));
  }
  bool SealOpen(const std::uint8_t hk[32], const std::uint8_t mk[32],
                const std::uint8_t* wrong_hk = nullptr) {
    const Bytes& plain = Plaintext();
    std::uint8_t* enc_header = wire_.data();
    std::uint8_t* body_nonce = wire_.data() + kEncHeaderBytes;
    std::uint8_t* body = body_nonce + kNonceBytes;
    // Sender.
    randombytes_buf(enc_header, kNonceBytes);
    crypto_aead_xchacha20poly1305_ietf_encrypt(enc_header + kNonceBytes, nullptr, header_,
                                               kHeaderBytes, ad_, kAdBytes, nullptr, enc_header,
                                               hk);
    std::memcpy(body_ad_, ad_, kAdBytes);
    std::memcpy(body_ad_ + kAdBytes, enc_header, kEncHeaderBytes);
    randombytes_buf(body_nonce, kNonceBytes);
    crypto_aead_xchacha20poly1305_ietf_encrypt(body, nullptr, plain.data(), plain.size(), body_ad_,
                                               sizeof(body_ad_), nullptr, body_nonce, mk);
    // Receiver.
    std::uint8_t header_out[kHeaderBytes];
    if (wrong_hk != nullptr &&
        crypto_aead_xchacha20poly1305_ietf_decrypt(header_out, nullptr, nullptr,
                                                   enc_header + kNonceBytes,
                                                   kHeaderBytes + kTagBytes, ad_, kAdBytes,
                                                   enc_header, wrong_hk) == 0) {
      return false;
    }
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(header_out, nullptr, nullptr,
                                                   enc_header + kNonceBytes,
                                                   kHeaderBytes + kTagBytes, ad_, kAdBytes,
                                                   enc_header, hk) != 0) {
      return false;
    }
    std::uint8_t recv_ad[kAdBytes + kEncHeaderBytes];
    std::memcpy(recv_ad, ad_, kAdBytes);
    std::memcpy(recv_ad + kAdBytes, enc_header, kEncHeaderBytes);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out_.data(), nullptr, nullptr, body,
                                                   plain.size() + kTagBytes, recv_ad,
                                                   sizeof(recv_ad), body_nonce, mk) != 0) {
      return false;
    }
    return std::memcmp(out_.data(), plain.data(), plain.size()) == 0;
  }

 private:
  std::uint8_t ad_[kAdBytes];
  std::uint8_t header_[kHeaderBytes];
  std::uint8_t body_ad_[kAdBytes + kEncHeaderBytes];
  std::vector<std::uint8_t> wire_ =
      std::vector<std::uint8_t>(kEncHeaderBytes + kNonceBytes + kPlaintextBytes + kTagBytes);
  std::vector<std::uint8_t> out_ = std::vector<std::uint8_t>(kPlaintextBytes);
};

// Floor of a ping-pong message (a DH ratchet step). The receiver's ratchet key
// pair is the previous sender's new one, as in a real exchange.
class FloorPingPong {
 public:
  explicit FloorPingPong(bool protocol) : protocol_(protocol) {
    randombytes_buf(rk_, sizeof(rk_));
    randombytes_buf(recv_sk_, sizeof(recv_sk_));
    crypto_scalarmult_base(recv_pk_, recv_sk_);
    randombytes_buf(hk_, sizeof(hk_));
    randombytes_buf(old_hk_, sizeof(old_hk_));
  }
  bool Message() {
    // Sender: new key pair, DH with the receiver's key, root step.
    std::uint8_t new_sk[32];
    std::uint8_t new_pk[32];
    randombytes_buf(new_sk, sizeof(new_sk));
    crypto_scalarmult_base(new_pk, new_sk);
    std::uint8_t dh_s[32];
    if (crypto_scalarmult(dh_s, new_sk, recv_pk_) != 0) return false;
    std::uint8_t root_s[96];  // RK ‖ CK ‖ NHK
    RawHkdf(rk_, 32, dh_s, 32, kInfoRk, root_s, sizeof(root_s));
    // Receiver: DH with the sender's new key, root step.
    std::uint8_t dh_r[32];
    if (crypto_scalarmult(dh_r, recv_sk_, new_pk) != 0) return false;
    std::uint8_t root_r[96];
    RawHkdf(rk_, 32, dh_r, 32, kInfoRk, root_r, sizeof(root_r));

    std::uint8_t mk[32];
    if (protocol_) {
      // Both sides: one chain step; its message-key output is the body key
      // (docs/protocol/double-ratchet.md, "Why no message-key HKDF").
      RawChainStep(root_s + 32, mk);
      std::uint8_t mk_r[32];
      RawChainStep(root_r + 32, mk_r);
      benchmark::DoNotOptimize(mk_r);
    } else {
      std::memcpy(mk, root_s + 32, 32);  // the body key taken from the root step
    }
    if (!wire_.SealOpen(hk_, mk, protocol_ ? old_hk_ : nullptr)) return false;
    // Roll: the sender's new key pair is the next receiver's; root and header keys advance.
    std::memcpy(recv_sk_, new_sk, 32);
    std::memcpy(recv_pk_, new_pk, 32);
    std::memcpy(old_hk_, hk_, 32);
    std::memcpy(hk_, root_s + 64, 32);
    std::memcpy(rk_, root_s, 32);
    return std::memcmp(root_s, root_r, sizeof(root_s)) == 0;
  }

 private:
  bool protocol_;
  std::uint8_t rk_[32];
  std::uint8_t recv_sk_[32];
  std::uint8_t recv_pk_[32];
  std::uint8_t hk_[32];
  std::uint8_t old_hk_[32];
  RawWire wire_;
};

// Floor of a burst message (one symmetric chain step).
class FloorBurst {
 public:
  explicit FloorBurst(bool protocol) : protocol_(protocol) {
    randombytes_buf(ck_s_, sizeof(ck_s_));
    std::memcpy(ck_r_, ck_s_, sizeof(ck_s_));
    randombytes_buf(hk_, sizeof(hk_));
  }
  bool Message() {
    std::uint8_t seed[32];
    RawChainStep(ck_s_, seed);
    std::uint8_t mk[32];
    std::memcpy(mk, seed, 32);  // the body key is the chain step's output
    if (protocol_) {
      std::uint8_t mk_r[32];  // the receiver's step
      RawChainStep(ck_r_, mk_r);
      if (std::memcmp(mk, mk_r, 32) != 0) return false;
    }
    return wire_.SealOpen(hk_, mk);
  }

 private:
  bool protocol_;
  std::uint8_t ck_s_[32];
  std::uint8_t ck_r_[32];
  std::uint8_t hk_[32];
  RawWire wire_;
};

// ---- Benchmarks ----------------------------------------------------------------

template <typename Shape>
void RunMessages(benchmark::State& state, Shape& shape, const char* label) {
  Samples samples;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    const bool ok = shape.Message();
    samples.Add(Clock::now() - t0);
    if (!ok) {
      state.SkipWithError("a message did not round-trip");
      break;
    }
  }
  state.counters["p50_ns"] = samples.Percentile(50);
  state.counters["p90_ns"] = samples.Percentile(90);
  state.SetLabel(label);
}

void BM_PingPong_Ours(benchmark::State& state) {
  OursPingPong shape;
  RunMessages(state, shape, "ours, 1 KiB, enc+dec, DH step each");
}
void BM_PingPong_Floor(benchmark::State& state) {
  FloorPingPong shape(false);
  RunMessages(state, shape, "floor: keygen+2DH+2 root HKDF+AEADs");
}
void BM_PingPong_ProtocolFloor(benchmark::State& state) {
  FloorPingPong shape(true);
  RunMessages(state, shape, "floor + chain/mk KDFs + header trial");
}
void BM_Burst_Ours(benchmark::State& state) {
  OursBurst shape;
  RunMessages(state, shape, "ours, 1 KiB, enc+dec, chain step");
}
void BM_Burst_Floor(benchmark::State& state) {
  FloorBurst shape(false);
  RunMessages(state, shape, "floor: 2 HMAC + AEADs");
}
void BM_Burst_ProtocolFloor(benchmark::State& state) {
  FloorBurst shape(true);
  RunMessages(state, shape, "floor + recv chain step + 2 mk HKDF");
}

// Ours and the floor, one message each per iteration, alternating order.
template <typename Ours, typename Floor>
void RunPaired(benchmark::State& state, Ours& ours, Floor& floor) {
  Samples s_ours;
  Samples s_floor;
  bool ours_first = true;
  for (auto _ : state) {
    bool ok = true;
    for (int k = 0; k < 2; ++k) {
      const bool run_ours = (k == 0) == ours_first;
      const auto t0 = Clock::now();
      ok = (run_ours ? ours.Message() : floor.Message()) && ok;
      (run_ours ? s_ours : s_floor).Add(Clock::now() - t0);
    }
    ours_first = !ours_first;
    if (!ok) {
      state.SkipWithError("a message did not round-trip");
      break;
    }
  }
  const double o = s_ours.Percentile(50);
  const double f = s_floor.Percentile(50);
  state.counters["ours_p50_ns"] = o;
  state.counters["floor_p50_ns"] = f;
  state.counters["ratio"] = f > 0 ? o / f : 0;
}

void BM_Paired_PingPong(benchmark::State& state) {
  OursPingPong ours;
  FloorPingPong floor(false);
  RunPaired(state, ours, floor);
}
void BM_Paired_Burst(benchmark::State& state) {
  OursBurst ours;
  FloorBurst floor(false);
  RunPaired(state, ours, floor);
}

// The floor's pieces, raw libsodium.
void BM_Part_X25519Keygen(benchmark::State& state) {
  std::uint8_t sk[32];
  std::uint8_t pk[32];
  for (auto _ : state) {
    randombytes_buf(sk, sizeof(sk));
    crypto_scalarmult_base(pk, sk);
    benchmark::DoNotOptimize(pk);
  }
}
void BM_Part_X25519Dh(benchmark::State& state) {
  std::uint8_t sk[32];
  std::uint8_t pk[32];
  std::uint8_t out[32];
  randombytes_buf(sk, sizeof(sk));
  crypto_scalarmult_base(pk, sk);
  for (auto _ : state) {
    if (crypto_scalarmult(out, sk, pk) != 0) state.SkipWithError("DH failed");
    benchmark::DoNotOptimize(out);
  }
}
void BM_Part_RootHkdf96(benchmark::State& state) {
  std::uint8_t rk[32];
  std::uint8_t dh[32];
  std::uint8_t out[96];
  randombytes_buf(rk, sizeof(rk));
  randombytes_buf(dh, sizeof(dh));
  for (auto _ : state) {
    RawHkdf(rk, 32, dh, 32, kInfoRk, out, sizeof(out));
    benchmark::DoNotOptimize(out);
  }
}
void BM_Part_ChainStep(benchmark::State& state) {
  std::uint8_t ck[32];
  std::uint8_t seed[32];
  randombytes_buf(ck, sizeof(ck));
  for (auto _ : state) {
    RawChainStep(ck, seed);
    benchmark::DoNotOptimize(seed);
  }
}
void BM_Part_AeadsEncDec(benchmark::State& state) {
  RawWire wire;
  std::uint8_t hk[32];
  std::uint8_t mk[32];
  randombytes_buf(hk, sizeof(hk));
  randombytes_buf(mk, sizeof(mk));
  for (auto _ : state) {
    if (!wire.SealOpen(hk, mk)) state.SkipWithError("AEAD round trip failed");
  }
  state.SetLabel("header 40 B + body 1 KiB, enc+dec, 2 nonces");
}
void BM_Part_Randombytes24(benchmark::State& state) {
  std::uint8_t nonce[24];
  for (auto _ : state) {
    randombytes_buf(nonce, sizeof(nonce));
    benchmark::DoNotOptimize(nonce);
  }
}

void Register() {
  benchmark::RegisterBenchmark("BM_PingPong_Ours", BM_PingPong_Ours);
  benchmark::RegisterBenchmark("BM_PingPong_Floor", BM_PingPong_Floor);
  benchmark::RegisterBenchmark("BM_PingPong_ProtocolFloor", BM_PingPong_ProtocolFloor);
  benchmark::RegisterBenchmark("BM_Burst_Ours", BM_Burst_Ours);
  benchmark::RegisterBenchmark("BM_Burst_Floor", BM_Burst_Floor);
  benchmark::RegisterBenchmark("BM_Burst_ProtocolFloor", BM_Burst_ProtocolFloor);
  benchmark::RegisterBenchmark("BM_Paired_PingPong", BM_Paired_PingPong);
  benchmark::RegisterBenchmark("BM_Paired_Burst", BM_Paired_Burst);
  benchmark::RegisterBenchmark("BM_Part_X25519Keygen", BM_Part_X25519Keygen);
  benchmark::RegisterBenchmark("BM_Part_X25519Dh", BM_Part_X25519Dh);
  benchmark::RegisterBenchmark("BM_Part_RootHkdf96", BM_Part_RootHkdf96);
  benchmark::RegisterBenchmark("BM_Part_ChainStep", BM_Part_ChainStep);
  benchmark::RegisterBenchmark("BM_Part_AeadsEncDec", BM_Part_AeadsEncDec);
  benchmark::RegisterBenchmark("BM_Part_Randombytes24", BM_Part_Randombytes24);
}

// ---- Summary -------------------------------------------------------------------

double Counter(const FiguresByName& f, const std::string& bench, const std::string& counter) {
  auto it = f.find(bench);
  if (it == f.end()) return 0;
  auto c = it->second.counters.find(counter);
  return c == it->second.counters.end() ? 0 : c->second.value;
}

double Cpu(const FiguresByName& f, const std::string& bench) {
  auto it = f.find(bench);
  return it == f.end() ? 0 : it->second.cpu_ns;
}

void PrintSummary(const FiguresByName& f) {
  const double pp = Counter(f, "BM_PingPong_Ours", "p50_ns");
  const double pp_floor = Counter(f, "BM_PingPong_Floor", "p50_ns");
  const double pp_pfloor = Counter(f, "BM_PingPong_ProtocolFloor", "p50_ns");
  const double bu = Counter(f, "BM_Burst_Ours", "p50_ns");
  const double bu_floor = Counter(f, "BM_Burst_Floor", "p50_ns");
  const double bu_pfloor = Counter(f, "BM_Burst_ProtocolFloor", "p50_ns");
  const double pp_paired = Counter(f, "BM_Paired_PingPong", "ratio");
  const double bu_paired = Counter(f, "BM_Paired_Burst", "ratio");
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };

  std::printf("\n== Summary: Double Ratchet per message, 1 KiB, encrypt + decrypt (ns/msg) ==\n");
  std::printf("%-10s %12s %12s %12s %14s %14s %14s\n", "shape", "ours p50", "ours CPU",
              "floor p50", "proto-floor", "ours/floor", "paired ratio");
  std::printf("%-10s %12.0f %12.0f %12.0f %14.0f %14.2f %14.2f\n", "ping-pong", pp,
              Cpu(f, "BM_PingPong_Ours"), pp_floor, pp_pfloor, ratio(pp, pp_floor), pp_paired);
  std::printf("%-10s %12.0f %12.0f %12.0f %14.0f %14.2f %14.2f\n", "burst", bu,
              Cpu(f, "BM_Burst_Ours"), bu_floor, bu_pfloor, ratio(bu, bu_floor), bu_paired);
  std::printf("goal: ping-pong <= 1.5 x floor (paired ratio is the robust one on a busy machine)\n");
  std::printf(
      "RESULT pingpong_p50_ns=%.0f pingpong_cpu_ns=%.0f pingpong_floor_p50_ns=%.0f "
      "pingpong_protocol_floor_p50_ns=%.0f pingpong_paired_ratio=%.3f "
      "burst_p50_ns=%.0f burst_cpu_ns=%.0f burst_floor_p50_ns=%.0f "
      "burst_protocol_floor_p50_ns=%.0f burst_paired_ratio=%.3f\n",
      pp, Cpu(f, "BM_PingPong_Ours"), pp_floor, pp_pfloor, pp_paired, bu, Cpu(f, "BM_Burst_Ours"),
      bu_floor, bu_pfloor, bu_paired);
}

}  // namespace

int main(int argc, char** argv) {
  if (!rhizome::crypto::Init()) {
    std::fprintf(stderr, "crypto::Init failed\n");
    return 1;
  }
  // Fails loudly before any timing if a shape cannot round-trip.
  {
    OursPingPong a;
    OursBurst b;
    FloorPingPong c(false);
    FloorPingPong d(true);
    FloorBurst e(false);
    FloorBurst g(true);
    for (int i = 0; i < 4; ++i) {
      if (!a.Message() || !b.Message() || !c.Message() || !d.Message() || !e.Message() ||
          !g.Message()) {
        Die("a shape does not round-trip before timing");
      }
    }
  }
  Register();
  return rhizome::bench::RunBenchmarksWithSummary(argc, argv, PrintSummary);
}
