#include "rhizome/protocol/contact_card.h"

#include "rhizome/protocol/identity.h"
#include "rhizome/wire/v1/contact_card.pb.h"
#include "wire_codec.h"

namespace rhizome::protocol {

namespace {
Error Malformed(const char* message) { return Error{Errc::kMalformed, message}; }
}  // namespace

namespace internal {
void WipeSecrets(rhizome::wire::v1::ContactCard& message) {
  for (auto& queue : *message.mutable_queues()) WipeSecrets(queue);
}
}  // namespace internal

MessageQueue MessageQueue::Clone() const {
  MessageQueue copy;
  copy.relay = relay.Clone();
  copy.sender_id = sender_id;
  copy.send_key = send_key.Clone();
  copy.seal_key = seal_key;
  return copy;
}

ContactCard ContactCard::Clone() const {
  ContactCard copy;
  copy.display_name = display_name;
  copy.identity_key = identity_key;
  copy.noise_key = noise_key;
  copy.device_certificate = device_certificate;
  copy.versions = versions;
  copy.queues.reserve(queues.size());
  for (const auto& q : queues) copy.queues.push_back(q.Clone());
  copy.direct_addresses = direct_addresses;
  return copy;
}

Status ValidateMessageQueue(const MessageQueue& queue) {
  RHIZOME_TRY(ValidateRelayAddress(queue.relay));
  if (IsAllZero(queue.sender_id)) return Malformed("queue sender id is all zeros");
  if (queue.send_key.size() != kSendKeyBytes) return Malformed("queue send key is not 32 bytes");
  if (IsAllZero(queue.send_key.expose())) return Malformed("queue send key is all zeros");
  if (IsAllZero(queue.seal_key)) return Malformed("queue seal key is all zeros");
  return {};
}

Status ValidateContactCard(const ContactCard& card) {
  if (!ValidateDisplayName(card.display_name)) return Malformed("card display name is invalid");
  if (IsAllZero(card.identity_key)) return Malformed("card identity key is all zeros");
  if (IsAllZero(card.noise_key)) return Malformed("card noise key is all zeros");
  RHIZOME_TRY(ValidateVersionList(card.versions));
  if (card.queues.size() > kMaxCardQueues) {
    return Error{Errc::kLimitExceeded, "card has too many queues"};
  }
  for (const auto& queue : card.queues) RHIZOME_TRY(ValidateMessageQueue(queue));
  if (card.direct_addresses.size() > kMaxDirectAddresses) {
    return Error{Errc::kLimitExceeded, "card has too many direct addresses"};
  }
  for (const auto& address : card.direct_addresses) RHIZOME_TRY(ValidateDirectAddress(address));
  // SECURITY: a card whose Noise key is not certified by its identity key is
  // refused here, so no caller can forget the check.
  if (!VerifyDeviceCertificate(card.identity_key, card.noise_key, card.device_certificate)) {
    return Error{Errc::kAuthenticationFailed, "card device certificate does not verify"};
  }
  return {};
}

Result<ContactCard> ParseContactCard(ByteSpan bytes) {
  rhizome::wire::v1::ContactCard message;
  internal::ScopedWipe wipe(message);
  RHIZOME_TRY(internal::ParseBounded(message, bytes, kMaxContactCardBytes,
                                     "contact card is too large", "contact card does not parse"));
  if (message.version() == 0) return Malformed("contact card has no version");
  if (message.version() != kContactCardVersion) {
    return Error{Errc::kUnsupported, "contact card version is not supported"};
  }
  // Counts are checked before any element is converted.
  if (static_cast<std::size_t>(message.queues_size()) > kMaxCardQueues) {
    return Error{Errc::kLimitExceeded, "card has too many queues"};
  }
  if (static_cast<std::size_t>(message.direct_addresses_size()) > kMaxDirectAddresses) {
    return Error{Errc::kLimitExceeded, "card has too many direct addresses"};
  }
  ContactCard card;
  if (message.display_name().size() > kMaxDisplayNameBytes) {
    return Malformed("card display name is invalid");
  }
  card.display_name = message.display_name();
  if (!internal::CopyExact(message.identity_key(), card.identity_key)) {
    return Malformed("card identity key is not 32 bytes");
  }
  if (!internal::CopyExact(message.noise_key(), card.noise_key)) {
    return Malformed("card noise key is not 32 bytes");
  }
  if (!internal::CopyExact(message.device_certificate(), card.device_certificate)) {
    return Malformed("card device certificate is not 64 bytes");
  }
  RHIZOME_TRY(internal::VersionsFromProto(message.versions(), card.versions));
  for (const auto& q : message.queues()) {
    auto queue = internal::MessageQueueFromProto(q);
    if (!queue) return queue.error();
    card.queues.push_back(std::move(queue).value());
  }
  for (const auto& a : message.direct_addresses()) {
    auto address = internal::DirectAddressFromProto(a);
    if (!address) return address.error();
    card.direct_addresses.push_back(std::move(address).value());
  }
  RHIZOME_TRY(ValidateContactCard(card));
  return card;
}

Result<Bytes> SerializeContactCard(const ContactCard& card) {
  RHIZOME_TRY(ValidateContactCard(card));
  rhizome::wire::v1::ContactCard message;
  internal::ScopedWipe wipe(message);
  message.set_version(kContactCardVersion);
  message.set_display_name(card.display_name);
  message.set_identity_key(internal::ToField(card.identity_key));
  message.set_noise_key(internal::ToField(card.noise_key));
  message.set_device_certificate(internal::ToField(card.device_certificate));
  internal::VersionsToProto(card.versions, message.mutable_versions());
  for (const auto& q : card.queues) internal::MessageQueueToProto(q, message.add_queues());
  for (const auto& a : card.direct_addresses) {
    internal::DirectAddressToProto(a, message.add_direct_addresses());
  }
  return internal::SerializeBounded(message, kMaxContactCardBytes, "contact card is too large");
}

}  // namespace rhizome::protocol
