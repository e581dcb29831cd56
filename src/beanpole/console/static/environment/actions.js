// The toolbar's other dialogs: Scale, Clone, Swap URLs and Terminate.
import { html, api, navigate, useState } from "../lib.js";
import { Modal } from "./dialog.js";
import { OperationProgress } from "./deploy.js";
import { ErrorText } from "./format.js";

const enc = encodeURIComponent;
const MAX_INSTANCES = 100;

function settingValue(settings, key) {
  const found = ((settings && settings.effective) || []).find((s) => `${s.namespace}:${s.option}` === key);
  return found ? found.value : null;
}

// A whole number in 0..100, or an error sentence naming the field.
function count(text, field, low = 0) {
  const n = Number(text);
  if (text === "" || !Number.isInteger(n) || n < low || n > MAX_INSTANCES) {
    return [null, `${field} must be a whole number from ${low} to ${MAX_INSTANCES}.`];
  }
  return [n, null];
}

// Scale: a fixed count (pins MinSize = MaxSize) or bounds auto scaling moves within.
export function ScaleDialog({ env, settings, ops, events, lastEventId, onClose }) {
  const sc = env.autoscaling;
  const min0 = sc ? sc.min_size : Number(settingValue(settings, "aws:autoscaling:asg:MinSize") || 1);
  const max0 = sc ? sc.max_size : Number(settingValue(settings, "aws:autoscaling:asg:MaxSize") || 4);
  const [mode, setMode] = useState(min0 === max0 ? "count" : "bounds");
  const [countText, setCount] = useState(String(env.desired_capacity ?? min0));
  const [minText, setMin] = useState(String(min0));
  const [maxText, setMax] = useState(String(max0));
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [started, setStarted] = useState(null); // {operation, desired_capacity, notes, since}

  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    let body;
    if (mode === "count") {
      const [n, problem] = count(countText.trim(), "Instance count");
      if (problem) { setError(problem); return; }
      body = { count: n };
    } else {
      const [lo, p1] = count(minText.trim(), "Minimum instances");
      const [hi, p2] = count(maxText.trim(), "Maximum instances", 1);
      if (p1 || p2) { setError(p1 || p2); return; }
      if (lo > hi) { setError("Minimum instances must not be more than Maximum instances."); return; }
      body = { min_size: lo, max_size: hi };
    }
    const since = lastEventId;
    setBusy(true);
    try {
      const r = await api("POST", `/environments/${enc(env.name)}/scale`, body);
      setStarted({ ...r, since });
    } catch (err) { setError(err); }
    setBusy(false);
  };

  if (started) {
    return html`<${Modal} title=${`Scale ${env.name}`} onClose=${onClose} wide=${true}>
      <p>Desired capacity: <strong>${started.desired_capacity}</strong>.</p>
      ${started.notes && started.notes.length ? html`<ul>${started.notes.map((n) => html`<li>${n}</li>`)}</ul>` : ""}
      <${OperationProgress} env=${env} operationId=${started.operation} ops=${ops} events=${events}
        sinceId=${started.since} what="Scaling" successText=${`Scaling to ${started.desired_capacity} instance(s) is done.`} />
      <div class="toolbar env-dialog-buttons"><button type="button" class="btn" onClick=${onClose}>Close</button></div>
    <//>`;
  }

  // Typing in a field chooses its way of scaling.
  return html`<${Modal} title=${`Scale ${env.name}`} onClose=${onClose}>
    <form onSubmit=${submit} novalidate>
      <p class="muted">Now: ${env.desired_capacity} desired, between ${min0} and ${max0}.</p>
      <fieldset class="env-fieldset">
        <legend>Instances</legend>
        <label class="radio"><input type="radio" name="env-scale-mode" value="count"
          checked=${mode === "count"} onChange=${() => setMode("count")} /> A fixed number (no auto scaling)</label>
        <div class="field env-indent">
          <label for="env-scale-count">Instance count</label>
          <input id="env-scale-count" data-autofocus=${mode === "count" ? "" : undefined} type="number" inputmode="numeric" min="0" max=${MAX_INSTANCES} step="1"
            value=${countText} onInput=${(e) => { setCount(e.currentTarget.value); setMode("count"); }} />
        </div>
        <label class="radio"><input type="radio" name="env-scale-mode" value="bounds"
          checked=${mode === "bounds"} onChange=${() => setMode("bounds")} /> Auto scaling between bounds</label>
        <div class="env-indent env-pair">
          <div class="field">
            <label for="env-scale-min">Minimum instances</label>
            <input id="env-scale-min" data-autofocus=${mode === "bounds" ? "" : undefined} type="number" inputmode="numeric" min="0" max=${MAX_INSTANCES} step="1"
              value=${minText} onInput=${(e) => { setMin(e.currentTarget.value); setMode("bounds"); }} />
          </div>
          <div class="field">
            <label for="env-scale-max">Maximum instances</label>
            <input id="env-scale-max" type="number" inputmode="numeric" min="1" max=${MAX_INSTANCES} step="1"
              value=${maxText} onInput=${(e) => { setMax(e.currentTarget.value); setMode("bounds"); }} />
          </div>
        </div>
      </fieldset>
      <${ErrorText} error=${error} />
      <div class="toolbar env-dialog-buttons">
        <button type="submit" class="btn btn-primary" disabled=${busy}>Scale</button>
        <button type="button" class="btn" onClick=${onClose}>Cancel</button>
      </div>
    </form>
  <//>`;
}

