// Create environment: EB's wizard on one page. The form checks what it can with a dry run,
// uploads the zip (when one is given), creates the environment, then follows its launch live
// until it is Ready (or fails, with the reason).
import {
  html, useState, useEffect, useRef, api, stream, environmentHash, formatBytes, relativeTime,
  HealthPill, StatusLabel,
} from "../lib.js";

const POLICIES = ["AllAtOnce", "Rolling", "RollingWithAdditionalBatch", "Immutable", "TrafficSplitting"];
const PLATFORMS = [
  ["", "Detect from the code"],
  ["python", "Python"],
  ["node", "Node.js"],
  ["static", "Static site"],
  ["procfile", "Procfile"],
];
const PRESETS = {
  single: { min: 1, max: 1, label: "Single instance", help: "One instance (MinSize = MaxSize = 1): for development and tests." },
  ha: { min: 2, max: 4, label: "High availability", help: "2 to 4 instances behind the load balancer, added and removed on load by auto scaling (MinSize 2, MaxSize 4)." },
};
const ENV_PROPERTY = "aws:elasticbeanstalk:application:environment:";

// Which field a server message is about (its messages start with the thing they name).
function fieldOf(message) {
  const m = message || "";
  if (/^Environment propert|aws:elasticbeanstalk:application:environment/.test(m)) return "props";
  if (/^Environment name|^Environment \S+ already exists/.test(m)) return "name";
  if (/^CNAME prefix/.test(m)) return "cname";
  if (/^Application name/.test(m)) return "application";
  if (/^Version label|^Version \S+ .*not found|version_label/i.test(m)) return "label";
  if (/MinSize|MaxSize|aws:autoscaling:asg/.test(m)) return "preset";
  if (/DeploymentPolicy/.test(m)) return "policy";
  if (/platform/i.test(m)) return "platform";
  return null;
}

// A default environment name from the application's, as EB suggests one ("shop-env").
function suggestName(app) {
  const base = app.replace(/[^A-Za-z0-9-]+/g, "-").replace(/^-+/, "").slice(0, 36).replace(/-+$/, "");
  return base ? `${base}-env` : "";
}

let nextRowId = 1;
const newRow = () => ({ id: nextRowId++, key: "", value: "" });

// --- the form -----------------------------------------------------------------------------

function FieldError({ id, message }) {
  return message ? html`<span class="field-error" id=${id}>${message}</span>` : null;
}

// Props an input needs to show its error accessibly.
const invalid = (errors, field) => (errors[field]
  ? { "aria-invalid": "true", "aria-describedby": `create-${field}-error` } : {});

function Step({ n, title, children }) {
  return html`<section class="card step" aria-labelledby=${`step-${n}`}>
    <h2 id=${`step-${n}`}><span class="step-number" aria-hidden="true">${n}</span>${title}</h2>
    ${children}
  </section>`;
}

function DropZone({ file, onFile, errors }) {
  const [dragging, setDragging] = useState(false);
  const inputRef = useRef(null);
  // A file dropped on the zone is also put in the input, so the input shows its name.
  function drop(e) {
    e.preventDefault();
    setDragging(false);
    const files = e.dataTransfer && e.dataTransfer.files;
    if (!files || !files.length) return;
    try { inputRef.current.files = files; } catch { /* older browsers: the state still has it */ }
    onFile(files[0]);
  }
  return html`<div class=${`dropzone${dragging ? " dragging" : ""}`} aria-invalid=${errors.file ? "true" : undefined}
      onDragEnter=${(e) => { e.preventDefault(); setDragging(true); }}
      onDragOver=${(e) => { e.preventDefault(); e.dataTransfer.dropEffect = "copy"; }}
      onDragLeave=${(e) => { if (!e.currentTarget.contains(e.relatedTarget)) setDragging(false); }}
      onDrop=${drop}>
    <label for="create-file" class="field-label">Application code (zip)</label>
    <span class="field-hint" id="create-file-hint">Drop a .zip here, or choose one. Its root holds the
      application (for example <code>application.py</code> and <code>requirements.txt</code>, or
      <code>package.json</code>).</span>
    <input type="file" id="create-file" ref=${inputRef} accept=".zip,application/zip"
      aria-describedby=${errors.file ? "create-file-error" : "create-file-hint"}
      aria-invalid=${errors.file ? "true" : undefined}
      onChange=${(e) => onFile(e.currentTarget.files[0] || null)} />
    ${file && html`<span>Selected: <strong>${file.name}</strong> <span class="muted">(${formatBytes(file.size)})</span></span>`}
    <${FieldError} id="create-file-error" message=${errors.file} />
  </div>`;
}

