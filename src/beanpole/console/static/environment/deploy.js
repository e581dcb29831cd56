// Deploying: the Deploy dialog (upload a zip or pick a version, pick a policy), the Roll back
// dialog, and the live progress both show until their operation ends.
import { html, api, useState, useEffect, useRef } from "../lib.js";
import { Modal } from "./dialog.js";
import { fmtTime, fmtAgo, EnvStatus, ErrorText } from "./format.js";

export const POLICIES = [
  ["AllAtOnce", "every instance at once (brief downtime)"],
  ["Rolling", "in batches; capacity drops by one batch"],
  ["RollingWithAdditionalBatch", "in batches, starting an extra batch first (full capacity)"],
  ["Immutable", "on a fresh set of instances, swapped in when healthy"],
  ["TrafficSplitting", "a new set gets a share of traffic first (canary)"],
];

const POLICY_KEY = "aws:elasticbeanstalk:command:DeploymentPolicy";

const enc = encodeURIComponent;

// What an operation is doing, from the page's stream: its events since it started, the
// environment's status, and at the end its outcome. `sinceId`: the last event id before it.
export function OperationProgress({ env, operationId, ops, events, sinceId, onAbort, what, successText }) {
  const [fetched, setFetched] = useState(null);
  const [abortError, setAbortError] = useState(null);
  const [aborting, setAborting] = useState(false);
  const listRef = useRef(null);
  const streamed = ops[operationId];
  const op = fetched && fetched.status !== "running" ? fetched : streamed || fetched;
  const done = op && op.status !== "running";
  const mine = events.filter((e) => e.id > sinceId);

  // The stream tells when the operation ends. It can miss one that starts and ends between
  // two of its ticks (an abort at once), or a reconnect can: so each new event of the
  // environment, or a change of its status, is also the cue to ask once (a second later,
  // coalescing a burst of events into one request).
  useEffect(() => {
    if (done) return;
    let cancelled = false;
    const timer = setTimeout(() => {
      api("GET", `/operations/${operationId}`).then((o) => { if (!cancelled) setFetched(o); }).catch(() => {});
    }, 1000);
    return () => { cancelled = true; clearTimeout(timer); };
  }, [env.status, operationId, mine.length, done]);

  useEffect(() => {
    const el = listRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [mine.length]);

  const abort = async () => {
    setAbortError(null);
    setAborting(true);
    try { await onAbort(); } catch (e) { setAbortError(e); setAborting(false); }
  };

  return html`<div class="env-progress">
    <p class="env-progress-status" role="status">
      ${done ? "" : html`<span class="spinner" aria-hidden="true"></span>`}
      <span>${what} (operation ${operationId}): <strong>${op ? op.status : "running"}</strong>.</span>
      <span>Environment: <${EnvStatus} status=${env.status} /></span>
    </p>
    <ol class="env-progress-events" ref=${listRef} aria-label="Events since it started" aria-live="polite">
      ${mine.length === 0 ? html`<li class="muted">Waiting for the first event…</li>` : ""}
      ${mine.map((e) => html`<li key=${e.id}><span class="muted">${fmtTime(e.time).slice(11)}</span>
        <span class=${`sev sev-${e.severity}`}>${e.severity}</span> ${e.message}</li>`)}
    </ol>
    ${done && op.status === "succeeded" ? html`<p class="env-outcome env-outcome-ok" role="status">
      <strong>Succeeded.</strong> ${op.message || successText || (env.version ? `${env.name} runs ${env.version}.` : "")}</p>` : ""}
    ${done && op.status === "failed" ? html`<p class="env-outcome env-outcome-failed" role="alert">
      <strong>Failed:</strong> ${op.message || "see the events above."}</p>` : ""}
    ${!done && onAbort ? html`<div class="toolbar">
      <button type="button" class="btn btn-danger" disabled=${aborting} onClick=${abort}>${aborting ? "Aborting…" : "Abort"}</button>
      <span class="muted">Abort rolls back to the previous release.</span>
    </div>` : ""}
    <${ErrorText} error=${abortError} />
  </div>`;
}

function versionText(v) {
  const build = v.build_status === "failed" ? " — build failed" : "";
  return `${v.label} (${fmtAgo(v.created_at)})${build}`;
}

export function DeployDialog({ env, versions, settings, initialVersion, ops, events, lastEventId, onClose }) {
  const effective = (settings && settings.effective) || [];
  const currentPolicy = (effective.find((s) => `${s.namespace}:${s.option}` === POLICY_KEY) || {}).value || "AllAtOnce";
  const [extra, setExtra] = useState([]); // versions uploaded here whose deploy then failed
  const all = [...extra, ...versions];
  const [file, setFile] = useState(null);
  const [label, setLabel] = useState("");
  const [version, setVersion] = useState(initialVersion || env.version || (all[0] && all[0].label) || "");
  const [policy, setPolicy] = useState(currentPolicy);
  const [phase, setPhase] = useState("form"); // form | uploading | starting | running
  const [operation, setOperation] = useState(null);
  const [sinceId, setSinceId] = useState(0);
  const [error, setError] = useState(null);
  const [fileError, setFileError] = useState(null);
  const [dragging, setDragging] = useState(false);
  const fileRef = useRef(null);

  const pick = (f) => { setFileError(null); setFile(f || null); };
  const drop = (e) => {
    e.preventDefault();
    setDragging(false);
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (!f) return;
    try { fileRef.current.files = e.dataTransfer.files; } catch { /* some browsers refuse; the state has it */ }
    pick(f);
  };
  const clearFile = () => { if (fileRef.current) fileRef.current.value = ""; pick(null); };

  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setFileError(null);
    let versionLabel = version;
    const since = lastEventId;
    if (file) {
      if (!/\.zip$/i.test(file.name) && file.type !== "application/zip" && file.type !== "application/x-zip-compressed") {
        setFileError(`${file.name} is not a zip file; choose the application's source bundle (.zip).`);
        return;
      }
      setPhase("uploading");
      try {
        const query = label.trim() ? `?label=${enc(label.trim())}` : "";
        const v = await api("POST", `/applications/${enc(env.application)}/versions${query}`, file);
        versionLabel = v.label;
        setExtra((x) => [v, ...x]);
        clearFile();
        setLabel("");
        setVersion(v.label);
      } catch (err) { setFileError(err); setPhase("form"); return; }
    }
    if (!versionLabel) { setError("Choose a version to deploy, or upload a zip."); setPhase("form"); return; }
    setPhase("starting");
    try {
      const r = await api("POST", `/environments/${enc(env.name)}/deploy`, { version_label: versionLabel, policy });
      setSinceId(since);
      setOperation(r.operation);
      setPhase("running");
    } catch (err) { setError(err); setPhase("form"); }
  };

  const abort = () => api("POST", `/environments/${enc(env.name)}/abort`);
  const busy = phase === "uploading" || phase === "starting";
  const policyHelp = (POLICIES.find((p) => p[0] === policy) || [, ""])[1];

  if (phase === "running") {
    const op = ops[operation];
    return html`<${Modal} title=${`Deploy to ${env.name}`} onClose=${onClose} wide=${true}>
      <${OperationProgress} env=${env} operationId=${operation} ops=${ops} events=${events}
        sinceId=${sinceId} onAbort=${abort} what="Deployment" />
      <div class="toolbar env-dialog-buttons">
        <button type="button" class="btn" onClick=${onClose}>Close</button>
        ${op && op.status !== "running" ? "" : html`<span class="muted">Closing leaves it running.</span>`}
      </div>
    <//>`;
  }

  return html`<${Modal} title=${`Deploy to ${env.name}`} onClose=${onClose} wide=${true}>
    <form onSubmit=${submit} novalidate>
      <${ErrorText} error=${error} />
      <fieldset class="env-fieldset">
        <legend>Upload new code</legend>
        <div class=${dragging ? "field env-drop env-drop-over" : "field env-drop"}
          onDragOver=${(e) => { e.preventDefault(); setDragging(true); }}
          onDragLeave=${() => setDragging(false)} onDrop=${drop}>
          <label for="env-deploy-file">Application code (zip)</label>
          <input id="env-deploy-file" ref=${fileRef} type="file" accept=".zip,application/zip"
            aria-describedby="env-deploy-file-hint" disabled=${busy}
            onChange=${(e) => pick(e.currentTarget.files[0])} />
          <p id="env-deploy-file-hint" class="muted">Choose a .zip or drop it here. Leave empty to deploy an existing version.</p>
          ${file ? html`<p>Selected: <strong>${file.name}</strong> (${Math.ceil(file.size / 1024)} KiB)${" "}<button type="button" class="btn" onClick=${clearFile}>Remove file</button></p>` : ""}
          <${ErrorText} error=${fileError} />
        </div>
        <div class="field">
          <label for="env-deploy-label">Label (optional)</label>
          <input id="env-deploy-label" type="text" value=${label} disabled=${!file || busy}
            aria-describedby="env-deploy-label-hint" onInput=${(e) => setLabel(e.currentTarget.value)} />
          <p id="env-deploy-label-hint" class="muted">Names the uploaded version; by default one is made from its content.</p>
        </div>
      </fieldset>
      <div class="field">
        <label for="env-deploy-version">Version</label>
        <select id="env-deploy-version" value=${version} disabled=${!!file || busy}
          aria-describedby="env-deploy-version-hint" onChange=${(e) => setVersion(e.currentTarget.value)}>
          ${all.length === 0 ? html`<option value="">No versions yet: upload one</option>` : ""}
          ${all.map((v) => html`<option value=${v.label}>${versionText(v)}${v.label === env.version ? " — running now" : ""}</option>`)}
        </select>
        <p id="env-deploy-version-hint" class="muted">${file ? "The uploaded code is deployed instead." : "An existing version of " + env.application + "."}</p>
      </div>
      <div class="field">
        <label for="env-deploy-policy">Deployment policy</label>
        <select id="env-deploy-policy" value=${policy} disabled=${busy} aria-describedby="env-deploy-policy-hint"
          onChange=${(e) => setPolicy(e.currentTarget.value)}>
          ${POLICIES.map(([p]) => html`<option value=${p}>${p}${p === currentPolicy ? " (the environment's setting)" : ""}</option>`)}
        </select>
        <p id="env-deploy-policy-hint" class="muted">${policyHelp}</p>
      </div>
      <div class="toolbar env-dialog-buttons">
        <button type="submit" class="btn btn-primary" disabled=${busy}>Deploy</button>
        <button type="button" class="btn" onClick=${onClose}>Cancel</button>
        ${phase === "uploading" ? html`<span role="status">Uploading ${file && file.name}…</span>` : ""}
        ${phase === "starting" ? html`<span role="status">Starting the deployment…</span>` : ""}
      </div>
    </form>
  <//>`;
}

