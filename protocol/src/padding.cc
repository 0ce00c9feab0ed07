#include "rhizome/protocol/padding.h"

#include <sodium.h>

namespace rhizome::protocol {

bool IsPaddingClass(std::size_t size) noexcept {
  for (std::size_t c : kPaddingClasses) {
    if (c == size) return true;
  }
  return false;
}

Result<std::size_t> PaddedSize(std::size_t content_size, PaddingPolicy policy) {
  if (content_size > kMaxPaddableBytes) {
    return Error{Errc::kLimitExceeded, "content is larger than the largest padding class"};
  }
  switch (policy) {
    case PaddingPolicy::kLargestOnly:
      return kLargestPaddingClass;
    case PaddingPolicy::kSmallestFitting:
      for (std::size_t c : kPaddingClasses) {
        if (content_size < c) return c;  // one byte is always the 0x80 marker
      }
      break;
  }
  return Error{Errc::kInvalidArgument, "unknown padding policy"};
}

Result<Bytes> Pad(ByteSpan content, PaddingPolicy policy) {
  auto size = PaddedSize(content.size(), policy);
  if (!size) return size.error();
  Bytes out(*size, 0);
  std::copy(content.begin(), content.end(), out.begin());
  // sodium_pad pads to the next multiple of the block size, always adding at
  // least one byte; with block size = class size and content < class size that
  // is exactly the class size.
  std::size_t padded_len = 0;
  if (sodium_pad(&padded_len, out.data(), content.size(), *size, out.size()) != 0 ||
      padded_len != out.size()) {
    return Error{Errc::kInternal, "sodium_pad failed"};
  }
  return out;
}

Result<Bytes> Unpad(ByteSpan padded) {
  if (!IsPaddingClass(padded.size())) {
    return Error{Errc::kMalformed, "padded size is not a padding class"};
  }
  std::size_t unpadded_len = 0;
  // SECURITY: sodium_unpad scans the whole block in constant time; the block
  // size is the whole buffer, so the marker may sit anywhere in it.
  if (sodium_unpad(&unpadded_len, padded.data(), padded.size(), padded.size()) != 0) {
    return Error{Errc::kMalformed, "bad padding"};
  }
  return Bytes(padded.begin(), padded.begin() + static_cast<std::ptrdiff_t>(unpadded_len));
}

}  // namespace rhizome::protocol
