#!/usr/bin/env python3
"""Draws the benchmark plots as SVG from bench/run.sh results (standard library only).

usage: plot.py RESULTS.jsonl OUTDIR

Writes into OUTDIR:
  latency-non-stream.svg, latency-stream.svg        p50 and p99 latency vs. concurrency
  throughput-non-stream.svg, throughput-stream.svg  RPS vs. concurrency
  hold-http2.svg, hold-http1.svg                    gateway (and simulator) RSS and open streams during the hold
                                                    test, upstream over HTTP/2 and over HTTP/1.1 (same scales)
One line per target (direct, nginx, gateway); concurrency on a log scale.
"""
import json
import math
import os
import sys

COLORS = {"direct": "#4e79a7", "nginx": "#59a14f", "gateway": "#e15759"}
TARGETS = ("direct", "nginx", "gateway")
HOLD_TARGET_MIB = 300  # the target for the hold test (render.py: T_HOLD_RSS_MIB, T_HOLD_STREAMS)
HOLD_TARGET_STREAMS = 10_000
W, H = 680, 420
LEFT, RIGHT, TOP, BOTTOM = 78, 24, 44, 58
FONT = 'font-family="Helvetica, Arial, sans-serif"'


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def label(v):
    """Short tick label: 1, 2.5, 40k, 0.02."""
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        k = v / 1000
        return f"{k:.0f}k" if k == int(k) else f"{k:g}k"
    if abs(v) >= 1:
        return f"{v:g}"
    return f"{v:.3g}"


