// The Configuration tab: every effective option grouped by namespace, with its source and
// what changing it does; an Edit mode with typed inputs; environment properties (masked) in a
// section of their own. "Apply changes" sends one PATCH {set, remove}; a refusal is shown next
// to the option its message names.
import { html, api, useState, useMemo } from "../lib.js";
import { ErrorText } from "./format.js";

export const ENV_NS = "aws:elasticbeanstalk:application:environment";
const enc = encodeURIComponent;
const keyOf = (namespace, option) => `${namespace}:${option}`;
const idOf = (key) => "opt-" + key.replace(/[^A-Za-z0-9_-]/g, "_");

// The rows: options Beanpole knows (with their defaults) joined with the effective values.
export function settingRows(settings, options) {
  const rows = new Map();
  for (const o of options || []) {
    if (o.namespace === ENV_NS) continue;
    rows.set(keyOf(o.namespace, o.name), { namespace: o.namespace, option: o.name, value: o.default, source: "default", spec: o });
  }
  for (const s of (settings && settings.effective) || []) {
    if (s.namespace === ENV_NS) continue;
    const key = keyOf(s.namespace, s.option);
    rows.set(key, { ...(rows.get(key) || { spec: null }), namespace: s.namespace, option: s.option, value: s.value, source: s.source });
  }
  return rows;
}

// Environment properties: KEY -> {value, source}.
export function propertyRows(settings) {
  const props = new Map();
  const effective = (settings && settings.effective) || [];
  for (const s of effective) if (s.namespace === ENV_NS) props.set(s.option, { value: s.value, source: s.source });
  if (!props.size && settings && settings.environment) {
    for (const [k, v] of Object.entries(settings.environment)) props.set(k, { value: v, source: "direct" });
  }
  return props;
}

// Which of `keys` a server message is about: "ns:Option" verbatim, else the option's own name
// as a word (or in quotes); null when none.
export function keyNamedIn(message, keys) {
  for (const k of keys) if (message.includes(k)) return k;
  for (const k of keys) {
    const name = k.slice(k.lastIndexOf(":") + 1);
    const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    if (new RegExp(`(^|[^A-Za-z0-9_])${escaped}([^A-Za-z0-9_]|$)`).test(message)) return k;
  }
  return null;
}

function sourceText(source) {
  if (source === "direct") return "set here";
  if (source === "default") return "default";
  if (source.startsWith("saved:")) return `saved configuration ${source.slice(6)}`;
  return source; // ".ebextensions/FILE"
}

// A typed input for an option: select for enum/bool, number for int/number, text otherwise.
function OptionInput({ id, spec, value, onValue, describedBy, invalid }) {
  const common = { id, "aria-describedby": describedBy, "aria-invalid": invalid ? "true" : undefined };
  const kind = spec ? spec.kind : "str";
  if (kind === "enum" || kind === "bool") {
    const choices = kind === "bool" ? ["true", "false"] : [...spec.choices];
    if (!choices.includes(value)) choices.unshift(value);
    return html`<select ...${common} value=${value} onChange=${(e) => onValue(e.currentTarget.value)}>
      ${choices.map((c) => html`<option value=${c}>${c === "" ? "(empty)" : c}</option>`)}</select>`;
  }
  if (kind === "int" || kind === "number") {
    return html`<input ...${common} type="number" inputmode=${kind === "int" ? "numeric" : "decimal"}
      step=${kind === "int" ? "1" : "any"} min=${spec.minimum ?? undefined} max=${spec.maximum ?? undefined}
      value=${value} onInput=${(e) => onValue(e.currentTarget.value)} />`;
  }
  return html`<input ...${common} type="text" autocomplete="off" value=${value} onInput=${(e) => onValue(e.currentTarget.value)} />`;
}

