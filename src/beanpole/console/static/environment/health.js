// The overview's health card: the verdict and its causes, the traffic now, auto scaling.
import { html } from "../lib.js";
import { HealthPill, fmtNum, fmtAgo, percentile } from "./format.js";

export function HealthSummary({ env, health }) {
  if (!health) {
    return html`<section class="card env-health" aria-labelledby="env-health-title">
      <h2 id="env-health-title">Health</h2>
      <p><${HealthPill} colour=${env.health} /> <span class="muted">No health verdict yet.</span></p>
    </section>`;
  }
  const w = health.requests;
  const share5xx = w && w.requests ? (100 * w.status_5xx) / w.requests : null;
  const scaling = health.autoscaling || env.autoscaling;
  return html`<section class="card env-health" aria-labelledby="env-health-title">
    <h2 id="env-health-title">Health</h2>
    <p class="env-health-verdict"><${HealthPill} colour=${health.colour} status=${health.status} />
      <span class="muted">${health.at ? `checked ${fmtAgo(health.at)}` : "stored status (no verdict could be made)"}</span></p>
    ${health.causes && health.causes.length
      ? html`<ul class="env-cause-list">${health.causes.map((c) => html`<li>${c}</li>`)}</ul>`
      : html`<p class="muted">No problems found.</p>`}
    <dl class="env-stats">
      <div><dt>Requests/s</dt><dd>${w ? fmtNum(w.requests_per_s, 1) : "—"}</dd></div>
      <div><dt>p99 latency</dt><dd>${w ? `${fmtNum(percentile(w, "99.0"), 0)} ms` : "—"}</dd></div>
      <div><dt>5xx share</dt><dd>${share5xx == null ? "—" : `${fmtNum(share5xx, 1)} %`}</dd></div>
      <div><dt>Load average</dt><dd>${health.load_average ? health.load_average.map((x) => fmtNum(x, 2)).join(" / ") : "—"}</dd></div>
    </dl>
    ${scaling ? html`<div class="env-scaling">
      <h3>Auto scaling</h3>
      <p>Desired ${scaling.desired_capacity}, between ${scaling.min_size} and ${scaling.max_size}${" "}<span class="muted">(${scaling.bounds_source})</span></p>
      <p class="muted">${scaling.policy}${scaling.value != null ? ` — now ${fmtNum(scaling.value, 1)} ${scaling.unit}` : ""}</p>
      ${scaling.current ? html`<p>${scaling.current.message} <span class="muted">(${fmtAgo(scaling.current.at)})</span></p>` : ""}
    </div>` : ""}
  </section>`;
}
