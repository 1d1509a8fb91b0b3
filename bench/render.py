#!/usr/bin/env python3
"""Turns bench/run.sh results into docs/benchmarks.md (stdlib only).

usage: render.py RESULTS.jsonl             markdown on stdout; facts from BENCH_META_* env
       render.py --check RESULTS.jsonl     exit 1 if the results are malformed or incomplete
                                           (missed targets and request errors are warnings)
       render.py --summary RESULTS.jsonl   plain-text figures and targets for the terminal

RESULTS lines, by "kind":
  cell    {"mode", "concurrency", "target": "direct"|"nginx"|"gateway", "report": <switchyard
          bench --json>, "gateway_utime", "gateway_stime", "gateway_threads", "gateway_rss_kib",
          "gateway_hwm_kib", "nginx_utime", "nginx_stime", "nginx_rss_kib", "nginx_hwm_kib",
          "cpu0_busy_ticks", "cpu0_steal_ticks", "overhead_sum_s", "overhead_count"}
  floor   {"mode", "report"}: concurrency 1, direct to a simulator on the proxy's CPU
  hold    one per upstream protocol of the gateway, "upstream": "http2" (one shared connection to the
          simulator) or "http1" (a connection per stream; a record without "upstream" is one), each on a
          fresh gateway: {"upstream", "fds_per_stream", "streams", "requested", "limited_by_fds",
          "limited_by", "nofile_hard", "nofile_needed", "idle_fds", "generator_nofile",
          "samples": [[t_s, gateway_rss_kib, in_flight, gateway_fds, sim_rss_kib, generator_rss_kib,
          generator_fds]], "hwm_kib", "rss_after_kib", "rss_before_kib", "gateway_cpu_ticks",
          "listen_overflows", "listen_drops", "syn_retrans", "report", ...}
  memory  {"idle_rss_kib", "idle_hwm_kib", "cells_hwm_kib", "cells_final_rss_kib", "hold_hwm_kib" (the
          larger of the hold tests'), "hold_hwm_kib_by_upstream": {"http2", "http1"}, "suite_hwm_kib",
          "nginx_hwm_kib"}
"""
import json
import os
import sys

MODES = ("non-stream", "stream")
TARGETS = ("direct", "nginx", "gateway")
PROXIES = ("nginx", "gateway")

# The issue's targets (2-core machine; generator, upstream and gateway share it).
T_THROUGHPUT = 0.8  # gateway RPS / nginx RPS, non-stream, concurrency 64
T_ADDED_P50_MS = 0.150  # concurrency 1, against direct
T_ADDED_P99_MS = 1.0
T_TTFT_P99_MS = 1.0  # streams, concurrency 1, against direct
T_HOLD_STREAMS = 10_000
T_HOLD_RSS_MIB = 300
T_IDLE_RSS_MIB = 40

# The hold test runs once per protocol between the gateway and its upstream, in this order.
UPSTREAMS = ("http2", "http1")
UPSTREAM_PROTO = {"http2": "HTTP/2", "http1": "HTTP/1.1"}
UPSTREAM_SHAPE = {"http2": "one shared connection", "http1": "a connection per stream"}


def upstream_label(up):
    """'upstream HTTP/2 (one shared connection)'."""
    return f"upstream {UPSTREAM_PROTO[up]} ({UPSTREAM_SHAPE[up]})"


class Malformed(Exception):
    pass


