// The overview's charts (uPlot): requests/s, latency p50/p99, 5xx share, instance count,
// over a range the user picks. The page keeps the points of every range it has loaded and
// appends the stream's new ones (mergePoints); this module draws them.
import uPlot from "uplot";
import { html, api, useState, useEffect, useRef, useMemo } from "../lib.js";
import { fmtNum, percentile, ErrorText } from "./format.js";

export const RANGES = [
  { id: "1h", label: "1 h", words: "the last hour", seconds: 3600 },
  { id: "3h", label: "3 h", words: "the last 3 hours", seconds: 3 * 3600 },
  { id: "1d", label: "1 day", words: "the last day", seconds: 86400 },
  { id: "2w", label: "2 weeks", words: "the last 2 weeks", seconds: 14 * 86400 },
];

const KEEP_AT_MOST = 20000; // points per range, whatever happens

// Adds `fresh` WindowViews to `points` (both oldest first): a window already there (same
// start) is replaced; windows that ended before the range's start are dropped.
export function mergePoints(points, fresh, seconds) {
  const byStart = new Map(points.map((p) => [p.start, p]));
  for (const p of fresh) byStart.set(p.start, p);
  const all = [...byStart.values()].sort((a, b) => a.start - b.start);
  if (!all.length) return all;
  const last = all[all.length - 1];
  const cutoff = Math.max(last.start + last.duration_s, Date.now() / 1000) - seconds;
  const kept = all.filter((p) => p.start + p.duration_s >= cutoff);
  return kept.length > KEEP_AT_MOST ? kept.slice(kept.length - KEEP_AT_MOST) : kept;
}

// The series uPlot draws: x is when each window closed (epoch seconds).
function columns(points) {
  const x = [], rps = [], p50 = [], p99 = [], share = [], count = [];
  for (const p of points) {
    x.push(p.start + p.duration_s);
    rps.push(p.requests_per_s);
    p50.push(percentile(p, "50.0"));
    p99.push(percentile(p, "99.0"));
    share.push(p.requests ? (100 * p.status_5xx) / p.requests : null);
    count.push(p.instances == null ? null : p.instances);
  }
  return { x, rps, p50, p99, share, count };
}

const last = (values) => {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] != null) return values[i];
  return null;
};

const fromZero = (minimum) => (u, min, max) => [0, Math.max(minimum, max == null ? 0 : max * 1.1)];