def nice_linear(lo, hi, n=5):
    """Ticks from 0 (or lo) up to at least hi, at a 1/2/5 x 10^k step."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, v = [], start
    while v < hi + step * 0.999:
        ticks.append(round(v, 10))
        v += step
    return ticks


def log_ticks(lo, hi):
    """1-2-5 ticks per decade when there are few decades, decades otherwise."""
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    mults = (1, 2, 5) if b - a <= 3 else (1,)
    ticks = [m * 10 ** e for e in range(a, b + 1) for m in mults]
    lo_t = max([t for t in ticks if t <= lo] or [ticks[0]])
    hi_t = min([t for t in ticks if t >= hi] or [ticks[-1]])
    return [t for t in ticks if lo_t <= t <= hi_t]


class Axis:
    def __init__(self, lo, hi, a, b, log):
        self.lo, self.hi, self.a, self.b, self.log = lo, hi, a, b, log

    def __call__(self, v):
        if self.log:
            f = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            f = (v - self.lo) / (self.hi - self.lo)
        return self.a + f * (self.b - self.a)


def chart(title, xlabel, ylabel, series, *, xlog, ylog, xticks=None, right=None, ymax=None, rmax=None, xmax=None):
    """series: [{"label", "color", "dash", "points": [(x, y)], "axis": "left"|"right"}].
    right: (label, unit ticks) for a second y axis used by series with axis "right".
    ymax, rmax, xmax (linear axes): extend the left, right and x axes to at least these values, so that
    charts drawn side by side share their scales."""
    right_margin = RIGHT + (60 if right else 0)
    x0, x1, y0, y1 = LEFT, W - right_margin, H - BOTTOM, TOP
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" {FONT} font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{esc(title)}</text>']

    def y_axis(axis_series, side):
        ys = [p[1] for s in axis_series for p in s["points"] if p[1] is not None and (p[1] > 0 or not ylog)]
        if not ys:
            return None, []
        if ylog:
            ticks = log_ticks(min(ys), max(ys))
        else:
            ticks = nice_linear(0, max(ys + [(ymax if side == "left" else rmax) or 0]))
        return Axis(ticks[0], ticks[-1], y0, y1, ylog), ticks

    xs = [p[0] for s in series for p in s["points"]]
    xt = xticks or (log_ticks(min(xs), max(xs)) if xlog else nice_linear(min(xs), max(xs + [xmax or 0])))
    xlo, xhi = min(xt + xs), max(xt + xs)
    if xlog:
        pad = (math.log10(xhi) - math.log10(xlo)) * 0.04 or 0.1
        xa = Axis(10 ** (math.log10(xlo) - pad), 10 ** (math.log10(xhi) + pad), x0, x1, True)
    else:
        xa = Axis(xlo, xhi, x0, x1, False)
    left = [s for s in series if s.get("axis", "left") == "left"]
    ya, yt = y_axis(left, "left")
    if ya is None:
        return None
    ra, rt = (None, [])
    if right:
        ra, rt = y_axis([s for s in series if s.get("axis") == "right"], "right")
        if ra is not None and not ylog:
            rt = nice_linear(0, rt[-1])
            ra = Axis(rt[0], rt[-1], y0, y1, False)

    # Grid and ticks.
    for t in yt:
        y = ya(t)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{x0 - 8}" y="{y + 4:.1f}" text-anchor="end">{esc(label(t))}</text>')
    for t in xt:
        x = xa(t)
        out.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y1}" stroke="#f0f0f0"/>')
        out.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + 5}" stroke="#333"/>')
        out.append(f'<text x="{x:.1f}" y="{y0 + 19}" text-anchor="middle">{esc(label(t))}</text>')
    if ra is not None:
        for t in rt:
            y = ra(t)
            out.append(f'<line x1="{x1}" y1="{y:.1f}" x2="{x1 + 5}" y2="{y:.1f}" stroke="#333"/>')
            out.append(f'<text x="{x1 + 8}" y="{y + 4:.1f}">{esc(label(t))}</text>')
        out.append(f'<text transform="translate({W - 14},{(y0 + y1) / 2}) rotate(90)" text-anchor="middle">{esc(right)}</text>')
    out.append(f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#333"/>')
    out.append(f'<text x="{(x0 + x1) / 2}" y="{H - 16}" text-anchor="middle">{esc(xlabel)}</text>')
    out.append(f'<text transform="translate(20,{(y0 + y1) / 2}) rotate(-90)" text-anchor="middle">{esc(ylabel)}</text>')

    # Lines and points.
    for s in series:
        axis = ra if s.get("axis") == "right" else ya
        if axis is None:
            continue
        pts = [(xa(x), axis(y)) for x, y in s["points"] if y is not None and (y > 0 or not ylog)]
        if not pts:
            continue
        dash = ' stroke-dasharray="6,4"' if s.get("dash") else ""
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{s["color"]}" stroke-width="2"{dash}/>')
        if s.get("markers", True):
            for x, y in pts:
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{s["color"]}"/>')

    # Legend, in rows under the x-axis label, so it never hides a line.
    x, y = float(LEFT), H + 4
    for s in series:
        w = 40 + len(s["label"]) * 7 + 18
        if x + w > W - 10:
            x, y = float(LEFT), y + 20
        dash = ' stroke-dasharray="6,4"' if s.get("dash") else ""
        out.append(f'<line x1="{x:.0f}" y1="{y - 4}" x2="{x + 30:.0f}" y2="{y - 4}" stroke="{s["color"]}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{x + 36:.0f}" y="{y}">{esc(s["label"])}</text>')
        x += w
    total_h = y + 14
    out[0] = out[0].replace(f'height="{H}" viewBox="0 0 {W} {H}"', f'height="{total_h:.0f}" viewBox="0 0 {W} {total_h:.0f}"')
    out[1] = f'<rect width="{W}" height="{total_h:.0f}" fill="white"/>'
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    rows = [json.loads(line) for line in open(argv[1]) if line.strip()]
    outdir = argv[2]
    os.makedirs(outdir, exist_ok=True)
    cells = [r for r in rows if r.get("kind") == "cell"]
    concs = sorted({r["concurrency"] for r in cells})
    written = []

    def write(name, svg):
        if svg is None:
            return
        with open(os.path.join(outdir, name), "w") as f:
            f.write(svg)
        written.append(name)

    for mode in ("non-stream", "stream"):
        by = {(r["concurrency"], r["target"]): r["report"] for r in cells if r["mode"] == mode}
        targets = [t for t in TARGETS if any(k[1] == t for k in by)]
        lat, thr = [], []
        for t in targets:
            pts = [(c, by[(c, t)]) for c in concs if (c, t) in by]
            for p, dash in (("p50", False), ("p99", True)):
                lat.append({"label": f"{t} {p}", "color": COLORS[t], "dash": dash,
                            "points": [(c, r["latency_ms"][p]) for c, r in pts]})
            thr.append({"label": t, "color": COLORS[t], "points": [(c, r["rps"]) for c, r in pts]})
        if not lat:
            continue
        what = "to the end of the stream" if mode == "stream" else "to the end of the response"
        write(f"latency-{mode}.svg", chart(f"Latency vs. concurrency, {mode}", "concurrency (closed-loop workers, log scale)",
                                           f"latency {what}, ms (log scale)", lat, xlog=True, ylog=True, xticks=concs))
        write(f"throughput-{mode}.svg", chart(f"Throughput vs. concurrency, {mode}", "concurrency (closed-loop workers, log scale)",
                                              "successful requests per second", thr, xlog=True, ylog=False, xticks=concs))

    # One chart per hold test (upstream over HTTP/2, over HTTP/1.1), on the same scales.
    holds = {r.get("upstream", "http1"): r for r in rows if r.get("kind") == "hold" and r.get("samples")}
    proto = {"http2": "HTTP/2 (shared connection)", "http1": "HTTP/1.1 (connection per stream)"}
    all_s = [x for h in holds.values() for x in h["samples"]]
    if all_s:
        ymax = max(max(x[1], x[4] if len(x) > 5 else 0) for x in all_s) / 1024
        rmax = max(x[2] for x in all_s)
        xmax = max(x[0] for x in all_s)
    for up in ("http2", "http1"):
        hold = holds.get(up)
        if not hold:
            continue
        s = hold["samples"]
        series = [
            {"label": "gateway RSS (MiB, left)", "color": COLORS["gateway"], "markers": False,
             "points": [(x[0], x[1] / 1024) for x in s]},
            *([{"label": "simulator RSS (MiB, left), for scale", "color": "#9c755f", "markers": False,
                "points": [(x[0], x[4] / 1024) for x in s]}] if len(s[0]) > 5 else []),
            {"label": "streams in flight (right)", "color": COLORS["direct"], "dash": True, "markers": False,
             "axis": "right", "points": [(x[0], x[2]) for x in s]},
            # The target line only where the target's stream count was asked for (a --quick run's
            # 1,000 streams would be drawn against it at a scale that flattens them).
            *([{"label": f"target: {HOLD_TARGET_MIB} MiB at 10,000 streams (left)", "color": "#999999", "dash": True,
                "markers": False, "points": [(0, HOLD_TARGET_MIB), (nice_linear(0, xmax)[-1], HOLD_TARGET_MIB)]}]
              if hold.get("requested", 0) >= HOLD_TARGET_STREAMS else []),
        ]
        write(f"hold-{up}.svg", chart(f"Hold test, upstream {proto.get(up, up)}: {hold['streams']:,} streams",
                                      "seconds since the load generator started", "resident set size, MiB", series,
                                      xlog=False, ylog=False, right="streams in flight", ymax=ymax, rmax=rmax, xmax=xmax))
    print(f"plot.py: wrote {', '.join(written)} in {outdir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
