// Channel: the secure channel over TCP with Asio coroutines (DESIGN §5).
//
// A thin I/O shell around protocol::SecureSession (sans-IO): it reads from the
// socket into a bounded buffer, feeds the session, writes what the session
// produced, and enforces the deadlines and queue bounds. Shared by the client
// and the relay.
//
// NOT a public API: this header carries Asio types, so it lives outside every
// include/ directory and only the project's own executables and tests use it
// (DESIGN §3 keeps third-party types out of public headers).
//
// Deadlines (all named in ChannelLimits):
// - the whole handshake must finish within handshake_timeout;
// - after it, a peer that sends no complete frame for idle_timeout is cut off
//   (keep-alives are the layer above's job);
// - a write that makes no progress for write_timeout (a peer that stops
//   reading: slowloris writer side) closes the channel.
// Backpressure: Send() waits while more than max_write_queue_bytes are queued;
// TrySend() refuses instead.
// Memory: an idle channel holds no read buffer (it waits for readability and
// then reads into a per-thread scratch buffer), no write buffer and no writer
// coroutine (both exist only while there is something to write), and its
// deadlines are one timer with a callback. What remains is the socket, the
// session's two cipher keys (secure pool) and handshake hash, and the
// caller's Receive() coroutine, or with ReceiveEach() one wait handler. The
// two handlers an idle channel keeps pending (the read wait and the
// watchdog) are allocated at their exact size, not from Asio's per-thread
// recycling cache, which would hand them a larger block left by an earlier
// operation. About 1 KB per idle channel in all (docs/relay-internals.md).
// Precondition: the socket's executor is an asio::io_context's (or a strand
// over one); anything else aborts. The channel binds its socket and timers to
// io_context::executor_type, which is smaller than any_io_executor in every
// pending operation.
//
// "Idle" is measured where messages are read: the deadline moves when Receive()
// gets a complete message, so a consumer must keep a Receive() loop running.
// Thread safety: a Channel lives on one single-threaded io_context (the
// per-thread scratch buffer relies on it); call it from coroutines running
// there only.
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>
#include <functional>
#include <memory>
#include <string>

#include "rhizome/crypto/bytes.h"
#include "rhizome/crypto/random.h"
#include "rhizome/crypto/result.h"
#include "rhizome/protocol/secure_session.h"

