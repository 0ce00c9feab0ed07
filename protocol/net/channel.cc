#include "rhizome/net/channel.h"

#include <unistd.h>

#include <asio/experimental/awaitable_operators.hpp>
#include <array>
#include <cstdlib>
#include <variant>

namespace rhizome::net {

namespace {

using asio::experimental::as_tuple;
using asio::use_awaitable;
constexpr auto kTuple = as_tuple(use_awaitable);

// One scratch buffer per network thread: idle channels hold no read buffer.
constexpr std::size_t kScratchBytes = 64 * 1024;
// While a burst lasts, the written front of the write buffer is dropped once
// it is this large and most of the buffer (none is kept between bursts).
constexpr std::size_t kKeptWriteBufferBytes = 256 * 1024;
std::uint8_t* Scratch() {
  thread_local std::array<std::uint8_t, kScratchBytes> scratch;
  return scratch.data();
}

using ContextExecutor = asio::io_context::executor_type;
using ContextSocket = asio::basic_stream_socket<asio::ip::tcp, ContextExecutor>;

// The io_context behind a socket's executor. Channel's precondition is that
// there is one: anything else is a programming error, like a double free.
ContextExecutor ToContextExecutor(const asio::any_io_executor& ex) {
  if (const auto* io = ex.target<ContextExecutor>()) return *io;
  if (const auto* strand = ex.target<asio::strand<ContextExecutor>>()) {
    return strand->get_inner_executor();
  }
  std::abort();
}

// Moves an open socket onto the io_context's own executor type (its file
// descriptor is handed over; nothing is pending on it yet). Non-blocking, as
// ReadAvailable() needs, and with Nagle off.
ContextSocket ToContextSocket(asio::ip::tcp::socket socket) {
  ContextSocket out(ToContextExecutor(socket.get_executor()));
  asio::error_code ec;
  const auto local = socket.local_endpoint(ec);
  if (ec) return out;  // not connected: the channel fails on its first I/O
  const auto fd = socket.release(ec);
  if (ec) return out;
  out.assign(local.protocol(), fd, ec);
  if (ec) {
    ::close(fd);
    return out;
  }
  out.set_option(asio::ip::tcp::no_delay(true), ec);
  out.non_blocking(true, ec);
  return out;
}

// Long-lived handlers (an idle channel's read wait and watchdog) are allocated
// at their exact size. Asio's default allocator recycles a per-thread cache
// of blocks freed by earlier operations and hands out any that is large
// enough, e.g. the ~320 bytes of a finished handshake write, which an idle
// channel would then hold for as long as it waits.
template <class T>
struct ExactAllocator {
  using value_type = T;
  ExactAllocator() noexcept = default;
  template <class U>
  ExactAllocator(const ExactAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
  template <class U>
  bool operator==(const ExactAllocator<U>&) const noexcept {
    return true;
  }
};

// A handler with that allocator. (Not asio::bind_allocator: its binder adds
// 8 bytes of padding to every pending operation.)
template <class F>
struct ExactHandler {
  F f;
  using allocator_type = ExactAllocator<void>;
  allocator_type get_allocator() const noexcept { return {}; }
  void operator()(const asio::error_code& ec) { f(ec); }
};

template <class F>
ExactHandler<F> Exact(F f) {
  return ExactHandler<F>{std::move(f)};
}

}  // namespace

Channel::Channel(asio::ip::tcp::socket socket, protocol::SecureSession session,
                 ChannelLimits limits)
    : socket_(ToContextSocket(std::move(socket))),
      session_(std::move(session)),
      limits_(limits),
      watchdog_(socket_.get_executor()),
      read_deadline_(Clock::now() + limits.handshake_timeout) {}

Channel::~Channel() {
  asio::error_code ignored;
  socket_.close(ignored);
}

Status Channel::CloseWith(Error e) {
  if (open_) {
    open_ = false;
    close_reason_ = e;
    asio::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    if (space_signal_) space_signal_->cancel();
    watchdog_.cancel();
  }
  return close_reason_;
}

void Channel::Close() { (void)CloseWith(Error{Errc::kIo, "connection closed"}); }

asio::awaitable<Result<std::shared_ptr<Channel>>> Channel::Establish(
    asio::ip::tcp::socket socket, protocol::SecureSession session, ChannelLimits limits) {
  auto self = std::make_shared<Channel>(std::move(socket), std::move(session), limits);
  self->ArmWatchdog();
  Status st = co_await self->RunHandshake();
  if (!st && st.error().code == Errc::kIo && self->session_.role() == crypto::NoiseRole::kInitiator &&
      std::string_view(st.error().message) == "connection closed") {
    // The responder drops a handshake it cannot authenticate without a word.
    st = Error{Errc::kAuthenticationFailed,
               "the peer closed the connection during the handshake (wrong relay key or access "
               "key, or an unknown contact?)"};
  }
  if (!st) {
    (void)self->CloseWith(st.error());
    co_return st.error();
  }
  self->read_deadline_ = Clock::now() + limits.idle_timeout;
  co_return self;
}

asio::awaitable<Result<std::shared_ptr<Channel>>> Channel::Connect(
    std::string host, std::uint16_t port, const protocol::SecureSessionConfig& config,
    crypto::RandomSource& rng, ChannelLimits limits) {
  // Not a coroutine: the session is made now, while `config` and `rng` are alive.
  return ConnectWith(std::move(host), port, protocol::SecureSession::Create(config, rng), limits);
}

asio::awaitable<Result<std::shared_ptr<Channel>>> Channel::ConnectWith(
    std::string host, std::uint16_t port, Result<protocol::SecureSession> session,
    ChannelLimits limits) {
  using namespace asio::experimental::awaitable_operators;
  if (!session) co_return session.error();
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex, limits.handshake_timeout);