// What a rollback goes back to: the server takes the second newest release.
export function previousRelease(env, releases) {
  return releases.slice().sort((a, b) => b.deployment_id - a.deployment_id)[1] || null;
}

export function RollbackDialog({ env, releases, ops, events, lastEventId, onClose }) {
  const previous = previousRelease(env, releases);
  const [phase, setPhase] = useState("form");
  const [operation, setOperation] = useState(null);
  const [sinceId, setSinceId] = useState(0);
  const [error, setError] = useState(null);

  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    const since = lastEventId;
    setPhase("starting");
    try {
      const r = await api("POST", `/environments/${enc(env.name)}/rollback`);
      setSinceId(since);
      setOperation(r.operation);
      setPhase("running");
    } catch (err) { setError(err); setPhase("form"); }
  };

  if (phase === "running") {
    return html`<${Modal} title=${`Roll back ${env.name}`} onClose=${onClose} wide=${true}>
      <${OperationProgress} env=${env} operationId=${operation} ops=${ops} events=${events}
        sinceId=${sinceId} onAbort=${() => api("POST", `/environments/${enc(env.name)}/abort`)} what="Rollback" />
      <div class="toolbar env-dialog-buttons"><button type="button" class="btn" onClick=${onClose}>Close</button></div>
    <//>`;
  }
  return html`<${Modal} title=${`Roll back ${env.name}`} onClose=${onClose}>
    <form onSubmit=${submit}>
      <p>${env.name} runs <strong>${env.version || "no version"}</strong> (deployment ${env.deployment_id}).
        ${previous ? html` Rolling back deploys the previous release again: <strong>${previous.version}</strong>${" "}(deployment ${previous.deployment_id}, ${fmtTime(previous.created_at)}) with its settings.`
          : " There is no earlier release recorded; the server will say what it can do."}</p>
      <${ErrorText} error=${error} />
      <div class="toolbar env-dialog-buttons">
        <button type="submit" class="btn btn-danger" disabled=${phase === "starting"}>Roll back</button>
        <button type="button" class="btn" onClick=${onClose}>Cancel</button>
      </div>
    </form>
  <//>`;
}
