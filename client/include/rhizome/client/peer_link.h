// PeerLink: our side of a direct link to a contact's daemon (DESIGN §5, §11).
//
// A Noise_XK channel (ChannelKind::kPeerLink) to the address in the contact's
// card, proving our Noise static key and requiring theirs (pinned from the
// card, so a stranger at that address fails the handshake). On it we post
// PeerMessages and read PeerAcks (protocol/transport.h); the listening side is
// the daemon's (client/src/direct_listener.h).
//
// Every wait is bounded: Connect by its deadline, TakeAcks by its argument.
// I/O model: a private event loop that runs only inside calls (as RelayLink):
// posted messages are written when the next call runs the loop, at the latest
// the next TakeAcks. A peer that sends anything but PeerAck, Ping/Pong or
// Close, or more acks than we have messages in flight, is cut off.
// Thread safety: none; one thread at a time. Move-only.
#pragma once

#include <chrono>
#include <memory>

#include "rhizome/client/peer_port.h"

namespace rhizome::client {

class PeerLink final : public PeerPort {
 public:
  // Errors: kIo "peer unreachable" (resolve, connect or handshake failed,
  // including a peer that does not hold the pinned key), "direct link timed
  // out"; kUnsupported (no common wire version).
  static Result<PeerLink> Connect(const PeerTarget& target, const crypto::X25519KeyPair& self,
                                  std::chrono::milliseconds deadline);

  PeerLink(PeerLink&&) noexcept;
  PeerLink& operator=(PeerLink&&) noexcept;
  ~PeerLink() override;

  bool CheckOpen() override;
  Status Post(const protocol::Id& delivery_id, ByteSpan blob) override;
  std::vector<protocol::Id> TakeAcks(std::chrono::milliseconds wait) override;
  std::size_t in_flight() const override;

 private:
  struct Impl;
  explicit PeerLink(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The PeerConnectFn for real links.
PeerConnectFn PeerLinkConnector();

}  // namespace rhizome::client
