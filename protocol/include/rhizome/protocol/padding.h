// Padding of end-to-end plaintext to fixed size classes (DESIGN §10; byte
// layout in docs/protocol/padding.md).
//
// Before encryption, an envelope is padded with ISO/IEC 7816-4 padding
// (libsodium's sodium_pad: one 0x80 byte, then zero bytes) to exactly one of
// four class sizes: 256, 1024, 4096 or 16384 bytes. A class of size C holds at
// most C - 1 content bytes, because the 0x80 marker is always present. The
// default policy picks the smallest class that fits; the high-risk profile's
// policy always uses the largest. Content of more than kMaxPaddableBytes is an
// error: callers split it into chunks first.
//
// Invariants: Pad() output has a class size; Unpad(Pad(x)) == x for every x
// that Pad accepts; Unpad accepts any class size (a high-risk receiver still
// reads a default-profile sender) and nothing else.
// Thread safety: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/result.h"

namespace rhizome::protocol {

// Padded sizes, smallest first.
inline constexpr std::array<std::size_t, 4> kPaddingClasses = {256, 1024, 4096, 16384};
inline constexpr std::size_t kSmallestPaddingClass = 256;
inline constexpr std::size_t kLargestPaddingClass = 16384;
// The most content one padded block can hold.
inline constexpr std::size_t kMaxPaddableBytes = kLargestPaddingClass - 1;

enum class PaddingPolicy : std::uint8_t {
  kSmallestFitting = 1,  // default profile: the smallest class that holds the content
  kLargestOnly = 2,      // high-risk profile: every block is kLargestPaddingClass bytes
};

// True iff `size` is one of kPaddingClasses.
bool IsPaddingClass(std::size_t size) noexcept;

// The padded size Pad() would produce.
// Errors: kLimitExceeded "content is larger than the largest padding class" if
// content_size > kMaxPaddableBytes; kInvalidArgument on an unknown policy.
Result<std::size_t> PaddedSize(std::size_t content_size, PaddingPolicy policy);

// content || 0x80 || 0x00... up to the chosen class size.
// Errors: as PaddedSize.
Result<Bytes> Pad(ByteSpan content, PaddingPolicy policy);

// Removes the padding. Runs in time that depends only on padded.size().
// Errors: kMalformed "padded size is not a padding class" if padded.size() is
// not in kPaddingClasses; kMalformed "bad padding" if the block does not end
// in 0x80 followed only by zero bytes.
Result<Bytes> Unpad(ByteSpan padded);

}  // namespace rhizome::protocol
