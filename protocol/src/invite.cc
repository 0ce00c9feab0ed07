#include "rhizome/protocol/invite.h"

#include <algorithm>

#include "base32.h"
#include "rhizome/crypto/hash.h"
#include "rhizome/wire/v1/invite.pb.h"
#include "text_util.h"
#include "wire_codec.h"

namespace rhizome::protocol {

namespace {

constexpr std::string_view kChecksumLabel = "rhizome/v1/invite-code-checksum";

Error Malformed(const char* message) { return Error{Errc::kMalformed, message}; }

ByteArray<kInviteChecksumBytes> InviteChecksum(ByteSpan payload) {
  crypto::Blake2b h(crypto::kBlake2b256Bytes);
  h.Update(AsBytes(kChecksumLabel)).Update(payload);
  ByteArray<crypto::kBlake2b256Bytes> digest;
  h.Final(digest);
  ByteArray<kInviteChecksumBytes> out;
  std::copy_n(digest.begin(), out.size(), out.begin());
  return out;
}

}  // namespace

namespace internal {
void WipeSecrets(rhizome::wire::v1::Invite& message) {
  WipeField(message.mutable_invite_secret());
  if (message.has_relay()) WipeSecrets(*message.mutable_relay());
}
}  // namespace internal

Invite Invite::Clone() const {
  Invite copy;
  copy.invite_key = invite_key;
  copy.invite_secret = invite_secret.Clone();
  copy.fingerprint = fingerprint;
  copy.expires_at = expires_at;
  copy.relay = relay.Clone();
  copy.request_queue_id = request_queue_id;
  copy.multi_use = multi_use;
  copy.direct_addresses = direct_addresses;
  return copy;
}

Status ValidateInvite(const Invite& invite) {
  if (IsAllZero(invite.invite_key)) return Malformed("invite key is all zeros");
  if (invite.invite_secret.size() != kInviteSecretBytes) {
    return Malformed("invite secret is not 32 bytes");
  }
  if (IsAllZero(invite.invite_secret.expose())) return Malformed("invite secret is all zeros");
  if (IsAllZero(invite.fingerprint)) return Malformed("invite fingerprint is all zeros");
  if (invite.expires_at == 0) return Malformed("invite has no expiry");
  RHIZOME_TRY(ValidateRelayAddress(invite.relay));
  if (IsAllZero(invite.request_queue_id)) return Malformed("invite request queue id is all zeros");
  if (invite.direct_addresses.size() > kMaxDirectAddresses) {
    return Error{Errc::kLimitExceeded, "invite has too many direct addresses"};
  }
  for (const auto& address : invite.direct_addresses) RHIZOME_TRY(ValidateDirectAddress(address));
  return {};
}

Result<ByteArray<kInviteFingerprintBytes>> InviteFingerprint(ByteSpan invite_secret,
                                                             ByteSpan identity_public_key) {
  if (invite_secret.size() != kInviteSecretBytes) {
    return Error{Errc::kInvalidArgument, "invite secret is not 32 bytes"};
  }
  if (identity_public_key.size() != kKeyBytes) {
    return Error{Errc::kInvalidArgument, "identity key is not 32 bytes"};
  }
  crypto::Blake2b h(crypto::kBlake2b256Bytes);
  h.Update(invite_secret).Update(identity_public_key);
  ByteArray<crypto::kBlake2b256Bytes> digest;
  h.Final(digest);
  ByteArray<kInviteFingerprintBytes> out;
  std::copy_n(digest.begin(), out.size(), out.begin());
  crypto::Wipe(digest);
  return out;
}

bool InviteExpired(const Invite& invite, std::uint64_t now_unix_seconds) noexcept {
  return now_unix_seconds >= invite.expires_at;
}

Result<Invite> ParseInvite(ByteSpan bytes) {
  rhizome::wire::v1::Invite message;
  internal::ScopedWipe wipe(message);
  RHIZOME_TRY(internal::ParseBounded(message, bytes, kMaxInviteBytes, "invite is too large",
                                     "invite does not parse"));
  if (message.version() == 0) return Malformed("invite has no version");
  if (message.version() != kInviteVersion) {
    return Error{Errc::kUnsupported, "invite version is not supported"};
  }
  if (static_cast<std::size_t>(message.direct_addresses_size()) > kMaxDirectAddresses) {
    return Error{Errc::kLimitExceeded, "invite has too many direct addresses"};
  }
  Invite invite;
  if (!internal::CopyExact(message.invite_key(), invite.invite_key)) {
    return Malformed("invite key is not 32 bytes");
  }
  if (message.invite_secret().size() != kInviteSecretBytes) {
    return Malformed("invite secret is not 32 bytes");
  }
  invite.invite_secret = crypto::SecretBytes::CopyFrom(internal::FieldBytes(message.invite_secret()));
  if (!internal::CopyExact(message.fingerprint(), invite.fingerprint)) {
    return Malformed("invite fingerprint is not 16 bytes");
  }
  invite.expires_at = message.expires_at();
  if (!message.has_relay()) return Malformed("invite has no relay address");
  auto relay = internal::RelayAddressFromProto(message.relay());
  if (!relay) return relay.error();
  invite.relay = std::move(relay).value();
  if (!internal::CopyExact(message.request_queue_id(), invite.request_queue_id)) {
    return Malformed("invite request queue id is not 16 bytes");
  }
  invite.multi_use = message.multi_use();
  for (const auto& a : message.direct_addresses()) {
    auto address = internal::DirectAddressFromProto(a);
    if (!address) return address.error();
    invite.direct_addresses.push_back(std::move(address).value());
  }
  RHIZOME_TRY(ValidateInvite(invite));
  return invite;
}

Result<Bytes> SerializeInvite(const Invite& invite) {
  RHIZOME_TRY(ValidateInvite(invite));
  rhizome::wire::v1::Invite message;
  internal::ScopedWipe wipe(message);
  message.set_version(kInviteVersion);
  message.set_invite_key(internal::ToField(invite.invite_key));
  message.set_invite_secret(internal::ToField(invite.invite_secret.expose()));
  message.set_fingerprint(internal::ToField(invite.fingerprint));
  message.set_expires_at(invite.expires_at);
  internal::RelayAddressToProto(invite.relay, message.mutable_relay());
  message.set_request_queue_id(internal::ToField(invite.request_queue_id));
  message.set_multi_use(invite.multi_use);
  for (const auto& a : invite.direct_addresses) {
    internal::DirectAddressToProto(a, message.add_direct_addresses());
  }
  return internal::SerializeBounded(message, kMaxInviteBytes, "invite is too large");
}

Result<Invite> ParseInviteCode(std::string_view text) {
  if (text.size() > kMaxInviteCodeChars) {
    return Error{Errc::kLimitExceeded, "invite code is too long"};
  }
  std::string clean = internal::StripAsciiWhitespace(text);
  const auto wipe_clean = [&clean] {
    crypto::Wipe({reinterpret_cast<std::uint8_t*>(clean.data()), clean.size()});
  };
  if (!internal::StartsWithIgnoreCase(clean, kInviteCodeScheme)) {
    wipe_clean();
    return Malformed("not a rhizome-invite: code");
  }
  auto decoded = internal::Base32Decode(std::string_view(clean).substr(kInviteCodeScheme.size()));
  wipe_clean();
  if (!decoded) return Malformed("invite code is bad base32");
  Bytes& raw = *decoded;
  crypto::WipeOnExit wipe_raw(raw);
  if (raw.size() <= kInviteChecksumBytes) return Malformed("invite code is too short");
  const ByteSpan payload(raw.data(), raw.size() - kInviteChecksumBytes);
  const auto checksum = InviteChecksum(payload);
  if (!std::equal(checksum.begin(), checksum.end(), raw.end() - kInviteChecksumBytes)) {
    return Malformed("invite code checksum mismatch");
  }
  return ParseInvite(payload);
}

Result<std::string> FormatInviteCode(const Invite& invite) {
  auto payload = SerializeInvite(invite);
  if (!payload) return payload.error();
  crypto::WipeOnExit wipe_payload(*payload);
  Bytes raw;  // reserved up front so no unwiped copy is left behind by growth
  raw.reserve(payload->size() + kInviteChecksumBytes);
  crypto::WipeOnExit wipe_raw(raw);
  Append(raw, *payload);
  Append(raw, InviteChecksum(*payload));
  return std::string(kInviteCodeScheme) + internal::Base32Encode(raw);
}

}  // namespace rhizome::protocol
