#!/usr/bin/env python3
"""Measurement and statistics for bench/run.sh.

  bench.py measure --raw FILE --pair P --scenario S --round R
                   [--pids "PID ..."] [--metrics URL] [--rss] [--throughput]
                   [--retries N --deadline EPOCH] -- COMMAND...
      Runs COMMAND (the load generator, already pinned by the caller) and appends one JSON
      record per attempt to FILE: the generator's results; for the window between the
      generator's "measure" and "end" lines (the whole run without them) the CPU time of each
      process under test (schedstat, ns), the time they waited for the CPU, the tested CPU's
      busy time (root cpuacct cgroup, ns; /proc/stat ticks otherwise) and what of it other
      programs took, the generator's own CPU, steal; RSS of the processes under test (idle
      mode: while the connections are held), and a counter delta from a Prometheus endpoint
      (storm: evidence requests). The record says why a run is invalid.
  bench.py cancel --raw FILE --pair P --stats URL -- COMMAND...
      Runs COMMAND (SSE streams the generator closes after a few events) and records how many
      of those cancellations the upstream's /stats counted, how soon, and whether it made
      events afterwards.
  bench.py report --raw FILE [--instr FILE]
      Prints a table per scenario (medians with min-max over valid rounds), the calibration
      and cancel tables, the foreign load seen, and the RATIO (median of per-round ratios
      with a 95 % bootstrap interval, or nan with the reason) and METRIC lines.
"""
import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

TICK = os.sysconf("SC_CLK_TCK")
TLS_PEERS = ["stunnel", "haproxy-tls", "nginx-stream", "nginx-http"]
PAIRS = (["direct", "ccgate", "ccgate-cold", "ccgate-flush", "ccgate-debuglog", "ccgate-tcp"] + TLS_PEERS +
         ["nginx-http-old", "haproxy-plain"])
REF_PAIRS = ["ref-" + p for p in TLS_PEERS]
MiB = 1024 * 1024
FOREIGN_MAX = 0.15  # share of the tested CPU that other programs may take before a run is invalid
BUSY_MIN = 0.95  # throughput runs: the tested CPU must be at least this busy
# Other runs (latency, CPU per MiB): other programs may fill the tested CPU's idle time, but
# not take it from the processes under test. A run is invalid when others took more than
# FOREIGN_MAX of the CPU *and* the processes under test waited for it more than this on
# average per time they got it. (Waiting for each other is part of every pair: a few us per
# hand-over at c=1, stunnel's 64 threads 200-400 us, up to ~1 ms in saturated transfers,
# where the three processes share one CPU; another program's time slice costs milliseconds.)
WAIT_PER_RUN_MAX_US = 500
OAI_INTERVAL_US = 20000  # run.sh's openai_stream_c64: one event every 20 ms
CPUACCT = "/sys/fs/cgroup/cpuacct/cpuacct.usage_percpu"  # cgroup v1: ns per CPU, all tasks


def proc_cpu(pid):
    """CPU time of a whole process in seconds: (schedstat sum over its live threads, ns
    resolution; utime+stime from /proc/<pid>/stat, tick resolution but counting threads that
    have exited; the set of live thread ids; the threads' time spent runnable but waiting
    for the CPU; how many times they were put on the CPU)."""
    ns, wait, runs, tids = 0, 0, 0, set()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    v = f.read().split()
                ns += int(v[0])
                wait += int(v[1])
                runs += int(v[2])
                tids.add(tid)
            except (OSError, ValueError, IndexError):
                pass
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return float("nan"), float("nan"), set(), 0.0, 0
    return ns / 1e9, ticks, tids, wait / 1e9, runs


def cpu_delta(a, b):
    """(seconds, source) between two proc_cpu samples: schedstat when no thread came or went
    (stunnel's thread per connection), else the tick count, which keeps dead threads' time."""
    if a[2] == b[2]:
        return b[0] - a[0], "schedstat"
    return b[1] - a[1], "ticks"


def proc_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return float("nan")


def cpu_totals(cpu):
    """(total jiffies, steal jiffies) over all CPUs, and the busy seconds of CPU cpu: from the
    root cpuacct cgroup in ns where there is one, else /proc/stat in ticks."""
    tot = steal = 0
    busy = None
    try:
        with open(CPUACCT) as f:
            busy = int(f.read().split()[cpu]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if not parts or not parts[0].startswith("cpu"):
                break
            vals = [int(x) for x in parts[1:9]]
            if parts[0] == "cpu":
                tot, steal = sum(vals), vals[7]
            elif parts[0] == f"cpu{cpu}" and busy is None:
                busy = (sum(vals) - vals[3] - vals[4]) / TICK  # all but idle and iowait
    return tot, steal, busy or 0.0


def counter(url, name):
    """Sum of a Prometheus counter's samples, or None when the endpoint does not answer."""
    if not url:
        return None
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name):
            total += float(line.split()[-1])
    return total


