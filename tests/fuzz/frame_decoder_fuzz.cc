// Fuzzes FrameDecoder (any split of any byte stream) and, for every frame it
// yields, ParseTransportMessage (what a frame's plaintext carries).
//
// Input layout: byte 0 picks max_frame_bytes, byte 1 seeds the chunk sizes, the
// rest is the stream. Invariants (a violation aborts):
// - the decoder yields exactly the frames a simple reference decoder finds in
//   the whole stream, fails exactly when the reference meets a bad prefix, and
//   reports a partial frame exactly when bytes are left over;
// - a parsed TransportMessage serialises, and re-parsing that gives the same
//   bytes again.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "rhizome/crypto/init.h"
#include "rhizome/protocol/frame.h"
#include "rhizome/protocol/transport.h"

using rhizome::Bytes;
using rhizome::ByteSpan;
namespace p = rhizome::protocol;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckTransportMessage(const Bytes& body) {
  auto message = p::ParseTransportMessage(body);
  if (!message) return;
  auto again = p::SerializeTransportMessage(*message);
  Check(again.ok());
  auto reparsed = p::ParseTransportMessage(*again);
  Check(reparsed.ok());
  auto third = p::SerializeTransportMessage(*reparsed);
  Check(third.ok() && *third == *again);
}

struct Reference {
  std::vector<Bytes> frames;
  bool failed = false;
  bool leftover = false;
};

Reference Decode(ByteSpan stream, std::size_t max_frame) {
  Reference r;
  std::size_t pos = 0;
  while (stream.size() - pos >= 2) {
    const std::size_t len = (std::size_t{stream[pos]} << 8) | stream[pos + 1];
    if (len == 0 || len > max_frame) {
      r.failed = true;
      return r;
    }
    if (stream.size() - pos - 2 < len) break;
    r.frames.emplace_back(stream.begin() + static_cast<std::ptrdiff_t>(pos + 2),
                          stream.begin() + static_cast<std::ptrdiff_t>(pos + 2 + len));
    pos += 2 + len;
  }
  r.leftover = pos != stream.size();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (!rhizome::crypto::Init()) std::abort();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // Small limits are the interesting ones; 0 means the full 65535.
  const std::size_t max_frame = data[0] == 0 ? p::kMaxFrameBytes : std::size_t{data[0]} * 4;
  std::uint32_t chunk_seed = data[1];
  const ByteSpan stream(data + 2, size - 2);

  p::FrameDecoder decoder(p::FrameDecoderLimits{.max_frame_bytes = max_frame});
  std::vector<Bytes> frames;
  bool failed = false;
  std::size_t pos = 0;
  while (pos < stream.size()) {
    chunk_seed = chunk_seed * 1103515245u + 12345u;
    const std::size_t chunk = std::min<std::size_t>(1 + (chunk_seed >> 16) % 257, stream.size() - pos);
    if (!decoder.Feed(stream.subspan(pos, chunk))) {
      failed = true;
      break;
    }
    pos += chunk;
    while (auto frame = decoder.Next()) frames.push_back(std::move(*frame));
  }
  const Reference ref = Decode(stream, max_frame);
  Check(failed == ref.failed);
  Check(decoder.failed() == ref.failed);
  if (!failed) {
    Check(frames == ref.frames);
    Check(decoder.has_partial_frame() == ref.leftover);
  } else {
    // Frames delivered before the failure are a prefix of the reference's.
    Check(frames.size() <= ref.frames.size());
    for (std::size_t i = 0; i < frames.size(); ++i) Check(frames[i] == ref.frames[i]);
    Check(!decoder.Next().has_value());
  }
  for (const auto& f : frames) CheckTransportMessage(f);
  return 0;
}
