// The overview: every application with its environments (status, health, URL, version,
// instances, last event). One GET /console/overview, then the live stream keeps it current.
import {
  html, useState, useEffect, api, stream, environmentHash, relativeTime, formatTime,
  HealthPill, StatusLabel, useNow,
} from "../lib.js";

// Running instances when the summary carries them (an EnvironmentView's instances, or a
// count), else null: the summary always has the desired count.
function runningCount(env) {
  if (Array.isArray(env.instances)) return env.instances.filter((i) => i.state === "in-service").length;
  for (const key of ["running_instances", "in_service", "running"]) {
    if (typeof env[key] === "number") return env[key];
  }
  return null;
}

function Instances({ env }) {
  const running = runningCount(env);
  const bounds = env.autoscaling && env.autoscaling.min_size !== env.autoscaling.max_size
    ? html` <span class="muted">(auto scaling ${env.autoscaling.min_size}–${env.autoscaling.max_size})</span>` : null;
  if (running === null) return html`<span class="nowrap">${env.desired_capacity} desired</span>${bounds}`;
  return html`<span class="nowrap">${running} of ${env.desired_capacity} running</span>${bounds}`;
}

function LastEvent({ event, now }) {
  if (!event) return html`<span class="muted">—</span>`;
  const severe = event.severity === "ERROR" || event.severity === "FATAL";
  return html`<div class="last-event">
    <div class=${`message${severe ? " event-ERROR" : ""}`} title=${event.message}>
      ${severe || event.severity === "WARN" ? html`<span class=${`sev sev-${event.severity}`}>${event.severity}</span> ` : null}${event.message}
    </div>
    <time class="muted" datetime=${new Date(event.time * 1000).toISOString()} title=${formatTime(event.time)}>${relativeTime(event.time, now)}</time>
  </div>`;
}

function EnvironmentsTable({ application, environments, lastEvents, now }) {
  return html`<div class="table-wrap"><table>
    <caption class="visually-hidden">Environments of ${application}</caption>
    <thead><tr>
      <th scope="col">Environment</th><th scope="col">Status</th><th scope="col">Health</th>
      <th scope="col">URL</th><th scope="col">Version</th><th scope="col">Instances</th>
      <th scope="col">Last event</th>
    </tr></thead>
    <tbody>${environments.map((env) => html`<tr key=${env.id}>
      <th scope="row"><a href=${environmentHash(env.name)}>${env.name}</a></th>
      <td><${StatusLabel} status=${env.status} /></td>
      <td><${HealthPill} colour=${env.health} /></td>
      <td>${env.url && env.status !== "Terminated"
        ? html`<a href=${env.url} target="_blank" rel="noopener noreferrer" class="nowrap">${env.url.replace(/^https?:\/\//, "")}<span class="visually-hidden"> (opens in a new tab)</span></a>`
        : html`<span class="muted">—</span>`}</td>
      <td>${env.version ? html`<span class="mono nowrap">${env.version}</span>` : html`<span class="muted">none yet</span>`}</td>
      <td><${Instances} env=${env} /></td>
      <td><${LastEvent} event=${lastEvents[env.name]} now=${now} /></td>
    </tr>`)}</tbody>
  </table></div>`;
}

function ApplicationCard({ name, environments, versions, lastEvents, now }) {
  const count = versions ? versions.length : 0;
  return html`<section class="card app-card" aria-labelledby=${`app-${name}`}>
    <div class="card-header">
      <h2 id=${`app-${name}`}>${name}</h2>
      <span class="muted">${environments.length} environment${environments.length === 1 ? "" : "s"} · ${count} version${count === 1 ? "" : "s"}</span>
    </div>
    ${environments.length
      ? html`<${EnvironmentsTable} application=${name} environments=${environments} lastEvents=${lastEvents} now=${now} />`
      : html`<p class="muted">No environments in this application. <a href="#/create">Create one</a>.</p>`}
  </section>`;
}

export function OverviewPage() {
  const [data, setData] = useState(null); // the OverviewPage view, kept current
  const [error, setError] = useState(null);
  const [attempt, setAttempt] = useState(0);
  const now = useNow();

  useEffect(() => {
    let close = null;
    let live = true;
    setError(null);
    api("GET", "/console/overview").then((view) => {
      if (!live) return;
      setData(view);
      close = stream("/console/stream", {
        environments: (envs) => setData((d) => ({ ...d, environments: envs })),
        events: (events) => setData((d) => {
          const last = { ...d.last_events };
          for (const ev of events) {
            if (ev.environment && (!last[ev.environment] || last[ev.environment].id < ev.id)) last[ev.environment] = ev;
          }
          return { ...d, last_events: last };
        }),
        gone: ({ environment }) => setData((d) => ({
          ...d, environments: d.environments.filter((e) => e.name !== environment),
        })),
      });
    }).catch((e) => { if (live) setError(e.message || String(e)); });
    return () => { live = false; if (close) close(); };
  }, [attempt]);

  if (error) {
    return html`<h1>Overview</h1>
      <div class="alert alert-error" role="alert"><span class="alert-title">Could not load the overview</span>${error}</div>
      <button type="button" class="btn" onClick=${() => setAttempt((n) => n + 1)}>Try again</button>`;
  }
  if (!data) return html`<h1>Overview</h1><p class="muted" role="status">Loading…</p>`;

  // Applications by name: the listed ones and any an environment names (created since).
  const byApp = new Map();
  for (const app of data.applications) byApp.set(app.name, []);
  for (const env of data.environments) {
    if (!byApp.has(env.application)) byApp.set(env.application, []);
    byApp.get(env.application).push(env);
  }
  const apps = [...byApp.keys()].sort((a, b) => a.localeCompare(b));
  for (const envs of byApp.values()) envs.sort((a, b) => a.name.localeCompare(b.name));
  const counts = { Green: 0, Yellow: 0, Red: 0, Grey: 0 };
  for (const env of data.environments) counts[env.health] = (counts[env.health] || 0) + 1;

  return html`
    <div class="page-header">
      <h1>Overview</h1>
      ${data.environments.length > 0 && html`<div class="summary-counts" role="group" aria-label="Environments by health">
        ${["Green", "Yellow", "Red", "Grey"].filter((c) => counts[c]).map((c) => html`<span key=${c}>${counts[c]} <${HealthPill} colour=${c} /></span>`)}
      </div>`}
    </div>
    ${data.environments.length === 0 && html`<section class="card empty">
      <h2>No environments yet</h2>
      <p>An environment runs a version of your application behind the load balancer.</p>
      <a class="btn btn-primary" href="#/create">Create environment</a>
    </section>`}
    ${apps.map((name) => html`<${ApplicationCard} key=${name} name=${name} environments=${byApp.get(name)}
      versions=${data.versions[name]} lastEvents=${data.last_events} now=${now} />`)}
    ${data.server && html`<p class="muted footer-note">Beanpole ${data.server.version} · load balancer on port ${data.server.lb_port} · domain <code>${data.server.domain}</code></p>`}`;
}
