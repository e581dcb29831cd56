// The Deployments tab: every release (a version with its settings) newest first, the running
// one marked; Redeploy any of them, or Roll back to the one before.
import { html } from "../lib.js";
import { fmtTime, fmtAgo } from "./format.js";
import { previousRelease } from "./deploy.js";

export function DeploymentsTab({ env, releases, open }) {
  const rows = releases.slice().sort((a, b) => b.deployment_id - a.deployment_id);
  const previous = previousRelease(env, releases);
  const ending = env.status === "Terminating" || env.status === "Terminated";
  return html`<section class="card" aria-labelledby="env-releases-title">
    <div class="env-section-head">
      <h2 id="env-releases-title">Deployments</h2>
      <div class="toolbar">
        <button type="button" class="btn" disabled=${!previous || ending}
          aria-describedby="env-rollback-hint" onClick=${() => open({ kind: "rollback" })}>Roll back</button>
        <span id="env-rollback-hint" class="muted">${previous
          ? `to ${previous.version} (deployment ${previous.deployment_id})`
          : "no earlier release to go back to"}</span>
      </div>
    </div>
    ${rows.length === 0 ? html`<p class="muted">Nothing deployed yet.</p>` : html`
    <div class="table-wrap" tabindex="0" role="region" aria-labelledby="env-releases-title">
      <table class="env-table">
        <thead><tr>
          <th scope="col">Deployment</th><th scope="col">Version</th><th scope="col">Created</th>
          <th scope="col" class="num">Settings</th><th scope="col"><span class="visually-hidden">Actions</span></th>
        </tr></thead>
        <tbody>${rows.map((r) => {
          const current = r.deployment_id === env.deployment_id;
          const keys = Object.keys(r.settings || {}).sort();
          return html`<tr key=${r.deployment_id} class=${current ? "env-current" : ""} aria-current=${current ? "true" : undefined}>
            <th scope="row">${r.deployment_id}${current ? html` <span class="pill pill-Green">Current</span>` : ""}</th>
            <td>${r.version}</td>
            <td><span title=${fmtTime(r.created_at)}>${fmtTime(r.created_at)}</span> <span class="muted">(${fmtAgo(r.created_at)})</span></td>
            <td class="num">${keys.length ? html`<details class="env-release-settings">
              <summary>${keys.length}</summary>
              <ul>${keys.map((k) => html`<li><code>${k}</code> = <code>${k.startsWith(ENV_NS) ? "••••" : r.settings[k]}</code></li>`)}</ul>
            </details>` : "0"}</td>
            <td><button type="button" class="btn" aria-label=${`Redeploy ${r.version}`} disabled=${ending}
              onClick=${() => open({ kind: "deploy", version: r.version })}>Redeploy</button></td>
          </tr>`;
        })}</tbody>
      </table>
    </div>`}
  </section>`;
}

// Environment properties may hold secrets: their values stay masked here.
const ENV_NS = "aws:elasticbeanstalk:application:environment:";