class Sample:
    """Every counter the measurement reads, at one instant."""

    def __init__(self, pids, gen_pid, sut_cpu):
        self.t = time.monotonic()
        self.tot, self.steal, self.busy = cpu_totals(sut_cpu)
        self.procs = [proc_cpu(p) for p in pids]
        self.gen = proc_cpu(gen_pid) if gen_pid else None


# Scenarios whose ratio is a rate (req/s, connections/s): the pair must saturate the tested
# CPU. CPU per request or per MiB needs no saturation (schedstat counts what was used).
THROUGHPUT = {"get1k_c16", "get1k_c64", "json_c16", "newconn_c16"}


def why_invalid(rec):
    """The reasons a run does not count (empty: valid), from what its record measured."""
    why = []
    span = rec.get("wall_s", 0)
    if "fail" in rec:
        why.append(rec["fail"])
    if rec.get("errors", 0) > 0:
        why.append(f"{rec['errors']} socket/HTTP errors")
    if rec.get("steal_frac", 0) > 0.02:
        why.append(f"steal {100 * rec['steal_frac']:.1f}%")
    wait = rec.get("sut_wait_us_per_run", 0)
    throughput = rec.get("throughput", rec["scenario"] in THROUGHPUT)
    if throughput and (rec.get("foreign_frac", 0) > FOREIGN_MAX or rec.get("core_busy_frac", 1) < BUSY_MIN):
        ours = sum(x for x in rec.get("proxy_cpu_s", []) if not math.isnan(x))
        if wait < 50:
            # they hardly waited for the CPU: they did not need it all
            why.append(f"not saturated: the processes under test kept the tested CPU "
                       f"{100 * ours / span if span > 0 else 0:.0f}% busy")
        else:
            why.append(f"other programs took {100 * rec['foreign_frac']:.0f}% of the tested CPU")
    if not throughput and rec.get("foreign_frac", 0) > FOREIGN_MAX and wait > WAIT_PER_RUN_MAX_US:
        why.append(f"other programs took {100 * rec['foreign_frac']:.0f}% of the tested CPU while the processes "
                   f"under test waited {wait:.0f} us for it per wake-up")
    # A generator busy 90 % of the time on its own core is what limits the run.
    if rec.get("gen_cpu_frac", 0) > 0.9:
        why.append(f"generator saturated ({100 * rec['gen_cpu_frac']:.0f}% CPU)")
    return why


def measure(a):
    """One run, and again (up to --retries times, while before --deadline) when it was
    invalid; every attempt is recorded, the report uses a round's valid one."""
    for attempt in range(1 + a.retries):
        if measure_once(a, attempt) or time.time() > a.deadline:
            return


