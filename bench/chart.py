#!/usr/bin/env python3
"""Bar chart of the benchmark ratios, as SVG (python3, standard library only).

Reads bench/results/raw.csv (written by bench/compare.sh), takes the median
over rounds of each server's req/s and server CPU µs/request per scenario,
divides by the baseline server's (default sockloop), and draws two panels of
grouped horizontal bars: "server CPU per request ÷ baseline" (above 1: the
peer spends more CPU per request) and "req/s ÷ baseline" (above 1: the peer
is faster). Writes bench/results/ratios.svg.

Usage: python3 bench/chart.py [--results DIR] [--baseline NAME] [--out FILE] [--cap 4]
"""
import argparse
import csv
import math
import os
import statistics
from xml.sax.saxutils import escape

PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7"]


def load(path):
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("status") == "ok"]
    data, scen_order, server_order = {}, [], []
    for r in rows:
        if r["scenario"] not in scen_order:
            scen_order.append(r["scenario"])
        if r["server"] not in server_order:
            server_order.append(r["server"])
        d = data.setdefault(r["scenario"], {}).setdefault(r["server"], {"rps": [], "cpu": []})
        for key, col in (("rps", "rps"), ("cpu", "cpu_us_per_req")):
            try:
                d[key].append(float(r[col]))
            except (TypeError, ValueError):
                pass
    med = {s: {srv: {k: (statistics.median(v) if v else None) for k, v in m.items()}
               for srv, m in by.items()} for s, by in data.items()}
    return med, scen_order, server_order


def ratios(med, scen_order, servers, baseline, metric):
    """[(scenario, [(server, ratio)])] for scenarios where the baseline ran."""
    out = []
    for scen in scen_order:
        b = med[scen].get(baseline, {}).get(metric)
        if not b:
            continue
        bars = []
        for srv in servers:
            v = med[scen].get(srv, {}).get(metric)
            if srv != baseline and v:
                bars.append((srv, v / b))
        if bars:
            out.append((scen, bars))
    return out


def panel(title, groups, colors, x0, y0, width, cap, label_w=150, bar_h=13, gap=10):
    """SVG elements for one panel; returns (elements, height)."""
    el = [f'<text x="{x0}" y="{y0 + 14}" class="title">{escape(title)}</text>']
    if not groups:
        el.append(f'<text x="{x0}" y="{y0 + 40}" class="note">no data (baseline missing?)</text>')
        return el, 60
    vmax = max(r for _, bars in groups for _, r in bars)
    vmax = max(1.25, min(cap, vmax * 1.1))  # bars beyond the cap are cut short
    step = 10 ** math.floor(math.log10(vmax / 4)) if vmax > 0 else 1
    for mult in (1, 2, 2.5, 5, 10):
        if vmax / (step * mult) <= 6:
            step *= mult
            break
    plot_x, plot_w = x0 + label_w, width - label_w - 90
    top = y0 + 28
    sx = lambda v: plot_x + plot_w * v / vmax
    h = sum(len(b) * bar_h + gap for _, b in groups)
    # grid and axis labels
    t = 0.0
    while t <= vmax + 1e-9:
        x = sx(t)
        el.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + h}" class="grid"/>')
        el.append(f'<text x="{x:.1f}" y="{top + h + 14}" class="tick">{t:g}×</text>')
        t += step
    x1 = sx(1.0)
    el.append(f'<line x1="{x1:.1f}" y1="{top - 4}" x2="{x1:.1f}" y2="{top + h}" class="one"/>')
    y = top
    for scen, bars in groups:
        el.append(f'<text x="{plot_x - 8}" y="{y + len(bars) * bar_h / 2 + 4:.1f}" class="label">{escape(scen)}</text>')
        for srv, r in bars:
            w = max(1.0, sx(min(r, vmax)) - plot_x)
            cut = " ▸ (cut)" if r > vmax else ""
            el.append(f'<rect x="{plot_x}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" fill="{colors[srv]}">'
                      f'<title>{escape(srv)}: {r:.2f}×</title></rect>')
            el.append(f'<text x="{plot_x + w + 4:.1f}" y="{y + bar_h - 3}" class="val">{r:.2f}{cut}</text>')
            y += bar_h
        y += gap
    return el, h + 50


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=os.path.join(here, "results"))
    ap.add_argument("--baseline", default="sockloop")
    ap.add_argument("--out")
    ap.add_argument("--cap", type=float, default=4.0, help="longest bar, as a ratio (default 4)")
    a = ap.parse_args()
    out = a.out or os.path.join(a.results, "ratios.svg")
    med, scen_order, servers = load(os.path.join(a.results, "raw.csv"))
    others = [s for s in servers if s != a.baseline]
    colors = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(others)}

    width = 820
    el = []
    y = 10
    el.append(f'<text x="10" y="{y + 16}" class="h1">Comparison peers ÷ {escape(a.baseline)} '
              f'(median over rounds; the line marks 1×)</text>')
    y += 30
    # legend
    lx = 10
    for s in others:
        el.append(f'<rect x="{lx}" y="{y}" width="12" height="12" fill="{colors[s]}"/>')
        el.append(f'<text x="{lx + 16}" y="{y + 11}" class="legend">{escape(s)}</text>')
        lx += 24 + 8 * len(s) + 10
    y += 24
    for title, metric in (("Server CPU time per request ÷ baseline (higher: peer costs more)", "cpu"),
                          ("Requests per second ÷ baseline (higher: peer is faster)", "rps")):
        groups = ratios(med, scen_order, others, a.baseline, metric)
        pe, ph = panel(title, groups, colors, 10, y, width - 20, a.cap)
        el += pe
        y += ph + 10
    style = """<style>
text { font-family: sans-serif; fill: #222; }
.h1 { font-size: 15px; font-weight: bold; } .title { font-size: 13px; font-weight: bold; }
.label { font-size: 11px; text-anchor: end; } .tick { font-size: 10px; text-anchor: middle; fill: #555; }
.val { font-size: 10px; fill: #333; } .legend { font-size: 11px; } .note { font-size: 12px; fill: #a00; }
.grid { stroke: #ddd; stroke-width: 1; } .one { stroke: #000; stroke-width: 1.5; stroke-dasharray: 4 2; }
</style>"""
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" viewBox="0 0 {width} {y}">\n'
           f'{style}\n<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(el) + "\n</svg>\n")
    with open(out, "w") as f:
        f.write(svg)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
