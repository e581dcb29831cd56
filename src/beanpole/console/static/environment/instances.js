// The instances table, from HealthView.instances (traffic, CPU and memory per instance).
import { html } from "../lib.js";
import { HealthPill, fmtNum, fmtMiB, fmtDuration, percentile } from "./format.js";

export function InstancesTable({ env, health }) {
  // Without a health verdict, the environment's own instance list (no traffic figures).
  const rows = health && health.instances.length
    ? health.instances
    : (env.instances || []).map((i) => ({
      id: i.id, state: i.state, version: i.version, colour: i.health, status: null,
      causes: i.causes, requests: null, cpu_percent: null, rss_bytes: null, launched_at: i.launched_at,
    }));
  const now = Date.now() / 1000;
  return html`<section class="card env-instances" aria-labelledby="env-instances-title">
    <h2 id="env-instances-title">Instances <span class="muted">(${rows.length})</span></h2>
    ${rows.length === 0 ? html`<p class="muted">No instances.</p>` : html`
    <div class="table-wrap" tabindex="0" role="region" aria-labelledby="env-instances-title">
      <table class="env-table">
        <thead><tr>
          <th scope="col">Instance</th><th scope="col">Status</th><th scope="col">Version</th>
          <th scope="col" class="num">Requests/s</th>
          <th scope="col" class="num">2xx</th><th scope="col" class="num">3xx</th>
          <th scope="col" class="num">4xx</th><th scope="col" class="num">5xx</th>
          <th scope="col" class="num">p99 (ms)</th><th scope="col" class="num">CPU %</th>
          <th scope="col" class="num">Memory (MiB)</th><th scope="col">Up</th>
        </tr></thead>
        <tbody>${rows.map((i) => {
          const w = i.requests;
          return html`<tr key=${i.id}>
            <th scope="row" class="env-nowrap"><code>${i.id}</code></th>
            <td><span class="env-state">${i.state}</span> <${HealthPill} colour=${i.colour} status=${i.status} />
              ${i.causes && i.causes.length ? html`<ul class="env-instance-causes">${i.causes.map((c) => html`<li>${c}</li>`)}</ul>` : ""}</td>
            <td class="env-nowrap">${i.version}</td>
            <td class="num">${w ? fmtNum(w.requests_per_s, 1) : "—"}</td>
            <td class="num">${w ? w.status_2xx : "—"}</td>
            <td class="num">${w ? w.status_3xx : "—"}</td>
            <td class="num">${w ? w.status_4xx : "—"}</td>
            <td class="num">${w ? w.status_5xx : "—"}</td>
            <td class="num">${w ? fmtNum(percentile(w, "99.0"), 0) : "—"}</td>
            <td class="num">${fmtNum(i.cpu_percent, 1)}</td>
            <td class="num">${fmtMiB(i.rss_bytes)}</td>
            <td>${i.launched_at ? fmtDuration(now - i.launched_at) : "—"}</td>
          </tr>`;
        })}</tbody>
      </table>
    </div>`}
  </section>`;
}
