// Helpers shared by the load generators (relay_load, mosquitto_load): the
// measured server's CPU and memory from /proc, this process's own CPU, the fd
// limit, percentiles and the payload's big-endian fields. Benchmarks only.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace rhizome::bench {

// utime + stime of every thread of `pid`, in microseconds; -1 if unreadable.
inline std::int64_t ProcessCpuMicros(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) is in parentheses and may contain spaces.
  auto close = text.rfind(')');
  if (!in.good() && text.empty()) return -1;
  if (close == std::string::npos) return -1;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  // Fields 3.. : state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt
  // majflt cmajflt utime(14) stime(15).
  std::uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  const long ticks = sysconf(_SC_CLK_TCK);
  if (ticks <= 0) return -1;
  return static_cast<std::int64_t>((utime + stime) * 1'000'000ull / static_cast<std::uint64_t>(ticks));
}

// VmRSS of `pid` in KiB; -1 if unreadable.
inline std::int64_t ProcessRssKib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

// This process's CPU time (all threads), microseconds.
inline std::int64_t SelfCpuMicros() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1'000'000ll + ru.ru_utime.tv_usec +
         ru.ru_stime.tv_usec;
}

// Raises RLIMIT_NOFILE to its hard limit and prints the result.
inline void RaiseFdLimit(const char* program) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) std::fprintf(stderr, "%s: setrlimit failed\n", program);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    std::printf("fd limit: %llu\n", static_cast<unsigned long long>(rl.rlim_cur));
  }
}

// The p-quantile (0..1) of `v` (reordered in place); 0 for no samples.
inline double Percentile(std::vector<std::uint32_t>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

// Records one send-to-deliver latency in µs, or counts it as dropped once
// `samples` holds `cap` (memory stays bounded).
inline void RecordLatency(std::vector<std::uint32_t>& samples, std::uint64_t& dropped,
                          std::size_t cap, std::uint64_t sent_ns, std::uint64_t now_ns) {
  if (samples.size() < cap) {
    samples.push_back(static_cast<std::uint32_t>(now_ns > sent_ns ? (now_ns - sent_ns) / 1000 : 0));
  } else {
    ++dropped;
  }
}

inline void PutU64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<std::uint8_t>(v);
    v >>= 8;
  }
}
inline std::uint64_t GetU64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace rhizome::bench