export function ConfigurationTab({ env, settings, options, ops, onApplied }) {
  const rows = useMemo(() => settingRows(settings, options), [settings, options]);
  const props = useMemo(() => propertyRows(settings), [settings]);
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState({}); // key -> new value (options and properties)
  const [removed, setRemoved] = useState(new Set()); // keys to remove
  const [added, setAdded] = useState([]); // property names added in this edit
  const [shown, setShown] = useState(new Set()); // property names whose value is shown
  const [errors, setErrors] = useState({}); // key -> message
  const [topError, setTopError] = useState(null);
  const [notice, setNotice] = useState(null);
  const [busy, setBusy] = useState(false);
  const [newName, setNewName] = useState("");
  const [newValue, setNewValue] = useState("");
  const [newError, setNewError] = useState(null);
  const [filter, setFilter] = useState("");

  const start = () => { setDraft({}); setRemoved(new Set()); setAdded([]); setErrors({}); setTopError(null); setNotice(null); setEditing(true); };
  const cancel = () => { setEditing(false); setErrors({}); setTopError(null); setNewError(null); };
  const edit = (key, value) => {
    setDraft((d) => ({ ...d, [key]: value }));
    setErrors((e) => (e[key] ? { ...e, [key]: undefined } : e)); // its refusal no longer applies
  };
  const toggleRemove = (key) => setRemoved((r) => { const n = new Set(r); n.has(key) ? n.delete(key) : n.add(key); return n; });
  const toggleShown = (name) => setShown((s) => { const n = new Set(s); n.has(name) ? n.delete(name) : n.add(name); return n; });

  const addProperty = (e) => {
    e.preventDefault();
    const name = newName.trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) { setNewError("A property name is letters, digits and underscores, not starting with a digit."); return; }
    if (props.has(name) || added.includes(name)) { setNewError(`${name} exists already; change its value in its row.`); return; }
    setNewError(null);
    setAdded((a) => [...a, name]);
    edit(keyOf(ENV_NS, name), newValue);
    setNewName("");
    setNewValue("");
  };
  const dropAdded = (name) => {
    setAdded((a) => a.filter((n) => n !== name));
    setDraft((d) => { const n = { ...d }; delete n[keyOf(ENV_NS, name)]; return n; });
  };

  // What to send: changed values and removals.
  const change = () => {
    const set = {};
    for (const [key, value] of Object.entries(draft)) {
      if (removed.has(key)) continue;
      const current = key.startsWith(ENV_NS + ":") ? props.get(key.slice(ENV_NS.length + 1)) : rows.get(key);
      if (!current || current.value !== value) set[key] = value;
    }
    return { set, remove: [...removed] };
  };

  const apply = async () => {
    const body = change();
    setErrors({});
    setTopError(null);
    if (!Object.keys(body.set).length && !body.remove.length) { setTopError("Nothing changed: edit a value first."); return; }
    setBusy(true);
    try {
      const r = await api("PATCH", `/environments/${enc(env.name)}/settings`, body);
      setEditing(false);
      setDraft({});
      setRemoved(new Set());
      setAdded([]);
      setNotice({ count: Object.keys(body.set).length + body.remove.length, operation: r.operation });
      onApplied(body);
    } catch (err) {
      const key = err.status === 400 ? keyNamedIn(err.message, [...Object.keys(body.set), ...body.remove]) : null;
      if (key) setErrors({ [key]: err.message }); else setTopError(err);
    }
    setBusy(false);
  };

  // Namespaces in order, their options by name; the filter matches names, values and help.
  const words = filter.trim().toLowerCase();
  const matches = (key, row) => !words || key.toLowerCase().includes(words) || String(row.value).toLowerCase().includes(words)
    || (row.spec && row.spec.help.toLowerCase().includes(words))
    || (key in draft && draft[key] !== row.value) || removed.has(key) || !!errors[key];
  const groups = new Map();
  for (const [key, row] of [...rows.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
    if (!matches(key, row)) continue;
    if (!groups.has(row.namespace)) groups.set(row.namespace, []);
    groups.get(row.namespace).push([key, row]);
  }
  const propNames = [...props.keys()].sort();

  return html`<div class="env-config">
    <div class=${editing ? "card toolbar env-config-bar env-config-bar-editing" : "card toolbar env-config-bar"}>
      ${editing ? html`
        <button type="button" class="btn btn-primary" disabled=${busy} onClick=${apply}>Apply changes</button>
        <button type="button" class="btn" disabled=${busy} onClick=${cancel}>Cancel</button>
        <span class="muted">${busy ? "Applying…" : "Each option says what a change does."}</span>`
      : html`<button type="button" class="btn btn-primary" onClick=${start}>Edit</button>
        <span class="muted">${settings && settings.saved_configuration ? `Created from saved configuration ${settings.saved_configuration}. ` : ""}
          Values set here override the version's .ebextensions and the defaults.</span>`}
    </div>
    <${ErrorText} error=${topError} />
    <div class="field env-inline-field env-filter">
      <label for="env-options-filter">Filter options</label>
      <input id="env-options-filter" type="search" autocomplete="off" placeholder="e.g. MinSize, health, python"
        value=${filter} onInput=${(e) => setFilter(e.currentTarget.value)} />
    </div>
    ${notice ? html`<${AppliedNotice} notice=${notice} op=${(ops || {})[notice.operation]} />` : ""}

    <section class="card" aria-labelledby="env-props-title">
      <h2 id="env-props-title">Environment properties</h2>
      <p class="muted">Environment variables of every instance. Changing them replaces the instances.</p>
      ${propNames.length + added.length === 0 ? html`<p class="muted">None.</p>` : html`
      <div class="table-wrap">
        <table class="env-table env-props">
          <thead><tr><th scope="col">Name</th><th scope="col">Value</th><th scope="col">Source</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>
            ${[...propNames, ...(editing ? added : [])].map((name) => {
              const key = keyOf(ENV_NS, name);
              const existing = props.get(name);
              const value = key in draft ? draft[key] : existing ? existing.value : "";
              const isShown = shown.has(name);
              const gone = removed.has(key);
              const id = idOf(key);
              return html`<tr key=${key} class=${gone ? "env-removed" : ""}>
                <th scope="row">${editing ? html`<label for=${id}>${name}</label>` : name}</th>
                <td><div class="env-value-cell">
                  ${editing && !gone
                    ? html`<input id=${id} class="env-prop-input" type=${isShown ? "text" : "password"}
                        autocomplete="new-password" spellcheck="false" value=${value}
                        aria-invalid=${errors[key] ? "true" : undefined}
                        onInput=${(e) => edit(key, e.currentTarget.value)} />`
                    : html`<code class="env-secret">${gone ? "(removed on apply)" : isShown ? value : "••••"}</code>`}
                  <button type="button" class="btn env-show" aria-pressed=${isShown} aria-label=${`${isShown ? "Hide" : "Show"} ${name}`}
                    onClick=${() => toggleShown(name)}>${isShown ? "Hide" : "Show"}</button>
                  <${ErrorText} error=${errors[key]} />
                </div></td>
                <td>${existing ? sourceText(existing.source) : "new"}</td>
                <td>${editing ? (existing
                  ? html`<button type="button" class="btn" aria-label=${`${gone ? "Keep" : "Remove"} ${name}`}
                      onClick=${() => toggleRemove(key)}>${gone ? "Keep" : "Remove"}</button>`
                  : html`<button type="button" class="btn" aria-label=${`Remove ${name}`} onClick=${() => dropAdded(name)}>Remove</button>`) : ""}</td>
              </tr>`;
            })}
          </tbody>
        </table>
      </div>`}
      ${editing ? html`<form class="env-add-prop" onSubmit=${addProperty} novalidate>
        <div class="field"><label for="env-new-prop-name">Property name</label>
          <input id="env-new-prop-name" type="text" autocomplete="off" spellcheck="false" value=${newName}
            onInput=${(e) => setNewName(e.currentTarget.value)} /></div>
        <div class="field"><label for="env-new-prop-value">Property value</label>
          <input id="env-new-prop-value" type="text" autocomplete="off" spellcheck="false" value=${newValue}
            onInput=${(e) => setNewValue(e.currentTarget.value)} /></div>
        <button type="submit" class="btn">Add property</button>
        <${ErrorText} error=${newError} />
      </form>` : ""}
    </section>

    ${[...groups.entries()].map(([namespace, list]) => html`<section class="card env-namespace" key=${namespace}
        aria-labelledby=${"ns-" + idOf(namespace)}>
      <h2 id=${"ns-" + idOf(namespace)} class="env-namespace-title"><code>${namespace}</code></h2>
      <div class="table-wrap">
        <table class="env-table env-options">
          <colgroup><col class="env-col-option" /><col class="env-col-value" /><col class="env-col-source" /><col class="env-col-effect" /></colgroup>
          <thead><tr><th scope="col">Option</th><th scope="col">Value</th><th scope="col">Source</th><th scope="col">A change</th></tr></thead>
          <tbody>${list.map(([key, row]) => {
            const id = idOf(key);
            const helpId = id + "-help";
            const value = key in draft ? draft[key] : row.value;
            const gone = removed.has(key);
            const changed = (key in draft && draft[key] !== row.value) || gone;
            return html`<tr key=${key} class=${changed ? "env-changed" : ""}>
              <th scope="row">
                ${editing ? html`<label for=${id}>${row.option}</label>` : row.option}
                ${row.spec && row.spec.help ? html`<p id=${helpId} class="muted env-help">${row.spec.help}
                  ${row.spec.kind !== "str" && row.spec.kind !== "enum" && row.spec.kind !== "bool" && (row.spec.minimum != null || row.spec.maximum != null)
                    ? ` (${row.spec.minimum ?? "…"} to ${row.spec.maximum ?? "…"})` : ""}
                  ${row.spec.default !== "" ? ` Default: ${row.spec.default}.` : ""}</p>` : ""}
              </th>
              <td><div class="env-value-cell">
                ${editing && !gone
                  ? html`<${OptionInput} id=${id} spec=${row.spec} value=${value} describedBy=${row.spec && row.spec.help ? helpId : undefined}
                      invalid=${!!errors[key]} onValue=${(v) => edit(key, v)} />`
                  : html`<code>${gone ? "(back to its default)" : row.value === "" ? "(empty)" : row.value}</code>`}
                ${editing && row.source === "direct" ? html` <button type="button" class="btn env-reset"
                    aria-label=${`${gone ? "Keep" : "Reset"} ${row.option}`} onClick=${() => toggleRemove(key)}>${gone ? "Keep" : "Reset"}</button>` : ""}
                ${changed ? html` <span class="env-changed-mark">changed</span>` : ""}
                <${ErrorText} error=${errors[key]} />
              </div></td>
              <td>${sourceText(row.source)}</td>
              <td>${row.spec ? row.spec.effect : html`<span class="muted">—</span>`}</td>
            </tr>`;
          })}</tbody>
        </table>
      </div>
    </section>`)}
    ${words && groups.size === 0 ? html`<p class="card muted">No option matches “${filter}”.</p>` : ""}
  </div>`;
}

// How the last change went: the operation's status, from the page's stream.
function AppliedNotice({ notice, op }) {
  const status = op ? op.status : "running";
  const text = status === "running"
    ? `Applying ${notice.count} change(s) (operation ${notice.operation}); the events tell how it goes.`
    : status === "succeeded" ? `Applied ${notice.count} change(s) (operation ${notice.operation}).`
    : `The change failed (operation ${notice.operation}): ${op.message}`;
  return html`<p class=${status === "failed" ? "card env-notice env-notice-failed" : "card env-notice"}
    role=${status === "failed" ? "alert" : "status"}>${status === "running" ? html`<span class="spinner" aria-hidden="true"></span> ` : ""}${text}</p>`;
}
