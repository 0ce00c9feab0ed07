// Conversions between the generated protobuf classes (rhizome.wire.v1) and the
// public structs, shared by the parsers. Private to the protocol module: this
// is the only place outside the generated code that knows protobuf types, and
// no public header includes it.
#pragma once

#include <algorithm>
#include <string>

#include <google/protobuf/message.h>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/result.h"
#include "rhizome/crypto/secret.h"
#include "rhizome/protocol/contact_card.h"
#include "rhizome/protocol/relay_address.h"
#include "rhizome/protocol/wire_types.h"
#include "rhizome/wire/v1/common.pb.h"

namespace rhizome::wire::v1 {
class ContactCard;
class Invite;
class TransportMessage;
}  // namespace rhizome::wire::v1

namespace rhizome::protocol::internal {

inline ByteSpan FieldBytes(const std::string& field) {
  return {reinterpret_cast<const std::uint8_t*>(field.data()), field.size()};
}

inline std::string ToField(ByteSpan bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// Copies a field that must be exactly N bytes. False on any other size.
template <std::size_t N>
bool CopyExact(const std::string& field, ByteArray<N>& out) {
  if (field.size() != N) return false;
  std::copy_n(reinterpret_cast<const std::uint8_t*>(field.data()), N, out.begin());
  return true;
}

// Wipes a protobuf string field that held a secret, then empties it.
void WipeField(std::string* field);

// Checks the size limit, then parses. SECURITY: the limit is checked before
// protobuf sees a byte. Errors: kLimitExceeded with `too_large`; kMalformed
// with `bad_encoding` if protobuf refuses the bytes.
Status ParseBounded(google::protobuf::Message& message, ByteSpan data, std::size_t max_bytes,
                    const char* too_large, const char* bad_encoding);

// Serialises and checks the result against `max_bytes`.
// Errors: kLimitExceeded with `too_large`; kInternal if protobuf fails.
Result<Bytes> SerializeBounded(const google::protobuf::Message& message, std::size_t max_bytes,
                               const char* too_large);

// The error for a oneof that is not set: kUnsupported if the message carries
// unknown fields (a newer variant), else kMalformed.
Error OneofNotSet(const google::protobuf::Message& message, const char* what_malformed,
                  const char* what_unsupported);

// Version numbers on the wire are uint32; ours are uint16.
Status VersionsFromProto(const google::protobuf::RepeatedField<std::uint32_t>& in,
                         std::vector<std::uint16_t>& out);
void VersionsToProto(const std::vector<std::uint16_t>& in,
                     google::protobuf::RepeatedField<std::uint32_t>* out);

// Field-level conversions; the From functions validate fully.
Result<RelayAddress> RelayAddressFromProto(const rhizome::wire::v1::RelayAddress& in);
void RelayAddressToProto(const RelayAddress& in, rhizome::wire::v1::RelayAddress* out);
Result<DirectAddress> DirectAddressFromProto(const rhizome::wire::v1::DirectAddress& in);
void DirectAddressToProto(const DirectAddress& in, rhizome::wire::v1::DirectAddress* out);
Result<MessageQueue> MessageQueueFromProto(const rhizome::wire::v1::MessageQueue& in);
void MessageQueueToProto(const MessageQueue& in, rhizome::wire::v1::MessageQueue* out);

// Wipes every secret field (psk, send_key) of a parsed or serialised message.
void WipeSecrets(rhizome::wire::v1::RelayAddress& message);
void WipeSecrets(rhizome::wire::v1::MessageQueue& message);
void WipeSecrets(rhizome::wire::v1::ContactCard& message);       // contact_card.cc
void WipeSecrets(rhizome::wire::v1::Invite& message);            // invite.cc
void WipeSecrets(rhizome::wire::v1::TransportMessage& message);  // transport.cc

// Calls WipeSecrets(message) when it leaves scope, on every return path, so a
// secret parsed into or serialised from a protobuf object does not linger in
// its heap strings. Best effort: protobuf may have made temporary copies.
template <class M>
class ScopedWipe {
 public:
  explicit ScopedWipe(M& message) : message_(message) {}
  ~ScopedWipe() { WipeSecrets(message_); }
  ScopedWipe(const ScopedWipe&) = delete;
  ScopedWipe& operator=(const ScopedWipe&) = delete;

 private:
  M& message_;
};

}  // namespace rhizome::protocol::internal
