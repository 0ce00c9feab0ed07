// Contact cards (DESIGN §4, §6): who a contact is and where to send to them.
// Field by field in docs/protocol/contact-card.md.
//
// A card travels only inside an end-to-end session (DESIGN §6.3): its queues
// carry send keys, which are capabilities for writing to the owner's inbox.
// The identity part (identity key, Noise key, device certificate) is what a
// safety number and the KK confirmation bind; a card alone proves nothing.
//
// Invariant: a ContactCard returned by ParseContactCard has passed
// ValidateContactCard, including the device certificate check.
// Thread safety: value types and pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/result.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/protocol/relay_address.h"
#include "rhizome/protocol/wire_types.h"

namespace rhizome::protocol {

// The card format version this build writes and reads.
inline constexpr std::uint32_t kContactCardVersion = 1;
// Largest encoded card, checked before decoding.
inline constexpr std::size_t kMaxContactCardBytes = 4096;
// Most inbox queues on one card (DESIGN §9: ideally two relays).
inline constexpr std::size_t kMaxCardQueues = 4;
inline constexpr std::size_t kSendKeyBytes = 32;

// One one-way queue on a relay that the card's owner reads and the card's
// receiver writes to.
struct MessageQueue {
  RelayAddress relay;
  Id sender_id{};           // the queue's sender id (SEND's entity id)
  crypto::SecretBytes send_key;  // 32 bytes: keys SEND's BLAKE2b authorizer
  PublicKey seal_key{};     // the owner's X25519 key for the per-path outer layer

  MessageQueue Clone() const;
};

// Errors: kMalformed (ids/keys all zero, send key not 32 bytes), or the relay's errors.
Status ValidateMessageQueue(const MessageQueue& queue);

struct ContactCard {
  std::string display_name;  // ValidateDisplayName (identity.h)
  PublicKey identity_key{};  // Ed25519
  PublicKey noise_key{};     // X25519 Noise static key
  Signature device_certificate{};  // identity key's signature binding noise_key
  std::vector<std::uint16_t> versions;  // wire versions spoken, ascending
  std::vector<MessageQueue> queues;     // 0..kMaxCardQueues
  std::vector<DirectAddress> direct_addresses;  // 0..kMaxDirectAddresses

  ContactCard Clone() const;
};

// Checks every field and verifies the device certificate.
// Errors: kMalformed (a field is wrong: name, key sizes, zero keys, hosts,
// ports, versions), kLimitExceeded (too many queues, addresses or versions),
// kUnsupported (no common wire version), kAuthenticationFailed (the device
// certificate does not verify).
Status ValidateContactCard(const ContactCard& card);

// Errors: kLimitExceeded "contact card is too large" if bytes.size() >
// kMaxContactCardBytes (checked first); kMalformed if protobuf refuses the
// bytes or the version field is missing; kUnsupported if the card version is
// not kContactCardVersion; then as ValidateContactCard.
Result<ContactCard> ParseContactCard(ByteSpan bytes);

// Errors: as ValidateContactCard; kLimitExceeded if the encoding would exceed
// kMaxContactCardBytes.
Result<Bytes> SerializeContactCard(const ContactCard& card);

}  // namespace rhizome::protocol
