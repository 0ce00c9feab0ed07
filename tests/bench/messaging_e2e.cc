// messaging_e2e: the end-to-end messaging benchmark of issue 5 §6. It prints
// figures; nothing here asserts on time (DESIGN §14). scripts/bench-messaging.sh
// runs it and docs/benchmarks.md records a run.
//
// What it does, with the real binaries on loopback, in a temporary directory:
// 1. Profile unlock time: `rhizome id` (Argon2id at the profile's cost +
//    SQLCipher open + one read) on fresh profiles made with --kdf-cost
//    interactive and moderate, --unlock-runs times each, median wall time and
//    median CPU time (utime + stime of the child, from wait4). The same for
//    `rhizome --version` (process start and exit, no profile) as a baseline.
// 2. Starts a relay (`rhizome-relay --data D --listen 127.0.0.1:0`, pinned
//    with `taskset -c N` when --relay-cpu N is given) and two daemons A and B
//    (`rhizome daemon --poll-ms P`) on profiles made with --kdf-cost
//    interactive; both add the relay; A invites, B accepts, and the run waits
//    until both sides list the other as confirmed. B's API connection
//    subscribes to events; --warmup messages go from A to B and are awaited
//    (not measured).
// 3. The measured run: A's socket gets --messages `send` requests, pipelined
//    (at most --window unanswered at once; the daemon answers in order, and a
//    window below its queue limit of 256 means none is refused). Each text is
//    "e2e-bench NNNNNN " padded with letters to --text-bytes bytes (900 by
//    default: the envelope then fills the 1 KiB padding class). B's
//    subscription counts the messageReceived events. Marks: t_accepted (A
//    answered the last send), t_received (B's events hold every message),
//    t_delivered (A's `read` shows every message "delivered", i.e. B's receipt
//    came back; A is polled every --read-poll-ms only after t_received, since
//    no receipt can come earlier; each such `read` returns every message and
//    itself costs A CPU, reported separately below). At each mark: the CPU
//    time (utime + stime from /proc/PID/stat, all threads) of A's daemon, B's
//    daemon and the relay since the first submission, divided by the number
//    of messages.
// 4. Checks, after the marks: B's events and B's `read` hold each message
//    exactly once and in order, and A's `read` shows exactly those messages,
//    all delivered. Any loss, duplicate or reordering is printed as a BUG and
//    the exit code is 3.
// 5. The daemons' idle CPU (what the --poll-ms passes cost with nothing to
//    do) over --idle-seconds, and A's CPU for one `read` of everything (mean
//    of 5; to judge what the t_delivered polling added). Then the daemons and
//    relay are stopped (SIGTERM) and `rhizome id` is timed once more on A's
//    profile, now holding the messages.
// --perf DIR: `perf record --call-graph dwarf` of the three processes over
// the measured run and over the idle measurement, and `perf stat` of their
// fsync/fdatasync calls over the run, into DIR (the figures of such a run are
// disturbed by perf; scripts/bench-messaging.sh keeps them out of its table).
// Output: readable lines, then one line "RESULT key=value ..." for scripts.
// Bounds: --timeout caps the measured run (a run that does not finish prints
// how far it got, and its rate); every API call has a deadline; SIGINT and
// SIGTERM stop the run and the child processes.
// Thread safety: one thread.
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "load_util.h"
#include "process.h"
#include "test_support.h"

