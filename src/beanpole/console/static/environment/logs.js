// The Logs tab: the last 200 lines of each log (per instance and file, the access log, the
// latest deploy log), "Follow" to append new lines as they are written (server-sent events),
// and a zip of everything.
import { html, api, stream, API, useState, useEffect, useRef } from "../lib.js";
import { fmtAgo, ErrorText } from "./format.js";

const MAX_LINES = 5000; // per file, in the browser
const TAIL = 200;
const enc = encodeURIComponent;

// The tail's files as {key, label, group, instance, lines (null: not read)}; the key is what
// a followed line names: `${source}/${file}` (source: instance id, "access" or "deploy").
function filesOf(tail) {
  const files = [];
  for (const inst of tail.instances) {
    const group = `Instance ${inst.id} (${inst.state}${inst.last_written ? `, last written ${fmtAgo(inst.last_written)}` : ""})`;
    for (const f of inst.files) {
      const stopped = inst.state === "stopped";
      files.push({ key: `${inst.id}/${f.name}`, label: `${inst.id}${stopped ? " (stopped)" : ""} — ${f.name}`,
        group, instance: inst.id, stopped, lines: f.lines });
    }
  }
  if (tail.access) files.push({ key: `access/${tail.access.name}`, label: `Access log — ${tail.access.name}`, group: "Load balancer", lines: tail.access.lines });
  if (tail.deploy) {
    const d = tail.deploy;
    const about = d.operation ? ` (operation ${d.operation}${d.kind ? `, ${d.kind}` : ""}${d.status ? `, ${d.status}` : ""})` : "";
    files.push({ key: `deploy/${d.name}`, label: `Deploy log${about}`, group: "Deployments", lines: d.lines });
  }
  return files;
}

const cap = (lines) => (lines.length > MAX_LINES ? lines.slice(lines.length - MAX_LINES) : lines);

export function LogsTab({ env }) {
  const name = env.name;
  const [files, setFiles] = useState(null); // [{key, label, group, instance}]
  const [buffers, setBuffers] = useState({}); // key -> lines (null: not read yet)
  const [selected, setSelected] = useState("");
  const [error, setError] = useState(null);
  const [loading, setLoading] = useState(false);
  const [follow, setFollow] = useState(false);
  const preRef = useRef(null);
  const stick = useRef(true); // keep scrolled to the end while the user is there

  const load = async () => {
    setLoading(true);
    setError(null);
    try {
      const tail = await api("GET", `/environments/${enc(name)}/logs?lines=${TAIL}`);
      const found = filesOf(tail);
      setFiles(found);
      setBuffers((b) => {
        const n = { ...b };
        for (const f of found) n[f.key] = f.lines == null ? (b[f.key] || null) : f.lines;
        return n;
      });
      // Keep the choice; else the first running instance's first log.
      const first = found.find((f) => f.instance && !f.stopped) || found[0];
      setSelected((s) => (s && found.some((f) => f.key === s) ? s : (first ? first.key : "")));
    } catch (e) { setError(e); }
    setLoading(false);
  };
  useEffect(() => { load(); }, [name]);

  // A stopped instance's logs are listed but not read: ask for that instance's when chosen.
  useEffect(() => {
    const f = files && files.find((x) => x.key === selected);
    if (!f || !f.instance || buffers[f.key] != null) return;
    api("GET", `/environments/${enc(name)}/logs?instance=${enc(f.instance)}&lines=${TAIL}`)
      .then((tail) => setBuffers((b) => {
        const n = { ...b };
        for (const g of filesOf(tail)) if (g.lines != null) n[g.key] = g.lines;
        return n;
      }))
      .catch(setError);
  }, [selected, files]);

  // Follow: one stream of every log's new lines, appended to their files' buffers.
  useEffect(() => {
    if (!follow) return;
    const close = stream(`/environments/${enc(name)}/logs/stream`, {
      lines: (lines) => {
        setBuffers((b) => {
          const n = { ...b };
          const grown = {};
          for (const l of lines) {
            const key = `${l.source}/${l.file}`;
            (grown[key] ||= [...(n[key] || [])]).push(l.line);
          }
          for (const [key, list] of Object.entries(grown)) n[key] = cap(list);
          return n;
        });
        // A file that appeared since the tail (a new instance): list it.
        setFiles((fs) => {
          const known = new Set((fs || []).map((f) => f.key));
          const extra = [];
          for (const l of lines) {
            const key = `${l.source}/${l.file}`;
            if (known.has(key)) continue;
            known.add(key);
            const group = l.source === "access" ? "Load balancer" : l.source === "deploy" ? "Deployments" : `Instance ${l.source}`;
            extra.push({ key, label: `${l.source} — ${l.file}`, group, instance: null });
          }
          return extra.length ? [...(fs || []), ...extra] : fs;
        });
      },
    });
    return close;
  }, [follow, name]);

  const lines = buffers[selected];
  useEffect(() => {
    const el = preRef.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [lines, selected]);
  const onScroll = (e) => {
    const el = e.currentTarget;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  };

  const groups = [];
  const ordered = (files || []).filter((f) => !f.stopped).concat((files || []).filter((f) => f.stopped));
  for (const f of ordered) {
    let g = groups.find((x) => x.name === f.group);
    if (!g) groups.push((g = { name: f.group, files: [] }));
    g.files.push(f);
  }
  const current = (files || []).find((f) => f.key === selected);

  return html`<section class="card env-logs" aria-labelledby="env-logs-title">
    <div class="env-section-head">
      <h2 id="env-logs-title">Logs</h2>
      <div class="toolbar">
        <button type="button" class="btn" aria-pressed=${follow} onClick=${() => { stick.current = true; setFollow(!follow); }}>Follow</button>
        <button type="button" class="btn" disabled=${loading} onClick=${load}>Refresh</button>
        <a class="btn" href=${`${API}/environments/${enc(name)}/logs/bundle`} download>Download logs</a>
      </div>
    </div>
    <div class="field env-inline-field">
      <label for="env-log-file">Log file</label>
      <select id="env-log-file" value=${selected} disabled=${!files || !files.length}
        onChange=${(e) => { stick.current = true; setSelected(e.currentTarget.value); }}>
        ${groups.map((g) => html`<optgroup label=${g.name}>
          ${g.files.map((f) => html`<option value=${f.key}>${f.label}</option>`)}
        </optgroup>`)}
      </select>
    </div>
    <p class="muted" role="status">${loading ? "Loading the logs…"
      : follow ? "Following: new lines are added as they are written."
      : `The last ${TAIL} lines of each log. Follow to see new ones as they come.`}</p>
    <${ErrorText} error=${error} />
    ${files && !files.length ? html`<p class="muted">No logs yet.</p>` : ""}
    ${current ? html`<pre class="env-log" ref=${preRef} tabindex="0" role="region" onScroll=${onScroll}
      aria-label=${`Lines of ${current.label}`}>${lines == null ? "Reading…" : lines.length ? lines.join("\n") : "(empty)"}</pre>` : ""}
  </section>`;
}
