#!/usr/bin/env python3
"""Measurement and statistics for bench/run.sh.

  bench.py measure --raw FILE --pair P --scenario S --round R --kind wrk|loadgen
                   [--pids "PID ..."] [--metrics URL] [--rss] -- COMMAND...
      Runs COMMAND (the load generator, already pinned by the caller) and appends one JSON
      record to FILE: the generator's results, the CPU time of each process under test from
      /proc/<pid>/stat, the generator's own CPU (saturation), steal from /proc/stat, RSS of the
      processes under test (idle mode: while the connections are held), and a counter
      delta from a Prometheus endpoint (storm: evidence requests).
  bench.py report --raw FILE [--instr FILE]
      Prints a table per scenario (medians with min-max over valid rounds) and the RATIO and
      METRIC lines.
"""
import argparse
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import time
import urllib.request

TICK = os.sysconf("SC_CLK_TCK")
TLS_PEERS = ["stunnel", "haproxy-tls", "nginx-stream", "nginx-http"]
PAIRS = ["direct", "ccgate", "ccgate-tcp"] + TLS_PEERS + ["haproxy-plain"]
MiB = 1024 * 1024
FOREIGN_MAX = 0.15  # share of the tested CPU that other programs may take before a run is invalid


def proc_cpu_s(pid):
    """utime + stime of a whole process (all its threads, dead ones included), seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return float("nan")


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
    """(total jiffies, steal jiffies) over all CPUs, and busy jiffies of CPU cpu."""
    tot = steal = busy = 0
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if not parts or not parts[0].startswith("cpu"):
                break
            vals = [int(x) for x in parts[1:9]]
            if parts[0] == "cpu":
                tot, steal = sum(vals), vals[7]
            elif parts[0] == f"cpu{cpu}":
                busy = sum(vals) - vals[3] - vals[4]  # all but idle and iowait
    return tot, steal, busy


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


UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6}


def wrk_lat_us(s):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
    return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")


def parse_wrk(out):
    r = {"errors": 0}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if m:
        r["requests"] = int(m.group(1))
        r["elapsed_s"] = float(m.group(2)) * UNITS[m.group(3)] / 1e6
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    lat = {}
    for p in ("50", "90", "99"):
        m = re.search(rf"^\s+{p}%\s+(\S+)", out, re.M)
        if m:
            lat["p" + p] = wrk_lat_us(m.group(1))
    r["lat_us"] = lat
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["errors"] += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        r["errors"] += int(m.group(1))
    if "rps" not in r:
        r["fail"] = "no wrk summary"
    return r


def measure(a):
    pids = [int(p) for p in a.pids.split()] if a.pids else []
    cpu0 = [proc_cpu_s(p) for p in pids]
    rss0 = [proc_rss_kib(p) for p in pids]
    c0 = counter(a.metrics, a.counter)
    tot0, steal0, busy0 = cpu_totals(a.sut_cpu)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    rss_held = None
    proc = subprocess.Popen(a.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if a.rss:
        # idle mode: the generator says "ready" once every connection is up and answered.
        line = proc.stderr.readline()
        if line.strip() == "ready":
            time.sleep(0.3)
            rss_held = [proc_rss_kib(p) for p in pids]
    try:
        out, err = proc.communicate(timeout=a.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        err += "\n(timed out)"
    wall = time.monotonic() - t0
    time.sleep(0.05)  # let the proxies finish the last writes and closes
    span = time.monotonic() - t0  # what the /proc counters cover
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    tot1, steal1, busy1 = cpu_totals(a.sut_cpu)
    cpu1 = [proc_cpu_s(p) for p in pids]
    c1 = counter(a.metrics, a.counter)
    rec = {"pair": a.pair, "scenario": a.scenario, "round": a.round, "wall_s": wall}
    if a.kind == "wrk":
        rec.update(parse_wrk(out))
    else:
        try:
            rec.update(json.loads(out.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            rec["fail"] = "no loadgen result"
    if proc.returncode != 0:
        rec["fail"] = f"generator exit {proc.returncode}"
    if "fail" in rec:
        rec["stderr"] = (err or "")[-400:]
    rec["proxy_cpu_s"] = [b - a_ for a_, b in zip(cpu0, cpu1)]
    gen_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    rec["gen_cpu_frac"] = gen_cpu / wall if wall > 0 else 0
    rec["steal_frac"] = (steal1 - steal0) / (tot1 - tot0) if tot1 > tot0 else 0
    # Others on the core under test (this machine is shared): its busy time less ours.
    ours = sum(x for x in rec["proxy_cpu_s"] if not math.isnan(x))
    rec["foreign_frac"] = max(0.0, (busy1 - busy0) / TICK - ours) / span
    if rss_held is not None:
        rec["rss_delta_kib"] = [b - a_ for a_, b in zip(rss0, rss_held)]
    if c0 is not None and c1 is not None:
        rec["counter_delta"] = c1 - c0
    why = []
    if "fail" in rec:
        why.append(rec["fail"])
    if rec.get("errors", 0) > 0:
        why.append(f"{rec['errors']} socket/HTTP errors")
    if rec["steal_frac"] > 0.02:
        why.append(f"steal {100 * rec['steal_frac']:.1f}%")
    if rec["foreign_frac"] > FOREIGN_MAX:
        why.append(f"other programs took {100 * rec['foreign_frac']:.0f}% of the tested CPU")
    # A generator busy 90 % of the time on its own core is what limits the run.
    if rec["gen_cpu_frac"] > 0.9 and a.scenario not in ("sse_1", "sse_64", "idle"):
        why.append(f"generator saturated ({100 * rec['gen_cpu_frac']:.0f}% CPU)")
    rec["invalid"] = "; ".join(why)
    with open(a.raw, "a") as f:
        f.write(json.dumps(rec) + "\n")
    status = f"INVALID ({rec['invalid']})" if why else "ok"
    print(f"  {a.round} {a.pair:14s} {a.scenario:14s} {status}", file=sys.stderr)


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
    cpu = sum(x for x in r.get("proxy_cpu_s", [])[:-1] if not math.isnan(x))
    req = r.get("requests", 0)
    mib = (r.get("body_in", 0) + r.get("body_out", 0)) / MiB
    el = r.get("elapsed_s", 0) or r.get("wall_s", 1)
    return {
        "rps": r.get("rps"),
        "p50": r.get("lat_us", {}).get("p50"),
        "p99": r.get("lat_us", {}).get("p99"),
        "cpu_us_req": cpu / req * 1e6 if req else None,
        "cpu_ms_mib": cpu / mib * 1e3 if mib >= 1 else None,
        "mibps": mib / el if el else None,
        "ttfe50": r.get("ttfe_us", {}).get("p50"),
        "ev50": r.get("event_us", {}).get("p50"),
        "ev99": r.get("event_us", {}).get("p99"),
        "errors": r.get("errors"),
        "ms": r.get("elapsed_s", 0) * 1e3,
        "evreq": r.get("counter_delta"),
        "rss": [x / r["conns"] for x in r["rss_delta_kib"]] if r.get("rss_delta_kib") and r.get("conns") else None,
    }


def report(a):
    runs = []
    with open(a.raw) as f:
        for line in f:
            line = line.strip()
            if line:
                runs.append(json.loads(line))
    groups = {}
    for r in runs:
        groups.setdefault((r["scenario"], r["pair"]), []).append(r)
    scen_order = []
    for r in runs:
        if r["scenario"] not in scen_order:
            scen_order.append(r["scenario"])
    order = {s: i for i, s in enumerate(SCENARIO_ORDER)}
    scen_order.sort(key=lambda s: order.get(s, 99))

    stat = {}  # (scenario, pair) -> {metric: (median, min, max)}, valid runs only
    for key, rs in groups.items():
        good = [r for r in rs if not r.get("invalid")]
        use = good if good else rs
        ds = [derived(r) for r in use]
        st = {k: med([d[k] for d in ds]) for k in ds[0] if k != "rss"}
        st["valid"] = f"{len(good)}/{len(rs)}"
        st["why"] = "; ".join(sorted({r["invalid"] for r in rs if r.get("invalid")}))
        rss = [d["rss"] for d in ds if d["rss"]]
        if rss:
            st["rss"] = rss[-1]
        stat[key] = st

    def val(s, p, k):
        t = stat.get((s, p), {}).get(k)
        return t[0] if isinstance(t, tuple) else None

    for s in scen_order:
        pairs = [p for p in PAIRS if (s, p) in stat]
        print(f"\n== {s}: {SCENARIO_TITLE.get(s, s)}")
        if s.startswith("sse"):
            cols = ("first event ms", "event p50 us", "event p99 us", "added p50 us", "added p99 us",
                    "CPU us/req")
            print(f"{'pair':14s} " + " | ".join(f"{c:>22s}" for c in cols) + " | valid")
            d50, d99 = val(s, "direct", "ev50"), val(s, "direct", "ev99")
            for p in pairs:
                st = stat[(s, p)]
                e50, e99 = val(s, p, "ev50"), val(s, p, "ev99")
                add50 = f"{e50 - d50:.0f}" if e50 is not None and d50 is not None else "-"
                add99 = f"{e99 - d99:.0f}" if e99 is not None and d99 is not None else "-"
                cells = (fmt(st["ttfe50"], 1e-3, 2), fmt(st["ev50"]), fmt(st["ev99"]), add50, add99,
                         fmt(st["cpu_us_req"]))
                print(f"{p:14s} " + " | ".join(f"{c:>22s}" for c in cells) + f" | {st['valid']} {st['why']}")
        elif s == "idle":
            print(f"{'pair':14s} {'client side, server side, upstream':>48s}")
            for p in pairs:
                rss = stat[(s, p)].get("rss")
                cells = ", ".join(f"{x:.1f}" for x in rss) if rss else "-"
                print(f"{p:14s} {cells:>48s}  {stat[(s, p)]['why']}")
        elif s == "storm":
            print(f"{'pair':14s} {'all served ms':>22s} | {'errors':>8s} | {'evidence requests':>18s}")
            for p in pairs:
                st = stat[(s, p)]
                ev = fmt(st["evreq"]) if st.get("evreq") else "-"
                print(f"{p:14s} {fmt(st['ms']):>22s} | {fmt(st['errors']):>8s} | {ev:>18s}")
        else:
            transfer = s.startswith(("dl", "ul"))
            cols = ("req/s", "p50 us", "p99 us", "CPU us/req") + (("MiB/s", "CPU ms/MiB") if transfer else ())
            print(f"{'pair':14s} " + " | ".join(f"{c:>24s}" for c in cols) + " | valid")
            for p in pairs:
                st = stat[(s, p)]
                cells = [fmt(st["rps"]), fmt(st["p50"]), fmt(st["p99"]), fmt(st["cpu_us_req"], prec=1)]
                if transfer:
                    cells += [fmt(st["mibps"]), fmt(st["cpu_ms_mib"], prec=2)]
                print(f"{p:14s} " + " | ".join(f"{c:>24s}" for c in cells) + f" | {st['valid']} {st['why']}")

    def best(s, k, hi):
        cands = [(val(s, p, k), p) for p in TLS_PEERS if val(s, p, k) is not None]
        if not cands:
            return None, None
        return (max if hi else min)(cands)

    def ratio(x, y):
        return x / y if x is not None and y is not None and y != 0 else float("nan")

    lines = []
    b, bp = best("get1k_c16", "rps", True)
    lines.append(("RATIO rps_c16_vs_best_peer", ratio(val("get1k_c16", "ccgate", "rps"), b), bp))
    b, bp = best("get1k_c16", "cpu_us_req", False)
    lines.append(("RATIO cpu_per_req_vs_best_peer", ratio(val("get1k_c16", "ccgate", "cpu_us_req"), b), bp))
    d = val("get1k_c1", "direct", "p50")
    adds = [(val("get1k_c1", p, "p50") - d, p) for p in TLS_PEERS
            if val("get1k_c1", p, "p50") is not None and d is not None]
    cg = val("get1k_c1", "ccgate", "p50")
    b, bp = min(adds) if adds else (None, None)
    if b is not None and b <= 0:
        # a peer "faster" than no proxy at all: noise swamped the direct run; no ratio
        print(f"\nnote: {bp}'s p50 at c=1 is not above direct's ({b:+.0f} us): added_p50 ratio left out")
        b = None
    lines.append(("RATIO added_p50_c1_vs_best_peer", ratio(cg - d if cg is not None and d is not None else None, b), bp))
    dl = "dl64m_c1" if ("dl64m_c1", "ccgate") in stat else "dl16m_c1"  # quick runs use 16 MiB
    lines.append(("RATIO cpu_per_mib_vs_stunnel",
                  ratio(val(dl, "ccgate", "cpu_ms_mib"), val(dl, "stunnel", "cpu_ms_mib")), "stunnel"))
    b, bp = best("newconn_c16", "rps", True)
    lines.append(("RATIO newconn_vs_best_peer", ratio(val("newconn_c16", "ccgate", "rps"), b), bp))
    e, d = val("sse_64", "ccgate", "ev50"), val("sse_64", "direct", "ev50")
    lines.append(("METRIC sse_added_p50_us", e - d if e is not None and d is not None else float("nan"), None))
    e, d = val("sse_64", "ccgate", "ev99"), val("sse_64", "direct", "ev99")
    lines.append(("METRIC sse_added_p99_ms", (e - d) / 1e3 if e is not None and d is not None else float("nan"), None))
    rss = stat.get(("idle", "ccgate"), {}).get("rss")
    # the two sidecars (the last process is the upstream)
    lines.append(("METRIC idle_conn_kib", sum(rss[:2]) / 2 if rss and len(rss) >= 3 else float("nan"), None))
    ev = val("storm", "ccgate", "evreq")
    lines.append(("METRIC storm_evidence_requests", ev if ev is not None else float("nan"), None))
    instr = float("nan")
    if a.instr and os.path.exists(a.instr):
        try:
            with open(a.instr) as f:
                instr = float(f.read().split()[0])
        except (ValueError, IndexError):
            pass
    lines.append(("METRIC instr_per_req", instr, None))
    print("\nbest TLS peer per ratio: " + ", ".join(f"{n.split()[1]}={w}" for n, _, w in lines if w))
    for name, v, _ in lines:
        print(f"{name} {v:.3f}" if not math.isnan(v) else f"{name} nan")


SCENARIO_ORDER = ["get1k_c1", "get1k_c16", "get1k_c64", "json_c16", "get1k_rate2k", "newconn_c16",
                  "dl1m_c1", "dl1m_c4", "dl64m_c1", "dl64m_c4", "ul1m_c1", "ul1m_c4", "ul64m_c1",
                  "ul64m_c4", "dl16m_c1", "ul16m_c1", "sse_1", "sse_64", "idle", "storm"]
SCENARIO_TITLE = {
    "get1k_c1": "1 KiB GET, keep-alive, 1 connection (wrk)",
    "get1k_c16": "1 KiB GET, keep-alive, 16 connections (wrk)",
    "get1k_c64": "1 KiB GET, keep-alive, 64 connections (wrk)",
    "json_c16": "OpenAI-shaped JSON POST, ~700 B in / ~1 KiB out, 16 connections (wrk)",
    "get1k_rate2k": "1 KiB GET, open loop at 2000 req/s over up to 16 connections (loadgen)",
    "newconn_c16": "1 KiB GET, a new app connection per request, 16 at a time (loadgen)",
    "dl1m_c1": "1 MiB download, 1 connection", "dl1m_c4": "1 MiB download, 4 connections",
    "dl64m_c1": "64 MiB download, 1 connection", "dl64m_c4": "64 MiB download, 4 connections",
    "ul1m_c1": "1 MiB upload, 1 connection", "ul1m_c4": "1 MiB upload, 4 connections",
    "ul64m_c1": "64 MiB upload, 1 connection", "ul64m_c4": "64 MiB upload, 4 connections",
    "sse_1": "SSE, 1 stream (events every 20 ms; latency from the upstream's t_us)",
    "sse_64": "SSE, 64 streams at once",
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
    m.add_argument("--kind", choices=["wrk", "loadgen"], required=True)
    m.add_argument("--pids", default="")
    m.add_argument("--metrics", default="")
    m.add_argument("--counter", default="ccgate_evidence_requests_total")
    m.add_argument("--rss", action="store_true")
    m.add_argument("--sut-cpu", type=int, default=1)
    m.add_argument("--timeout", type=float, default=120)
    m.add_argument("command", nargs=argparse.REMAINDER)
    r = sub.add_parser("report")
    r.add_argument("--raw", required=True)
    r.add_argument("--instr", default="")
    a = ap.parse_args()
    if a.cmd == "measure":
        a.command = a.command[1:] if a.command[:1] == ["--"] else a.command
        measure(a)
    else:
        report(a)


if __name__ == "__main__":
    main()