def load(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as e:
                    raise Malformed(f"line {n}: not JSON: {e}") from e
    return rows


def meta(name, default="unknown"):
    return os.environ.get("BENCH_META_" + name, default)


def clk_tck():
    return int(meta("CLK_TCK", "100"))


# --- formatting ------------------------------------------------------------------------


def ms(v):
    return "–" if v is None else f"{v:.3f}"


def sms(v):
    return "–" if v is None else f"{v:+.3f}"


def mib(kib):
    return "–" if kib is None else f"{kib / 1024:.1f}"


def num(v):
    return "–" if v is None else f"{v:,.0f}"


def ratio(v):
    return "–" if v is None else f"{v:.2f}×"


def pct(v):
    return "–" if v is None else f"{v:.0%}"


def div(a, b):
    return a / b if a is not None and b else None


def sub(a, b):
    return a - b if a is not None and b is not None else None


# --- the results, indexed ------------------------------------------------------------------


class Results:
    def __init__(self, rows):
        self.rows = rows
        self.cells = {(r["mode"], r["concurrency"], r["target"]): r for r in rows if r.get("kind") == "cell"}
        self.floor = {r["mode"]: r for r in rows if r.get("kind") == "floor"}
        # upstream -> hold record, in UPSTREAMS order (results from before the HTTP/2 run are http1).
        found = {r.get("upstream", "http1"): r for r in rows if r.get("kind") == "hold"}
        self.holds = {u: found[u] for u in UPSTREAMS if u in found}
        self.hold_unknown = sorted(u for u in found if u not in UPSTREAM_PROTO)
        self.memory = next((r for r in rows if r.get("kind") == "memory"), None)
        self.concs = sorted({k[1] for k in self.cells})
        self.targets = [t for t in TARGETS if any(k[2] == t for k in self.cells)]
        self.has_nginx = "nginx" in self.targets

    def cell(self, mode, conc, target):
        return self.cells.get((mode, conc, target))

    def rep(self, mode, conc, target):
        c = self.cell(mode, conc, target)
        return c["report"] if c else None

    def lat(self, mode, conc, target, p):
        r = self.rep(mode, conc, target)
        return r["latency_ms"][p] if r else None

    def ttft(self, mode, conc, target, p):
        r = self.rep(mode, conc, target)
        return r["ttft_ms"][p] if r and r.get("ttft_ms") else None

    def rps(self, mode, conc, target):
        r = self.rep(mode, conc, target)
        return r["rps"] if r else None

    def proxy_ticks(self, cell, target=None):
        """(user, system) ticks of the proxy the cell measured (gateway or nginx)."""
        target = target or cell["target"]
        if target == "gateway":
            return cell["gateway_utime"], cell["gateway_stime"]
        if target == "nginx":
            return cell["nginx_utime"], cell["nginx_stime"]
        return None

    def cpu_us(self, mode, conc, target, part="all"):
        """Proxy CPU µs per measured request (user+system, or one of them)."""
        c = self.cell(mode, conc, target)
        if not c or target not in PROXIES or not c["report"]["requests"]:
            return None
        u, s = self.proxy_ticks(c)
        ticks = {"all": u + s, "user": u, "system": s}[part]
        return ticks * 1e6 / clk_tck() / c["report"]["requests"]

    def busy(self, mode, conc, target):
        c = self.cell(mode, conc, target)
        if not c or target not in PROXIES or not c["report"]["duration_s"]:
            return None
        u, s = self.proxy_ticks(c)
        return (u + s) / clk_tck() / c["report"]["duration_s"]

    def interference(self, c):
        """Share of the pass CPU 0 spent on neither the gateway nor nginx, and steal."""
        d = c["report"]["duration_s"] * clk_tck()
        if not d:
            return None, None
        ours = c["gateway_utime"] + c["gateway_stime"] + c["nginx_utime"] + c["nginx_stime"]
        return max(c["cpu0_busy_ticks"] - ours, 0) / d, c["cpu0_steal_ticks"] / d

    def hold_peak(self, h):
        """Figures of one hold record (h) at its peak, None without samples."""
        if not h or not h["samples"]:
            return None
        peak = max(s[2] for s in h["samples"])
        at_peak = [s for s in h["samples"] if s[2] == peak]
        return {
            "in_flight": int(peak),
            "seconds": len(at_peak),
            "rss_first_kib": at_peak[0][1],
            "rss_max_kib": max(s[1] for s in h["samples"]),
            "rss_at_peak_max_kib": max(s[1] for s in at_peak),
            "fds": int(max(s[3] for s in h["samples"])),
            "slope_kib_s": slope([(s[0], s[1]) for s in at_peak]),
            "sim_rss_first_kib": at_peak[0][4] if len(at_peak[0]) > 5 else None,
            "gen_rss_first_kib": at_peak[0][5] if len(at_peak[0]) > 5 else None,
            "gen_fds": int(max(s[6] for s in h["samples"])) if len(h["samples"][0]) > 6 else None,
        }

    def per_stream_kib(self, h):
        """KiB per open stream when all were first open in hold record h: gateway and
        simulator over their idle RSS, load generator absolute (it starts with the test)."""
        peak = self.hold_peak(h)
        if not h or not peak:
            return None
        n = peak["in_flight"] or 1
        out = {"gateway": (peak["rss_first_kib"] - h["rss_before_kib"]) / n}
        if peak["sim_rss_first_kib"] is not None and h.get("sim_rss_before_kib") is not None:
            out["sim"] = (peak["sim_rss_first_kib"] - h["sim_rss_before_kib"]) / n
            out["generator"] = peak["gen_rss_first_kib"] / n
        return out


def slope(points):
    """Least-squares slope of (x, y) points, None with fewer than 3."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    return sum((p[0] - mx) * (p[1] - my) for p in points) / sxx if sxx else None


# --- checks ------------------------------------------------------------------------------

CELL_KEYS = ("mode", "concurrency", "target", "report", "gateway_utime", "gateway_stime", "gateway_threads",
             "gateway_rss_kib", "nginx_utime", "nginx_stime", "cpu0_busy_ticks", "cpu0_steal_ticks")
REPORT_KEYS = ("requests", "errors", "error_kinds", "rps", "latency_ms", "ttft_ms", "duration_s", "concurrency")


def check(res):
    """(malformed, warnings): what makes the results unusable, and what is only worth saying."""
    bad, warn = [], []

    def check_report(where, rep, stream):
        missing = [k for k in REPORT_KEYS if k not in rep]
        if missing:
            bad.append(f"{where}: report lacks {', '.join(missing)}")
            return
        ok = rep["requests"] - rep["errors"]
        if ok <= 0:
            bad.append(f"{where}: no successful request, so no figures")
        elif stream and not rep.get("ttft_ms"):
            bad.append(f"{where}: a stream run without TTFT")
        if rep["errors"]:
            kinds = ", ".join(f"{k}: {v}" for k, v in sorted(rep["error_kinds"].items()))
            warn.append(f"{where}: {rep['errors']} of {rep['requests']} requests failed ({kinds})")

    for r in res.rows:
        if r.get("kind") not in ("cell", "floor", "hold", "memory"):
            bad.append(f"unknown record kind {r.get('kind')!r}")
    for key, c in res.cells.items():
        where = f"{key[0]}, concurrency {key[1]}, {key[2]}"
        missing = [k for k in CELL_KEYS if k not in c]
        if missing:
            bad.append(f"{where}: lacks {', '.join(missing)}")
            continue
        check_report(where, c["report"], key[0] == "stream")
        other, steal = res.interference(c)
        if other is not None and other > 0.05:
            warn.append(f"{where}: {other:.0%} of CPU 0 went to other processes during the pass (interference)")
        if steal is not None and steal > 0.05:
            warn.append(f"{where}: the hypervisor took {steal:.0%} of CPU 0 (steal)")
    for mode in MODES:
        for conc in res.concs:
            for t in res.targets:
                if (mode, conc, t) not in res.cells:
                    bad.append(f"{mode}, concurrency {conc}, {t}: missing")
    if "gateway" not in res.targets or "direct" not in res.targets:
        bad.append("no gateway or no direct runs")
    for mode, f in res.floor.items():
        check_report(f"{mode}, concurrency 1, simulator on CPU 0", f.get("report", {}), mode == "stream")
    for u in res.hold_unknown:
        bad.append(f"hold test: unknown upstream {u!r}")
    if not res.holds:
        bad.append("no hold-test record")
    for up in UPSTREAMS:
        h = res.holds.get(up)
        where = f"hold test, {upstream_label(up)}"
        if h is None:
            if res.holds:
                bad.append(f"{where}: no record")
            continue
        missing = [k for k in ("streams", "requested", "samples", "hwm_kib", "report") if k not in h]
        if missing:
            bad.append(f"{where}: lacks {', '.join(missing)}")
            continue
        if not h["samples"]:
            bad.append(f"{where}: no RSS samples")
        check_report(where, h["report"], True)
        peak = res.hold_peak(h)
        if peak and peak["in_flight"] < h["streams"]:
            warn.append(f"{where}: at most {peak['in_flight']:,} of {h['streams']:,} streams were open at once")
        if h.get("limited_by_fds"):
            warn.append(f"{where}: ran {h['streams']:,} streams, not {h['requested']:,}: the open-files limit of the "
                        f"{h.get('limited_by') or 'gateway'} (hard limit {h['nofile_hard']:,})")
    if res.memory is None:
        bad.append("no memory record")
    return bad, warn


# --- targets -----------------------------------------------------------------------------


def targets(res):
    """One dict per target: name, measured, baseline, limit, status, miss, nginx (context)."""
    out = []
    c1, c64 = 1 in res.concs, 64 in res.concs

    def row(name, measured, baseline, limit, status, miss="", nginx="", key=""):
        out.append({"name": name, "measured": measured, "baseline": baseline, "limit": limit,
                    "status": status, "miss": miss, "nginx": nginx, "key": key})

    # Throughput, against nginx.
    name = "Throughput, non-stream, concurrency 64"
    g, n = (res.rps("non-stream", 64, "gateway"), res.rps("non-stream", 64, "nginx")) if c64 else (None, None)
    if g is None or n is None:
        row(name, "–", "nginx proxy, same run", f"≥ {T_THROUGHPUT:.1f}× nginx", "NOT MEASURED",
            "no nginx baseline" if g is not None else "concurrency 64 not run", key="throughput")
    else:
        r = g / n
        ok = r >= T_THROUGHPUT
        row(name, f"{r:.3f}× ({num(g)} RPS)", f"nginx: {num(n)} RPS", f"≥ {T_THROUGHPUT:.1f}× nginx",
            "pass" if ok else "FAIL", "" if ok else f"short by {T_THROUGHPUT - r:.3f}× ({num(T_THROUGHPUT * n - g)} RPS)",
            key="throughput")

    # Added latency at concurrency 1, against direct.
    for p, limit in (("p50", T_ADDED_P50_MS), ("p99", T_ADDED_P99_MS)):
        name = f"Added latency {p}, non-stream, concurrency 1"
        if not c1:
            row(name, "–", "direct", f"≤ {limit * 1e3:.0f} µs", "NOT MEASURED", "concurrency 1 not run")
            continue
        g, d = res.lat("non-stream", 1, "gateway", p), res.lat("non-stream", 1, "direct", p)
        n = res.lat("non-stream", 1, "nginx", p)
        added = g - d
        ok = added <= limit
        row(name, f"{added * 1e3:+.0f} µs ({ms(g)} ms)", f"direct: {ms(d)} ms", f"≤ {limit * 1e3:.0f} µs",
            "pass" if ok else "FAIL", "" if ok else f"over by {(added - limit) * 1e3:.0f} µs",
            f"{(n - d) * 1e3:+.0f} µs" if n is not None else "–", key=f"added_{p}")

    # TTFT added on streams, against direct.
    name = "TTFT added p99, stream, concurrency 1"
    if not c1:
        row(name, "–", "direct", f"≤ {T_TTFT_P99_MS * 1e3:.0f} µs", "NOT MEASURED", "concurrency 1 not run")
    else:
        g, d = res.ttft("stream", 1, "gateway", "p99"), res.ttft("stream", 1, "direct", "p99")
        n = res.ttft("stream", 1, "nginx", "p99")
        added = g - d
        ok = added <= T_TTFT_P99_MS
        row(name, f"{added * 1e3:+.0f} µs ({ms(g)} ms)", f"direct: {ms(d)} ms", f"≤ {T_TTFT_P99_MS * 1e3:.0f} µs",
            "pass" if ok else "FAIL", "" if ok else f"over by {(added - T_TTFT_P99_MS) * 1e3:.0f} µs",
            f"{(n - d) * 1e3:+.0f} µs" if n is not None else "–", key="ttft_p99")

    # Hold test, absolute: once per upstream protocol, same rule.
    for up in UPSTREAMS:
        name = f"{T_HOLD_STREAMS:,} concurrent streams held, peak RSS — {upstream_label(up)}"
        key = f"hold_{up}"
        h = res.holds.get(up)
        peak = res.hold_peak(h)
        if not h or not peak:
            row(name, "–", "none (absolute)", f"< {T_HOLD_RSS_MIB} MiB", "NOT MEASURED",
                "no hold test over this protocol", key=key)
            continue
        rss = max(peak["rss_max_kib"], h["hwm_kib"]) / 1024  # VmHWM catches a peak between samples
        held = peak["in_flight"]
        errors = h["report"]["errors"]
        measured = f"{rss:.0f} MiB with {held:,} open"
        if errors:
            measured += f", {errors:,} errors"
        limit = f"< {T_HOLD_RSS_MIB} MiB, all {T_HOLD_STREAMS:,} open"
        if rss >= T_HOLD_RSS_MIB:
            status = "FAIL"
            miss = f"over by {rss - T_HOLD_RSS_MIB:.0f} MiB ({rss / T_HOLD_RSS_MIB:.1f}×)"
            if h["streams"] < T_HOLD_STREAMS:
                miss += f" already at {h['streams']:,} streams"
        elif h["streams"] < T_HOLD_STREAMS:
            status = "NOT MEASURED"
            why = (f"the open-files limit of the {h.get('limited_by') or 'gateway'}" if h.get("limited_by_fds")
                   else "as asked: --quick or BENCH_HOLD_STREAMS")
            miss = f"ran {h['streams']:,} streams ({why})"
        elif held < T_HOLD_STREAMS or errors:
            status = "FAIL"
            miss = f"{T_HOLD_STREAMS - held:,} streams short" if held < T_HOLD_STREAMS else f"{errors:,} streams failed"
        else:
            status, miss = "pass", ""
        row(name, measured, "none (absolute)", limit, status, miss, key=key)

    # Idle RSS, absolute.
    m = res.memory
    if m:
        rss = m["idle_rss_kib"] / 1024
        ok = rss < T_IDLE_RSS_MIB
        row("Idle RSS (after start-up and key creation)", f"{rss:.1f} MiB", "none (absolute)", f"< {T_IDLE_RSS_MIB} MiB",
            "pass" if ok else "FAIL", "" if ok else f"over by {rss - T_IDLE_RSS_MIB:.1f} MiB", key="idle")
    return out


# --- markdown ------------------------------------------------------------------------------


def md_table(head, rows, align=None):
    align = align or ["---"] + ["---:"] * (len(head) - 1)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def results_table(res, mode):
    stream = mode == "stream"
    head = ["concurrency", "target", "RPS", "p50 ms", "p95 ms", "p99 ms"]
    if stream:
        head += ["TTFT p50 ms", "TTFT p99 ms"]
    head += ["errors", "proxy CPU µs/req", "(user / kernel)", "proxy core busy", "proxy RSS MiB", "in-gateway mean ms"]
    rows = []
    for conc in res.concs:
        for t in res.targets:
            c = res.cell(mode, conc, t)
            if not c:
                continue
            rep = c["report"]
            lat = rep["latency_ms"]
            row = [conc, t, num(rep["rps"]), ms(lat["p50"]), ms(lat["p95"]), ms(lat["p99"])]
            if stream:
                row += [ms(res.ttft(mode, conc, t, "p50")), ms(res.ttft(mode, conc, t, "p99"))]
            row.append(rep["errors"])
            if t in PROXIES:
                rss = c["gateway_rss_kib"] if t == "gateway" else c.get("nginx_rss_kib")
                cnt = c.get("overhead_count") or 0
                inside = ms(1e3 * c["overhead_sum_s"] / cnt) if t == "gateway" and cnt else ""
                row += [num(res.cpu_us(mode, conc, t)),
                        f"{num(res.cpu_us(mode, conc, t, 'user'))} / {num(res.cpu_us(mode, conc, t, 'system'))}",
                        pct(res.busy(mode, conc, t)), mib(rss), inside]
            else:
                row += ["", "", "", "", ""]
            rows.append(row)
    return md_table(head, rows, ["---:", "---"] + ["---:"] * (len(head) - 2))


def ratio_rows(res, mode):
    """Per concurrency: the gateway against both baselines."""
    stream = mode == "stream"
    rows = []
    for conc in res.concs:
        g = lambda p: res.lat(mode, conc, "gateway", p)  # noqa: E731
        d = lambda p: res.lat(mode, conc, "direct", p)  # noqa: E731
        n = lambda p: res.lat(mode, conc, "nginx", p)  # noqa: E731
        row = {
            "conc": conc,
            "rps_nginx": div(res.rps(mode, conc, "gateway"), res.rps(mode, conc, "nginx")),
            "rps_direct": div(res.rps(mode, conc, "gateway"), res.rps(mode, conc, "direct")),
            "add_p50_direct": sub(g("p50"), d("p50")),
            "add_p99_direct": sub(g("p99"), d("p99")),
            "add_p50_nginx": sub(g("p50"), n("p50")),
            "add_p99_nginx": sub(g("p99"), n("p99")),
            "nginx_p50_direct": sub(n("p50"), d("p50")),
            "cpu_ratio": div(res.cpu_us(mode, conc, "gateway"), res.cpu_us(mode, conc, "nginx")),
        }
        if stream:
            tg = lambda p: res.ttft(mode, conc, "gateway", p)  # noqa: E731
            row.update({
                "ttft_p50_direct": sub(tg("p50"), res.ttft(mode, conc, "direct", "p50")),
                "ttft_p99_direct": sub(tg("p99"), res.ttft(mode, conc, "direct", "p99")),
                "ttft_p50_nginx": sub(tg("p50"), res.ttft(mode, conc, "nginx", "p50")),
                "ttft_p99_nginx": sub(tg("p99"), res.ttft(mode, conc, "nginx", "p99")),
            })
        rows.append(row)
    return rows


def ratio_table(res, mode):
    stream = mode == "stream"
    head = ["concurrency", "RPS ÷ nginx", "RPS ÷ direct", "added p50 ms (vs direct)", "added p99 ms (vs direct)",
            "added p50 ms (vs nginx)", "added p99 ms (vs nginx)"]
    if stream:
        head += ["TTFT added p50 ms (vs direct)", "TTFT added p99 ms (vs direct)", "TTFT added p99 ms (vs nginx)"]
    head += ["nginx's own added p50 ms (vs direct)", "CPU/req ÷ nginx's"]
    rows = []
    for r in ratio_rows(res, mode):
        row = [r["conc"], ratio(r["rps_nginx"]), ratio(r["rps_direct"]), sms(r["add_p50_direct"]), sms(r["add_p99_direct"]),
               sms(r["add_p50_nginx"]), sms(r["add_p99_nginx"])]
        if stream:
            row += [sms(r["ttft_p50_direct"]), sms(r["ttft_p99_direct"]), sms(r["ttft_p99_nginx"])]
        row += [sms(r["nginx_p50_direct"]), ratio(r["cpu_ratio"])]
        rows.append(row)
    return md_table(head, rows)


def targets_table(res):
    rows = [[t["name"], t["measured"], t["baseline"], t["limit"], f"**{t['status']}**" if t["status"] != "pass" else "pass",
             t["miss"], t["nginx"]] for t in targets(res)]
    return md_table(["target", "measured (gateway)", "baseline, same run", "target", "result", "miss by",
                     "nginx, same measure"], rows, ["---", "---:", "---", "---", "---", "---", "---:"])


def thread_share(c):
    total = sum(c["gateway_threads"].values())
    if not total:
        return ""
    parts = sorted(c["gateway_threads"].items(), key=lambda kv: -kv[1])
    return ", ".join(f"`{k}` {v / total:.0%}" for k, v in parts)


def profile_table(res):
    rows = []
    for mode in MODES:
        for conc in res.concs:
            c = res.cell(mode, conc, "gateway")
            if not c:
                continue
            rows.append([mode, conc, num(res.cpu_us(mode, conc, "gateway")), num(res.cpu_us(mode, conc, "gateway", "user")),
                         num(res.cpu_us(mode, conc, "gateway", "system")), num(res.cpu_us(mode, conc, "nginx")),
                         num(res.cpu_us(mode, conc, "nginx", "user")), num(res.cpu_us(mode, conc, "nginx", "system")),
                         thread_share(c)])
    return md_table(["mode", "concurrency", "gateway CPU µs/req", "user", "kernel", "nginx CPU µs/req", "user", "kernel",
                     "gateway CPU by thread"], rows, ["---", "---:"] + ["---:"] * 6 + ["---"])


def floor_table(res):
    rows = []
    for mode in MODES:
        f = res.floor.get(mode)
        d, g, n = res.lat(mode, 1, "direct", "p50"), res.lat(mode, 1, "gateway", "p50"), res.lat(mode, 1, "nginx", "p50")
        if not f or d is None or g is None:
            continue
        x = f["report"]["latency_ms"]["p50"]
        rows.append([mode, ms(d), ms(x), sms(x - d), ms(n), ms(g), sms(sub(n, d)), sms(g - d), sms(sub(g, n))])
    return md_table(["mode", "direct, same CPU p50 ms", "direct, across CPUs p50 ms", "2 crossings cost ms",
                     "nginx p50 ms", "gateway p50 ms", "nginx − direct ms", "gateway − direct ms", "gateway − nginx ms"],
                    rows)


def interference_table(res):
    rows = []
    for (mode, conc, t), c in sorted(res.cells.items(), key=lambda kv: (MODES.index(kv[0][0]), kv[0][1], TARGETS.index(kv[0][2]))):
        other, steal = res.interference(c)
        rows.append([mode, conc, t, pct(other), pct(steal)])
    return md_table(["mode", "concurrency", "target", "other on CPU 0", "steal on CPU 0"], rows,
                    ["---", "---:", "---", "---:", "---:"])


HOLD_CONFIG = {
    "http2": "`bench/gateway-h2.yaml.in` (`http2: true`: h2c, prior knowledge)",
    "http1": "`bench/gateway.yaml.in`",
}
HOLD_SOCKETS = {
    "http2": "the client's; every upstream stream is on one shared connection",
    "http1": "the client's and its own upstream connection",
}


def hold_runs(res):
    """[(upstream, record, peak)] for the hold tests with samples, in UPSTREAMS order."""
    return [(up, h, res.hold_peak(h)) for up, h in res.holds.items() if res.hold_peak(h)]


def hold_limit_note(h, up):
    """The paragraph saying a hold test ran fewer streams than asked because of an open-files limit."""
    who = h.get("limited_by") or "gateway"
    per = h.get("fds_per_stream", 2)
    needed = h.get("nofile_needed") or per * h["requested"] + h["idle_fds"] + 32
    if who == "gateway":
        needs = (f"over {UPSTREAM_PROTO[up]} the gateway holds {per} socket{'s' if per > 1 else ''} per stream "
                 f"({HOLD_SOCKETS[up]}) besides the {h['idle_fds']} files it opens at start")
    elif who == "simulator":
        needs = "over HTTP/1.1 the simulator holds one connection per stream besides the files it has open"
    else:
        needs = f"the {who}, a process of its own with its own limit, holds one connection per stream"
    return [
        f"**{upstream_label(up)[0].upper()}{upstream_label(up)[1:]}: not run at {h['requested']:,} streams.** "
        f"The hard open-files limit here (`ulimit -Hn`) is {h['nofile_hard']:,} and this process cannot raise it; "
        f"{needs}, so the script ran the largest count that fits, {h['streams']:,}. To run {h['requested']:,}, "
        f"raise the hard limit to at least {needed:,} (`/etc/security/limits.conf`, or `ulimit -Hn` as a "
        "privileged user) and run the suite again.",
        "",
    ]


def hold_figures(res, up, h, peak):
    """[(row name, value)] of one hold test."""
    rep = h["report"]
    chunks_s = rep.get("tokens_per_sec") or 0
    dur = rep["duration_s"] or 1
    cpu_s = h["gateway_cpu_ticks"] / clk_tck()
    per = res.per_stream_kib(h)
    f = [
        ("gateway config", HOLD_CONFIG[up]),
        ("gateway sockets per stream", f"{h.get('fds_per_stream', 2)} ({HOLD_SOCKETS[up]})"),
        ("streams started", f"{h['streams']:,}" + (f" (asked for {h['requested']:,})" if h["streams"] != h["requested"] else "")),
        ("streams open at the peak (`switchyard_requests_in_flight`)", f"{peak['in_flight']:,}, in {peak['seconds']} one-second samples"),
        ("gateway open files at the peak", f"{peak['fds']:,} (hard limit {h['nofile_hard']:,})"),
    ]
    if peak.get("gen_fds") is not None:
        lim = h.get("generator_nofile")
        f.append(("load generator open files at the peak", f"{peak['gen_fds']:,}" + (f" (its limit {lim:,})" if lim else "")))
    f += [
        ("gateway RSS before (idle)", f"{mib(h['rss_before_kib'])} MiB"),
        ("gateway RSS when all were first open", f"{mib(peak['rss_first_kib'])} MiB"),
        ("**gateway KiB per stream** (over idle, when all were first open)", f"**{per['gateway']:.1f}**"),
        ("gateway RSS, highest sample", f"{mib(peak['rss_max_kib'])} MiB"),
        ("gateway VmHWM after the test", f"{mib(h['hwm_kib'])} MiB"),
        ("gateway RSS 2 s after the streams ended", f"{mib(h['rss_after_kib'])} MiB"),
    ]
    if "sim" in per:
        # The simulator serves the whole suite; it may still be returning memory from earlier runs.
        sim_per = f"{per['sim']:.1f}" if per["sim"] >= 0 else "–: below its RSS before the test"
        f += [
            ("for scale: simulator RSS at the same moment (KiB per stream over idle)",
             f"{mib(peak['sim_rss_first_kib'])} MiB ({sim_per})"),
            ("for scale: load generator RSS at the same moment (KiB per stream)",
             f"{mib(peak['gen_rss_first_kib'])} MiB ({per['generator']:.1f})"),
        ]
    f += [
        ("RSS growth while the streams were open",
         (f"{peak['slope_kib_s'] / 1024:.1f} MiB/s at {chunks_s:,.0f} chunks/s relayed ≈ "
          f"{peak['slope_kib_s'] / chunks_s:.1f} KiB per chunk" if peak["slope_kib_s"] is not None and chunks_s else "–")),
        ("completed / errors", f"{rep['requests'] - rep['errors']:,} / {rep['errors']:,}"
         + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(rep['error_kinds'].items()))})" if rep["errors"] else "")),
        ("TTFT p50 / p99 / max", f"{ms(rep['ttft_ms']['p50'])} / {ms(rep['ttft_ms']['p99'])} / {ms(rep['ttft_ms']['max'])} ms"
         if rep.get("ttft_ms") else "–"),
        ("stream length p50 / max", f"{rep['latency_ms']['p50'] / 1e3:.1f} / {rep['latency_ms']['max'] / 1e3:.1f} s"),
        ("gateway CPU during the test", f"{cpu_s:.1f} s over {dur:.0f} s ({cpu_s / dur:.0%} of its core)"
         + (f", {cpu_s * 1e6 / (chunks_s * dur):.0f} µs per relayed chunk" if chunks_s else "")),
        ("other processes on CPU 0 during the test",
         pct(max(h["cpu0_busy_ticks"] - h["gateway_cpu_ticks"], 0) / (dur * clk_tck()))),
        ("connects that overflowed an accept queue (drops, SYNs sent again)",
         f"{h['listen_overflows']:,} ({h['listen_drops']:,}, {h['syn_retrans']:,})"),
    ]
    return f


def hold_section(res):
    runs = hold_runs(res)
    if not runs:
        return ["No hold test in this run."]
    first = runs[0][1]
    out = [
        "The test runs twice, each time on a freshly started gateway, with a different protocol between the",
        "gateway and its upstream (the simulator):",
        "",
        f"1. **{upstream_label('http2')}:** `bench/gateway-h2.yaml.in`, the same config with",
        "   `http2: true` on the provider (h2c, prior knowledge): every stream is an HTTP/2 stream on a single",
        "   connection to the simulator. Cloud providers are reached over TLS, where HTTP/2 is negotiated; this",
        "   is that shape without TLS. The gateway holds one socket per stream, the client's.",
        f"2. **{upstream_label('http1')}:** {HOLD_CONFIG['http1']}, the config of every other run in",
        "   this suite: each stream has its own connection to the simulator, so the gateway holds two sockets",
        "   per stream.",
        "",
        f"Each run starts {first['requested']:,} streaming requests through the gateway at once (fewer only where an",
        f"open-files limit says so, below), each answered at one word a second for {first['tokens']} words, so every",
        f"stream is still open when the load generator stops starting new ones ({first['seconds']} s). The script",
        "samples the gateway's `VmRSS`, its `switchyard_requests_in_flight` and its open files every second while",
        "they are open.",
        "",
    ]
    for up, h, _ in runs:
        if h.get("limited_by_fds"):
            out += hold_limit_note(h, up)
    cols = [(up, dict(hold_figures(res, up, h, peak))) for up, h, peak in runs]
    names = [n for n, _ in hold_figures(res, *runs[0])]
    for _, fig in cols[1:]:
        names += [n for n in fig if n not in names]
    out.append(md_table(["hold test"] + [upstream_label(up) for up, _ in cols],
                        [[n] + [fig.get(n, "–") for _, fig in cols] for n in names],
                        ["---"] + ["---:"] * len(cols)))
    pers = {up: res.per_stream_kib(h)["gateway"] for up, h, _ in runs}
    out += [""]
    if "http2" in pers and "http1" in pers:
        d = pers["http1"] - pers["http2"]
        out += [f"Per stream the gateway used {pers['http2']:.1f} KiB with its upstream over HTTP/2 and {pers['http1']:.1f} KiB "
                f"over HTTP/1.1. The difference, {d:+.1f} KiB per stream, is what a connection of its own to the upstream "
                "costs the gateway against a stream on one shared connection.", ""]
    out += [f"Accept queues: `net.core.somaxconn` {meta('SOMAXCONN')}, `tcp_max_syn_backlog` {meta('SYN_BACKLOG')}; listen"
            f" backlog (`ss -ltn`) of the gateway {meta('GW_BACKLOG')}, of the simulator {meta('SIM_BACKLOG')}. The overflow"
            " counts above are the kernel's (`ListenOverflows`, `ListenDrops`, `TCPSynRetrans`) for all listeners on this"
            " machine: load generator → gateway and, over HTTP/1.1, gateway → simulator."]
    retried = [(up, h) for up, h, _ in runs if h["listen_overflows"] or h["syn_retrans"]]
    if retried:
        which = "; ".join(f"{h['listen_overflows']:,} {UPSTREAM_PROTO[up]}" for up, h in retried)
        out += ["", f"Connects had to retry ({which}): those connection attempts found an accept queue full",
                "and the client's kernel sent the SYN again about a second later (then 3 s, 7 s, ...). That delays",
                "those streams' first token (the TTFT p99 above) but not whether they are held. A larger listen",
                f"backlog than the {meta('GW_BACKLOG')} the gateway asks for (the kernel allows up to `somaxconn`,",
                f"{meta('SOMAXCONN')} here) would let more in at once."]
    for up, h, _ in runs:
        # A few samples, every ~1/8 of the test.
        s = h["samples"]
        step = max(1, len(s) // 8)
        pick = s[::step] + ([s[-1]] if (len(s) - 1) % step else [])
        out += ["", f"Samples, {upstream_label(up)} (about one a second; " + (f"one in {step}" if step > 1 else "all")
                + " shown):", "",
                md_table(["t s", "gateway RSS MiB", "in flight", "gateway open files", "simulator RSS MiB",
                          "load generator RSS MiB", "load generator open files"],
                         [[f"{x[0]:.0f}", mib(x[1]), f"{int(x[2]):,}", f"{int(x[3]):,}",
                           mib(x[4]) if len(x) > 5 else "–", mib(x[5]) if len(x) > 5 else "–",
                           f"{int(x[6]):,}" if len(x) > 6 else "–"] for x in pick])]
    return out


def memory_section(res):
    m = res.memory
    if not m:
        return []
    cells = [c for c in res.cells.values() if c["target"] == "gateway"]
    worst = max(cells, key=lambda c: c["gateway_rss_kib"]) if cells else None
    by = m.get("hold_hwm_kib_by_upstream") or {}
    rows = [
        ["gateway idle (after start-up and key creation, before any load)", f"{mib(m['idle_rss_kib'])}"],
        ["gateway peak over the whole suite (VmHWM; the largest of those below)", f"{mib(m['suite_hwm_kib'])}"],
        ["— the gateway that served every cell (VmHWM when it stopped)", f"{mib(m['cells_hwm_kib'])}"],
    ]
    if by:
        rows += [[f"— the fresh gateway of the hold test, {upstream_label(up)} (VmHWM after it)", f"{mib(by[up])}"]
                 for up in UPSTREAMS if up in by]
    else:
        rows.append(["— the fresh gateway of the hold test (VmHWM after it)", f"{mib(m['hold_hwm_kib'])}"])
    if worst:
        rows.append([f"gateway, highest RSS after a measured pass ({worst['mode']}, concurrency {worst['concurrency']})",
                     f"{mib(worst['gateway_rss_kib'])}"])
    rows.append(["gateway RSS after the last cell", f"{mib(m['cells_final_rss_kib'])}"])
    if res.has_nginx:
        rows.append(["nginx worker peak (VmHWM), for scale", f"{mib(m['nginx_hwm_kib'])}"])
    return [md_table(["memory (resident set, `/proc/PID/status`)", "MiB"], rows, ["---", "---:"])]


def analysis(res):
    """For each missed target: by how much, what this run's figures show, what would close it."""
    out = []
    by = {t["key"]: t for t in targets(res)}

    t = by.get("throughput")
    if t and t["status"] == "FAIL":
        g, n = res.rps("non-stream", 64, "gateway"), res.rps("non-stream", 64, "nginx")
        d = res.rps("non-stream", 64, "direct")
        gcpu, ncpu = res.cpu_us("non-stream", 64, "gateway"), res.cpu_us("non-stream", 64, "nginx")
        gu, gs = res.cpu_us("non-stream", 64, "gateway", "user"), res.cpu_us("non-stream", 64, "gateway", "system")
        need = 1e6 / (T_THROUGHPUT * n)
        c = res.cell("non-stream", 64, "gateway")
        total = sum(c["gateway_threads"].values()) or 1
        sqlite = sum(v for k, v in c["gateway_threads"].items() if "sqlite" in k) / total
        gbusy, nbusy = res.busy("non-stream", 64, "gateway"), res.busy("non-stream", 64, "nginx")
        other, _ = res.interference(c)
        out += [
            f"### Throughput at concurrency 64: {t['measured']} of nginx's, target {T_THROUGHPUT}×",
            "",
            f"- **By how much:** {t['miss']}. nginx served {num(n)} RPS, direct-to-simulator {num(d)} RPS: nginx",
            f"  reached {n / d:.0%} of what the simulator and load generator on CPU 1 drive alone, with its core",
            f"  {pct(nbusy)} busy.",
        ]
        prof = f"- **What the profile shows:** the gateway's core was {pct(gbusy)} busy"
        prof += (": it is CPU-bound. " if gbusy is not None and gbusy >= 0.9 else
                 " — not saturated, so its CPU was not the only limit in this pass" +
                 (f" ({pct(other)} of CPU 0 went to other processes: see the interference table). " if other and other > 0.05 else ". "))
        prof += (f"It spent {num(gcpu)} µs of CPU per request ({num(gu)} µs user, {num(gs)} µs kernel) against "
                 f"nginx's {num(ncpu)} µs ({gcpu / ncpu:.1f}×). By thread: {thread_share(c)}. Instructions per "
                 "request, repeatable to the instruction, come from `bench/callgrind.sh` (ADR 0005 lists what "
                 "they are spent on).")
        out.append(prof)
        if need < gcpu:
            out.append(
                f"- **What would close it:** at 0.8× nginx the gateway's one core has to serve {num(T_THROUGHPUT * n)} RPS, "
                f"i.e. spend at most {need:.0f} µs of CPU per request, {1 - need / gcpu:.0%} less than now. Moving the "
                f"SQLite usage writer off the request core ({sqlite:.0%} of the gateway's CPU here; production "
                "deployments use PostgreSQL, off the gateway's machine) takes part of that; the rest is user-space "
                "work per request in the handler and the upstream client (the callgrind breakdown). The kernel's "
                "share is loopback TCP work that nginx pays too.")
        else:
            out.append(
                f"- **What would close it:** at 0.8× nginx the gateway needs at most {need:.0f} µs of CPU per request "
                f"and used {num(gcpu)}: its CPU cost is within reach, so the gap in this pass comes from elsewhere "
                "(its core was not saturated); re-run on a quiet machine before drawing conclusions.")
        out.append("")

    for key, mode, metric, p in (("added_p50", "non-stream", "latency", "p50"), ("added_p99", "non-stream", "latency", "p99"),
                                 ("ttft_p99", "stream", "TTFT", "p99")):
        t = by.get(key)
        if not t or t["status"] != "FAIL":
            continue
        get = (lambda tg: res.lat(mode, 1, tg, p)) if metric == "latency" else (lambda tg: res.ttft(mode, 1, tg, p))
        d, g, n = get("direct"), get("gateway"), get("nginx")
        f = res.floor.get(mode)
        if f is None:
            cross = None
        elif metric == "latency":
            cross = f["report"]["latency_ms"][p] - d
        else:
            cross = f["report"]["ttft_ms"][p] - d if f["report"].get("ttft_ms") else None
        c = res.cell(mode, 1, "gateway")
        cnt = c.get("overhead_count") or 0
        inside = 1e3 * c["overhead_sum_s"] / cnt if cnt else None
        title = f"Added latency {p}" if metric == "latency" else f"TTFT added {p}"
        lines = [f"### {title} at concurrency 1 ({mode}): {t['measured']}, target {t['limit']}", "",
                 f"- **By how much:** {t['miss']}."]
        limit = {"added_p50": T_ADDED_P50_MS, "added_p99": T_ADDED_P99_MS, "ttft_p99": T_TTFT_P99_MS}[key]
        added = g - d
        prof = "- **What the profile shows:** "
        if inside is not None:
            prof += (f"the gateway's own measure of a request's time inside it (upstream waits excluded, mean) is "
                     f"{inside * 1e3:.0f} µs; ")
        prof += (f"it spent {num(res.cpu_us(mode, 1, 'gateway'))} µs of CPU per request, "
                 f"{num(res.cpu_us(mode, 1, 'gateway', 'system'))} µs of it in the kernel. ")
        if cross is not None:
            prof += (f"Two CPU crossings with no proxy at all cost {cross * 1e3:+.0f} µs at {p} here (the "
                     f"concurrency-1 table); a proxy on its own core makes four, about {2 * cross * 1e3:+.0f} µs, "
                     f"{min(max(2 * cross / added, 0), 1):.0%} of the gateway's added {p}. ")
        if n is not None:
            prof += (f"nginx, which only proxies, adds {(n - d) * 1e3:+.0f} µs at {p} in the same layout, so the "
                     f"gateway adds {(g - n) * 1e3:+.0f} µs over a bare proxy.")
        if p == "p99":
            other, _ = res.interference(c)
            prof += (" A p99 at concurrency 1 rests on the slowest 1 % of requests and is the first figure to move "
                     f"when anything else runs ({pct(other)} of CPU 0 went to other processes during this pass).")
        lines.append(prof)
        close = "- **What would close it:** "
        if n is not None and n - d > limit:
            close += ("the target is below what a plain proxy reaches on this machine (nginx misses it too), so no "
                      "change to the gateway alone meets it here: it also needs cheaper cross-core wake-ups (bare "
                      "metal, or a layout where client, proxy and upstream share cores — which this suite avoids "
                      "because they would then compete for CPU). On the gateway's side, ")
        gap = (g - n) if n is not None else added
        if gap > 0:
            close += (f"the {gap * 1e3:+.0f} µs it adds over {'nginx' if n is not None else 'direct'} is its own work "
                      "per request on the path (CPU per request at concurrency 1 above; instructions per request "
                      "from `bench/callgrind.sh`).")
        else:
            close += ("it adds nothing measurable over nginx at this percentile in this run: what is left is the "
                      "layout's and the machine's.")
        lines += [close, ""]
        out += lines

    pers = {up: res.per_stream_kib(h) for up, h in res.holds.items() if res.hold_peak(h)}
    for up in UPSTREAMS:
        t = by.get(f"hold_{up}")
        h = res.holds.get(up)
        peak = res.hold_peak(h)
        if not t or t["status"] == "pass" or not h or not peak:
            continue
        other = "http1" if up == "http2" else "http2"
        rep = h["report"]
        chunks_s = rep.get("tokens_per_sec") or 0
        per_chunk = peak["slope_kib_s"] / chunks_s if peak["slope_kib_s"] is not None and chunks_s else None
        out += [f"### Hold test, {upstream_label(up)}: {t['measured']}, target {t['limit']}", ""]
        if t["status"] == "NOT MEASURED":
            per_kib = pers[up]["gateway"]
            more = T_HOLD_STREAMS - h["streams"]
            at_target = (h["hwm_kib"] + per_kib * more) / 1024
            out += [f"- **Not measured at {T_HOLD_STREAMS:,}:** {t['miss']}; see the hold test section "
                    f"({per_kib:.1f} KiB per stream over idle at {h['streams']:,} streams).",
                    f"- **At that rate** (an extrapolation, not a measurement): the peak of {h['hwm_kib'] / 1024:.1f} "
                    f"MiB at {h['streams']:,} streams plus {more:,} × {per_kib:.1f} KiB ≈ {at_target:.0f} MiB at "
                    f"{T_HOLD_STREAMS:,}, against the {T_HOLD_RSS_MIB} MiB target.", ""]
            continue
        per = pers[up]
        out += [f"- **By how much:** {t['miss']}."]
        first = peak["rss_first_kib"] / 1024
        prof = (f"- **What the profile shows:** with every stream open the gateway's RSS was {first:.0f} MiB "
                f"({per['gateway']:.1f} KiB per stream over idle); ")
        if per_chunk is not None and per_chunk < 0.1:
            prof += (f"it then stayed flat ({peak['slope_kib_s'] / 1024:+.1f} MiB/s) while the streams relayed "
                     f"{chunks_s:,.0f} chunks/s, so the peak is the cost of holding the streams open, not of "
                     "relaying them.")
        elif per_chunk is not None:
            prof += (f"it then grew by {peak['slope_kib_s'] / 1024:.1f} MiB/s while the streams relayed "
                     f"{chunks_s:,.0f} chunks/s: about {per_chunk:.1f} KiB kept per chunk relayed, released when "
                     f"the streams end ({mib(h['rss_after_kib'])} MiB 2 s after). So the peak depends on how long "
                     "the streams last, not only on how many there are.")
        out.append(prof)
        budget = (T_HOLD_RSS_MIB * 1024 - h["rss_before_kib"]) / T_HOLD_STREAMS
        upstream_side = ("its share of the one upstream connection (an HTTP/2 stream)" if up == "http2"
                         else "its own upstream client connection")
        if per.get("sim", -1) > 0:
            out.append(
                f"- **For scale, measured at the same moment:** the simulator, a server on the same HTTP stack "
                f"(hyper, tokio, mimalloc), held its side of the same streams in {per['sim']:.1f} KiB per stream over "
                f"its idle RSS. The gateway holds a server connection, {upstream_side} and the request's state per "
                f"stream and used {per['gateway']:.1f} KiB. If its server side costs what the simulator's does, the "
                f"other ~{per['gateway'] - per['sim']:.0f} KiB per stream are {upstream_side} and what the request keeps "
                "while it streams.")
        if other in pers:
            d = pers["http1"]["gateway"] - pers["http2"]["gateway"]
            out.append(
                f"- **Against the other run:** with its upstream over {UPSTREAM_PROTO[other]} the gateway used "
                f"{pers[other]['gateway']:.1f} KiB per stream; a connection of its own per stream costs {d:+.1f} KiB "
                "over a stream on one shared HTTP/2 connection.")
        candidates = ("the client connection's buffers (hyper's read and write buffers), each stream's state on the "
                      "shared upstream connection" if up == "http2"
                      else "the per-connection buffers on both sides (hyper's read and write buffers)")
        out.append(
            f"- **What would close it:** {T_HOLD_STREAMS:,} streams under {T_HOLD_RSS_MIB} MiB leave "
            f"{budget:.0f} KiB per stream over idle for the whole life of the stream; the gateway used "
            f"{per['gateway']:.0f} KiB as soon as they were open"
            + (f" and {(peak['rss_max_kib'] - h['rss_before_kib']) / h['streams']:.0f} KiB at the end"
               if per_chunk is not None and per_chunk >= 0.1 else "")
            + ". A heap profile of this test (not part of the suite; e.g. heaptrack on the gateway during "
            "`BENCH_HOLD_STREAMS=1000 bench/run.sh --quick`) is what says which allocations to cut; the candidates are "
            f"{candidates}, what a request keeps after its upstream call has started (its body, parsed JSON, "
            "headers), and the data the relay keeps to estimate tokens until the upstream reports usage.")
        if per_chunk is not None and per_chunk > 2:
            out += [
                "- **What would close it:** the growth per chunk is the size of an upstream read buffer, not of",
                "  a chunk (~0.3 KiB of data). It matches the stream relay keeping each chunk's data as a `Bytes`",
                "  slice until the upstream reports usage (`seen` in `crates/core/src/pipeline/stream.rs`), a slice",
                "  that keeps the whole buffer it was cut from alive. Copying the kept bytes out (or counting",
                "  tokens as chunks pass and keeping nothing) would bound a stream's memory by its text; with",
                "  that, the RSS when all streams were first open is the figure to set against the target.",
            ]
        out.append("")

    t = by.get("idle")
    if t and t["status"] == "FAIL":
        out += [f"### Idle RSS: {t['measured']}, target {t['limit']}", "", f"- **By how much:** {t['miss']}.", ""]
    return out


def render(res):
    duration, warmup = meta("DURATION"), meta("WARMUP")
    bench_cmds = meta("BENCH_CMDS", "").strip()
    plots = meta("PLOTS", "benchmarks")
    nginx_note = meta("NGINX_NOTE", "")
    wall, build_s, built = meta("WALL_S", "?"), meta("BUILD_S", "?"), meta("BUILT", "1") == "1"
    issues_bad, issues_warn = check(res)
    p = []
    a = p.append
    a("# Benchmarks\n")
    a("The gateway against two baselines measured in the same run on the same machine: the simulated")
    a("upstream called directly, and a plain reverse proxy (nginx) in front of it — what proxying costs")
    a("here at the least. Generated by `bench/run.sh`; do not edit by hand — re-run the command below to")
    a("reproduce or update these numbers.\n")
    if nginx_note:
        a(f"> **No nginx baseline in this run:** {nginx_note}. Figures against nginx are missing.\n")
    a("## Targets\n")
    a("The issue's targets for this 2-core machine (load generator, upstream and gateway share it). Each is")
    a("measured against the baseline named in its row, from this run; \"miss by\" says how far a missed target")
    a("is, and the [misses](#misses-what-the-figures-show-and-what-would-close-them) section what the figures")
    a("show and what would close it. The last column is the same measure for nginx, for scale.\n")
    a(targets_table(res))
    a("")
    a("Baselines: **added latency and TTFT added** are against **direct** (gateway figure − direct figure,")
    a("same percentile); **throughput** is against the **nginx** proxy (gateway RPS ÷ nginx RPS). The hold")
    a("tests (one per protocol between the gateway and its upstream, HTTP/2 and HTTP/1.1) and idle RSS are")
    a("absolute.\n")
    a("Policy chain on the gateway during every run:\n")
    a("- **key auth:** on — every request carries a real API key created through the admin API at start;")
    a("  a request without it is refused (checked: 401).")
    a(f"- **usage records:** on — one row per request in SQLite (`storage.url` in `bench/gateway.yaml.in`);")
    a(f"  {meta('USAGE_ROWS')} rows written during this run (warm-up passes included).")
    a("- **metrics:** on — recorded for every request; `/metrics` is scraped before and after every")
    a("  measured pass, and every second during the hold tests.")
    a("- **rate limits:** on — the benchmark key (`bench/key.json`) carries requests-per-minute, tokens-per-minute")
    a("  and concurrency limits, checked and charged on every request (set too high to refuse one); every reply")
    a("  carries its `x-ratelimit-*` headers.\n")
    a("## Machine\n")
    a(f"- CPUs: {meta('NPROC')} × {meta('CPU')}; memory {meta('MEM')}")
    a(f"- OS: {meta('OS')}; kernel {meta('KERNEL')}")
    a(f"- Date: {meta('DATE')}")
    a(f"- Commit: {meta('COMMIT')}")
    a(f"- Toolchain: {meta('RUSTC')}")
    if res.has_nginx:
        a(f"- nginx: {meta('NGINX')} (Debian package)")
    a(f"- Open files: hard limit {int(meta('NOFILE_HARD', '0')):,} (the script raises the soft limit to it);"
      f" `net.core.somaxconn` {meta('SOMAXCONN')}")
    a(f"- Load average when the run started (1, 5, 15 min): {meta('LOAD')}\n")
    a("## Command\n")
    a(f"```sh\n{meta('COMMAND')}\n```\n")
    a(f"Wall time: {wall} s for the whole suite" + (f", {build_s} s of it the release build." if built else " (`--no-build`: no build)."))
    a("")
    a(f"- Placement: {meta('PINNING')}. nginx runs on CPU 0 too (`taskset -c 0`), with one worker;")
    a("  the gateway and nginx are never under load at the same time.")
    a(f"- Each run: {warmup} s warm-up pass, then a {duration} s measured pass; closed loop, one HTTP/1.1")
    a("  keep-alive connection and one request in flight per worker; concurrency = workers. Every cell runs")
    a("  direct, then nginx, then the gateway.")
    a(f"- Simulator knobs (`PUT /_sim/knobs`): `{meta('KNOBS')}`; hold test: `{meta('HOLD_KNOBS')}`.")
    a("- Request: `{\"model\":\"bench-model\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}],\"max_tokens\":16}`"
      " (plus `\"stream\":true`).")
    a("- Gateway config (`bench/gateway.yaml.in`): one `openai_compatible` provider (the simulator, a separate")
    a("  process — not the embedded one), one deployment, one route, usage in SQLite. The gateway reaches it")
    a("  over HTTP/1.1 in every run except the first hold test, which uses `bench/gateway-h2.yaml.in`: the same")
    a("  config with `http2: true` on the provider (h2c).")
    a("- nginx config (`bench/nginx.conf.in`): `worker_processes 1`, `proxy_http_version 1.1`,")
    a("  `proxy_set_header Connection \"\"`, an upstream `keepalive 1024` pool, `proxy_buffering off`,")
    a("  `access_log off`, `keepalive_requests` 1,000,000 both ways, the gateway's listen backlog"
      f" ({meta('GW_BACKLOG')}); started with `nginx -c CONF -g 'daemon off;'`.")
    if bench_cmds:
        a("- Load generator invocations (the other cells differ in `--concurrency`):\n")
        a("```sh")
        a(bench_cmds)
        a("```")
    a("")
    if issues_bad or issues_warn:
        a("**Problems in this run — treat the figures they touch with suspicion:**\n")
        for i in issues_bad + issues_warn:
            a(f"- {i}")
        a("")
    a("## Plots\n")
    a(f"![Latency vs. concurrency, non-stream]({plots}/latency-non-stream.svg)")
    a(f"![Latency vs. concurrency, stream]({plots}/latency-stream.svg)\n")
    a(f"![Throughput vs. concurrency, non-stream]({plots}/throughput-non-stream.svg)")
    a(f"![Throughput vs. concurrency, stream]({plots}/throughput-stream.svg)\n")
    for up in UPSTREAMS:
        if up in res.holds:
            a(f"![Gateway RSS and open streams during the hold test, {upstream_label(up)}]({plots}/hold-{up}.svg)")
    if res.holds:
        a("")
        a("Hold-test plots: one per protocol between the gateway and the simulator, on the same scales.\n")
    a("Latency plots: p50 solid, p99 dashed, log scales. Drawn by `bench/plot.py` from the same results.\n")
    for mode, title in (("non-stream", "Non-streaming chat completions"), ("stream", "Streaming chat completions")):
        a(f"## {title}\n")
        a(results_table(res, mode))
        a("")
        a("Against the baselines:\n")
        a(ratio_table(res, mode))
        a("")
    a("## Hold test: slow streams held at once\n")
    p.extend(hold_section(res))
    a("")
    a("## Memory\n")
    p.extend(memory_section(res))
    a("")
    a("## Where the CPU goes\n")
    a("CPU time per measured request from `/proc/PID/stat` (user = the process's own code, kernel = system")
    a("calls, mostly loopback TCP), and how the gateway's divides between its threads (`/proc/PID/task/*`).\n")
    a(profile_table(res))
    a("")
    if res.floor:
        a("## Concurrency 1: what crossing CPUs costs here\n")
        a("The direct runs keep client and simulator on one CPU; through a proxy a request crosses CPUs four")
        a("times (client → proxy → simulator → proxy → client). A simulator on the proxy's CPU, called directly,")
        a("crosses twice:\n")
        a(floor_table(res))
        a("")
    miss = analysis(res)
    a("## Misses: what the figures show and what would close them\n")
    if miss:
        p.extend(miss)
    else:
        a("Every target measured in this run was met.\n")
    a("## Interference on CPU 0\n")
    a("CPU 0 time (user, system, irq, softirq from `/proc/stat`) during each measured pass that was neither the")
    a("gateway's nor nginx's, and time the hypervisor took from CPU 0 (steal), as a share of the pass. Near 0")
    a("means the proxy under test had its CPU to itself; more than a few percent means other work on the machine")
    a("(a compile, say) may have moved that row's numbers.\n")
    a(interference_table(res))
    a("")
    a("## How to read this\n")
    a("- **RPS** counts successful responses per second; latencies are client-side, from sending the request")
    a("  to the end of the response body (for streams, the end of the stream). **TTFT** is the time to the")
    a("  first `data:` line carrying content. Percentiles are nearest-rank over every measured request.")
    a("- **added** is gateway − baseline at the same percentile and concurrency: what a request pays for")
    a("  going through the gateway instead of straight to the upstream (vs direct) or through a bare proxy")
    a("  (vs nginx). **RPS ÷** is the throughput ratio.")
    a("- **proxy CPU µs/req** is the proxy process's user+system CPU time during the measured pass divided")
    a("  by the requests in it (nginx: master and worker); **core busy** is that time over the pass. One fully")
    a("  busy core serves about 1,000,000 ÷ (CPU µs/req) requests per second.")
    a("- **in-gateway mean** is the gateway's own measure of the time a request spends inside it, upstream")
    a("  waits excluded, up to the response head (`switchyard_gateway_overhead_seconds`).")
    a("- The proxy has one core to itself; the simulator and the load generator share the other. Direct runs")
    a("  are bounded by that second core, and so are the proxies' once it saturates: if a proxy's core is well")
    a("  below 100% busy, the proxy was not the bottleneck. At concurrency 512 both cores are saturated and")
    a("  latency is mostly queueing.")
    a("- The simulator answers at once, so these numbers isolate proxying costs; with a real provider the")
    a("  added latency sits on top of the provider's.")
    a("- Each figure comes from one pass on a shared VM: CPU figures vary by ±20% between identical runs")
    a("  (ADR 0005); compare versions with `bench/callgrind.sh`.")
    return "\n".join(p) + "\n"


# --- terminal summary ---------------------------------------------------------------------


def text_table(head, rows):
    cols = [head] + [[str(c) for c in r] for r in rows]
    w = [max(len(r[i]) for r in cols) for i in range(len(head))]
    fmt = lambda r: "  ".join(c.rjust(w[i]) if i else c.ljust(w[i]) for i, c in enumerate(r))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * x for x in w])] + [fmt(r) for r in cols[1:]])