function PropertyRows({ rows, setRows, errors }) {
  const update = (id, patch) => setRows(rows.map((r) => (r.id === id ? { ...r, ...patch } : r)));
  return html`<fieldset>
    <legend>Environment properties</legend>
    <p class="field-hint" id="create-props-hint">Environment variables every instance gets
      (<code>${ENV_PROPERTY}NAME</code>).</p>
    ${rows.length > 0 && html`<div class="props props-head" aria-hidden="true"><span>Name</span><span>Value</span><span></span></div>`}
    ${rows.map((row, i) => html`<div class="props" key=${row.id}>
      <label><span class="visually-hidden">Property ${i + 1} name</span>
        <input type="text" value=${row.key} placeholder="NAME" spellcheck=${false} autocapitalize="off"
          data-row=${row.id} aria-invalid=${errors.props ? "true" : undefined}
          aria-describedby=${errors.props ? "create-props-error" : "create-props-hint"}
          onInput=${(e) => update(row.id, { key: e.currentTarget.value })} /></label>
      <label><span class="visually-hidden">Property ${i + 1} value</span>
        <input type="text" value=${row.value} placeholder="value" spellcheck=${false}
          onInput=${(e) => update(row.id, { value: e.currentTarget.value })} /></label>
      <button type="button" class="btn btn-small btn-danger" onClick=${() => setRows(rows.filter((r) => r.id !== row.id))}>
        Remove<span class="visually-hidden"> property ${i + 1}</span></button>
    </div>`)}
    <${FieldError} id="create-props-error" message=${errors.props} />
    <button type="button" class="btn btn-small" onClick=${() => setRows([...rows, newRow()])}>Add environment property</button>
  </fieldset>`;
}