  asio::ip::tcp::resolver resolver(ex);
  auto resolved = co_await (resolver.async_resolve(host, std::to_string(port), kTuple) ||
                            timer.async_wait(kTuple));
  if (resolved.index() == 1) co_return Error{Errc::kIo, "connect timed out"};
  auto [rec, endpoints] = std::get<0>(std::move(resolved));
  if (rec) co_return Error{Errc::kIo, "cannot resolve the host"};

  asio::ip::tcp::socket socket(ex);
  auto outcome = co_await (asio::async_connect(socket, endpoints, kTuple) ||
                           timer.async_wait(kTuple));
  if (outcome.index() == 1) co_return Error{Errc::kIo, "connect timed out"};
  if (std::get<0>(std::get<0>(outcome))) co_return Error{Errc::kIo, "cannot connect"};
  co_return co_await Establish(std::move(socket), std::move(*session), limits);
}

Channel::ReadOutcome Channel::ReadAvailable(Bytes& out) {
  if (!open_) return ReadOutcome::kClosed;
  std::uint8_t* scratch = Scratch();
  asio::error_code ec;
  std::size_t n = socket_.read_some(asio::buffer(scratch, kScratchBytes), ec);
  drained_ = !ec && n < kScratchBytes;
  if (ec == asio::error::would_block || ec == asio::error::try_again) return ReadOutcome::kWouldBlock;
  if (ec == asio::error::eof) {
    (void)CloseWith(Error{Errc::kIo, "connection closed"});
    return ReadOutcome::kClosed;
  }
  if (ec) {
    (void)CloseWith(Error{Errc::kIo, "connection failed"});
    return ReadOutcome::kClosed;
  }
  std::vector<Bytes> got;
  if (Status st = session_.OnBytes(ByteSpan(scratch, n), out, got); !st) {
    (void)CloseWith(st.error());
    return ReadOutcome::kClosed;
  }
  if (!got.empty()) {
    read_deadline_ =
        Clock::now() + (session_.established() ? limits_.idle_timeout : limits_.handshake_timeout);
    if (received_.empty()) {
      received_.swap(got);
    } else {
      for (auto& m : got) received_.push_back(std::move(m));
    }
  }
  return ReadOutcome::kRead;
}

Bytes Channel::TakeReceived() {
  Bytes msg = std::move(received_[received_head_++]);
  if (received_head_ == received_.size()) {
    std::vector<Bytes>().swap(received_);  // an idle channel keeps no capacity
    received_head_ = 0;
  }
  return msg;
}

// Waits for readability, then reads once. Written out where it is used (not
// a coroutine of its own) so that an idle channel holds one coroutine frame
// fewer. Yields after a read that filled the scratch buffer: without that a
// peer that keeps the socket full would hold the (single) network thread and
// starve every other connection, timer and posted flush. After a read that
// drained the socket it neither yields nor reads again before waiting.
#define RHIZOME_READ_ONCE(out)                                                             \
  for (;;) {                                                                               \
    if (!drained_) {                                                                       \
      const ReadOutcome outcome = ReadAvailable(out);                                      \
      if (outcome == ReadOutcome::kClosed) co_return close_reason_;                        \
      if (outcome == ReadOutcome::kRead) {                                                 \
        if (!drained_) co_await asio::post(socket_.get_executor(), use_awaitable);         \
        break;                                                                             \
      }                                                                                    \
    }                                                                                      \
    drained_ = false;                                                                      \
    auto [wec] = co_await socket_.async_wait(asio::ip::tcp::socket::wait_read, kTuple);    \
    if (!open_) co_return close_reason_;                                                   \
    if (wec) co_return CloseWith(Error{Errc::kIo, "connection failed"}).error();           \
  }

asio::awaitable<Status> Channel::RunHandshake() {
  Bytes out;
  if (auto st = session_.Start(out); !st) co_return st;
  for (;;) {
    if (!out.empty()) {
      auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out), kTuple);
      if (!open_) co_return close_reason_;
      if (ec) co_return Error{Errc::kIo, "connection failed during the handshake"};
      out.clear();
    }
    if (session_.established()) co_return OkStatus();
    RHIZOME_READ_ONCE(out);
  }
}