// Clone: a new environment running this one's version with its settings.
export function CloneDialog({ env, onClose }) {
  const [name, setName] = useState(`${env.name}-clone`.slice(0, 40));
  const [cname, setCname] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      const body = { name: name.trim() };
      if (cname.trim()) body.cname = cname.trim();
      const r = await api("POST", `/environments/${enc(env.name)}/clone`, body);
      onClose();
      navigate(`#/environments/${enc(r.environment.name)}`);
    } catch (err) { setError(err); setBusy(false); }
  };
  return html`<${Modal} title=${`Clone ${env.name}`} onClose=${onClose}>
    <form onSubmit=${submit} novalidate>
      <p class="muted">A new environment running ${env.version || "the same version"} with ${env.name}'s settings.</p>
      <div class="field">
        <label for="env-clone-name">New environment name</label>
        <input id="env-clone-name" type="text" required autocomplete="off" value=${name}
          aria-describedby="env-clone-name-hint" onInput=${(e) => setName(e.currentTarget.value)} />
        <p id="env-clone-name-hint" class="muted">4 to 40 letters, digits and hyphens.</p>
      </div>
      <div class="field">
        <label for="env-clone-cname">CNAME (optional)</label>
        <input id="env-clone-cname" type="text" autocomplete="off" value=${cname}
          aria-describedby="env-clone-cname-hint" onInput=${(e) => setCname(e.currentTarget.value)} />
        <p id="env-clone-cname-hint" class="muted">The host name prefix it answers at; by default its name.</p>
      </div>
      <${ErrorText} error=${error} />
      <div class="toolbar env-dialog-buttons">
        <button type="submit" class="btn btn-primary" disabled=${busy}>Clone</button>
        <button type="button" class="btn" onClick=${onClose}>Cancel</button>
      </div>
    </form>
  <//>`;
}

// Swap URLs with another environment of the same application (the list comes from the
// stream's `environments` event; null until it arrived).
export function SwapDialog({ env, environments, onClose, onSwapped }) {
  const others = (environments || []).filter((e) => e.application === env.application && e.name !== env.name);
  const [other, setOther] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const chosen = other || (others[0] && others[0].name) || "";
  const submit = async (e) => {
    e.preventDefault();
    if (!chosen) return;
    setError(null);
    setBusy(true);
    try {
      const r = await api("POST", `/environments/${enc(env.name)}/swap`, { other: chosen });
      onSwapped(r.environments);
      onClose();
    } catch (err) { setError(err); setBusy(false); }
  };
  return html`<${Modal} title=${`Swap URLs of ${env.name}`} onClose=${onClose}>
    <form onSubmit=${submit}>
      <p class="muted">${env.name} answers at ${env.url}. Swapping exchanges its URL with another environment's, at once.</p>
      ${environments == null ? html`<p class="muted" role="status">Loading the environments…</p>`
        : others.length === 0 ? html`<p>No other environment of ${env.application} to swap with. Clone this one first.</p>` : ""}
      <div class="field">
        <label for="env-swap-other">Other environment</label>
        <select id="env-swap-other" value=${chosen} disabled=${others.length === 0}
          onChange=${(e) => setOther(e.currentTarget.value)}>
          ${others.map((o) => html`<option value=${o.name}>${o.name} — ${o.url} (${o.status})</option>`)}
        </select>
      </div>
      <${ErrorText} error=${error} />
      <div class="toolbar env-dialog-buttons">
        <button type="submit" class="btn btn-primary" disabled=${busy || !chosen}>Swap URLs</button>
        <button type="button" class="btn" onClick=${onClose}>Cancel</button>
      </div>
    </form>
  <//>`;
}

// Terminate: typing the environment's name enables the button.
export function TerminateDialog({ env, onClose, onTerminating }) {
  const [typed, setTyped] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    if (typed !== env.name) return;
    setError(null);
    setBusy(true);
    try {
      const r = await api("DELETE", `/environments/${enc(env.name)}`);
      onTerminating(r.operation);
      onClose();
    } catch (err) { setError(err); setBusy(false); }
  };
  return html`<${Modal} title=${`Terminate ${env.name}`} onClose=${onClose}>
    <form onSubmit=${submit}>
      <p>This stops every instance of <strong>${env.name}</strong> and removes the environment; its URL
        stops answering. The application and its versions stay.</p>
      <div class="field">
        <label for="env-terminate-name">Environment name</label>
        <input id="env-terminate-name" type="text" autocomplete="off" value=${typed}
          aria-describedby="env-terminate-hint" onInput=${(e) => setTyped(e.currentTarget.value)} />
        <p id="env-terminate-hint" class="muted">Type <strong>${env.name}</strong> to confirm.</p>
      </div>
      <${ErrorText} error=${error} />
      <div class="toolbar env-dialog-buttons">
        <button type="submit" class="btn btn-danger" disabled=${busy || typed !== env.name}>Terminate</button>
        <button type="button" class="btn" onClick=${onClose}>Cancel</button>
      </div>
    </form>
  <//>`;
}