function CreateForm({ data, form, setForm, errors, topError, busy, onSubmit }) {
  const set = (patch) => setForm((f) => ({ ...f, ...patch }));
  const apps = data.applications.map((a) => a.name).sort((a, b) => a.localeCompare(b));
  const existing = apps.includes(form.application.trim());
  const versions = (existing && data.versions[form.application.trim()]) || [];
  const server = data.server || { domain: "localhost", lb_port: 80 };
  const prefix = (form.cname.trim() || form.name.trim()).toLowerCase();
  const port = server.lb_port === 80 ? "" : `:${server.lb_port}`;

  function setApplication(value) {
    const patch = { application: value };
    if (!form.nameTouched) patch.name = suggestName(value.trim());
    const vs = data.versions[value.trim()] || [];
    patch.versionLabel = vs.length ? vs[0].label : "";
    if (!vs.length) patch.source = "upload";
    set(patch);
  }

  return html`<form class="wizard" onSubmit=${onSubmit} noValidate aria-describedby=${topError ? "create-top-error" : undefined}>
    ${topError && html`<div class="alert alert-error" role="alert" id="create-top-error" tabindex="-1">
      <span class="alert-title">The environment was not created</span>${topError}</div>`}

    <${Step} n="1" title="Application">
      <div class="field">
        <label for="create-application">Application</label>
        <input id="create-application" type="text" list="create-applications" value=${form.application}
          autocomplete="off" spellcheck=${false} autocapitalize="off" ...${invalid(errors, "application")}
          onInput=${(e) => setApplication(e.currentTarget.value)} />
        <datalist id="create-applications">${apps.map((a) => html`<option value=${a} />`)}</datalist>
        <span class="field-hint">${apps.length
          ? html`Pick an existing application (${apps.join(", ")}) or type a new name: it is created with the first upload.`
          : "Type a name for your first application: it is created with the upload."}</span>
        <${FieldError} id="create-application-error" message=${errors.application} />
      </div>
    <//>

    <${Step} n="2" title="Environment">
      <div class="grid">
        <div class="field">
          <label for="create-name">Environment name</label>
          <input id="create-name" type="text" value=${form.name} autocomplete="off" spellcheck=${false} autocapitalize="off"
            ...${invalid(errors, "name")}
            onInput=${(e) => set({ name: e.currentTarget.value, nameTouched: true })} />
          <span class="field-hint">4 to 40 letters, digits and hyphens.</span>
          <${FieldError} id="create-name-error" message=${errors.name} />
        </div>
        <div class="field">
          <label for="create-cname">CNAME prefix (optional)</label>
          <input id="create-cname" type="text" value=${form.cname} placeholder=${form.name} autocomplete="off" spellcheck=${false} autocapitalize="off"
            ...${invalid(errors, "cname")}
            onInput=${(e) => set({ cname: e.currentTarget.value })} />
          <span class="field-hint">Default: the environment name.</span>
          <${FieldError} id="create-cname-error" message=${errors.cname} />
        </div>
      </div>
      ${prefix && html`<p class="url-preview muted">URL: <code>http://${prefix}.${server.domain}${port}</code></p>`}
    <//>

    <${Step} n="3" title="Application code">
      <fieldset>
        <legend class="visually-hidden">Source</legend>
        <label class="radio"><input type="radio" name="source" value="upload" checked=${form.source === "upload"}
          onChange=${() => set({ source: "upload" })} /> Upload your code</label>
        <label class="radio"><input type="radio" name="source" value="version" checked=${form.source === "version"}
          disabled=${!versions.length} onChange=${() => set({ source: "version" })} />
          <span>Use an existing version${!versions.length && html`<span class="muted">${existing ? "This application has no versions yet." : "Choose an existing application first."}</span>`}</span></label>
      </fieldset>
      ${form.source === "upload"
        ? html`<${DropZone} file=${form.file} errors=${errors} onFile=${(file) => set({ file })} />
          <div class="field" style="margin-top: var(--sp-4)">
            <label for="create-label">Version label (optional)</label>
            <input id="create-label" type="text" value=${form.label} autocomplete="off" spellcheck=${false} autocapitalize="off"
              placeholder="from the zip's contents" ...${invalid(errors, "label")}
              onInput=${(e) => set({ label: e.currentTarget.value })} />
            <${FieldError} id="create-label-error" message=${errors.label} />
          </div>`
        : html`<div class="field">
            <label for="create-version">Version</label>
            <select id="create-version" value=${form.versionLabel} ...${invalid(errors, "version")}
              onChange=${(e) => set({ versionLabel: e.currentTarget.value })}>
              ${versions.map((v) => html`<option value=${v.label}>${v.label} — uploaded ${relativeTime(v.created_at)}${v.build_status === "failed" ? " (build failed)" : ""}</option>`)}
            </select>
            <${FieldError} id="create-version-error" message=${errors.version} />
          </div>`}
    <//>

    <${Step} n="4" title="Capacity">
      <fieldset aria-describedby=${errors.preset ? "create-preset-error" : undefined}>
        <legend>Preset</legend>
        <div class="choice-cards">
          ${Object.entries(PRESETS).map(([id, p]) => html`<label class="radio">
            <input type="radio" name="preset" value=${id} checked=${form.preset === id} onChange=${() => set({ preset: id })} />
            <span><strong>${p.label}</strong><span class="muted">${p.help}</span></span>
          </label>`)}
        </div>
        <${FieldError} id="create-preset-error" message=${errors.preset} />
      </fieldset>
    <//>

    <${Step} n="5" title="Settings">
      <div class="grid">
        <div class="field">
          <label for="create-policy">Deployment policy</label>
          <select id="create-policy" value=${form.policy} ...${invalid(errors, "policy")} onChange=${(e) => set({ policy: e.currentTarget.value })}>
            <option value="">Server default</option>
            ${POLICIES.map((p) => html`<option value=${p}>${p}</option>`)}
          </select>
          <span class="field-hint">How later deployments roll out. Beanpole's default is Immutable: a failed deploy never touches the running version.</span>
          <${FieldError} id="create-policy-error" message=${errors.policy} />
        </div>
        <div class="field">
          <label for="create-platform">Platform</label>
          <select id="create-platform" value=${form.platform} ...${invalid(errors, "platform")} onChange=${(e) => set({ platform: e.currentTarget.value })}>
            ${PLATFORMS.map(([v, l]) => html`<option value=${v}>${l}</option>`)}
          </select>
          <span class="field-hint">Detected from each bundle's files unless chosen.</span>
          <${FieldError} id="create-platform-error" message=${errors.platform} />
        </div>
      </div>
      <${PropertyRows} rows=${form.props} setRows=${(props) => set({ props })} errors=${errors} />
    <//>

    <div class="form-actions">
      <button type="submit" class="btn btn-primary" disabled=${!!busy}>Create environment</button>
      <a class="btn" href="#/">Cancel</a>
      ${busy && html`<span class="status" role="status"><span class="spinner" aria-hidden="true"></span>${busy}</span>`}
    </div>
  </form>`;
}

// --- the launch, followed live ------------------------------------------------------------

function timeOfDay(t) {
  return new Date(t * 1000).toLocaleTimeString();
}

function CreateProgress({ created, onBack, onAnother }) {
  const name = created.environment.name;
  const envId = created.environment.id;
  const [env, setEnv] = useState(created.environment);
  const [health, setHealth] = useState(null);
  const [events, setEvents] = useState([]);
  const [operation, setOperation] = useState(null);
  const [gone, setGone] = useState(false);
  const resultRef = useRef(null);

  useEffect(() => {
    // Events of this environment only (a terminated namesake's are not), without repeats.
    const mine = (ev) => (ev.environment_id ? ev.environment_id === envId : ev.environment === name);
    const add = (list) => setEvents((old) => {
      const seen = new Set(old.map((e) => e.id));
      const fresh = list.filter((e) => mine(e) && !seen.has(e.id));
      return fresh.length ? [...old, ...fresh].sort((a, b) => a.id - b.id) : old;
    });
    // The stream starts with the environment's latest events: the launch's first ones,
    // written before it connected, are among them.
    return stream(`/console/stream?environment=${encodeURIComponent(name)}`, {
      environment: (view) => { if (view.id === envId) setEnv(view); },
      environments: (list) => {
        const found = list.find((e) => e.id === envId);
        if (found) setEnv((old) => ({ ...old, ...found }));
      },
      events: add,
      health: setHealth,
      operation: (op) => { if (op.id === created.operation) setOperation(op); },
      gone: (g) => { if (g.environment === name) setGone(true); },
    });
  }, []);

  const terminated = gone || env.status === "Terminated"; // a failed launch ends so
  const errors = events.filter((e) => e.severity === "ERROR" || e.severity === "FATAL");
  const ready = env.status === "Ready" && !(operation && operation.status === "failed");
  const failed = !ready && (terminated || (operation && operation.status === "failed") || errors.length > 0);
  const finished = ready || terminated || (operation && operation.status === "failed");
  // The most telling reason: the operation's, else the first specific ERROR event.
  const generic = /^Failed to launch environment\.?$/;
  const reason = (operation && operation.status === "failed" && operation.message)
    || (errors.find((e) => !generic.test(e.message)) || errors[0] || {}).message
    || (gone ? "The environment was terminated." : env.status === "Terminated" ? "The environment was terminated during its launch." : "");

  useEffect(() => { if (finished && resultRef.current) resultRef.current.focus(); }, [finished]);

  const colour = health ? health.colour : env.health;
  const word = health ? health.status : undefined;
  const running = Array.isArray(env.instances) ? env.instances.filter((i) => i.state === "in-service").length : null;

  return html`<div class="wizard">
    ${ready && html`<div class="alert alert-success" role="status" tabindex="-1" ref=${resultRef}>
      <span class="alert-title">Environment ${name} is Ready</span>
      <p>Health: <${HealthPill} colour=${colour} word=${word} /></p>
      <p>URL: <a href=${env.url} target="_blank" rel="noopener noreferrer">${env.url}<span class="visually-hidden"> (opens in a new tab)</span></a></p>
      ${errors.length > 0 && html`<p><strong>It reported ${errors.length === 1 ? "an error" : `${errors.length} errors`} on the way; see the events below.</strong></p>`}
      <div class="form-actions">
        <a class="btn btn-primary" href=${environmentHash(name)}>Open environment page</a>
        <button type="button" class="btn" onClick=${onAnother}>Create another environment</button>
      </div>
    </div>`}
    ${failed && html`<div class="alert alert-error" role="alert" tabindex="-1" ref=${finished ? resultRef : null}>
      <span class="alert-title">${finished ? `Environment ${name} could not be launched` : `The launch of ${name} reported an error`}</span>
      <p style="white-space: pre-wrap">${reason}</p>
      ${finished && html`<p>Fix the problem, then create it again: the form keeps what you entered.</p>
        <div class="form-actions"><button type="button" class="btn btn-primary" onClick=${onBack}>Back to the form</button>
        ${!terminated && html`<a class="btn" href=${environmentHash(name)}>Open environment page</a>`}</div>`}
    </div>`}

    <section class="card" aria-labelledby="progress-title">
      <div class="card-header">
        <h2 id="progress-title">${finished ? `Launch of ${name}` : `Creating ${name}`}</h2>
        ${!terminated && html`<a href=${environmentHash(name)}>Environment page</a>`}
      </div>
      <dl class="kv">
        <dt>Status</dt><dd><${StatusLabel} status=${terminated ? "Terminated" : env.status} /></dd>
        <dt>Health</dt><dd><${HealthPill} colour=${colour} word=${word} /></dd>
        <dt>Application</dt><dd>${env.application}</dd>
        <dt>Instances</dt><dd>${running === null ? `${env.desired_capacity} desired` : `${running} of ${env.desired_capacity} running`}</dd>
        <dt>URL</dt><dd>${ready ? html`<a href=${env.url} target="_blank" rel="noopener noreferrer">${env.url}</a>` : html`<code>${env.url}</code>`}</dd>
      </dl>
    </section>

    <section class="card" aria-labelledby="progress-events">
      <h2 id="progress-events">Events</h2>
      ${events.length === 0 && html`<p class="muted">Waiting for the first events…</p>`}
      <ol class="progress-events" role="log" aria-live="polite" aria-label="Events of ${name}">
        ${events.map((e) => html`<li key=${e.id} class=${`event-${e.severity}`}>
          <time class="time muted mono" datetime=${new Date(e.time * 1000).toISOString()}>${timeOfDay(e.time)}</time>
          <span class=${`sev sev-${e.severity}`}>${e.severity}</span>
          <span class="message">${e.message}</span>
        </li>`)}
      </ol>
    </section>
  </div>`;
}

// --- the page -----------------------------------------------------------------------------

const EMPTY_FORM = {
  application: "", name: "", nameTouched: false, cname: "", source: "upload", file: null, label: "",
  versionLabel: "", preset: "single", policy: "", platform: "", props: [],
};

export function CreatePage() {
  const [data, setData] = useState(null); // the overview view: applications and versions
  const [loadError, setLoadError] = useState(null);
  const [form, setForm] = useState(EMPTY_FORM);
  const [errors, setErrors] = useState({});
  const [topError, setTopError] = useState(null);
  const [busy, setBusy] = useState(null); // what is being done, in words
  const [created, setCreated] = useState(null); // EnvironmentCreated once started

  function load() {
    setLoadError(null);
    api("GET", "/console/overview").then(setData, (e) => setLoadError(e.message || String(e)));
  }
  useEffect(load, []);

  // A file dropped next to the drop zone must not replace the console with the file.
  useEffect(() => {
    const stop = (e) => { if (e.dataTransfer && [...e.dataTransfer.types].includes("Files")) e.preventDefault(); };
    window.addEventListener("dragover", stop);
    window.addEventListener("drop", stop);
    return () => { window.removeEventListener("dragover", stop); window.removeEventListener("drop", stop); };
  }, []);

  // Errors shown: each at its field (focused), or at the top.
  function showErrors(found, top) {
    setErrors(found);
    setTopError(top || null);
    setBusy(null);
    requestAnimationFrame(() => {
      const first = Object.keys(found)[0];
      const target = top ? document.getElementById("create-top-error")
        : first === "props" ? document.querySelector("[data-row]")
        : first === "preset" ? document.querySelector('input[name="preset"]:checked')
        : document.getElementById(`create-${first}`);
      if (target) target.focus();
    });
  }

  // A server error at the field it names; `fallback`: the field of the step that failed.
  function showServerError(err, fallback) {
    let field = fieldOf(err.message);
    if (field === "label" && form.source === "version") field = "version";
    field = field || fallback;
    if (field) showErrors({ [field]: err.message });
    else showErrors({}, err.message);
  }

  async function submit(e) {
    e.preventDefault();
    const f = form;
    const application = f.application.trim();
    const name = f.name.trim();
    const found = {};
    if (!application) found.application = "Enter an application name, or pick an existing one.";
    if (!name) found.name = "Enter a name for the environment.";
    if (f.source === "upload") {
      if (!f.file) found.file = "Choose the zip of your application, or drop it here.";
      else if (!/\.zip$/i.test(f.file.name)) found.file = `${f.file.name} is not a .zip file. Zip the application's folder (its files at the zip's root).`;
    } else if (!f.versionLabel) found.version = "Choose a version.";
    const settings = {
      "aws:autoscaling:asg:MinSize": String(PRESETS[f.preset].min),
      "aws:autoscaling:asg:MaxSize": String(PRESETS[f.preset].max),
    };
    if (f.policy) settings["aws:elasticbeanstalk:command:DeploymentPolicy"] = f.policy;
    const keys = new Set();
    for (const row of f.props) {
      const key = row.key.trim();
      if (!key && !row.value) continue; // an empty row is ignored
      if (!key) { found.props = "Give each environment property a name (or remove the row)."; break; }
      if (keys.has(key)) { found.props = `Environment property ${key} is given twice.`; break; }
      keys.add(key);
      settings[ENV_PROPERTY + key] = row.value;
    }
    if (Object.keys(found).length) return showErrors(found);

    const body = { name, application, settings };
    if (f.cname.trim()) body.cname = f.cname.trim();
    if (f.platform) body.platform = f.platform;
    setErrors({});
    setTopError(null);
    try {
      setBusy("Checking the settings…");
      await api("POST", "/environments?dry_run=true", body);
    } catch (err) { return showServerError(err, null); }

    let label = f.versionLabel;
    if (f.source === "upload") {
      try {
        setBusy(`Uploading ${f.file.name} (${formatBytes(f.file.size)})…`);
        const query = f.label.trim() ? `?label=${encodeURIComponent(f.label.trim())}` : "";
        const version = await api("POST", `/applications/${encodeURIComponent(application)}/versions${query}`, f.file);
        label = version.label;
      } catch (err) {
        const field = fieldOf(err.message);
        return showServerError(err, field === "label" || field === "application" ? field : "file");
      }
    }
    try {
      setBusy("Starting the environment…");
      const result = await api("POST", "/environments", { ...body, version_label: label });
      setBusy(null);
      setCreated(result);
      window.scrollTo(0, 0);
    } catch (err) { return showServerError(err, null); }
  }

  if (loadError) {
    return html`<h1>Create environment</h1>
      <div class="alert alert-error" role="alert"><span class="alert-title">Could not load the applications</span>${loadError}</div>
      <button type="button" class="btn" onClick=${load}>Try again</button>`;
  }
  if (!data) return html`<h1>Create environment</h1><p class="muted" role="status">Loading…</p>`;
  if (created) {
    return html`<h1>Create environment</h1>
      <${CreateProgress} key=${created.operation} created=${created}
        onBack=${() => { setCreated(null); load(); }}
        onAnother=${() => { setCreated(null); setForm(EMPTY_FORM); setErrors({}); load(); }} />`;
  }
  return html`<h1>Create environment</h1>
    <p class="muted">Launch an environment running your application: pick or name the application,
      give the code, choose the capacity. Everything can be changed later on the environment's page.</p>
    <${CreateForm} data=${data} form=${form} setForm=${setForm} errors=${errors} topError=${topError}
      busy=${busy} onSubmit=${submit} />`;
}