asio::awaitable<Result<Bytes>> Channel::Receive() {
  while (received_head_ == received_.size()) {
    if (!open_) co_return close_reason_;
    Bytes unexpected;
    RHIZOME_READ_ONCE(unexpected);
  }
  co_return TakeReceived();
}

#undef RHIZOME_READ_ONCE

void Channel::ReceiveEach(MessageHandler on_message, ClosedHandler on_closed) {
  on_message_ = std::move(on_message);
  on_closed_ = std::move(on_closed);
  ReadStep();
}

void Channel::FinishReceiving() {
  // Move the callbacks out first: on_closed may drop the last reference
  // to this channel (the caller keeps `self` alive around the call).
  ClosedHandler closed = std::move(on_closed_);
  MessageHandler message = std::move(on_message_);
  on_closed_ = nullptr;
  on_message_ = nullptr;
  if (closed) closed(close_reason_);
}

void Channel::ReadStep() {
  auto self = shared_from_this();  // callbacks may drop every other reference
  if (!on_closed_) return;         // already finished
  // Deliver what has been decoded, then read once more or wait.
  for (;;) {
    while (received_head_ < received_.size()) {
      if (!open_) break;
      if (!on_message_(TakeReceived())) {
        if (open_) (void)CloseWith(Error{Errc::kIo, "connection closed"});
        break;
      }
    }
    if (!open_) {
      FinishReceiving();
      return;
    }
    if (drained_) break;  // the last read emptied the socket: wait
    Bytes unexpected;
    const ReadOutcome outcome = ReadAvailable(unexpected);
    if (outcome == ReadOutcome::kClosed) {
      FinishReceiving();
      return;
    }
    if (outcome == ReadOutcome::kWouldBlock) break;
    if (!drained_) {
      // The read filled the scratch buffer: yield before delivering, so that
      // a peer that keeps the socket full cannot hold the (single) network
      // thread. After a read that drained the socket, deliver now.
      asio::post(socket_.get_executor(), [self] { self->ReadStep(); });
      return;
    }
  }
  drained_ = false;
  // The handler an idle channel keeps pending: exactly sized.
  socket_.async_wait(Socket::wait_read, Exact([self](const asio::error_code& ec) {
                       if (ec && self->open_) {
                         (void)self->CloseWith(Error{Errc::kIo, "connection failed"});
                       }
                       self->ReadStep();
                     }));
}

Status Channel::Enqueue(ByteSpan plaintext) {
  if (!open_) return close_reason_;
  const std::size_t before = out_.size();
  if (auto st = session_.Seal(plaintext, out_); !st) return st;
  queued_bytes_ += out_.size() - before;
  if (!writing_ && !corked_) {
    // Posted: frames queued in the rest of this turn (replies and pushes to
    // one connection) share its write.
    writing_ = true;
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->WriteStep(); });
  }
  return {};
}

