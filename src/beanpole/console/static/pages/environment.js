// The environment page: one GET of /console/environments/NAME, then the stream keeps every
// part live (environment, health, metrics, events, operations; `gone` returns to the
// overview). The parts live in ../environment/, one module per concept.
import { html, api, stream, navigate, useState, useEffect, useCallback } from "../lib.js";
import { EnvHeader, ActionsToolbar, OperationBanner } from "../environment/header.js";
import { HealthSummary } from "../environment/health.js";
import { InstancesTable } from "../environment/instances.js";
import { Charts, RANGES, mergePoints } from "../environment/charts.js";
import { EventsTab, EventsTable, mergeEvents } from "../environment/events.js";
import { DeploymentsTab } from "../environment/releases.js";
import { DeployDialog, RollbackDialog } from "../environment/deploy.js";
import { ScaleDialog, CloneDialog, SwapDialog, TerminateDialog } from "../environment/actions.js";
import { ConfigurationTab } from "../environment/settings.js";
import { LogsTab } from "../environment/logs.js";
import { Tabs, TABS, tabOf } from "../environment/tabs.js";
import { ErrorText } from "../environment/format.js";

const enc = encodeURIComponent;
const rangeSeconds = (id) => (RANGES.find((r) => r.id === id) || RANGES[0]).seconds;

// Lays a settings change over SettingsView.effective until the server's own arrives (the page
// reloads it when the operation ends).
function withChange(settings, change) {
  const split = (key) => { const i = key.lastIndexOf(":"); return [key.slice(0, i), key.slice(i + 1)]; };
  let effective = (settings.effective || []).filter((s) => !change.remove.includes(`${s.namespace}:${s.option}`)
    || s.namespace !== "aws:elasticbeanstalk:application:environment");
  for (const [key, value] of Object.entries(change.set)) {
    const [namespace, option] = split(key);
    const i = effective.findIndex((s) => s.namespace === namespace && s.option === option);
    const row = { namespace, option, value, source: "direct" };
    effective = i >= 0 ? effective.map((s, j) => (j === i ? row : s)) : [...effective, row];
  }
  return { ...settings, effective };
}

