#include "rhizome/protocol/frame.h"

#include <algorithm>

namespace rhizome::protocol {

namespace {

std::size_t ReadLength(const Bytes& buffer, std::size_t pos) {
  return (static_cast<std::size_t>(buffer[pos]) << 8) | static_cast<std::size_t>(buffer[pos + 1]);
}

FrameDecoderLimits Clamp(FrameDecoderLimits limits) {
  limits.max_frame_bytes = std::clamp(limits.max_frame_bytes, kMinFrameBytes, kMaxFrameBytes);
  limits.max_buffered_bytes =
      std::max(limits.max_buffered_bytes, limits.max_frame_bytes + kFrameHeaderBytes);
  return limits;
}

}  // namespace

Status AppendFrame(Bytes& out, ByteSpan body) {
  if (body.size() < kMinFrameBytes) {
    return Error{Errc::kInvalidArgument, "frame body is empty"};
  }
  if (body.size() > kMaxFrameBytes) {
    return Error{Errc::kInvalidArgument, "frame body is longer than 65535 bytes"};
  }
  out.reserve(out.size() + kFrameHeaderBytes + body.size());
  out.push_back(static_cast<std::uint8_t>(body.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(body.size() & 0xff));
  Append(out, body);
  return {};
}

Result<Bytes> EncodeFrame(ByteSpan body) {
  Bytes out;
  RHIZOME_TRY(AppendFrame(out, body));
  return out;
}

FrameDecoder::FrameDecoder(FrameDecoderLimits limits) : limits_(Clamp(limits)) {}

Status FrameDecoder::Fail(Error error) {
  status_ = error;
  // Nothing held is delivered any more; release it.
  Bytes().swap(buffer_);
  read_pos_ = 0;
  scan_pos_ = 0;
  return status_;
}

Status FrameDecoder::Feed(ByteSpan data) {
  if (failed()) return status_;
  if (data.empty()) return {};
  // SECURITY: the cap is checked before the bytes are copied, so a peer can
  // never make this object hold more than max_buffered_bytes.
  if (data.size() > limits_.max_buffered_bytes - buffered_bytes()) {
    return Fail(Error{Errc::kLimitExceeded, "too many buffered bytes"});
  }
  if (read_pos_ > 0) {  // drop delivered frames before growing the buffer
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(read_pos_));
    scan_pos_ -= read_pos_;
    read_pos_ = 0;
  }
  Append(buffer_, data);
  while (buffer_.size() - scan_pos_ >= kFrameHeaderBytes) {
    const std::size_t length = ReadLength(buffer_, scan_pos_);
    // SECURITY: the length prefix is judged before any of the body is awaited.
    if (length == 0) return Fail(Error{Errc::kMalformed, "zero-length frame"});
    if (length > limits_.max_frame_bytes) {
      return Fail(Error{Errc::kLimitExceeded, "frame length exceeds the limit"});
    }
    if (buffer_.size() - scan_pos_ - kFrameHeaderBytes < length) break;  // body incomplete
    scan_pos_ += kFrameHeaderBytes + length;
  }
  return {};
}

std::optional<Bytes> FrameDecoder::Next() {
  if (failed() || read_pos_ >= scan_pos_) return std::nullopt;
  const std::size_t length = ReadLength(buffer_, read_pos_);
  const auto begin = buffer_.begin() + static_cast<std::ptrdiff_t>(read_pos_ + kFrameHeaderBytes);
  Bytes frame(begin, begin + static_cast<std::ptrdiff_t>(length));
  read_pos_ += kFrameHeaderBytes + length;
  if (read_pos_ == buffer_.size()) {  // everything delivered: start again at 0
    buffer_.clear();
    read_pos_ = 0;
    scan_pos_ = 0;
  }
  return frame;
}

}  // namespace rhizome::protocol
