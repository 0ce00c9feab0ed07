// Fuzzes invite parsing in both forms: the input is tried as a binary invite
// (ParseInvite) and as invite code text (ParseInviteCode).
//
// Invariants (a violation aborts): a parsed invite serialises and formats;
// parsing those gives the same bytes again; a code's text form re-parses.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "rhizome/crypto/init.h"
#include "rhizome/protocol/invite.h"

using rhizome::ByteSpan;
namespace p = rhizome::protocol;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckInvite(const p::Invite& invite) {
  auto bytes = p::SerializeInvite(invite);
  Check(bytes.ok() && bytes->size() <= p::kMaxInviteBytes);
  auto reparsed = p::ParseInvite(*bytes);
  Check(reparsed.ok());
  Check(p::SerializeInvite(*reparsed).value() == *bytes);
  auto code = p::FormatInviteCode(invite);
  Check(code.ok() && code->size() <= p::kMaxInviteCodeChars);
  auto from_code = p::ParseInviteCode(*code);
  Check(from_code.ok());
  Check(p::SerializeInvite(*from_code).value() == *bytes);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (!rhizome::crypto::Init()) std::abort();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (auto invite = p::ParseInvite(ByteSpan(data, size))) CheckInvite(*invite);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto invite = p::ParseInviteCode(text)) CheckInvite(*invite);
  return 0;
}
