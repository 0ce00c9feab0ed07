// Result names, hex coding, constant-time compare, library init, process hardening.
#include <sodium.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/init.h"
#include "rhizome/crypto/result.h"

namespace rhizome {

const char* ErrcName(Errc code) noexcept {
  switch (code) {
    case Errc::kInvalidArgument: return "invalid argument";
    case Errc::kMalformed: return "malformed input";
    case Errc::kAuthenticationFailed: return "authentication failed";
    case Errc::kWrongPassphrase: return "wrong passphrase";
    case Errc::kNotFound: return "not found";
    case Errc::kAlreadyExists: return "already exists";
    case Errc::kIo: return "I/O error";
    case Errc::kCorrupt: return "corrupt data";
    case Errc::kLimitExceeded: return "limit exceeded";
    case Errc::kUnsupported: return "unsupported";
    case Errc::kCryptoFailure: return "cryptographic failure";
    case Errc::kInternal: return "internal error";
  }
  return "unknown error";
}

std::string ToHex(ByteSpan bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0x0f]);
  }
  return out;
}

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

Result<Bytes> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return Error{Errc::kMalformed, "hex string has odd length"};
  Bytes out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return Error{Errc::kMalformed, "invalid hex digit"};
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return out;
}

bool ConstantTimeEqual(ByteSpan a, ByteSpan b) noexcept {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace crypto {

Status Init() {
  if (sodium_init() < 0) return Error{Errc::kInternal, "libsodium failed to initialise"};
  return {};
}

Status HardenProcess() {
  struct rlimit no_core {};
  if (setrlimit(RLIMIT_CORE, &no_core) != 0) {
    return Error{Errc::kInternal, "cannot disable core dumps"};
  }
  // SECURITY: not dumpable also blocks ptrace by other non-root processes of the same uid.
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return Error{Errc::kInternal, "cannot mark process non-dumpable"};
  }
  return Init();
}

}  // namespace crypto
}  // namespace rhizome
