#!/usr/bin/env python3
"""Summarise Google Benchmark JSON output (run with --benchmark_repetitions=N and
--benchmark_out_format=json) into the Markdown tables of docs/benchmarks.md.

    python3 tests/bench/summarize.py crypto.json [storage_sqlcipher.json ...]
    python3 tests/bench/summarize.py paired.json   # the BM_*Paired counters

For every benchmark it prints the median and the minimum over the repetitions
(CPU time, and real time where the benchmark measures real time), the
throughput at the median, and for every wrapper/raw pair the ratio
wrapper / raw of the medians and of the minimums. On a shared machine the
minimum is the figure least disturbed by other processes; both are reported.
"""
import json
import statistics
import sys
from collections import OrderedDict

UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def fmt_ns(ns):
    if ns >= 1e6:
        return "%.2f ms" % (ns / 1e6)
    if ns >= 1e3:
        return "%.2f µs" % (ns / 1e3)
    return "%.0f ns" % ns


def fmt_rate(bytes_per_s):
    if bytes_per_s is None:
        return ""
    if bytes_per_s < (1 << 20):
        return "%.0f KiB/s" % (bytes_per_s / 1024)
    return "%.0f MiB/s" % (bytes_per_s / (1 << 20))


def load(paths):
    runs = OrderedDict()
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        # storage_bench_sqlcipher and storage_bench_sqlite share benchmark names:
        # the library context line tells them apart.
        prefix = data.get("context", {}).get("library")
        prefix = "[%s] " % prefix if prefix else ""
        for b in data["benchmarks"]:
            if b.get("run_type") != "iteration" or b.get("error_occurred"):
                continue
            scale = UNIT_NS[b.get("time_unit", "ns")]
            r = runs.setdefault(prefix + b["run_name"],
                                {"cpu": [], "real": [], "rate": [], "extra": {}})
            r["cpu"].append(b["cpu_time"] * scale)
            r["real"].append(b["real_time"] * scale)
            if "bytes_per_second" in b:
                r["rate"].append(b["bytes_per_second"])
            for k in ("rows_per_s", "label"):
                if k in b:
                    r["extra"].setdefault(k, []).append(b[k])
    return runs


def pretty(name):
    return (name.replace("<Cipher::kXChaCha, Impl::kWrapper>", " XChaCha20-Poly1305 wrapper")
            .replace("<Cipher::kXChaCha, Impl::kRaw>", " XChaCha20-Poly1305 raw")
            .replace("<Cipher::kChaChaIetf, Impl::kWrapper>", " ChaCha20-Poly1305-IETF wrapper")
            .replace("<Cipher::kChaChaIetf, Impl::kRaw>", " ChaCha20-Poly1305-IETF raw"))


def paired_table(data):
    """Rows of the BM_*Paired benchmarks (their counters hold per-call times)."""
    rows = [b for b in data["benchmarks"] if "ratio_med" in b and not b.get("error_occurred")]
    if not rows:
        return
    print("| paired benchmark | wrapper median | raw median | ratio | wrapper min | raw min "
          "| ratio | throughput (wrapper median) |")
    print("|---|---|---|---|---|---|---|---|")
    for b in rows:
        name = b["name"]
        size = None
        if "/" in name:
            try:
                size = int(name.rsplit("/", 1)[1])
            except ValueError:
                size = None
        rate = ""
        if size:
            rate = "%.0f MiB/s" % (size / (b["wrapper_med_ns"] * 1e-9) / (1 << 20))
        pretty_name = (name.replace("<Cipher::kXChaCha, false>", " XChaCha20-Poly1305 encrypt")
                       .replace("<Cipher::kXChaCha, true>", " XChaCha20-Poly1305 decrypt")
                       .replace("<Cipher::kChaChaIetf, false>", " ChaCha20-Poly1305-IETF encrypt")
                       .replace("<Cipher::kChaChaIetf, true>", " ChaCha20-Poly1305-IETF decrypt"))
        print("| %s | %s | %s | %.3f | %s | %s | %.3f | %s |" % (
            pretty_name, fmt_ns(b["wrapper_med_ns"]), fmt_ns(b["raw_med_ns"]), b["ratio_med"],
            fmt_ns(b["wrapper_min_ns"]), fmt_ns(b["raw_min_ns"]), b["ratio_min"], rate))


def main(paths):
    paired = [p for p in paths if p.endswith("paired.json")]
    paths = [p for p in paths if p not in paired]
    for p in paired:
        with open(p) as f:
            paired_table(json.load(f))
        print()
    if not paths:
        return
    runs = load(paths)
    print("| benchmark | reps | median CPU | min CPU | median real | throughput (median) |")
    print("|---|---|---|---|---|---|")
    for name, r in runs.items():
        rate = statistics.median(r["rate"]) if r["rate"] else None
        extra = ""
        if "rows_per_s" in r["extra"]:
            extra = " (%.0f rows/s)" % statistics.median(r["extra"]["rows_per_s"])
        print("| %s | %d | %s | %s | %s | %s%s |" % (
            pretty(name), len(r["cpu"]), fmt_ns(statistics.median(r["cpu"])), fmt_ns(min(r["cpu"])),
            fmt_ns(statistics.median(r["real"])), fmt_rate(rate), extra))

    pairs = []
    for name in runs:
        for w, raw in (("Impl::kWrapper", "Impl::kRaw"), ("_Wrapper", "_Raw")):
            if w in name and name.replace(w, raw) in runs:
                pairs.append((name, name.replace(w, raw)))
    if pairs:
        print()
        print("| wrapper / raw | ratio of medians (CPU) | ratio of minimums (CPU) |")
        print("|---|---|---|")
        for w, raw in pairs:
            med = statistics.median(runs[w]["cpu"]) / statistics.median(runs[raw]["cpu"])
            mn = min(runs[w]["cpu"]) / min(runs[raw]["cpu"])
            print("| %s | %.3f | %.3f |" % (pretty(w).replace(" wrapper", "").replace("_Wrapper", ""),
                                           med, mn))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
