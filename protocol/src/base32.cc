#include "base32.h"

#include <cstdint>

namespace rhizome::protocol::internal {

namespace {

constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

int DecodeChar(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= '2' && c <= '7') return c - '2' + 26;
  return -1;
}

}  // namespace

std::string Base32Encode(ByteSpan bytes) {
  std::string out;
  out.reserve(Base32EncodedSize(bytes.size()));
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::uint8_t b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push_back(kAlphabet[(acc >> bits) & 31u]);
    }
    acc &= (1u << bits) - 1u;
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (5 - bits)) & 31u]);
  return out;
}

Result<Bytes> Base32Decode(std::string_view text) {
  const Error bad{Errc::kMalformed, "bad base32"};
  const std::size_t rem = text.size() % 8;
  if (rem == 1 || rem == 3 || rem == 6) return bad;
  Bytes out;
  out.reserve(text.size() * 5 / 8);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int v = DecodeChar(c);
    if (v < 0) return bad;
    acc = (acc << 5) | static_cast<std::uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>((acc >> bits) & 0xffu));
    }
    acc &= (1u << bits) - 1u;
  }
  // Leftover bits (fewer than 8) must be zero: one canonical encoding.
  if (acc != 0) return bad;
  return out;
}

}  // namespace rhizome::protocol::internal