namespace rhizome::bench {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using testing::ChildProcess;

constexpr const char* kPassphrase = "messaging-e2e-bench-passphrase";
constexpr const char* kTextPrefix = "e2e-bench ";
constexpr const char* kWarmupPrefix = "e2e-warmup ";
constexpr int kIndexDigits = 6;
constexpr int kMaxMessages = 999'999;           // kIndexDigits
constexpr int kMaxWindow = 250;                 // below the daemon's kMaxQueuedRequests (256)
constexpr std::size_t kMaxTextBytes = 16000;    // the client's kMaxTextBytes
constexpr std::size_t kMaxLineBytes = 64u << 20;  // a `read` of everything is ~10 MB
constexpr auto kCallDeadline = 120s;

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

struct Options {
  std::string rhizome;
  std::string relay;
  int messages = 10'000;
  std::size_t text_bytes = 900;
  int poll_ms = 100;
  int window = 128;
  int relay_cpu = -1;
  int unlock_runs = 5;
  int warmup = 20;
  int timeout_s = 600;
  int read_poll_ms = 500;
  int idle_seconds = 5;
  // When set: `perf record` (DWARF call graphs) of the three processes over
  // the measured run (perf.data) and over the idle measurement
  // (perf-idle.data), and `perf stat` of their fsync/fdatasync calls over the
  // measured run (fsync.txt).
  std::string perf_dir;
  std::string label = "run";
};

[[noreturn]] void Usage(const char* why) {
  if (why) std::fprintf(stderr, "messaging_e2e: %s\n", why);
  std::fprintf(stderr,
               "usage: messaging_e2e --rhizome BIN --relay BIN [--messages N] [--text-bytes B]\n"
               "         [--poll-ms P] [--window W] [--relay-cpu N] [--unlock-runs R] [--warmup N]\n"
               "         [--timeout S] [--read-poll-ms P] [--idle-seconds S] [--perf DIR] [--label L]\n");
  std::exit(2);
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  auto value = [&](int& i) -> std::string {
    if (i + 1 >= argc) Usage("missing value");
    return argv[++i];
  };
  auto number = [&](int& i, long lo, long hi) -> long {
    const std::string v = value(i);
    char* end = nullptr;
    const long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || n < lo || n > hi) Usage("a number is out of range");
    return n;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--rhizome") o.rhizome = value(i);
    else if (a == "--relay") o.relay = value(i);
    else if (a == "--messages") o.messages = static_cast<int>(number(i, 1, kMaxMessages));
    else if (a == "--text-bytes")
      o.text_bytes = static_cast<std::size_t>(number(i, 32, static_cast<long>(kMaxTextBytes)));
    else if (a == "--poll-ms") o.poll_ms = static_cast<int>(number(i, 50, 3'600'000));
    else if (a == "--window") o.window = static_cast<int>(number(i, 1, kMaxWindow));
    else if (a == "--relay-cpu") o.relay_cpu = static_cast<int>(number(i, 0, 1023));
    else if (a == "--unlock-runs") o.unlock_runs = static_cast<int>(number(i, 0, 100));
    else if (a == "--warmup") o.warmup = static_cast<int>(number(i, 0, 1000));
    else if (a == "--timeout") o.timeout_s = static_cast<int>(number(i, 10, 86'400));
    else if (a == "--read-poll-ms") o.read_poll_ms = static_cast<int>(number(i, 50, 60'000));
    else if (a == "--idle-seconds") o.idle_seconds = static_cast<int>(number(i, 0, 600));
    else if (a == "--perf") o.perf_dir = value(i);
    else if (a == "--label") o.label = value(i);
    else Usage("unknown argument");
  }
  if (o.rhizome.empty() || o.relay.empty()) Usage("--rhizome and --relay are required");
  return o;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// ---- Short-lived commands (init, id) -------------------------------------------

struct Timed {
  int exit_code = -1;
  double wall_ms = 0;
  double cpu_ms = 0;  // utime + stime of the child
};

// Runs `program args` with exactly `env` (+ PATH), output discarded; wall time
// from fork to reaping, CPU time from wait4.
Timed RunTimed(const std::string& program, const std::vector<std::string>& args,
               const std::map<std::string, std::string>& env) {
  testing::ExecArgs exec(program, args, env);
  Timed t;
  const auto start = Clock::now();
  const pid_t pid = fork();
  if (pid < 0) return t;
  if (pid == 0) {
    const int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execve(program.c_str(), exec.argv.data(), exec.envp.data());
    _exit(127);
  }
  int status = 0;
  rusage ru{};
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) return t;
  }
  t.wall_ms = Seconds(Clock::now() - start) * 1000;
  t.cpu_ms = static_cast<double>((ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1'000'000ll +
                                 ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) /
             1000;
  t.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return t;
}

const std::map<std::string, std::string>& PassEnv() {
  static const std::map<std::string, std::string> env{{"RHIZOME_PASSPHRASE", kPassphrase}};
  return env;
}

bool InitProfile(const Options& o, const fs::path& dir, const std::string& name,
                 const std::string& cost) {
  auto t = RunTimed(o.rhizome,
                    {"--profile", dir.string(), "init", "--name", name, "--kdf-cost", cost}, PassEnv());
  return t.exit_code == 0;
}

struct Unlock {
  double wall_ms = 0, cpu_ms = 0;
  bool ok = false;
};

// Median over `runs` of `rhizome [--profile DIR] ARGS`.
Unlock TimeCommand(const Options& o, const std::vector<std::string>& args, int runs) {
  std::vector<double> wall, cpu;
  for (int i = 0; i < runs && !g_stop; ++i) {
    auto t = RunTimed(o.rhizome, args, PassEnv());
    if (t.exit_code != 0) return {};
    wall.push_back(t.wall_ms);
    cpu.push_back(t.cpu_ms);
  }
  return {Median(wall), Median(cpu), !wall.empty()};
}

// ---- The daemon's API socket ------------------------------------------------------

// One connection to a daemon's socket: JSON lines out, JSON lines in.
class ApiConnection {
 public:
  static std::unique_ptr<ApiConnection> Open(const fs::path& socket_path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return nullptr;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = socket_path.string();
    if (path.size() >= sizeof addr.sun_path) {
      ::close(fd);
      return nullptr;
    }
    std::memcpy(addr.sun_path, path.data(), path.size());
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return nullptr;
    }
    return std::unique_ptr<ApiConnection>(new ApiConnection(fd));
  }
  ~ApiConnection() { ::close(fd_); }
  ApiConnection(const ApiConnection&) = delete;
  ApiConnection& operator=(const ApiConnection&) = delete;

  int fd() const { return fd_; }

  bool Send(const json& request) {
    const std::string line = request.dump() + "\n";
    for (std::size_t off = 0; off < line.size();) {
      const ssize_t n = ::send(fd_, line.data() + off, line.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }

  // Reads what is there (one read) and queues the complete lines. False on
  // EOF, an error, or a line beyond kMaxLineBytes.
  bool Pump() {
    char buf[1 << 16];
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (n <= 0) return false;
    in_.append(buf, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (std::size_t nl; (nl = in_.find('\n', scan_)) != std::string::npos; scan_ = nl + 1) {
      pending_.emplace_back(in_, start, nl - start);
      start = nl + 1;
    }
    in_.erase(0, start);
    scan_ = in_.size();
    return in_.size() <= kMaxLineBytes;
  }

  // A queued line, if any (no waiting).
  std::optional<std::string> PopLine() {
    if (pending_.empty()) return std::nullopt;
    std::string line = std::move(pending_.front());
    pending_.pop_front();
    return line;
  }

  // Waits for the next line; nullopt on EOF, error or deadline.
  std::optional<std::string> NextLine(Clock::duration deadline) {
    const auto until = Clock::now() + deadline;
    while (pending_.empty()) {
      if (g_stop || Clock::now() >= until) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      const int rc = ::poll(&p, 1, 100);
      if (rc <= 0) continue;
      if (!Pump()) return std::nullopt;
    }
    return PopLine();
  }

  // One request, its response (parsed; discarded JSON if unparsable).
  std::optional<json> Call(const json& request, Clock::duration deadline = kCallDeadline) {
    if (!Send(request)) return std::nullopt;
    auto line = NextLine(deadline);
    if (!line) return std::nullopt;
    return json::parse(*line, nullptr, false);
  }

 private:
  explicit ApiConnection(int fd) : fd_(fd) {}
  int fd_;
  std::string in_;
  std::size_t scan_ = 0;
  std::deque<std::string> pending_;
};

bool IsOk(const std::optional<json>& r) {
  return r && !r->is_discarded() && !r->contains("error");
}

std::string Describe(const std::optional<json>& r) {
  if (!r) return "no answer";
  return r->dump().substr(0, 300);
}

// ---- Processes under test ---------------------------------------------------------

struct Node {
  std::string name;
  fs::path dir;
  std::unique_ptr<ChildProcess> daemon;
  fs::path socket() const { return dir / "profile.sock"; }
  std::optional<json> Call(const json& request, Clock::duration deadline = kCallDeadline) const {
    auto c = ApiConnection::Open(socket());
    if (!c) return std::nullopt;
    return c->Call(request, deadline);
  }
};

bool StartDaemon(const Options& o, Node& n, const fs::path& log) {
  n.daemon = std::make_unique<ChildProcess>(
      o.rhizome,
      std::vector<std::string>{"--profile", n.dir.string(), "daemon", "--poll-ms",
                               std::to_string(o.poll_ms)},
      PassEnv(), log.string());
  return n.daemon->WaitForLinePrefix("daemon: listening on ", 30s).has_value();
}

std::optional<int> StopChild(std::unique_ptr<ChildProcess>& c) {
  if (!c) return std::nullopt;
  c->Signal(SIGTERM);
  auto rc = c->Wait(30s);
  c.reset();  // kills it if it did not stop
  return rc;
}

struct Cpu {
  std::int64_t a = 0, b = 0, relay = 0, self = 0;  // µs
};

struct Pids {
  int a = 0, b = 0, relay = 0;
  Cpu Now() const {
    return {ProcessCpuMicros(a), ProcessCpuMicros(b), ProcessCpuMicros(relay), SelfCpuMicros()};
  }
};

struct Mark {
  bool reached = false;
  double seconds = 0;  // since the first submission
  Cpu cpu;             // since the first submission
};

std::string Text(const char* prefix, int i, std::size_t bytes) {
  char head[32];
  std::snprintf(head, sizeof head, "%s%0*d ", prefix, kIndexDigits, i);
  std::string t = head;
  for (std::size_t k = 0; t.size() < bytes; ++k) t.push_back(static_cast<char>('a' + (k * 7 + static_cast<std::size_t>(i)) % 26));
  return t;
}

// The index of a text made by Text(prefix, ...), or -1.
int IndexOf(const std::string& text, const char* prefix) {
  const std::size_t p = std::strlen(prefix);
  if (text.size() < p + kIndexDigits || text.compare(0, p, prefix) != 0) return -1;
  int v = 0;
  for (int k = 0; k < kIndexDigits; ++k) {
    const char c = text[p + static_cast<std::size_t>(k)];
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

// What B's events showed.
struct Arrivals {
  std::vector<int> count;  // per index
  int distinct = 0;
  int duplicates = 0;
  int out_of_order = 0;
  int foreign = 0;  // events that are not ours (neither warm-up nor measured)
  int warmup = 0;
  int last = -1;
  explicit Arrivals(int n) : count(static_cast<std::size_t>(n), 0) {}

  void Take(const std::string& line, std::size_t text_bytes) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("event")) return;
    const auto& ev = j["event"];
    if (!ev.contains("messageReceived")) return;
    const std::string text = ev["messageReceived"].value("text", "");
    if (IndexOf(text, kWarmupPrefix) >= 0) {
      ++warmup;
      return;
    }
    const int i = IndexOf(text, kTextPrefix);
    if (i < 0 || i >= static_cast<int>(count.size()) || text != Text(kTextPrefix, i, text_bytes)) {
      ++foreign;
      return;
    }
    if (count[static_cast<std::size_t>(i)]++ == 0) ++distinct;
    else ++duplicates;
    if (i < last) ++out_of_order;
    last = std::max(last, i);
  }
};

void Row(const char* what, double a, double b, double relay, const char* unit) {
  std::printf("  %-44s %12.1f %12.1f %12.1f  %s\n", what, a, b, relay, unit);
}

int Run(const Options& o) {
  testing::TempDir tmp;
  const fs::path work = tmp.path();
  std::printf("work directory: %s\n", work.c_str());

  // ---- 1. Unlock time -------------------------------------------------------------
  const Unlock start_only = TimeCommand(o, {"--version"}, o.unlock_runs);
  std::map<std::string, Unlock> unlock;
  for (const std::string cost : {"interactive", "moderate"}) {
    const fs::path dir = work / ("unlock-" + cost);
    if (!InitProfile(o, dir, "Unlock", cost)) {
      std::fprintf(stderr, "messaging_e2e: rhizome init --kdf-cost %s failed\n", cost.c_str());
      return 1;
    }
    unlock[cost] = TimeCommand(o, {"--profile", dir.string(), "id"}, o.unlock_runs);
  }
  std::printf("\nprofile unlock (`rhizome id`), median of %d runs: wall ms / CPU ms\n", o.unlock_runs);
  std::printf("  %-28s %8.1f / %8.1f\n", "--version (no profile)", start_only.wall_ms, start_only.cpu_ms);
  for (const auto& [cost, u] : unlock) {
    std::printf("  %-28s %8.1f / %8.1f%s\n", ("id, kdf-cost " + cost).c_str(), u.wall_ms, u.cpu_ms,
                u.ok ? "" : "  (FAILED)");
  }
  std::fflush(stdout);

  // ---- 2. Relay, daemons, contact ---------------------------------------------------
  Node a{"Ana E2E", work / "a", nullptr};
  Node b{"Ben E2E", work / "b", nullptr};
  if (!InitProfile(o, a.dir, a.name, "interactive") || !InitProfile(o, b.dir, b.name, "interactive")) {
    std::fprintf(stderr, "messaging_e2e: rhizome init failed\n");
    return 1;
  }
  std::vector<std::string> relay_args{"--data", (work / "relay").string(), "--listen", "127.0.0.1:0"};
  std::string relay_program = o.relay;
  if (o.relay_cpu >= 0) {
    relay_args.insert(relay_args.begin(), {"-c", std::to_string(o.relay_cpu), o.relay});
    relay_program = "/usr/bin/taskset";
  }
  auto relay = std::make_unique<ChildProcess>(relay_program, relay_args,
                                              std::map<std::string, std::string>{},
                                              (work / "relay.log").string());
  const auto relay_address = relay->WaitForLinePrefix("relay address: ", 30s);
  if (!relay_address) {
    std::fprintf(stderr, "messaging_e2e: the relay did not start\n");
    return 1;
  }
  if (!StartDaemon(o, a, work / "a.log") || !StartDaemon(o, b, work / "b.log")) {
    std::fprintf(stderr, "messaging_e2e: a daemon did not start\n");
    return 1;
  }
  const Pids pids{a.daemon->pid(), b.daemon->pid(), relay->pid()};
  std::printf("\npids: A %d, B %d, relay %d%s; daemons --poll-ms %d\n", pids.a, pids.b, pids.relay,
              o.relay_cpu >= 0 ? (" (relay pinned: taskset -c " + std::to_string(o.relay_cpu) + ")").c_str()
                               : " (nothing pinned)",
              o.poll_ms);

  for (const Node* n : {&a, &b}) {
    auto r = n->Call({{"relayAdd", {{"address", *relay_address}}}});
    if (!IsOk(r)) {
      std::fprintf(stderr, "messaging_e2e: relayAdd failed: %s\n", Describe(r).c_str());
      return 1;
    }
  }
  auto invite = a.Call({{"inviteCreate", {{"uses", 1}, {"lifetimeSeconds", 3600}}}});
  if (!IsOk(invite)) {
    std::fprintf(stderr, "messaging_e2e: inviteCreate failed: %s\n", Describe(invite).c_str());
    return 1;
  }
  auto accepted = b.Call({{"accept", {{"code", (*invite)["invite"]["code"]}, {"name", a.name}}}});
  if (!IsOk(accepted)) {
    std::fprintf(stderr, "messaging_e2e: accept failed: %s\n", Describe(accepted).c_str());
    return 1;
  }
  std::string b_as_seen_by_a;
  const auto connect_start = Clock::now();
  while (b_as_seen_by_a.empty()) {
    if (g_stop || Clock::now() - connect_start > 60s) {
      std::fprintf(stderr, "messaging_e2e: contacts not confirmed within 60 s\n");
      return 1;
    }
    auto ca = a.Call({{"contacts", json::object()}});
    auto cb = b.Call({{"contacts", json::object()}});
    if (IsOk(ca) && IsOk(cb) && (*ca)["contacts"]["contacts"].size() == 1 &&
        (*cb)["contacts"]["contacts"].size() == 1 &&
        (*ca)["contacts"]["contacts"][0]["status"] == "confirmed" &&
        (*cb)["contacts"]["contacts"][0]["status"] == "confirmed") {
      b_as_seen_by_a = (*ca)["contacts"]["contacts"][0]["name"];
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  std::printf("contact confirmed on both sides after %.2f s\n", Seconds(Clock::now() - connect_start));

  auto events = ApiConnection::Open(b.socket());
  if (!events || !IsOk(events->Call({{"subscribe", json::object()}}))) {
    std::fprintf(stderr, "messaging_e2e: subscribe on B failed\n");
    return 1;
  }
  auto submit = ApiConnection::Open(a.socket());
  if (!submit) return 1;
  Arrivals arrivals(o.messages);

  // Warm-up: a few messages, awaited, so the runs start from a settled state.
  for (int i = 0; i < o.warmup; ++i) {
    auto r = submit->Call({{"send", {{"contact", b_as_seen_by_a}, {"text", Text(kWarmupPrefix, i, o.text_bytes)}}}});
    if (!IsOk(r)) {
      std::fprintf(stderr, "messaging_e2e: warm-up send failed: %s\n", Describe(r).c_str());
      return 1;
    }
  }
  const auto warm_start = Clock::now();
  while (arrivals.warmup < o.warmup) {
    if (g_stop || Clock::now() - warm_start > 60s) {
      std::fprintf(stderr, "messaging_e2e: warm-up messages not received within 60 s\n");
      return 1;
    }
    auto line = events->NextLine(1s);
    if (line) arrivals.Take(*line, o.text_bytes);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(3 * o.poll_ms));  // receipts settle

  std::unique_ptr<ChildProcess> perf, perf_sync;
  if (!o.perf_dir.empty()) {
    fs::create_directories(o.perf_dir);
    // fsync/fdatasync calls per thread over the run (each SQLite commit in
    // rollback-journal mode with synchronous=EXTRA makes several).
    perf_sync = std::make_unique<ChildProcess>(
        "/usr/bin/perf",
        std::vector<std::string>{"stat", "--per-thread", "-e",
                                 "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync", "-o",
                                 (fs::path(o.perf_dir) / "fsync.txt").string(), "-p",
                                 std::to_string(pids.a) + "," + std::to_string(pids.b) + "," +
                                     std::to_string(pids.relay)},
        std::map<std::string, std::string>{}, (fs::path(o.perf_dir) / "perf-stat.log").string());
    perf = std::make_unique<ChildProcess>(
        "/usr/bin/perf",
        std::vector<std::string>{"record", "-e", "cpu-clock", "-F", "199", "--call-graph", "dwarf", "-o",
                                 (fs::path(o.perf_dir) / "perf.data").string(), "-p",
                                 std::to_string(pids.a) + "," + std::to_string(pids.b) + "," +
                                     std::to_string(pids.relay)},
        std::map<std::string, std::string>{}, (fs::path(o.perf_dir) / "perf.log").string());
    std::this_thread::sleep_for(1s);
  }

  // ---- 3. The measured run ------------------------------------------------------------
  std::printf("\nmeasured run: %d messages of %zu bytes, A -> B, window %d%s\n", o.messages,
              o.text_bytes, o.window, o.perf_dir.empty() ? "" : " (under perf record)");
  std::fflush(stdout);
  const Cpu cpu0 = pids.Now();
  const auto t0 = Clock::now();
  auto MarkNow = [&](Mark& m) {
    const Cpu c = pids.Now();
    m.reached = true;
    m.seconds = Seconds(Clock::now() - t0);
    m.cpu = {c.a - cpu0.a, c.b - cpu0.b, c.relay - cpu0.relay, c.self - cpu0.self};
  };
  Mark accepted_mark, received_mark, delivered_mark, give_up_mark;
  int sent = 0, answered = 0;
  std::string failure;
  const auto deadline = t0 + std::chrono::seconds(o.timeout_s);
  while (!received_mark.reached) {
    if (g_stop) {
      failure = "interrupted";
      break;
    }
    if (Clock::now() >= deadline) {
      failure = "timeout";
      break;
    }
    while (sent < o.messages && sent - answered < o.window) {
      if (!submit->Send({{"id", sent + 1},
                         {"send", {{"contact", b_as_seen_by_a}, {"text", Text(kTextPrefix, sent, o.text_bytes)}}}})) {
        failure = "A's socket closed";
        break;
      }
      ++sent;
    }
    if (!failure.empty()) break;
    pollfd p[2] = {{submit->fd(), POLLIN, 0}, {events->fd(), POLLIN, 0}};
    if (::poll(p, 2, 100) <= 0) continue;
    if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && !submit->Pump()) {
      failure = "A's socket closed";
      break;
    }
    if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) && !events->Pump()) {
      failure = "B's event connection closed";
      break;
    }
    while (auto line = submit->PopLine()) {
      auto r = json::parse(*line, nullptr, false);
      if (!IsOk(r)) {
        failure = "send refused: " + Describe(r);
        break;
      }
      ++answered;
    }
    if (!failure.empty()) break;
    if (answered == o.messages && !accepted_mark.reached) MarkNow(accepted_mark);
    while (auto line = events->PopLine()) arrivals.Take(*line, o.text_bytes);
    if (arrivals.distinct == o.messages) MarkNow(received_mark);
  }
  if (!received_mark.reached) MarkNow(give_up_mark);

  // t_delivered: A's `read` every --read-poll-ms until every message is delivered.
  int read_polls = 0;
  auto CountDelivered = [&](const json& msgs, int& outgoing, int& delivered, std::vector<int>& order) {
    for (const auto& m : msgs) {
      if (!m.value("outgoing", false)) continue;
      const int i = IndexOf(m.value("text", ""), kTextPrefix);
      if (i < 0) continue;
      ++outgoing;
      order.push_back(i);
      if (m.value("state", "") == "delivered") ++delivered;
    }
  };
  int a_outgoing = 0, a_delivered = 0;
  std::vector<int> a_order;
  if (received_mark.reached) {
    for (;;) {
      if (g_stop || Clock::now() >= deadline) {
        failure = g_stop ? "interrupted" : "timeout waiting for receipts";
        break;
      }
      auto r = a.Call({{"read", {{"contact", b_as_seen_by_a}}}});
      ++read_polls;
      if (!IsOk(r)) {
        failure = "read on A failed: " + Describe(r);
        break;
      }
      a_outgoing = a_delivered = 0;
      a_order.clear();
      CountDelivered((*r)["messages"]["messages"], a_outgoing, a_delivered, a_order);
      if (a_delivered >= o.messages) {
        MarkNow(delivered_mark);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(o.read_poll_ms));
    }
  }
  for (auto* p : {&perf, &perf_sync}) {
    if (!*p) continue;
    (*p)->Signal(SIGINT);
    (void)(*p)->Wait(60s);
    p->reset();
  }

  // ---- 4. Checks -------------------------------------------------------------------
  // Late events (none expected) and B's stored copy.
  while (auto line = events->NextLine(std::chrono::milliseconds(3 * o.poll_ms))) {
    arrivals.Take(*line, o.text_bytes);
  }
  int b_incoming = 0, b_dupes = 0, b_disorder = 0, b_bad = 0;
  {
    auto r = b.Call({{"read", {{"contact", a.name}}}});
    if (!IsOk(r)) {
      failure += failure.empty() ? "" : "; ";
      failure += "read on B failed: " + Describe(r);
    } else {
      std::vector<int> seen(static_cast<std::size_t>(o.messages), 0);
      int last = -1;
      for (const auto& m : (*r)["messages"]["messages"]) {
        if (m.value("outgoing", false)) continue;
        const std::string text = m.value("text", "");
        if (IndexOf(text, kWarmupPrefix) >= 0) continue;
        const int i = IndexOf(text, kTextPrefix);
        if (i < 0 || i >= o.messages || text != Text(kTextPrefix, i, o.text_bytes)) {
          ++b_bad;
          continue;
        }
        ++b_incoming;
        if (seen[static_cast<std::size_t>(i)]++) ++b_dupes;
        if (i < last) ++b_disorder;
        last = std::max(last, i);
      }
    }
  }
  int a_disorder = 0;
  for (std::size_t k = 0; k < a_order.size(); ++k) {
    if (a_order[k] != static_cast<int>(k)) ++a_disorder;
  }
  std::vector<std::string> bugs;
  const bool complete = received_mark.reached && delivered_mark.reached;
  if (arrivals.duplicates) bugs.push_back(std::to_string(arrivals.duplicates) + " duplicate events on B");
  if (arrivals.out_of_order) bugs.push_back(std::to_string(arrivals.out_of_order) + " events out of order on B");
  if (arrivals.foreign) bugs.push_back(std::to_string(arrivals.foreign) + " unexpected or altered texts on B");
  if (b_dupes || b_disorder || b_bad) {
    bugs.push_back("B's read: " + std::to_string(b_dupes) + " duplicates, " + std::to_string(b_disorder) +
                   " out of order, " + std::to_string(b_bad) + " altered");
  }
  if (received_mark.reached && b_incoming != o.messages) {
    bugs.push_back("B's read holds " + std::to_string(b_incoming) + " messages, not " + std::to_string(o.messages));
  }
  if (delivered_mark.reached && (a_outgoing != o.messages || a_disorder)) {
    bugs.push_back("A's read holds " + std::to_string(a_outgoing) + " outgoing (" +
                   std::to_string(a_disorder) + " out of place)");
  }

  // ---- 5. Idle cost, cost of one read, stop, unlock of a used profile ---------------
  double idle_a = -1, idle_b = -1, idle_relay = -1, read_cost_a_ms = -1;
  if (o.idle_seconds > 0 && !g_stop) {
    std::this_thread::sleep_for(1s);
    std::unique_ptr<ChildProcess> idle_perf;
    if (!o.perf_dir.empty()) {
      idle_perf = std::make_unique<ChildProcess>(
          "/usr/bin/perf",
          std::vector<std::string>{"record", "-e", "cpu-clock", "-F", "199", "--call-graph", "dwarf", "-o",
                                   (fs::path(o.perf_dir) / "perf-idle.data").string(), "-p",
                                   std::to_string(pids.a) + "," + std::to_string(pids.b) + "," +
                                       std::to_string(pids.relay)},
          std::map<std::string, std::string>{}, (fs::path(o.perf_dir) / "perf-idle.log").string());
      std::this_thread::sleep_for(1s);
    }
    const Cpu c1 = pids.Now();
    const auto i0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(o.idle_seconds));
    const Cpu c2 = pids.Now();
    if (idle_perf) {
      idle_perf->Signal(SIGINT);
      (void)idle_perf->Wait(60s);
    }
    const double s = Seconds(Clock::now() - i0);
    idle_a = static_cast<double>(c2.a - c1.a) / 1000 / s;
    idle_b = static_cast<double>(c2.b - c1.b) / 1000 / s;
    idle_relay = static_cast<double>(c2.relay - c1.relay) / 1000 / s;
    // One `read` of everything on A (the mean of kReadCostRuns), less A's idle
    // CPU over the same time.
    constexpr int kReadCostRuns = 5;
    const Cpu r1 = pids.Now();
    const auto rt = Clock::now();
    for (int k = 0; k < kReadCostRuns; ++k) (void)a.Call({{"read", {{"contact", b_as_seen_by_a}}}});
    const double rs = Seconds(Clock::now() - rt);
    read_cost_a_ms = (static_cast<double>(pids.Now().a - r1.a) / 1000 - idle_a * rs) / kReadCostRuns;
  }
  events.reset();
  submit.reset();
  const auto rc_a = StopChild(a.daemon);
  const auto rc_b = StopChild(b.daemon);
  const auto rc_relay = StopChild(relay);
  const Unlock used = g_stop ? Unlock{} : TimeCommand(o, {"--profile", a.dir.string(), "id"}, o.unlock_runs);
  std::error_code ec;
  const auto a_db = fs::file_size(a.dir / "profile.db", ec);

  // ---- Report ----------------------------------------------------------------------
  const double n = o.messages;
  auto per_msg = [&](std::int64_t us) { return static_cast<double>(us) / n; };
  std::printf("\n%-46s %12s %12s %12s\n", "", "A daemon", "B daemon", "relay");
  if (accepted_mark.reached) {
    std::printf("all %d sends answered by A after %.2f s (%.0f sends/s)\n", o.messages,
                accepted_mark.seconds, n / accepted_mark.seconds);
    Row("CPU us/msg up to then", per_msg(accepted_mark.cpu.a), per_msg(accepted_mark.cpu.b),
        per_msg(accepted_mark.cpu.relay), "");
  }
  if (received_mark.reached) {
    std::printf("all %d received by B after %.2f s: %.0f msg/s\n", o.messages, received_mark.seconds,
                n / received_mark.seconds);
    Row("CPU us/msg, first send -> all received", per_msg(received_mark.cpu.a),
        per_msg(received_mark.cpu.b), per_msg(received_mark.cpu.relay), "");
  } else {
    std::printf("NOT COMPLETE (%s): B received %d of %d after %.2f s: %.0f msg/s so far; A answered %d sends\n",
                failure.c_str(), arrivals.distinct, o.messages, give_up_mark.seconds,
                arrivals.distinct / give_up_mark.seconds, answered);
    Row("CPU us per received msg so far", give_up_mark.cpu.a / std::max(1.0, 1.0 * arrivals.distinct),
        give_up_mark.cpu.b / std::max(1.0, 1.0 * arrivals.distinct),
        give_up_mark.cpu.relay / std::max(1.0, 1.0 * arrivals.distinct), "");
  }
  if (delivered_mark.reached) {
    std::printf("all %d delivered (receipts) on A after %.2f s (%d reads of A polled)\n", o.messages,
                delivered_mark.seconds, read_polls);
    Row("CPU us/msg, first send -> all delivered", per_msg(delivered_mark.cpu.a),
        per_msg(delivered_mark.cpu.b), per_msg(delivered_mark.cpu.relay), "");
  }
  Row("idle CPU (poll passes), ms per second", idle_a, idle_b, idle_relay, "");
  std::printf("  one `read` of everything on A: %.1f ms of A's CPU\n", read_cost_a_ms);
  const Mark& last = received_mark.reached ? received_mark : give_up_mark;
  std::printf("  this driver's CPU up to all received: %.2f s of %.2f s\n", last.cpu.self / 1e6, last.seconds);
  std::printf("  unlock of A's profile afterwards (%ju bytes): %.1f ms wall, %.1f ms CPU\n",
              static_cast<std::uintmax_t>(a_db), used.wall_ms, used.cpu_ms);
  std::printf("  exit codes: A %d, B %d, relay %d\n", rc_a.value_or(-1), rc_b.value_or(-1), rc_relay.value_or(-1));
  if (!failure.empty() && received_mark.reached) std::printf("  note: %s\n", failure.c_str());
  for (const auto& bug : bugs) std::printf("BUG: %s\n", bug.c_str());

  std::printf(
      "RESULT label=%s messages=%d text_bytes=%zu window=%d poll_ms=%d complete=%d bugs=%zu "
      "accepted_s=%.3f received_s=%.3f delivered_s=%.3f received_so_far=%d msg_per_s=%.1f "
      "recv_cpu_us_a=%.1f recv_cpu_us_b=%.1f recv_cpu_us_relay=%.1f "
      "deliv_cpu_us_a=%.1f deliv_cpu_us_b=%.1f deliv_cpu_us_relay=%.1f "
      "idle_ms_per_s_a=%.1f idle_ms_per_s_b=%.1f idle_ms_per_s_relay=%.1f read_cost_ms_a=%.1f read_polls=%d "
      "unlock_start_ms=%.1f unlock_interactive_ms=%.1f unlock_moderate_ms=%.1f "
      "unlock_start_cpu_ms=%.1f unlock_interactive_cpu_ms=%.1f unlock_moderate_cpu_ms=%.1f "
      "unlock_used_ms=%.1f driver_cpu_s=%.2f\n",
      o.label.c_str(), o.messages, o.text_bytes, o.window, o.poll_ms, complete ? 1 : 0, bugs.size(),
      accepted_mark.seconds, received_mark.seconds, delivered_mark.seconds, arrivals.distinct,
      arrivals.distinct / std::max(1e-9, last.seconds), per_msg(received_mark.cpu.a),
      per_msg(received_mark.cpu.b), per_msg(received_mark.cpu.relay), per_msg(delivered_mark.cpu.a),
      per_msg(delivered_mark.cpu.b), per_msg(delivered_mark.cpu.relay), idle_a, idle_b, idle_relay,
      read_cost_a_ms, read_polls, start_only.wall_ms, unlock["interactive"].wall_ms,
      unlock["moderate"].wall_ms, start_only.cpu_ms, unlock["interactive"].cpu_ms,
      unlock["moderate"].cpu_ms, used.wall_ms, last.cpu.self / 1e6);
  std::fflush(stdout);
  if (!bugs.empty()) return 3;
  return complete ? 0 : 1;
}

}  // namespace
}  // namespace rhizome::bench

int main(int argc, char** argv) {
  const auto options = rhizome::bench::ParseOptions(argc, argv);
  struct sigaction sa{};
  sa.sa_handler = rhizome::bench::OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return rhizome::bench::Run(options);
}
