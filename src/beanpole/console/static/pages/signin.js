// Sign in with the API token or a console user's name and password (POST /session).
import { html, useState, useRef, useEffect, api } from "../lib.js";

const METHODS = [
  { id: "token", label: "API token" },
  { id: "password", label: "User and password" },
];

export function SignInPage({ onSignedIn }) {
  const [method, setMethod] = useState("token");
  const [token, setToken] = useState("");
  const [user, setUser] = useState("");
  const [password, setPassword] = useState("");
  const [missing, setMissing] = useState({}); // field -> what to fill in
  const [error, setError] = useState(null); // the server's message
  const [busy, setBusy] = useState(false);
  const errorRef = useRef(null);
  const tabRefs = useRef({});

  useEffect(() => { if (error && errorRef.current) errorRef.current.focus(); }, [error]);

  function choose(id) { setMethod(id); setMissing({}); setError(null); }

  // Tabs move with the arrow keys (the ARIA tabs pattern); Tab goes on to the form.
  function onTabKey(e) {
    if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
    e.preventDefault();
    const next = METHODS[(METHODS.findIndex((m) => m.id === method) + 1) % METHODS.length].id;
    choose(next);
    tabRefs.current[next]?.focus();
  }

  async function submit(e) {
    e.preventDefault();
    const need = {};
    if (method === "token" && !token.trim()) need.token = "Enter the API token.";
    if (method === "password") {
      if (!user.trim()) need.user = "Enter your user name.";
      if (!password) need.password = "Enter your password.";
    }
    setMissing(need);
    setError(null);
    if (Object.keys(need).length) {
      document.getElementById(`signin-${Object.keys(need)[0]}`)?.focus();
      return;
    }
    setBusy(true);
    try {
      const body = method === "token" ? { token: token.trim() } : { user: user.trim(), password };
      const view = await api("POST", "/session", body);
      onSignedIn(view);
    } catch (err) {
      setError(err.message || "Sign-in failed.");
      setBusy(false);
    }
  }

  const field = (id, label, value, set, type, autocomplete) => html`<div class="field">
    <label for=${`signin-${id}`}>${label}</label>
    <input id=${`signin-${id}`} type=${type} value=${value} autocomplete=${autocomplete}
      spellcheck=${false} autocapitalize="off"
      aria-invalid=${missing[id] ? "true" : undefined}
      aria-describedby=${missing[id] ? `signin-${id}-error` : undefined}
      onInput=${(e) => set(e.currentTarget.value)} />
    ${missing[id] && html`<span class="field-error" id=${`signin-${id}-error`}>${missing[id]}</span>`}
  </div>`;

  return html`<div class="signin">
    <p class="brand-title" aria-hidden="true">Beanpole</p>
    <div class="card">
      <h1>Sign in</h1>
      <div class="tabs" role="tablist" aria-label="Sign in with">
        ${METHODS.map((m) => html`<button type="button" role="tab" id=${`signin-tab-${m.id}`}
          ref=${(el) => { tabRefs.current[m.id] = el; }}
          aria-selected=${method === m.id ? "true" : "false"} aria-controls="signin-panel"
          tabindex=${method === m.id ? 0 : -1}
          onClick=${() => choose(m.id)} onKeyDown=${onTabKey}>${m.label}</button>`)}
      </div>
      <form id="signin-panel" role="tabpanel" aria-label="Credentials" onSubmit=${submit} noValidate>
        ${error && html`<div class="alert alert-error" role="alert" tabindex="-1" ref=${errorRef}>
          <span class="alert-title">Sign-in failed</span>${error}</div>`}
        ${method === "token"
          ? html`${field("token", "API token", token, setToken, "password", "current-password")}
            <p class="field-hint">The API token is the file <code>$BEANPOLE_HOME/token</code> on the
            server's host (by default <code>~/.local/share/beanpole/token</code>, or
            <code>/var/lib/beanpole/token</code> when the server runs as root):
            <code>cat $BEANPOLE_HOME/token</code>.</p>`
          : html`${field("user", "User", user, setUser, "text", "username")}
            ${field("password", "Password", password, setPassword, "password", "current-password")}
            <p class="field-hint">An administrator adds console users on the server's host with
            <code>beanpole user add NAME</code>.</p>`}
        <button type="submit" class="btn btn-primary" disabled=${busy} aria-busy=${busy ? "true" : undefined}>Sign in</button>
        ${busy && html`<p class="muted" role="status">Signing in…</p>`}
      </form>
    </div>
  </div>`;
}