def measure_once(a, attempt):
    pids = [int(p) for p in a.pids.split()] if a.pids else []
    rss0 = [proc_rss_kib(p) for p in pids]
    c0 = counter(a.metrics, a.counter)
    rss_held = None
    proc = subprocess.Popen(a.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(a.timeout, proc.kill)
    watchdog.start()
    s0 = Sample(pids, proc.pid, a.sut_cpu)
    s1 = None
    err_lines = []
    # The generator says "measure" when its warm-up ends, "end" when the window closes, and
    # (idle) "ready" once every connection is up: the counters are read right then.
    for line in proc.stderr:
        word = line.strip()
        if word == "measure":
            s0 = Sample(pids, proc.pid, a.sut_cpu)
        elif word == "end" and s1 is None:
            s1 = Sample(pids, proc.pid, a.sut_cpu)
        elif word == "ready" and a.rss:
            time.sleep(0.3)
            rss_held = [proc_rss_kib(p) for p in pids]
        else:
            err_lines.append(line)
    out = proc.stdout.read()
    proc.wait()
    timed_out = not watchdog.is_alive()
    watchdog.cancel()
    if s1 is None:  # no window marker (sse, storm, idle): the whole run
        time.sleep(0.05)  # let the proxies finish the last writes and closes
        s1 = Sample(pids, None, a.sut_cpu)
    err = "".join(err_lines) + ("\n(timed out)" if timed_out else "")
    span = s1.t - s0.t
    rec = {"pair": a.pair, "scenario": a.scenario, "round": a.round, "attempt": attempt, "wall_s": span}
    try:
        rec.update(json.loads(out.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        rec["fail"] = "no loadgen result"
    if proc.returncode != 0:
        rec["fail"] = f"generator exit {proc.returncode}"
    if "fail" in rec:
        rec["stderr"] = (err or "")[-400:]
    deltas = [cpu_delta(x, y) for x, y in zip(s0.procs, s1.procs)]
    rec["proxy_cpu_s"] = [d[0] for d in deltas]
    rec["cpu_src"] = sorted({d[1] for d in deltas})
    # Time the processes under test were runnable but not running: each other and, on a
    # shared machine, other programs.
    rec["sut_wait_frac"] = sum(y[3] - x[3] for x, y in zip(s0.procs, s1.procs)) / span if span > 0 else 0
    runs = sum(y[4] - x[4] for x, y in zip(s0.procs, s1.procs))
    rec["sut_wait_us_per_run"] = rec["sut_wait_frac"] * span / runs * 1e6 if runs > 0 else 0
    if s0.gen is not None and s1.gen is not None and s1.gen[2]:
        rec["gen_cpu_frac"] = cpu_delta(s0.gen, s1.gen)[0] / span if span > 0 else 0
    rec["steal_frac"] = (s1.steal - s0.steal) / (s1.tot - s0.tot) if s1.tot > s0.tot else 0
    rec["core_busy_s"] = s1.busy - s0.busy
    rec["core_busy_frac"] = rec["core_busy_s"] / span if span > 0 else 0
    # Others on the core under test (this machine is shared): its busy time less ours.
    ours = sum(x for x in rec["proxy_cpu_s"] if not math.isnan(x))
    rec["foreign_frac"] = max(0.0, rec["core_busy_s"] - ours) / span if span > 0 else 0
    if rss_held is not None:
        rec["rss_delta_kib"] = [b - a_ for a_, b in zip(rss0, rss_held)]
    c1 = counter(a.metrics, a.counter)
    if c0 is not None and c1 is not None:
        rec["counter_delta"] = c1 - c0
    rec["throughput"] = a.throughput
    why = why_invalid(rec)
    rec["invalid"] = "; ".join(why)
    with open(a.raw, "a") as f:
        f.write(json.dumps(rec) + "\n")
    status = f"INVALID ({rec['invalid']})" if why else "ok"
    print(f"  {a.round}{'.' + str(attempt) if attempt else '  '} {a.pair:14s} {a.scenario:16s} {status}",
          file=sys.stderr)
    return not why


def upstream_stats(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def cancel(a):
    """Runs the generator (SSE streams it closes after a few events) and watches the
    upstream's /stats: how many of the cancelled streams it saw end, how soon after the
    generator finished, and whether it made events after that."""
    before = upstream_stats(a.stats)
    proc = subprocess.run(a.command, capture_output=True, text=True, timeout=a.timeout)
    t_done = time.monotonic()
    try:
        res = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        print(f"  cancel {a.pair}: no loadgen result: {proc.stderr[-200:]}", file=sys.stderr)
        return 1
    n = res.get("cancelled", 0)
    seen, ms = 0, float("nan")
    while time.monotonic() - t_done < 3:
        now = upstream_stats(a.stats)
        seen = now["streams_cancelled"] - before["streams_cancelled"]
        if seen >= n:
            ms = (time.monotonic() - t_done) * 1e3
            break
        time.sleep(0.01)
    ev1 = upstream_stats(a.stats)["stream_events"]
    time.sleep(0.3)
    ev2 = upstream_stats(a.stats)["stream_events"]
    rec = {"cancel": 1, "pair": a.pair, "cancelled": n, "seen": seen, "ms": ms,
           "events_after": ev2 - ev1, "errors": res.get("errors", 0)}
    with open(a.raw, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(f"  cancel {a.pair:14s} upstream saw {seen} of {n} cancellations"
          f"{f' within {ms:.0f} ms' if not math.isnan(ms) else ''}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- report


def med(xs):
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return (statistics.median(xs), min(xs), max(xs)) if xs else None


def fmt(t, scale=1.0, prec=0):
    if t is None:
        return "-"
    m, lo, hi = (v * scale for v in t)
    if lo == hi:
        return f"{m:.{prec}f}"
    return f"{m:.{prec}f} [{lo:.{prec}f}-{hi:.{prec}f}]"


def derived(r):
    """Per-run derived numbers: CPU per request and per MiB of the processes under test."""
    # the processes under test are the pair's proxies, then the upstream (not counted here)
    procs = [x for x in r.get("proxy_cpu_s", [])[:-1]]
    cpu = sum(x for x in procs if not math.isnan(x))
    req = r.get("requests", 0)
    mib = (r.get("body_in", 0) + r.get("body_out", 0)) / MiB
    el = r.get("elapsed_s", 0) or r.get("wall_s", 1)
    lat, ev, gap, ttfe = (r.get(k, {}) for k in ("lat_us", "event_us", "gap_us", "ttfe_us"))
    return {
        "rps": r.get("rps"),
        "p50": lat.get("p50"),
        "p99": lat.get("p99"),
        "p999": lat.get("p999"),
        "cpu_us_req": cpu / req * 1e6 if req else None,
        "cpu_client_us_req": procs[0] / req * 1e6 if req and procs else None,
        "cpu_server_us_req": procs[1] / req * 1e6 if req and len(procs) > 1 else None,
        "core_us_req": r["core_busy_s"] / req * 1e6 if req and "core_busy_s" in r else None,
        "busy": r.get("core_busy_frac", 0) * 100,
        "cpu_ms_mib": cpu / mib * 1e3 if mib >= 1 else None,
        "mibps": mib / el if el else None,
        "ttfe50": ttfe.get("p50"),
        "ev50": ev.get("p50"),
        "ev99": ev.get("p99"),
        "gap50": gap.get("p50"),
        "gap99": gap.get("p99"),
        "jit99": gap["p99"] - OAI_INTERVAL_US if gap.get("p99") is not None else None,
        "errors": r.get("errors"),
        "ms": r.get("elapsed_s", 0) * 1e3,
        "evreq": r.get("counter_delta"),
        "rss": [x / r["conns"] for x in r["rss_delta_kib"]] if r.get("rss_delta_kib") and r.get("conns") else None,
    }


def bootstrap(xs, reps=2000):
    """Median of xs and a 95 % percentile-bootstrap interval of the median (fixed seed: the
    same data always gives the same interval)."""
    rng = random.Random(13)
    meds = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(reps))
    return statistics.median(xs), meds[int(0.025 * reps)], meds[int(0.975 * reps) - 1]


class Data:
    """The runs of one raw file: per (scenario, pair) the derived numbers of each valid round."""

    def __init__(self, runs, missing):
        self.runs = runs
        self.missing = missing  # pair -> why it did not run
        self.valid = {}  # (scenario, pair) -> {round: derived}
        self.all = {}  # (scenario, pair) -> [record]
        for r in runs:
            key = (r["scenario"], r["pair"])
            self.all.setdefault(key, []).append(r)
            if not r.get("invalid"):
                self.valid.setdefault(key, {})[r["round"]] = derived(r)

    def rounds(self, s, p, k):
        """{round: value} of metric k over the valid rounds of a cell."""
        return {rd: d[k] for rd, d in self.valid.get((s, p), {}).items() if d.get(k) is not None}

    def median(self, s, p, k):
        v = list(self.rounds(s, p, k).values())
        return statistics.median(v) if v else None

    def why_not(self, s, pairs, need=2):
        """Why a ratio over scenario s cannot be trusted, or None: every pair it names must
        have run and have at least `need` valid rounds."""
        for p in pairs:
            if p in self.missing:
                return f"{p} did not run ({self.missing[p]})"
            n_all = len(self.all.get((s, p), []))
            n_ok = len(self.valid.get((s, p), {}))
            if n_all == 0:
                return f"{p} has no {s} run"
            if n_ok < need:
                whys = sorted({r["invalid"] for r in self.all[(s, p)] if r.get("invalid")})
                return f"{p} has {n_ok} valid round(s) of {n_all} in {s} ({'; '.join(whys)[:160]})"
        return None


class Ratio:
    """One RATIO line: the median over rounds of a per-round ratio, with a bootstrap interval."""

    def __init__(self, name, value=float("nan"), lo=None, hi=None, n=0, best=None, why=None,
                 note=""):
        self.name, self.value, self.lo, self.hi, self.n = name, value, lo, hi, n
        self.best, self.why, self.note = best, why, note

    def line(self):
        if self.why is not None or math.isnan(self.value):
            return f"{self.name} nan ({self.why or 'undefined'})"
        extra = f" best={self.best}" if self.best else ""
        extra += f" {self.note}" if self.note else ""
        return f"{self.name} {self.value:.3f} ci95=[{self.lo:.3f},{self.hi:.3f}] rounds={self.n}{extra}"


def peer_ratio(d, name, s, k, hi_better, cg="ccgate", base=None, peers=TLS_PEERS):
    """ccgate's metric k in scenario s over the best TLS peer's, round by round. With base (a
    pair, e.g. direct), both sides are first reduced by base's value in the same round (added
    latency). The best peer is the one with the best median; rounds where ccgate, that peer
    (and base) are all valid give one ratio each."""
    why = d.why_not(s, [cg] + list(peers) + ([base] if base else []))
    if why:
        return Ratio(name, why=why)

    def per_round(p):
        v = d.rounds(s, p, k)
        if base is None:
            return v
        b = d.rounds(s, base, k)
        return {rd: x - b[rd] for rd, x in v.items() if rd in b}

    meds = {p: statistics.median(per_round(p).values()) for p in peers if per_round(p)}
    if not meds:
        return Ratio(name, why=f"no peer has a round with {base} valid too")
    if base is not None and min(meds.values()) <= 0:
        p = min(meds, key=meds.get)
        return Ratio(name, why=f"{p}'s {k} is not above {base}'s ({meds[p]:+.0f}): noise swamped {base}")
    best = (max if hi_better else min)(meds, key=meds.get)
    c, b = per_round(cg), per_round(best)
    xs = [c[rd] / b[rd] for rd in c if rd in b and b[rd] > 0]
    if len(xs) < 2:
        return Ratio(name, why=f"{len(xs)} round(s) with both ccgate and {best} valid", best=best)
    m, lo, hi = bootstrap(xs)
    return Ratio(name, m, lo, hi, len(xs), best)


def pair_ratio(d, name, s, k, num, den):
    """num's metric over den's (e.g. ccgate-cold over ccgate), round by round."""
    why = d.why_not(s, [num, den])
    if why:
        return Ratio(name, why=why)
    a, b = d.rounds(s, num, k), d.rounds(s, den, k)
    xs = [a[rd] / b[rd] for rd in a if rd in b and b[rd] > 0]
    if len(xs) < 2:
        return Ratio(name, why=f"{len(xs)} round(s) with both {num} and {den} valid")
    m, lo, hi = bootstrap(xs)
    return Ratio(name, m, lo, hi, len(xs), note=f"{num}/{den}")


def print_tables(d, scen_order):
    def cell(s, p, k, scale=1.0, prec=0):
        return fmt(med(list(d.rounds(s, p, k).values())), scale, prec)

    for s in scen_order:
        pairs = [p for p in PAIRS + REF_PAIRS if (s, p) in d.all]
        print(f"\n== {s}: {SCENARIO_TITLE.get(s, s)}")

        def valid_col(p):
            rs = d.all[(s, p)]
            n_ok = sum(1 for r in rs if not r.get("invalid"))
            whys = sorted({r["invalid"] for r in rs if r.get("invalid")})
            return f"{n_ok}/{len(rs)} " + "; ".join(whys)[:200]

        if s.startswith(("sse", "openai")):
            cols = ("first event ms", "event p50 us", "event p99 us", "gap p50 us", "gap p99 us",
                    "CPU us/stream")
            print(f"{'pair':14s} " + " | ".join(f"{c:>20s}" for c in cols) + " | valid")
            for p in pairs:
                cells = (cell(s, p, "ttfe50", 1e-3, 2), cell(s, p, "ev50"), cell(s, p, "ev99"),
                         cell(s, p, "gap50"), cell(s, p, "gap99"), cell(s, p, "cpu_us_req"))
                print(f"{p:14s} " + " | ".join(f"{c:>20s}" for c in cells) + f" | {valid_col(p)}")
        elif s == "idle":
            print(f"{'pair':14s} {'client side, server side, upstream':>48s}")
            for p in pairs:
                rss = [derived(r)["rss"] for r in d.all[(s, p)] if derived(r)["rss"]]
                cells = ", ".join(f"{x:.1f}" for x in rss[-1]) if rss else "-"
                print(f"{p:14s} {cells:>48s}  {valid_col(p)}")
        elif s == "storm":
            print(f"{'pair':14s} {'all served ms':>22s} | {'errors':>8s} | {'evidence requests':>18s}")
            for p in pairs:
                ds = [derived(r) for r in d.all[(s, p)]]
                ev = fmt(med([x["evreq"] for x in ds])) if any(x["evreq"] for x in ds) else "-"
                print(f"{p:14s} {fmt(med([x['ms'] for x in ds])):>22s} | "
                      f"{fmt(med([x['errors'] for x in ds])):>8s} | {ev:>18s}")
        else:
            transfer = s.startswith(("dl", "ul"))
            cols = ("req/s", "p50 us", "p99 us", "CPU us/req", "core us/req", "core busy %") + (
                ("MiB/s", "CPU ms/MiB") if transfer else ())
            print(f"{'pair':14s} " + " | ".join(f"{c:>20s}" for c in cols) + " | valid")
            for p in pairs:
                cells = [cell(s, p, "rps"), cell(s, p, "p50"), cell(s, p, "p99"),
                         cell(s, p, "cpu_us_req", prec=1), cell(s, p, "core_us_req", prec=1),
                         cell(s, p, "busy")]
                if transfer:
                    cells += [cell(s, p, "mibps"), cell(s, p, "cpu_ms_mib", prec=2)]
                print(f"{p:14s} " + " | ".join(f"{c:>20s}" for c in cells) + f" | {valid_col(p)}")


def report(a):
    runs, missing, cancels = [], {}, []
    with open(a.raw) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            if "missing" in r:
                missing[r["missing"]] = r["why"]
            elif "cancel" in r:
                cancels.append(r)
            else:
                # judged again by the current rules, from what the run measured
                r["invalid"] = "; ".join(why_invalid(r))
                runs.append(r)
    d = Data(runs, missing)
    order = {s: i for i, s in enumerate(SCENARIO_ORDER)}
    scen_order = sorted({r["scenario"] for r in runs}, key=lambda s: order.get(s, 99))
    for p, why in missing.items():
        print(f"notice: pair {p} did not run: {why}")
    print_tables(d, scen_order)
    print_calibration(d)
    print_cancel(cancels)
    foreign = [r.get("foreign_frac", 0) for r in runs]
    if foreign:
        print(f"\nforeign load on the tested CPU (other programs): median {100 * statistics.median(foreign):.0f}%, "
              f"max {100 * max(foreign):.0f}%; "
              f"{sum(1 for r in runs if r.get('invalid'))} of {len(runs)} runs invalid")

    ratios = []
    quick = ("dl64m_c1", "ccgate") not in d.all
    ratios.append(peer_ratio(d, "RATIO rps_c16_vs_best_peer", "get1k_c16", "rps", True))
    ratios.append(peer_ratio(d, "RATIO cpu_per_req_vs_best_peer", "get1k_c16", "cpu_us_req", False))
    ratios.append(peer_ratio(d, "RATIO added_p50_c1_vs_best_peer", "get1k_c1", "p50", False, base="direct"))
    dl = "dl16m_c1" if quick else "dl64m_c1"  # quick runs use 16 MiB
    r = peer_ratio(d, "RATIO cpu_per_mib_vs_stunnel", dl, "cpu_ms_mib", False, peers=["stunnel"])
    r.best = None
    ratios.append(r)
    # The worst transfer scenario against its best peer.
    xfer = [s for s in scen_order if s.startswith(("dl", "ul"))]
    per = [peer_ratio(d, "x", s, "cpu_ms_mib", False) for s in xfer]
    bad = [(s, x) for s, x in zip(xfer, per) if x.why]
    if not xfer:
        ratios.append(Ratio("RATIO cpu_per_mib_vs_best_peer", why="no transfer scenario ran"))
    elif bad:
        ratios.append(Ratio("RATIO cpu_per_mib_vs_best_peer", why=f"{bad[0][0]}: {bad[0][1].why}"))
    else:
        s, w = max(zip(xfer, per), key=lambda t: t[1].value)
        w.name, w.note = "RATIO cpu_per_mib_vs_best_peer", f"worst={s} of {len(xfer)}"
        ratios.append(w)
    ratios.append(peer_ratio(d, "RATIO newconn_vs_best_peer", "newconn_c16", "rps", True))
    ratios.append(peer_ratio(d, "RATIO sse64_added_p50_vs_best_peer", "sse_64", "ev50", False, base="direct"))
    ratios.append(peer_ratio(d, "RATIO openai_ttft_added_p50_vs_best_peer", "openai_stream_c64", "ttfe50",
                             False, base="direct"))
    # inter-token gap p99 beyond the 20 ms the upstream waits between events
    ratios.append(peer_ratio(d, "RATIO openai_itl_p99_jitter_vs_best_peer", "openai_stream_c64", "jit99", False))
    # against the peers that also make a TLS handshake (resumed) per app connection; nginx-http pools
    r = peer_ratio(d, "RATIO attested_handshake_cpu_vs_best_peer", "newconn_c16", "cpu_us_req", False,
                   cg="ccgate-cold", peers=["stunnel", "haproxy-tls", "nginx-stream"])
    r.note = "(L4 peers: a handshake per connection)"
    ratios.append(r)
    ratios.append(pair_ratio(d, "RATIO pool_flush_p99_vs_steady", "get1k_rate2k", "p99", "ccgate-flush",
                             "ccgate"))

    def metric(name, v, prec=3):
        return f"{name} {v:.{prec}f}" if v is not None and not math.isnan(v) else f"{name} nan"

    metrics = []
    e, dd = d.median("sse_64", "ccgate", "ev50"), d.median("sse_64", "direct", "ev50")
    metrics.append(metric("METRIC sse_added_p50_us", e - dd if e is not None and dd is not None else None))
    e, dd = d.median("sse_64", "ccgate", "ev99"), d.median("sse_64", "direct", "ev99")
    metrics.append(metric("METRIC sse_added_p99_ms", (e - dd) / 1e3 if e is not None and dd is not None else None))
    rss = [derived(r)["rss"] for r in d.all.get(("idle", "ccgate"), []) if derived(r)["rss"]]
    # the two sidecars (the last process is the upstream)
    metrics.append(metric("METRIC idle_conn_kib", sum(rss[-1][:2]) / 2 if rss and len(rss[-1]) >= 3 else None))
    ev = [derived(r)["evreq"] for r in d.all.get(("storm", "ccgate"), [])]
    metrics.append(metric("METRIC storm_evidence_requests", ev[-1] if ev and ev[-1] is not None else None))
    instr = None
    if a.instr and os.path.exists(a.instr):
        try:
            with open(a.instr) as f:
                instr = float(f.read().split()[0])
        except (ValueError, IndexError):
            pass
    metrics.append(metric("METRIC instr_per_req", instr))
    o = "openai_stream_c64"
    for k, n in (("ttfe50", "ttft_p50_us"), ("gap50", "itl_p50_us"), ("gap99", "itl_p99_us")):
        c, dd = d.median(o, "ccgate", k), d.median(o, "direct", k)
        metrics.append(metric(f"METRIC openai_{n}_added", c - dd if c is not None and dd is not None else None, 0))
    for k, n in (("cpu_client_us_req", "client"), ("cpu_server_us_req", "server")):
        metrics.append(metric(f"METRIC attested_handshake_cpu_us_{n}", d.median("newconn_c16", "ccgate-cold", k), 1))
    metrics.append(metric("METRIC attested_handshake_conn_per_s", d.median("newconn_c16", "ccgate-cold", "rps"), 0))
    p99 = d.median("get1k_rate2k", "ccgate-flush", "p99")
    metrics.append(metric("METRIC pool_flush_p99_ms", p99 / 1e3 if p99 is not None else None))
    p999 = d.median("get1k_rate2k", "ccgate-flush", "p999")
    metrics.append(metric("METRIC pool_flush_p999_ms", p999 / 1e3 if p999 is not None else None))
    p999 = d.median("get1k_rate2k", "ccgate", "p999")
    metrics.append(metric("METRIC pool_steady_p999_ms", p999 / 1e3 if p999 is not None else None))
    cg = [c for c in cancels if c["pair"] == "ccgate"]
    metrics.append(metric("METRIC cancel_upstream_seen", cg[-1]["seen"] / cg[-1]["cancelled"]
                          if cg and cg[-1]["cancelled"] else None))

    best = [f"{x.name.split()[1]}={x.best}" for x in ratios if x.best and x.why is None]
    print("\nbest TLS peer per ratio: " + ", ".join(best))
    print("ratios: median over rounds of the per-round ratio, 95% bootstrap interval of that median;"
          " nan unless ccgate and every TLS peer have >= 2 valid rounds")
    for x in ratios:
        print(x.line())
    for m in metrics:
        print(m)


def print_calibration(d):
    """The harness's peers against the hand-tuned reference configurations, same scenario."""
    s = "get1k_c16"
    if not any((s, p) in d.all for p in REF_PAIRS):
        return
    print(f"\n== calibration ({s}): harness peers against the hand-tuned reference configurations")
    print(f"{'peer':14s} {'harness CPU us/req':>20s} | {'reference':>12s} | {'drift':>8s} | req/s harness / reference")
    for p in TLS_PEERS:
        h, r = d.median(s, p, "cpu_us_req"), d.median(s, "ref-" + p, "cpu_us_req")
        hr, rr = d.median(s, p, "rps"), d.median(s, "ref-" + p, "rps")
        if h is None or r is None:
            print(f"{p:14s} {'-':>20s} | {'-':>12s} | {'-':>8s} | no valid run of both")
            continue
        drift = h / r - 1
        flag = "  DRIFT > 15%" if abs(drift) > 0.15 else ""
        print(f"{p:14s} {h:20.1f} | {r:12.1f} | {100 * drift:+7.1f}% | {hr:.0f} / {rr:.0f}{flag}")


def print_cancel(cancels):
    if not cancels:
        return
    print("\n== cancel: SSE streams closed by the client after a few events; did the upstream stop?")
    print(f"{'pair':14s} {'cancelled':>10s} | {'upstream saw':>12s} | {'within ms':>10s} | events made after")
    for c in cancels:
        print(f"{c['pair']:14s} {c['cancelled']:>10d} | {c['seen']:>12d} | {c['ms']:>10.0f} | {c['events_after']}")


SCENARIO_ORDER = ["get1k_c1", "get1k_c16", "get1k_c64", "json_c16", "get1k_rate2k", "newconn_c16",
                  "dl1m_c1", "dl1m_c4", "dl64m_c1", "dl64m_c4", "ul1m_c1", "ul1m_c4", "ul64m_c1",
                  "ul64m_c4", "dl16m_c1", "ul16m_c1", "sse_1", "sse_64", "openai_stream_c64", "idle",
                  "storm"]
SCENARIO_TITLE = {
    "get1k_c1": "1 KiB GET, keep-alive, 1 connection",
    "get1k_c16": "1 KiB GET, keep-alive, 16 connections (calibration: ref-* = hand-tuned peers)",
    "get1k_c64": "1 KiB GET, keep-alive, 64 connections",
    "json_c16": "OpenAI-shaped JSON POST, ~700 B in / ~1 KiB out, 16 connections",
    "get1k_rate2k": "1 KiB GET, open loop at 2000 req/s over up to 16 connections"
                    " (ccgate-flush: ccgate with its pool flushed by SIGHUP every second)",
    "newconn_c16": "1 KiB GET, a new app connection per request, 16 at a time"
                   " (ccgate-cold: --pool-max 0, an attested handshake per request)",
    "dl1m_c1": "1 MiB download, 1 connection", "dl1m_c4": "1 MiB download, 4 connections",
    "dl64m_c1": "64 MiB download, 1 connection", "dl64m_c4": "64 MiB download, 4 connections",
    "ul1m_c1": "1 MiB upload, 1 connection", "ul1m_c4": "1 MiB upload, 4 connections",
    "ul64m_c1": "64 MiB upload, 1 connection", "ul64m_c4": "64 MiB upload, 4 connections",
    "sse_1": "SSE, 1 stream (events every 20 ms; latency from the upstream's t_us)",
    "sse_64": "SSE, 64 streams, starts staggered over 1 s, first 8 events of each not sampled",
    "openai_stream_c64": "OpenAI-style streaming: ~1 KB POST stream=true, 30 events every 20 ms,"
                         " 64 keep-alive connections streaming again and again (gap = inter-token)",
    "dl16m_c1": "16 MiB download, 1 connection", "ul16m_c1": "16 MiB upload, 1 connection",
    "idle": "idle keep-alive connections: resident memory added per connection (KiB)",
    "storm": "connections opened at once on a freshly started pair",
}


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--raw", required=True)
    m.add_argument("--pair", required=True)
    m.add_argument("--scenario", required=True)
    m.add_argument("--round", type=int, default=1)
    m.add_argument("--pids", default="")
    m.add_argument("--metrics", default="")
    m.add_argument("--counter", default="ccgate_evidence_requests_total")
    m.add_argument("--rss", action="store_true")
    m.add_argument("--sut-cpu", type=int, default=1)
    m.add_argument("--timeout", type=float, default=120)
    m.add_argument("--throughput", action="store_true", help="require the tested CPU >= 95% busy")
    m.add_argument("--retries", type=int, default=0, help="run again this often while invalid")
    m.add_argument("--deadline", type=float, default=0, help="no retry after this time (epoch s)")
    m.add_argument("command", nargs=argparse.REMAINDER)
    c = sub.add_parser("cancel")
    c.add_argument("--raw", required=True)
    c.add_argument("--pair", required=True)
    c.add_argument("--stats", required=True, help="the upstream's /stats URL")
    c.add_argument("--timeout", type=float, default=60)
    c.add_argument("command", nargs=argparse.REMAINDER)
    r = sub.add_parser("report")
    r.add_argument("--raw", required=True)
    r.add_argument("--instr", default="")
    a = ap.parse_args()
    if a.cmd in ("measure", "cancel"):
        a.command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if a.cmd == "measure":
        measure(a)
    elif a.cmd == "cancel":
        sys.exit(cancel(a))
    else:
        report(a)


if __name__ == "__main__":
    main()
