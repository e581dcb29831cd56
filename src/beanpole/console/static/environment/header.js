// The environment page's header: who it is, how it is, and the actions always at hand.
import { html, api, useState } from "../lib.js";
import { HealthPill, EnvStatus, ErrorText } from "./format.js";

// The instances that count: those not stopped (stopped ones are kept for their logs).
export function liveInstances(env) {
  return (env.instances || []).filter((i) => i.state !== "stopped");
}

export function EnvHeader({ env, health }) {
  const colour = health ? health.colour : env.health;
  const status = health ? health.status : null;
  const causes = (health ? health.causes : env.causes) || [];
  const live = liveInstances(env);
  const inService = live.filter((i) => i.state === "in-service").length;
  return html`<header class="env-header">
    <div class="env-title">
      <h1>${env.name}</h1>
      <${HealthPill} colour=${colour} status=${status} />
    </div>
    <dl class="env-facts">
      <div><dt>Application</dt><dd><a href=${"#/"}>${env.application}</a></dd></div>
      <div><dt>Status</dt><dd><${EnvStatus} status=${env.status} /></dd></div>
      <div><dt>Health</dt><dd>${status || colour}</dd></div>
      <div><dt>URL</dt><dd>${env.url
        ? html`<a href=${env.url} target="_blank" rel="noopener noreferrer">${env.url}</a>`
        : "—"}</dd></div>
      <div><dt>Version</dt><dd>${env.version || "—"}${env.deployment_id
        ? html` <span class="muted">(deployment ${env.deployment_id})</span>` : ""}</dd></div>
      <div><dt>Instances</dt><dd>${inService} in service of ${live.length} <span class="muted">(desired ${env.desired_capacity})</span></dd></div>
      ${env.platform ? html`<div><dt>Platform</dt><dd>${env.platform}</dd></div>` : ""}
    </dl>
    ${causes.length ? html`<div class="env-causes">
      <h2 class="env-causes-title">Causes</h2>
      <ul>${causes.map((c) => html`<li>${c}</li>`)}</ul>
    </div>` : ""}
  </header>`;
}

// Deploy, Scale, Clone, Swap URLs, Terminate: always visible, above the tabs.
export function ActionsToolbar({ env, open }) {
  const ending = env.status === "Terminating" || env.status === "Terminated";
  return html`<div class="toolbar env-actions" role="toolbar" aria-label="Environment actions">
    <button type="button" class="btn btn-primary" disabled=${ending} onClick=${() => open({ kind: "deploy" })}>Deploy</button>
    <button type="button" class="btn" disabled=${ending} onClick=${() => open({ kind: "scale" })}>Scale</button>
    <button type="button" class="btn" disabled=${ending} onClick=${() => open({ kind: "clone" })}>Clone</button>
    <button type="button" class="btn" disabled=${ending} onClick=${() => open({ kind: "swap" })}>Swap URLs</button>
    <button type="button" class="btn btn-danger" disabled=${ending} onClick=${() => open({ kind: "terminate" })}>Terminate</button>
  </div>`;
}

const KIND_WORDS = {
  create: "Creating the environment",
  deploy: "Deployment in progress",
  configure: "Configuration change in progress",
  terminate: "Terminating the environment",
};

// The operation running now (from the page load or the stream), with Abort for a deployment.
// `hideAbort`: the deploy dialog is open and has its own Abort.
export function OperationBanner({ env, operation, hideAbort }) {
  const [error, setError] = useState(null);
  const [asked, setAsked] = useState(false);
  if (!operation || operation.status !== "running") return null;
  const abort = async () => {
    setError(null);
    try {
      await api("POST", `/environments/${encodeURIComponent(env.name)}/abort`);
      setAsked(true);
    } catch (e) { setError(e); }
  };
  return html`<div class="card env-banner">
    <span class="spinner" aria-hidden="true"></span>
    <span role="status"><strong>${KIND_WORDS[operation.kind] || "Operation in progress"}</strong>
      ${operation.message ? html` — ${operation.message}` : ""}
      <span class="muted"> (operation ${operation.id})</span></span>
    ${operation.kind === "deploy" && !hideAbort ? html`<button type="button" class="btn btn-danger"
        disabled=${asked} onClick=${abort}>${asked ? "Abort requested" : "Abort deployment"}</button>` : ""}
    <${ErrorText} error=${error} />
  </div>`;
}
