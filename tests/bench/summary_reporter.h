// What the Google Benchmark binaries with a summary (channel_bench,
// ratchet_bench) share: a console reporter that keeps each benchmark's figures,
// and the end of main() that runs the benchmarks through it and then prints the
// binary's own summary of those figures. Benchmarks only; header-only.
#pragma once

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace rhizome::bench {

// One benchmark's figures, per iteration.
struct Figures {
  double real_ns = 0;
  double cpu_ns = 0;
  benchmark::UserCounters counters;
  bool median = false;  // from the median aggregate (with --benchmark_repetitions)
};

// Figures by benchmark: the function name, followed by "/" and the arguments
// when it has any (e.g. "BM_Session_SealOnBytes/1024").
using FiguresByName = std::map<std::string, Figures>;

// The console reporter, keeping each benchmark's figures (the median when
// repetitions are asked for) for the summary. Runs that failed are left out.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  using ConsoleReporter::ConsoleReporter;
  void ReportRuns(const std::vector<Run>& reports) override {
    for (const Run& r : reports) {
      if (r.error_occurred) continue;
      std::string key = r.run_name.function_name;
      if (!r.run_name.args.empty()) key += "/" + r.run_name.args;
      const bool is_median = r.run_type == Run::RT_Aggregate && r.aggregate_name == "median";
      if (r.run_type == Run::RT_Aggregate && !is_median) continue;
      Figures& f = figures[key];
      if (f.median && !is_median) continue;
      f.real_ns = ToNs(r.GetAdjustedRealTime(), r.time_unit);
      f.cpu_ns = ToNs(r.GetAdjustedCPUTime(), r.time_unit);
      f.counters = r.counters;
      f.median = is_median;
    }
    ConsoleReporter::ReportRuns(reports);
  }
  FiguresByName figures;

 private:
  static double ToNs(double v, benchmark::TimeUnit unit) {
    switch (unit) {
      case benchmark::kSecond:
        return v * 1e9;
      case benchmark::kMillisecond:
        return v * 1e6;
      case benchmark::kMicrosecond:
        return v * 1e3;
      default:
        return v;
    }
  }
};

// The rest of main() once the benchmarks are registered: parses the
// --benchmark_* flags, runs the selected benchmarks through a SummaryReporter
// (coloured on a terminal), then prints `print_summary` of their figures after
// the table. Returns main's exit code: 1 for an unrecognized argument, else 0.
inline int RunBenchmarksWithSummary(int argc, char** argv,
                                    void (*print_summary)(const FiguresByName&)) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  SummaryReporter reporter(isatty(STDOUT_FILENO) ? benchmark::ConsoleReporter::OO_Color
                                                 : benchmark::ConsoleReporter::OO_None);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::cout.flush();
  std::fflush(stdout);
  print_summary(reporter.figures);
  benchmark::Shutdown();
  return 0;
}

}  // namespace rhizome::bench