export function EnvironmentPage({ name, tab, session }) {
  const current = tabOf(tab);
  const [loadError, setLoadError] = useState(null);
  const [env, setEnv] = useState(null);
  const [health, setHealth] = useState(null);
  const [events, setEvents] = useState([]);
  const [metrics, setMetrics] = useState({}); // range id -> MetricsView
  const [range, setRange] = useState("1h");
  const [releases, setReleases] = useState([]);
  const [settings, setSettings] = useState(null);
  const [options, setOptions] = useState([]);
  const [versions, setVersions] = useState([]);
  const [ops, setOps] = useState({}); // operation id -> OperationView, as the stream told
  const [running, setRunning] = useState(null); // the operation running now
  const [environments, setEnvironments] = useState(null); // every summary (for Swap URLs)
  const [dialog, setDialog] = useState(null); // {kind, ...}
  const [notice, setNotice] = useState(null);
  const [terminating, setTerminating] = useState(false);

  // What an operation's end can change beyond the stream: releases, settings, versions.
  // After a reconnect of the stream, also what it may have missed: events and the hour's points.
  const reload = useCallback((missed) => {
    api("GET", `/console/environments/${enc(name)}`).then((d) => {
      if (missed) {
        setEvents((old) => mergeEvents(old, d.events || []));
        setMetrics((m) => ({ ...m, "1h": { ...d.metrics, points: mergePoints((m["1h"] || d.metrics).points, d.metrics.points, 3600) } }));
        setRunning(d.operation && d.operation.status === "running" ? d.operation : null);
        if (d.operation) setOps((o) => ({ ...o, [d.operation.id]: d.operation }));
      }
      setEnv(d.environment);
      setHealth(d.health);
      setReleases(d.releases);
      setSettings(d.settings);
      setOptions(d.options);
      setVersions(d.versions);
    }).catch(() => { /* gone or unreachable: the stream says which */ });
  }, [name]);

  useEffect(() => {
    let closed = false;
    let close = null;
    setLoadError(null); setEnv(null); setHealth(null); setEvents([]); setMetrics({}); setRange("1h");
    setOps({}); setRunning(null); setDialog(null); setNotice(null); setTerminating(false);

    api("GET", `/console/environments/${enc(name)}`).then((d) => {
      if (closed) return;
      setEnv(d.environment);
      setHealth(d.health);
      setEvents(d.events || []);
      setMetrics({ "1h": d.metrics });
      setReleases(d.releases || []);
      setSettings(d.settings);
      setOptions(d.options || []);
      setVersions(d.versions || []);
      if (d.operation) {
        setOps({ [d.operation.id]: d.operation });
        setRunning(d.operation.status === "running" ? d.operation : null);
      }
      let opened = 0;
      close = stream(`/console/stream?environment=${enc(name)}`, {
        open: () => { if (opened++ > 0) reload(true); },
        environment: (v) => { if (v.name === name) setEnv(v); },
        health: (v) => { if (v.name === name) setHealth(v); },
        metrics: (points) => {
          const fresh = points.filter((p) => p.instance == null);
          if (!fresh.length) return;
          setMetrics((m) => {
            const n = {};
            for (const [id, view] of Object.entries(m)) {
              // Live points are 10 s windows: they join the 10 s series only (the 2 weeks'
              // 5 min roll-ups stay as read; a reload of the page reads them anew).
              n[id] = view.resolution_s === 10
                ? { ...view, points: mergePoints(view.points, fresh, rangeSeconds(id)) }
                : view;
            }
            return n;
          });
        },
        events: (list) => {
          const mine = list.filter((e) => e.environment === name);
          if (mine.length) setEvents((old) => mergeEvents(old, mine));
        },
        operation: (op) => {
          if (op.environment !== name) return;
          setOps((o) => ({ ...o, [op.id]: op }));
          setRunning((r) => (op.status === "running" ? op : r && r.id === op.id ? null : r));
          if (op.status !== "running") reload(false);
        },
        environments: (list) => setEnvironments(list),
        gone: (g) => { if (!g || g.environment === name) navigate("#/"); },
      });
    }).catch((e) => { if (!closed) setLoadError(e); });

    return () => { closed = true; if (close) close(); };
  }, [name]);

  if (loadError) {
    return html`<div class="env-page">
      <div class="card" role="alert">
        <h1>${name}</h1>
        <${ErrorText} error=${loadError} />
        <p><a href="#/">Back to the overview</a></p>
      </div>
    </div>`;
  }
  if (!env) return html`<div class="env-page"><p class="muted" role="status">Loading ${name}…</p></div>`;

  const lastEventId = events.length ? events[events.length - 1].id : 0;
  const open = (d) => setDialog(d);
  const closeDialog = () => setDialog(null);
  const common = { env, ops, events, lastEventId, onClose: closeDialog };

  let panel;
  if (current === "overview") {
    panel = html`
      <div class="env-overview-top">
        <${HealthSummary} env=${env} health=${health} />
        <section class="card env-recent" aria-labelledby="env-recent-title">
          <h2 id="env-recent-title">Recent events</h2>
          <${EventsTable} events=${events} limit=${5} caption="The latest events" />
          <p><a href=${`#/environments/${enc(name)}/events`}>All events</a></p>
        </section>
      </div>
      <${InstancesTable} env=${env} health=${health} />
      <${Charts} name=${name} range=${range} setRange=${setRange} metrics=${metrics}
        onLoaded=${(id, view) => setMetrics((m) => ({ ...m, [id]: view }))} />`;
  } else if (current === "events") {
    panel = html`<${EventsTab} events=${events} />`;
  } else if (current === "deployments") {
    panel = html`<${DeploymentsTab} env=${env} releases=${releases} open=${open} />`;
  } else if (current === "configuration") {
    panel = html`<${ConfigurationTab} env=${env} settings=${settings} options=${options} ops=${ops}
      onApplied=${(change) => setSettings((s) => withChange(s, change))} />`;
  } else {
    panel = html`<${LogsTab} env=${env} />`;
  }

  return html`<div class="env-page">
    <nav class="env-crumbs" aria-label="Breadcrumb"><a href="#/">Environments</a> <span aria-hidden="true">›</span> <span aria-current="page">${name}</span></nav>
    <${EnvHeader} env=${env} health=${health} />
    <${ActionsToolbar} env=${env} open=${open} />
    ${terminating || env.status === "Terminating" ? html`<div class="card env-banner env-banner-danger" role="status">
      <span class="spinner" aria-hidden="true"></span>
      <span><strong>Terminating ${name}…</strong> Its instances are stopping; this page returns to the overview when it is gone.</span>
    </div>` : ""}
    ${notice ? html`<div class="card env-notice" role="status">${notice}
      <button type="button" class="btn" onClick=${() => setNotice(null)}>Dismiss</button></div>` : ""}
    ${running && running.kind !== "terminate" ? html`<${OperationBanner} key=${running.id} env=${env} operation=${running}
      hideAbort=${dialog && (dialog.kind === "deploy" || dialog.kind === "rollback")} />` : ""}
    <${Tabs} name=${name} current=${current} />
    <div class="env-panel" role="tabpanel" id=${"env-panel-" + current} aria-labelledby=${"env-tab-" + current}>
      ${panel}
    </div>
    ${dialog && dialog.kind === "deploy" ? html`<${DeployDialog} ...${common} versions=${versions}
      settings=${settings} initialVersion=${dialog.version} />` : ""}
    ${dialog && dialog.kind === "rollback" ? html`<${RollbackDialog} ...${common} releases=${releases} />` : ""}
    ${dialog && dialog.kind === "scale" ? html`<${ScaleDialog} ...${common} settings=${settings} />` : ""}
    ${dialog && dialog.kind === "clone" ? html`<${CloneDialog} env=${env} onClose=${closeDialog} />` : ""}
    ${dialog && dialog.kind === "swap" ? html`<${SwapDialog} env=${env} environments=${environments} onClose=${closeDialog}
      onSwapped=${(list) => setNotice(`URLs swapped: ${list.map((e) => `${e.name} now answers at ${e.url}`).join("; ")}.`)} />` : ""}
    ${dialog && dialog.kind === "terminate" ? html`<${TerminateDialog} env=${env} onClose=${closeDialog}
      onTerminating=${() => setTerminating(true)} />` : ""}
  </div>`;
}

export { TABS };