Status Channel::TrySend(ByteSpan plaintext) {
  if (open_ && queued_bytes_ > limits_.max_write_queue_bytes) {
    return Error{Errc::kLimitExceeded, "write queue is full"};
  }
  return Enqueue(plaintext);
}

void Channel::Uncork() {
  corked_ = false;
  if (!open_ || writing_ || out_head_ == out_.size()) return;
  writing_ = true;
  WriteStep();
}

namespace {
asio::awaitable<Status> Ready(Status status) { co_return status; }
}  // namespace

asio::awaitable<Status> Channel::Send(ByteSpan plaintext) {
  if (!open_ || queued_bytes_ <= limits_.max_write_queue_bytes) return Ready(Enqueue(plaintext));
  return SendWhenRoom(Bytes(plaintext.begin(), plaintext.end()));
}

asio::awaitable<Status> Channel::SendWhenRoom(Bytes plaintext) {
  if (!space_signal_) {
    space_signal_ = std::make_unique<Timer>(socket_.get_executor(), Clock::time_point::max());
  }
  while (open_ && queued_bytes_ > limits_.max_write_queue_bytes) {
    (void)co_await space_signal_->async_wait(kTuple);
  }
  co_return Enqueue(plaintext);
}

void Channel::WriteStep() {
  while (open_ && out_head_ < out_.size()) {
    asio::error_code ec;
    const std::size_t n =
        socket_.write_some(asio::buffer(out_.data() + out_head_, out_.size() - out_head_), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      // The deadline is "no progress for write_timeout", armed while waiting.
      write_deadline_ = Clock::now() + limits_.write_timeout;
      if (write_deadline_ < watchdog_.expiry()) watchdog_.cancel();  // re-evaluate sooner
      socket_.async_wait(Socket::wait_write,
                         Exact([self = shared_from_this()](const asio::error_code& wec) {
                           if (wec && self->open_) {
                             (void)self->CloseWith(Error{Errc::kIo, "connection failed"});
                           }
                           self->WriteStep();
                         }));
      return;
    }
    if (ec) {
      (void)CloseWith(Error{Errc::kIo, "connection failed"});
      break;
    }
    out_head_ += n;
    queued_bytes_ -= n;
    if (space_signal_) space_signal_->cancel();
    // A reader that keeps up only just never lets out_ drain: drop the
    // written part once it is most of the buffer.
    if (out_head_ >= kKeptWriteBufferBytes && out_head_ * 2 >= out_.size()) {
      out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_head_));
      out_head_ = 0;
    }
  }
  write_deadline_ = Clock::time_point::max();
  // Between bursts a channel holds no write buffer: idle channels stay small.
  // (Frames still in out_ here belong to a closed channel and are never sent.)
  queued_bytes_ = 0;
  out_head_ = 0;
  Bytes().swap(out_);
  writing_ = false;
}

asio::awaitable<void> Channel::Shutdown() {
  const auto give_up = Clock::now() + limits_.write_timeout;
  asio::steady_timer wait(socket_.get_executor());
  while (open_ && queued_bytes_ > 0 && Clock::now() < give_up) {
    wait.expires_after(std::chrono::milliseconds(5));
    (void)co_await wait.async_wait(kTuple);
  }
  Close();
}

// The watchdog is a plain timer callback rather than a coroutine: an idle
// channel then holds one small wait handler instead of a coroutine frame. The
// handler holds the channel weakly, so dropping the last reference still
// destroys it (and closes the socket).
void Channel::ArmWatchdog() {
  if (!open_) return;
  const auto deadline = std::min(read_deadline_, write_deadline_);
  if (Clock::now() >= deadline) {
    const bool reading = read_deadline_ <= write_deadline_;
    (void)CloseWith(Error{Errc::kIo, !session_.established() ? "handshake timed out"
                                     : reading               ? "idle timeout"
                                                             : "write timed out"});
    return;
  }
  watchdog_.expires_at(deadline);
  watchdog_.async_wait(Exact([weak = weak_from_this()](const asio::error_code&) {
    // Woken at the deadline or by cancel() (a sooner write deadline, or
    // close): either way re-evaluate.
    if (auto self = weak.lock()) self->ArmWatchdog();
  }));
}

}  // namespace rhizome::net