namespace rhizome::net {

struct ChannelLimits {
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds idle_timeout{120'000};
  std::chrono::milliseconds write_timeout{30'000};
  std::size_t max_write_queue_bytes = 1u << 20;
};

class Channel : public std::enable_shared_from_this<Channel> {
 public:
  using Clock = std::chrono::steady_clock;

  // Runs the handshake on a connected socket. On success the channel is
  // established and its background writer and watchdog are running.
  // Errors: the session's handshake errors; kIo "connection closed" /
  // "handshake timed out" / socket errors.
  static asio::awaitable<Result<std::shared_ptr<Channel>>> Establish(
      asio::ip::tcp::socket socket, protocol::SecureSession session, ChannelLimits limits = {});

  // Connects to host:port (numeric or name) and runs the handshake as initiator.
  // The session is created before this returns, so `config` and `rng` need
  // not outlive the call. Name resolution and connecting share the
  // handshake_timeout deadline.
  // Errors: kIo "cannot resolve the host" / "cannot connect" / "connect timed
  // out", the errors of SecureSession::Create, and those of Establish.
  static asio::awaitable<Result<std::shared_ptr<Channel>>> Connect(
      std::string host, std::uint16_t port, const protocol::SecureSessionConfig& config,
      crypto::RandomSource& rng, ChannelLimits limits = {});

  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // The next received plaintext message.
  // Errors: kIo "connection closed" (EOF or Close()), "idle timeout", socket
  // errors; the session's errors (bad frame, failed authentication). After an
  // error the channel is closed.
  asio::awaitable<Result<Bytes>> Receive();

  // The callback form of Receive(), for servers holding many idle channels:
  // no coroutine waits while nothing arrives, only one small wait handler.
  // Calls on_message(message) for every received message, in order, from the
  // io_context; returning false stops delivery and closes the channel. When
  // the channel closes (error, peer, Close(), or a false return), calls
  // on_closed(reason) exactly once and then drops both callbacks. Use either
  // this or Receive() on a channel, never both, and call it once.
  using MessageHandler = std::function<bool(Bytes message)>;
  using ClosedHandler = std::function<void(const Error& reason)>;
  void ReceiveEach(MessageHandler on_message, ClosedHandler on_closed);

  // Seals and queues one message (1..kMaxSessionPayloadBytes), waiting while
  // the write queue is above its limit. Errors: kIo if the channel is closed;
  // kLimitExceeded for a bad size.
  // Not itself a coroutine: the message is sealed before Send returns when the
  // queue has room, and copied otherwise, so `plaintext` need not outlive the call.
  asio::awaitable<Status> Send(ByteSpan plaintext);

  // As Send but never waits. Errors: also kLimitExceeded "write queue is full".
  // The frame is written at the end of the turn (a posted write), together
  // with the channel's other frames of this turn; if a write is already
  // pending (posted, or waiting for the socket) it joins that one, and on a
  // corked channel it waits for Uncork().
  Status TrySend(ByteSpan plaintext);
  // To write now instead (one frame or several, possibly to several peers,
  // each peer's frames in one write): Cork() each channel, TrySend() the
  // frames, then Uncork() each, which writes what was queued unless a write is
  // already pending (a posted one, or one waiting for the socket: the frames
  // then join it). A corked channel starts no write of its own: cork and
  // uncork within one handler, and never co_await Send() or Shutdown() while
  // corked.
  void Cork() { corked_ = true; }
  void Uncork();
  bool corked() const { return corked_; }

  // Closes the socket; pending Receive/Send calls complete with kIo. Idempotent.
  void Close();
  // Waits (bounded by write_timeout) until queued bytes are written, then closes.
  asio::awaitable<void> Shutdown();

  bool is_open() const { return open_; }
  const protocol::SecureSession& session() const { return session_; }
  std::size_t queued_bytes() const { return queued_bytes_; }

  // Internal: use Establish/Connect.
  Channel(asio::ip::tcp::socket socket, protocol::SecureSession session, ChannelLimits limits);

 private:
  // Bound to the io_context's executor type: every pending operation stores
  // its I/O executor, and any_io_executor is 56 bytes where this is 8.
  using Executor = asio::io_context::executor_type;
  using Socket = asio::basic_stream_socket<asio::ip::tcp, Executor>;
  using Timer = asio::basic_waitable_timer<Clock, asio::wait_traits<Clock>, Executor>;

  static asio::awaitable<Result<std::shared_ptr<Channel>>> ConnectWith(
      std::string host, std::uint16_t port, Result<protocol::SecureSession> session,
      ChannelLimits limits);
  asio::awaitable<Status> SendWhenRoom(Bytes plaintext);
  asio::awaitable<Status> RunHandshake();
  // Writes out_ from out_head_ without blocking; when the socket is full,
  // waits for it to be writable (a plain handler, not a coroutine: a burst
  // costs one posted handler and one write per connection per turn).
  void WriteStep();
  void ArmWatchdog();
  void ReadStep();     // one step of ReceiveEach's loop
  void FinishReceiving();
  // Reads what the socket has (without waiting) and feeds the session; sets
  // drained_ after a read that left the socket empty.
  enum class ReadOutcome : std::uint8_t { kRead, kWouldBlock, kClosed };
  ReadOutcome ReadAvailable(Bytes& out);
  // The next received message; precondition: one is pending.
  Bytes TakeReceived();
  Status Enqueue(ByteSpan plaintext);
  Status CloseWith(Error e);

  Socket socket_;
  protocol::SecureSession session_;
  ChannelLimits limits_;
  Error close_reason_{Errc::kIo, "connection closed"};  // meaningful once !open_

  // Received messages not yet returned; [received_head_, size) are pending.
  // (A vector, not a deque: libstdc++'s deque allocates 512 bytes up front.)
  // Released once drained.
  std::vector<Bytes> received_;
  std::size_t received_head_ = 0;
  Bytes out_;                      // sealed frames; [out_head_, size) not yet written
  std::size_t out_head_ = 0;
  std::size_t queued_bytes_ = 0;   // out_.size() - out_head_
  // Cancelled to wake senders waiting for space; made on first use.
  std::unique_ptr<Timer> space_signal_;
  Timer watchdog_;
  MessageHandler on_message_;  // ReceiveEach
  ClosedHandler on_closed_;
  Clock::time_point read_deadline_;
  Clock::time_point write_deadline_ = Clock::time_point::max();
  bool open_ = true;
  bool writing_ = false;           // WriteStep() is posted or waiting for the socket
  bool corked_ = false;            // Cork(): frames wait for Uncork()
  // The last read took less than the scratch buffer: the socket's receive
  // queue was empty then, so the next step waits for readability instead of
  // reading again (a read that would only say EAGAIN). asio's async_wait
  // re-polls the socket when it starts, so data that arrived in between is
  // seen at once.
  bool drained_ = false;
};

}  // namespace rhizome::net