def summary(res):
    out = []
    for mode in MODES:
        rows = []
        for conc in res.concs:
            for t in res.targets:
                rep = res.rep(mode, conc, t)
                if not rep:
                    continue
                rows.append([f"c={conc} {t}", num(rep["rps"]), ms(rep["latency_ms"]["p50"]), ms(rep["latency_ms"]["p99"]),
                             ms(res.ttft(mode, conc, t, "p99")) if mode == "stream" else "",
                             num(res.cpu_us(mode, conc, t)) if t in PROXIES else "", rep["errors"]])
        out += [f"== {mode}: figures", text_table(["cell", "RPS", "p50 ms", "p99 ms", "TTFT p99", "CPU µs/req", "errors"], rows), ""]
        rows = []
        for r in ratio_rows(res, mode):
            rows.append([f"c={r['conc']}", ratio(r["rps_nginx"]), ratio(r["rps_direct"]), sms(r["add_p50_direct"]),
                         sms(r["add_p99_direct"]), sms(r["add_p50_nginx"]), sms(r["add_p99_nginx"]),
                         sms(r.get("ttft_p99_direct")) if mode == "stream" else "", ratio(r["cpu_ratio"])])
        out += [f"== {mode}: gateway against the baselines (same run)",
                text_table(["", "RPS÷nginx", "RPS÷direct", "+p50 vs direct", "+p99 vs direct", "+p50 vs nginx",
                            "+p99 vs nginx", "+TTFT p99 vs direct", "CPU÷nginx"], rows), ""]
    m = res.memory
    if m:
        by = m.get("hold_hwm_kib_by_upstream") or {}
        holds = (", ".join(f"hold test {UPSTREAM_PROTO[u]} {mib(by[u])} MiB" for u in UPSTREAMS if u in by)
                 or f"hold test {mib(m['hold_hwm_kib'])} MiB")
        out += [f"== memory: gateway idle RSS {mib(m['idle_rss_kib'])} MiB; peak over the suite (VmHWM) {mib(m['suite_hwm_kib'])} MiB"
                f" (cells {mib(m['cells_hwm_kib'])} MiB, {holds})"
                + (f"; nginx worker peak {mib(m['nginx_hwm_kib'])} MiB" if res.has_nginx else "")]
    for up, h, peak in hold_runs(res):
        out += [f"== hold, {upstream_label(up)}: {h['streams']:,} streams started (asked {h['requested']:,}), "
                f"{peak['in_flight']:,} open at the peak, {h['report']['errors']:,} errors; "
                f"{res.per_stream_kib(h)['gateway']:.1f} KiB per stream over idle; RSS highest sample "
                f"{mib(peak['rss_max_kib'])} MiB, VmHWM {mib(h['hwm_kib'])} MiB; gateway open files at the peak {peak['fds']:,}; "
                f"accept-queue overflows {h['listen_overflows']:,}, SYN retransmits {h['syn_retrans']:,}"]
    out += ["", "== targets"]
    out.append(text_table(["target", "measured", "baseline", "target", "result", "miss by"],
                          [[t["name"], t["measured"], t["baseline"], t["limit"], t["status"], t["miss"]] for t in targets(res)]))
    bad, warn = check(res)
    for w in bad + warn:
        out.append(f"warning: {w}")
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) == 3 and argv[1] in ("--check", "--summary"):
        try:
            res = Results(load(argv[2]))
            bad, warn = check(res)
        except (Malformed, KeyError, TypeError, ValueError) as e:
            print(f"run.sh: malformed results: {e}", file=sys.stderr)
            return 1
        if argv[1] == "--summary":
            sys.stdout.write(summary(res))
            return 0
        for w in warn:
            print(f"run.sh: warning: {w}", file=sys.stderr)
        for b in bad:
            print(f"run.sh: malformed results: {b}", file=sys.stderr)
        return 1 if bad else 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    sys.stdout.write(render(Results(load(argv[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
