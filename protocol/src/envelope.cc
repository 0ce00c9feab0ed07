#include "rhizome/protocol/envelope.h"

#include "rhizome/crypto/hash.h"
#include "rhizome/wire/v1/envelope.pb.h"
#include "wire_codec.h"

namespace rhizome::protocol {

namespace {
constexpr std::string_view kDigestLabel = "rhizome/v1/envelope-digest";
// Protobuf enums are int32 on the wire; negative values are refused.
constexpr std::uint32_t kMaxEnumValue = 0x7fffffff;
Error Malformed(const char* message) { return Error{Errc::kMalformed, message}; }
}  // namespace

bool IsKnownEnvelopeType(EnvelopeType type) noexcept {
  switch (type) {
    case EnvelopeType::kText:
    case EnvelopeType::kReceipt:
    case EnvelopeType::kContactCard:
    case EnvelopeType::kConfirmation:
    case EnvelopeType::kQueueUpdate:
    case EnvelopeType::kGroupControl:
      return true;
  }
  return false;
}

Status ValidateEnvelope(const Envelope& envelope) {
  if (IsAllZero(envelope.message_id)) return Malformed("envelope message id is all zeros");
  if (envelope.seq == 0) return Malformed("envelope sequence number is 0");
  if (envelope.seq == 1 && envelope.prev_hash) {
    return Malformed("first envelope carries a previous hash");
  }
  if (envelope.seq > 1 && !envelope.prev_hash) {
    return Malformed("envelope lacks the previous hash");
  }
  const auto type = static_cast<std::uint32_t>(envelope.type);
  if (type == 0 || type > kMaxEnumValue) return Malformed("envelope type is out of range");
  if (envelope.body.size() > kMaxEnvelopeBodyBytes) {
    return Error{Errc::kLimitExceeded, "envelope body is too large"};
  }
  return {};
}

Result<Envelope> ParseEnvelope(ByteSpan bytes) {
  rhizome::wire::v1::Envelope message;
  RHIZOME_TRY(internal::ParseBounded(message, bytes, kMaxEnvelopeBytes, "envelope is too large",
                                     "envelope does not parse"));
  if (message.version() == 0) return Malformed("envelope has no version");
  if (message.version() != kEnvelopeVersion) {
    return Error{Errc::kUnsupported, "envelope version is not supported"};
  }
  Envelope envelope;
  if (!internal::CopyExact(message.message_id(), envelope.message_id)) {
    return Malformed("envelope message id is not 16 bytes");
  }
  envelope.seq = message.seq();
  if (!message.prev_hash().empty()) {
    Hash prev;
    if (!internal::CopyExact(message.prev_hash(), prev)) {
      return Malformed("envelope previous hash is not 32 bytes");
    }
    envelope.prev_hash = prev;
  }
  // Open enum: unknown values arrive intact and are kept.
  envelope.type = static_cast<EnvelopeType>(static_cast<std::uint32_t>(message.type()));
  envelope.sent_at_ms = message.sent_at_ms();
  if (message.body().size() > kMaxEnvelopeBodyBytes) {
    return Error{Errc::kLimitExceeded, "envelope body is too large"};
  }
  const ByteSpan body = internal::FieldBytes(message.body());
  envelope.body.assign(body.begin(), body.end());
  RHIZOME_TRY(ValidateEnvelope(envelope));
  return envelope;
}

Result<Bytes> SerializeEnvelope(const Envelope& envelope) {
  RHIZOME_TRY(ValidateEnvelope(envelope));
  rhizome::wire::v1::Envelope message;
  message.set_version(kEnvelopeVersion);
  message.set_message_id(internal::ToField(envelope.message_id));
  message.set_seq(envelope.seq);
  if (envelope.prev_hash) message.set_prev_hash(internal::ToField(*envelope.prev_hash));
  message.set_type(static_cast<rhizome::wire::v1::EnvelopeType>(
      static_cast<std::uint32_t>(envelope.type)));
  message.set_sent_at_ms(envelope.sent_at_ms);
  message.set_body(internal::ToField(envelope.body));
  return internal::SerializeBounded(message, kMaxEnvelopeBytes, "envelope is too large");
}

Hash EnvelopeDigest(ByteSpan serialized_envelope) {
  crypto::Blake2b h(crypto::kBlake2b256Bytes);
  h.Update(AsBytes(kDigestLabel)).Update(serialized_envelope);
  Hash digest;
  h.Final(digest);
  return digest;
}

}  // namespace rhizome::protocol
