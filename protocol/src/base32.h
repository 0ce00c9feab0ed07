// RFC 4648 §6 base32 without padding, used by the pasteable text forms
// (invite codes, relay addresses). Private to the protocol module.
//
// Encoding writes lowercase. Decoding accepts either case, refuses '=' and any
// other character, refuses lengths that no byte string encodes to (1, 3 or 6
// characters past a multiple of 8) and non-zero trailing bits, so every byte
// string has exactly one accepted encoding (up to letter case).
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "rhizome/crypto/bytes.h"

namespace rhizome::protocol::internal {

std::string Base32Encode(ByteSpan bytes);

// Number of characters Base32Encode produces for `byte_count` bytes.
constexpr std::size_t Base32EncodedSize(std::size_t byte_count) {
  return (byte_count * 8 + 4) / 5;
}

// Errors: kMalformed "bad base32".
Result<Bytes> Base32Decode(std::string_view text);

}  // namespace rhizome::protocol::internal
