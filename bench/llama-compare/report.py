#!/usr/bin/env python3
"""Summarises bench/llama-compare/run.sh's raw runs (JSON lines): medians per model, type and
program, the load averages seen, greedy-token agreement, and the RATIO lines.
Usage: report.py RUNS.jsonl cpu|cuda"""
import json
import statistics
import sys


def main():
    path, device = sys.argv[1], sys.argv[2]
    runs = [json.loads(line) for line in open(path) if line.strip()]
    keys = []
    for r in runs:
        if (r["model"], r["type"]) not in keys:
            keys.append((r["model"], r["type"]))
    print(f"{'model':<16} {'type':<5} {'program':<10} {'prefill tok/s':>14} {'decode tok/s':>13}"
          f"  runs  load averages")
    lines = []
    for model, typ in keys:
        med = {}
        for prog in ("llama", "worker"):
            rs = [r for r in runs if (r["model"], r["type"], r["prog"]) == (model, typ, prog)]
            pre = statistics.median(x["run"]["prompt"] / x["run"]["prefill_s"] for x in rs)
            dec = statistics.median(x["run"]["decode_steps"] / x["run"]["decode_s"] for x in rs)
            med[prog] = (pre, dec)
            name = "llama.cpp" if prog == "llama" else "worker"
            loads = " ".join(f"{x['load']:.1f}" for x in rs)
            print(f"{model:<16} {typ:<5} {name:<10} {pre:>14.1f} {dec:>13.2f}  {len(rs):>4}  {loads}")
        a = [r["run"]["tokens"] for r in runs if (r["model"], r["type"]) == (model, typ)
             and r["prog"] == "llama"][0]
        b = [r["run"]["tokens"] for r in runs if (r["model"], r["type"]) == (model, typ)
             and r["prog"] == "worker"][0]
        lead = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        same = sum(x == y for x, y in zip(a, b))
        print(f"{model:<16} {typ:<5} greedy tokens: first {lead} of {len(a)} identical, "
              f"{same}/{len(a)} at the same position")
        pre = med["worker"][0] / med["llama"][0]
        dec = med["worker"][1] / med["llama"][1]
        if device == "cpu":
            lines.append(f"RATIO worker_cpu_decode_vs_llamacpp {dec:.3f} model={model} type={typ}")
            lines.append(f"RATIO worker_cpu_prefill_vs_llamacpp {pre:.3f} model={model} type={typ}")
        else:
            lines.append(f"RATIO worker_gpu_decode_b1_vs_llamacpp {dec:.3f} model={model} "
                         f"type={typ}")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