export function Charts({ name, range, setRange, metrics, onLoaded }) {
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState(null);
  const current = RANGES.find((r) => r.id === range) || RANGES[0];
  const view = metrics[range];

  // A range not loaded yet: one GET (the hour came with the page).
  useEffect(() => {
    if (view) { setLoading(false); return; }
    let cancelled = false;
    setLoading(true);
    setError(null);
    api("GET", `/console/metrics/${encodeURIComponent(name)}?range=${range}`)
      .then((v) => { if (!cancelled) onLoaded(range, v); })
      .catch((e) => { if (!cancelled) setError(e); })
      .finally(() => { if (!cancelled) setLoading(false); });
    return () => { cancelled = true; };
  }, [name, range, !!view]);

  const cols = useMemo(() => columns(view ? view.points : []), [view]);
  const words = current.words;

  return html`<section class="card env-charts" aria-labelledby="env-charts-title">
    <div class="env-charts-head">
      <h2 id="env-charts-title">Monitoring</h2>
      <div class="env-ranges" role="group" aria-label="Chart range">
        ${RANGES.map((r) => html`<button type="button" class=${r.id === range ? "btn btn-primary" : "btn"}
          aria-pressed=${r.id === range} title=${`Show ${r.words}`}
          onClick=${() => setRange(r.id)}>${r.label}</button>`)}
      </div>
    </div>
    ${loading ? html`<p class="muted" role="status">Loading ${words}…</p>` : ""}
    <${ErrorText} error=${error} />
    ${view && !view.points.length ? html`<p class="muted">No measurements over ${words} yet.</p>` : ""}
    ${view ? html`<div class="env-chart-grid">
      <${Chart} span=${current.seconds} title="Requests per second" unit="req/s" words=${words}
        data=${[cols.x, cols.rps]} now=${last(cols.rps)} digits=${1}
        series=${[{ label: "Requests/s", stroke: "#2563eb", fill: "rgba(37,99,235,0.12)" }]}
        yRange=${fromZero(1)} />
      <${Chart} span=${current.seconds} title="Latency (ms)" unit="ms" words=${words}
        data=${[cols.x, cols.p50, cols.p99]} now=${last(cols.p99)} nowLabel="p99" digits=${0}
        series=${[{ label: "p50", stroke: "#2563eb" }, { label: "p99", stroke: "#d97706", dash: [6, 4] }]}
        yRange=${fromZero(1)} />
      <${Chart} span=${current.seconds} title="5xx share (%)" unit="%" words=${words}
        data=${[cols.x, cols.share]} now=${last(cols.share)} digits=${1}
        series=${[{ label: "5xx %", stroke: "#dc2626", fill: "rgba(220,38,38,0.12)" }]}
        yRange=${fromZero(1)} />
      <${Chart} span=${current.seconds} title="Instances in service" unit="instances" words=${words}
        data=${[cols.x, cols.count]} now=${last(cols.count)} digits=${0} integers=${true}
        series=${[{ label: "Instances", stroke: "#059669", fill: "rgba(5,150,105,0.12)" }]}
        yRange=${fromZero(2)} />
    </div>` : ""}
  </section>`;
}

const HEIGHT = 180;

// One uPlot chart sized to its container. `data`: [x, ...ys]; `series`: uPlot series options.
function Chart({ title, unit, words, data, series, yRange, now, nowLabel, digits, integers, span }) {
  const spanRef = useRef(span);
  spanRef.current = span;
  const box = useRef(null);
  const plot = useRef(null);

  useEffect(() => {
    const el = box.current;
    const opts = {
      width: Math.max(el.clientWidth, 200),
      height: HEIGHT,
      series: [{ label: "Time" }, ...series.map((s) => ({ width: 1.5, spanGaps: false, points: { show: false },
        value: (u, v) => (v == null ? "—" : fmtNum(v, digits)), ...s }))],
      // The whole range, ending at the latest point (or now): an hour shows as an hour.
      scales: {
        x: { time: true, range: (u, min, max) => {
          const end = Math.max(max == null ? 0 : max, Date.now() / 1000 - 30);
          return [end - spanRef.current, end];
        } },
        y: { range: yRange },
      },
      axes: [
        { stroke: "#555", grid: { stroke: "#eee" } },
        { stroke: "#555", grid: { stroke: "#eee" }, size: 50,
          ...(integers ? { incrs: [1, 2, 5, 10, 20, 50, 100] } : {}) },
      ],
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
    };
    plot.current = new uPlot(opts, data, el);
    // Follow the container's width (the grid reflows on a phone and on resize).
    const ro = new ResizeObserver(() => {
      const w = el.clientWidth;
      if (w && plot.current && Math.abs(plot.current.width - w) > 1) plot.current.setSize({ width: w, height: HEIGHT });
    });
    ro.observe(el);
    return () => { ro.disconnect(); plot.current.destroy(); plot.current = null; };
  }, []);

  useEffect(() => { if (plot.current) plot.current.setData(data); }, [data[0], data[1], data[2]]);

  const nowText = now == null ? "no data" : `${nowLabel ? nowLabel + " " : ""}${fmtNum(now, digits)} ${unit}`;
  return html`<figure class="env-chart">
    <h3 class="env-chart-title">${title} <span class="muted">now: ${nowText}</span></h3>
    <div class="env-chart-box" ref=${box} role="img"
      aria-label=${`${title} over ${words}; latest: ${nowText}`}></div>
  </figure>`;
}
