// wakeup_probe: how long this machine takes to wake a process blocked on a
// socket on the other core. Both servers in scripts/bench-relay.sh pay it on
// every leg that finds their core idle, so it sets the floor of the p50
// latency at a fixed rate (docs/benchmarks.md, "sixth session").
//
// A child pinned to core 0 blocks in read() on a UNIX socket pair; the
// parent, pinned to core 1, sleeps G microseconds, then writes its
// CLOCK_MONOTONIC time; the child records (now - that time). Printed per gap:
// p10/p50/p90 of the one-way latency in microseconds, and once with a
// receiver that polls without blocking (no wake-up: the cost of the path
// alone). Figures only, nothing asserted (DESIGN §14). Bounded: --rounds per
// gap (default 2,000), every wait has a timeout, the child is reaped.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

std::uint64_t NowNs() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                         std::chrono::steady_clock::now().time_since_epoch())
                                         .count());
}

bool PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

// The receiver: `rounds` stamps, blocking or polling; writes the sorted
// one-way latencies (ns) back over `report`.
int Receive(int sock, int report, int rounds, bool spin) {
  if (!PinTo(0)) return 1;
  std::vector<std::uint64_t> got;
  got.reserve(static_cast<std::size_t>(rounds));
  const auto give_up = NowNs() + 60'000'000'000ull;  // 60 s for the whole run
  for (int i = 0; i < rounds && NowNs() < give_up; ++i) {
    std::uint64_t stamp = 0;
    ssize_t n = -1;
    if (spin) {
      while ((n = recv(sock, &stamp, sizeof stamp, MSG_DONTWAIT)) < 0 && NowNs() < give_up) {
      }
    } else {
      pollfd p{sock, POLLIN, 0};
      if (poll(&p, 1, 5000) != 1) break;
      n = read(sock, &stamp, sizeof stamp);
    }
    const std::uint64_t now = NowNs();
    if (n != sizeof stamp) break;
    got.push_back(now - stamp);
  }
  const std::uint64_t count = got.size();
  if (write(report, &count, sizeof count) != sizeof count) return 1;
  for (std::uint64_t v : got) {
    if (write(report, &v, sizeof v) != sizeof v) return 1;
  }
  return 0;
}

void RunGap(int gap_us, int rounds, bool spin) {
  int sp[2];
  int rep[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) != 0 || pipe(rep) != 0) {
    std::perror("wakeup_probe: socketpair/pipe");
    std::exit(1);
  }
  const pid_t child = fork();
  if (child == 0) {
    close(sp[0]);
    close(rep[0]);
    _exit(Receive(sp[1], rep[1], rounds, spin));
  }
  close(sp[1]);
  close(rep[1]);
  if (!PinTo(1)) std::fprintf(stderr, "wakeup_probe: cannot pin to core 1\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the child pins itself
  for (int i = 0; i < rounds; ++i) {
    std::this_thread::sleep_for(std::chrono::microseconds(gap_us));
    const std::uint64_t stamp = NowNs();
    if (write(sp[0], &stamp, sizeof stamp) != sizeof stamp) break;
  }
  std::vector<std::uint64_t> got;
  std::uint64_t count = 0;
  if (read(rep[0], &count, sizeof count) == sizeof count && count <= static_cast<std::uint64_t>(rounds)) {
    got.resize(count);
    std::size_t want = count * sizeof(std::uint64_t);
    auto* p = reinterpret_cast<char*>(got.data());
    while (want > 0) {
      const ssize_t n = read(rep[0], p, want);
      if (n <= 0) break;
      p += n;
      want -= static_cast<std::size_t>(n);
    }
    if (want > 0) got.clear();
  }
  close(sp[0]);
  close(rep[0]);
  waitpid(child, nullptr, 0);
  if (got.empty()) {
    std::printf("gap %5d us, %s: no samples\n", gap_us, spin ? "polling receiver" : "blocked receiver");
    return;
  }
  std::sort(got.begin(), got.end());
  auto pct = [&](double q) { return static_cast<double>(got[static_cast<std::size_t>(q * static_cast<double>(got.size() - 1))]) / 1000.0; };
  std::printf("gap %5d us, %s: one-way p10 %.1f  p50 %.1f  p90 %.1f us (%zu rounds)\n", gap_us,
              spin ? "polling receiver" : "blocked receiver", pct(0.10), pct(0.50), pct(0.90),
              got.size());
  std::printf("RESULT tool=wakeup_probe gap_us=%d receiver=%s p10_us=%.1f p50_us=%.1f p90_us=%.1f n=%zu\n",
              gap_us, spin ? "polling" : "blocked", pct(0.10), pct(0.50), pct(0.90), got.size());
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 2000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = std::clamp(std::atoi(argv[++i]), 10, 100'000);
    } else {
      std::fprintf(stderr, "usage: wakeup_probe [--rounds N]\n");
      return 2;
    }
  }
  for (int gap : {1000, 200, 50}) RunGap(gap, rounds, /*spin=*/false);
  RunGap(1000, rounds, /*spin=*/true);
  return 0;
}
