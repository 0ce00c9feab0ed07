// Transport framing (DESIGN §5; byte layout in docs/protocol/framing.md).
//
// A frame is a 2-byte big-endian length followed by that many body bytes (the
// body is a Noise message: a handshake message or a transport ciphertext).
// This module is sans-IO: it turns bodies into bytes and bytes into bodies and
// never touches a socket, a clock or Asio.
//
// Invariants of FrameDecoder:
// - It accepts the byte stream in any split: one byte at a time, many frames
//   in one chunk, or a frame spread over many chunks; the frames it yields are
//   the same.
// - Every length prefix is checked as soon as its two bytes arrive, before any
//   of the body is awaited: a frame longer than max_frame_bytes, or a
//   zero-length frame, fails the decoder at once.
// - It never holds more than max_buffered_bytes of undelivered input.
// - Once it has failed it stays failed: Feed() returns the same error, Next()
//   yields nothing. The connection must be closed.
//
// Zero-length frames: always a protocol error (kMalformed). Every Noise
// message is at least 16 bytes, so an empty frame can only be garbage; it is
// never treated as a keep-alive (it would be unauthenticated). Keep-alives are
// authenticated Ping messages inside frames (transport.h).
//
// Thread safety: FrameDecoder is a plain object; one instance must not be used
// from two threads at once. The free functions are pure.
#pragma once

#include <cstddef>
#include <optional>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/result.h"

namespace rhizome::protocol {

// Size of the length prefix.
inline constexpr std::size_t kFrameHeaderBytes = 2;
// Largest frame body (the 16-bit length prefix's maximum).
inline constexpr std::size_t kMaxFrameBytes = 65535;
// Smallest frame body: empty frames are refused (see above).
inline constexpr std::size_t kMinFrameBytes = 1;
// Default cap on undelivered bytes a decoder holds: two maximal frames.
inline constexpr std::size_t kDefaultMaxBufferedBytes = 2 * (kFrameHeaderBytes + kMaxFrameBytes);

// Appends one frame (length prefix + body) to `out`.
// Errors: kInvalidArgument if body is empty or longer than kMaxFrameBytes
// (`out` is then unchanged).
Status AppendFrame(Bytes& out, ByteSpan body);

// One frame as a new byte vector. Errors: as AppendFrame.
Result<Bytes> EncodeFrame(ByteSpan body);

struct FrameDecoderLimits {
  // Frames with a longer body fail the decoder (kLimitExceeded). Clamped to
  // [kMinFrameBytes, kMaxFrameBytes]. A connection that only expects small
  // frames (e.g. during a handshake) sets it lower.
  std::size_t max_frame_bytes = kMaxFrameBytes;
  // Undelivered bytes (a partial frame plus complete frames not yet taken with
  // Next()) above this fail the decoder (kLimitExceeded). Raised to at least
  // max_frame_bytes + kFrameHeaderBytes so that one maximal frame always fits.
  std::size_t max_buffered_bytes = kDefaultMaxBufferedBytes;
};

class FrameDecoder {
 public:
  explicit FrameDecoder(FrameDecoderLimits limits = {});

  // Appends received bytes and checks every length prefix that is now
  // complete. Take the complete frames with Next() before feeding more: a
  // caller that feeds at most (max_buffered_bytes - max_frame_bytes -
  // kFrameHeaderBytes) bytes between drains never hits the buffer limit on a
  // well-behaved stream.
  // Errors (each one leaves the decoder failed, and every later call returns it):
  //   kLimitExceeded  "frame length exceeds the limit"   a length prefix above max_frame_bytes
  //   kMalformed      "zero-length frame"                 a length prefix of 0
  //   kLimitExceeded  "too many buffered bytes"          held bytes would exceed max_buffered_bytes
  Status Feed(ByteSpan data);

  // The next complete frame body in stream order, or nullopt if none is
  // complete yet or the decoder has failed.
  std::optional<Bytes> Next();

  bool failed() const noexcept { return !status_.ok(); }
  // OK, or the error that failed the decoder.
  const Status& status() const noexcept { return status_; }
  // Bytes held and not yet returned by Next().
  std::size_t buffered_bytes() const noexcept { return buffer_.size() - read_pos_; }
  // True if held bytes do not end on a frame boundary (some frame is still
  // incomplete). At end of stream this means the peer stopped mid-frame.
  bool has_partial_frame() const noexcept { return scan_pos_ != buffer_.size(); }
  const FrameDecoderLimits& limits() const noexcept { return limits_; }

 private:
  Status Fail(Error error);

  FrameDecoderLimits limits_;
  Bytes buffer_;
  std::size_t read_pos_ = 0;  // start of the first undelivered frame
  std::size_t scan_pos_ = 0;  // end of the last complete frame = start of the incomplete one
  Status status_;
};

}  // namespace rhizome::protocol
