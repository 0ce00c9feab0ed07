#include "wire_codec.h"

#include <limits>

namespace rhizome::protocol::internal {

namespace {
Error Malformed(const char* message) { return Error{Errc::kMalformed, message}; }
}  // namespace

void WipeField(std::string* field) {
  if (field->empty()) return;
  crypto::Wipe({reinterpret_cast<std::uint8_t*>(field->data()), field->size()});
  field->clear();
}

Status ParseBounded(google::protobuf::Message& message, ByteSpan data, std::size_t max_bytes,
                    const char* too_large, const char* bad_encoding) {
  if (data.size() > max_bytes) return Error{Errc::kLimitExceeded, too_large};
  // Every limit of this module is far below INT_MAX, the most ParseFromArray takes.
  if (!message.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    return Malformed(bad_encoding);
  }
  return {};
}

Result<Bytes> SerializeBounded(const google::protobuf::Message& message, std::size_t max_bytes,
                               const char* too_large) {
  const std::size_t size = message.ByteSizeLong();
  if (size > max_bytes) return Error{Errc::kLimitExceeded, too_large};
  Bytes out(size);
  if (!message.SerializeToArray(out.data(), static_cast<int>(size))) {
    return Error{Errc::kInternal, "protobuf serialisation failed"};
  }
  return out;
}

Error OneofNotSet(const google::protobuf::Message& message, const char* what_malformed,
                  const char* what_unsupported) {
  const auto& unknown = message.GetReflection()->GetUnknownFields(message);
  if (!unknown.empty()) return Error{Errc::kUnsupported, what_unsupported};
  return Malformed(what_malformed);
}

Status VersionsFromProto(const google::protobuf::RepeatedField<std::uint32_t>& in,
                         std::vector<std::uint16_t>& out) {
  if (static_cast<std::size_t>(in.size()) > kMaxVersions) {
    return Error{Errc::kLimitExceeded, "version list has too many entries"};
  }
  out.clear();
  for (std::uint32_t v : in) {
    if (v > std::numeric_limits<std::uint16_t>::max()) return Malformed("version above 65535");
    out.push_back(static_cast<std::uint16_t>(v));
  }
  return ValidateVersionList(out);
}

void VersionsToProto(const std::vector<std::uint16_t>& in,
                     google::protobuf::RepeatedField<std::uint32_t>* out) {
  out->Clear();
  for (std::uint16_t v : in) out->Add(v);
}

Result<RelayAddress> RelayAddressFromProto(const rhizome::wire::v1::RelayAddress& in) {
  RelayAddress out;
  if (!CopyExact(in.noise_key(), out.noise_key)) return Malformed("relay noise key is not 32 bytes");
  if (!CopyExact(in.signing_key(), out.signing_key)) {
    return Malformed("relay signing key is not 32 bytes");
  }
  if (in.host().size() > kMaxHostBytes || !IsCanonicalHost(in.host())) {
    return Malformed("relay address has a bad host");
  }
  out.host = in.host();
  if (in.port() == 0 || in.port() > 65535) return Malformed("relay address has a bad port");
  out.port = static_cast<std::uint16_t>(in.port());
  RHIZOME_TRY(VersionsFromProto(in.versions(), out.versions));
  if (!in.psk().empty()) {
    if (in.psk().size() != kRelayPskBytes) return Malformed("relay psk is not 32 bytes");
    out.psk = crypto::SecretBytes::CopyFrom(FieldBytes(in.psk()));
  }
  RHIZOME_TRY(ValidateRelayAddress(out));
  return out;
}

void RelayAddressToProto(const RelayAddress& in, rhizome::wire::v1::RelayAddress* out) {
  out->set_noise_key(ToField(in.noise_key));
  out->set_signing_key(ToField(in.signing_key));
  out->set_host(in.host);
  out->set_port(in.port);
  VersionsToProto(in.versions, out->mutable_versions());
  if (!in.psk.empty()) out->set_psk(ToField(in.psk.expose()));
}

Result<DirectAddress> DirectAddressFromProto(const rhizome::wire::v1::DirectAddress& in) {
  DirectAddress out;
  if (in.host().size() > kMaxHostBytes || !IsCanonicalHost(in.host())) {
    return Malformed("direct address has a bad host");
  }
  out.host = in.host();
  if (in.port() == 0 || in.port() > 65535) return Malformed("direct address has a bad port");
  out.port = static_cast<std::uint16_t>(in.port());
  return out;
}

void DirectAddressToProto(const DirectAddress& in, rhizome::wire::v1::DirectAddress* out) {
  out->set_host(in.host);
  out->set_port(in.port);
}

Result<MessageQueue> MessageQueueFromProto(const rhizome::wire::v1::MessageQueue& in) {
  MessageQueue out;
  if (!in.has_relay()) return Malformed("queue has no relay address");
  auto relay = RelayAddressFromProto(in.relay());
  if (!relay) return relay.error();
  out.relay = std::move(relay).value();
  if (!CopyExact(in.sender_id(), out.sender_id)) return Malformed("queue sender id is not 16 bytes");
  if (in.send_key().size() != kSendKeyBytes) return Malformed("queue send key is not 32 bytes");
  out.send_key = crypto::SecretBytes::CopyFrom(FieldBytes(in.send_key()));
  if (!CopyExact(in.seal_key(), out.seal_key)) return Malformed("queue seal key is not 32 bytes");
  RHIZOME_TRY(ValidateMessageQueue(out));
  return out;
}

void MessageQueueToProto(const MessageQueue& in, rhizome::wire::v1::MessageQueue* out) {
  RelayAddressToProto(in.relay, out->mutable_relay());
  out->set_sender_id(ToField(in.sender_id));
  out->set_send_key(ToField(in.send_key.expose()));
  out->set_seal_key(ToField(in.seal_key));
}

void WipeSecrets(rhizome::wire::v1::RelayAddress& message) { WipeField(message.mutable_psk()); }

void WipeSecrets(rhizome::wire::v1::MessageQueue& message) {
  if (message.has_relay()) WipeSecrets(*message.mutable_relay());
  WipeField(message.mutable_send_key());
}

}  // namespace rhizome::protocol::internal
