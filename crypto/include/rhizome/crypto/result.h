// Result<T>: the value-or-error type every fallible Rhizome function returns.
//
// Expected failures (bad input, failed authentication, wrong passphrase, I/O)
// are values, never exceptions. An Error carries a code and a *static* message:
// the message must be a string literal, never built from peer data or secrets,
// so error text can be logged or shown without leaking anything.
//
// Thread safety: plain value types; no shared state.
#pragma once

#include <cstdint>
#include <utility>
#include <variant>

namespace rhizome {

enum class Errc : std::uint8_t {
  kInvalidArgument = 1,   // caller passed something out of contract (wrong key size, ...)
  kMalformed,             // input bytes do not parse (network, file, person)
  kAuthenticationFailed,  // MAC/AEAD/signature check failed
  kWrongPassphrase,       // passphrase does not unlock the profile
  kNotFound,
  kAlreadyExists,
  kIo,
  kCorrupt,               // stored data is damaged
  kLimitExceeded,         // a named size or count limit was hit
  kUnsupported,           // version or feature we do not speak
  kCryptoFailure,         // e.g. all-zero DH output, identity point
  kInternal,
};

// Human-readable name of a code, e.g. "authentication failed". Never null.
const char* ErrcName(Errc code) noexcept;

struct Error {
  Errc code;
  const char* message;  // static string literal; never null
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(error) {}         // NOLINT: implicit by design

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  // Precondition: ok().
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  T&& operator*() && { return std::get<0>(std::move(v_)); }

  // Precondition: !ok().
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(error), ok_(false) {}  // NOLINT: implicit by design

  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_{Errc::kInternal, ""};
  bool ok_ = true;
};

using Status = Result<void>;

inline Status OkStatus() { return {}; }

}  // namespace rhizome

// Propagate an error from an expression yielding a Result/Status.
#define RHIZOME_TRY(expr)                             \
  do {                                                \
    if (auto rhizome_try_r_ = (expr); !rhizome_try_r_) \
      return rhizome_try_r_.error();                  \
  } while (0)
