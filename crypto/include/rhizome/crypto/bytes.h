// Byte containers and views used across Rhizome's public APIs, plus hex coding.
//
// Public (non-secret) bytes travel as ByteSpan / Bytes. Secrets never use
// these owning types: see secret.h.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rhizome/crypto/result.h"

namespace rhizome {

using ByteSpan = std::span<const std::uint8_t>;
using MutableByteSpan = std::span<std::uint8_t>;
using Bytes = std::vector<std::uint8_t>;

template <std::size_t N>
using ByteArray = std::array<std::uint8_t, N>;

// Views the bytes of a string (no copy). The string must outlive the span.
inline ByteSpan AsBytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Lowercase hex.
std::string ToHex(ByteSpan bytes);

// Parses hex (either case). Errors: kMalformed on odd length or a non-hex digit.
Result<Bytes> FromHex(std::string_view hex);

// Constant-time equality; false when the sizes differ (the sizes are not secret).
bool ConstantTimeEqual(ByteSpan a, ByteSpan b) noexcept;

// Appends parts to a byte vector (public data only).
inline void Append(Bytes& out, ByteSpan part) { out.insert(out.end(), part.begin(), part.end()); }

}  // namespace rhizome
