// The console's entry: learns who is signed in from the page itself (the server puts the
// session in a meta element), then shows the sign-in page or the console: the top bar and
// the page the hash names.
//
// Routes: #/ overview, #/signin, #/create, #/environments/NAME[/TAB].
import { html, render, useState, useEffect, useRef, api, setCsrf, navigate, ApiError } from "./lib.js";
import { SignInPage } from "./pages/signin.js";
import { OverviewPage } from "./pages/overview.js";
import { CreatePage } from "./pages/create.js";

// "#/environments/shop/health" -> {page: "environment", name: "shop", tab: "health"}.
export function parseRoute(hash) {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0) return { page: "overview" };
  if (parts[0] === "signin" && parts.length === 1) return { page: "signin" };
  if (parts[0] === "create" && parts.length === 1) return { page: "create" };
  if (parts[0] === "environments" && parts.length >= 2 && parts.length <= 3) {
    return { page: "environment", name: parts[1], tab: parts[2] || null };
  }
  return { page: "notfound" };
}

function useRoute() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const onChange = () => setHash(location.hash);
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return parseRoute(hash);
}

// Where to go once signed in: the page asked for before the sign-in page took over.
let returnTo = "#/";
function rememberPlace() {
  const route = parseRoute(location.hash);
  if (route.page !== "signin") returnTo = location.hash || "#/";
}

// The environment page is loaded on its first visit (it brings the charts with it).
let environmentModule = null;
function EnvironmentRoute({ name, tab, session }) {
  const [mod, setMod] = useState(environmentModule);
  const [failure, setFailure] = useState(null);
  useEffect(() => {
    if (mod) return;
    let live = true;
    import("./pages/environment.js")
      .then((m) => { environmentModule = m; if (live) setMod(m); })
      .catch((e) => { if (live) setFailure(e); });
    return () => { live = false; };
  }, []);
  if (mod) return html`<${mod.EnvironmentPage} name=${name} tab=${tab} session=${session} />`;
  return html`<div role="status">
    <h1>${name}</h1>
    <p class="muted">Loading the environment page…</p>
    ${failure && html`<p class="muted">The environment page's code did not load (${failure.message}). Reload the page to try again.</p>`}
  </div>`;
}

function TopBar({ session, route, onSignOut }) {
  const current = (page) => (route.page === page ? "page" : undefined);
  const who = session.method === "token" ? "API token" : session.user;
  return html`<header class="topbar">
    <button type="button" class="skip-link btn btn-small" onClick=${() => document.getElementById("main")?.focus()}>Skip to content</button>
    <a class="brand" href="#/">Beanpole</a>
    <nav aria-label="Main">
      <a href="#/" aria-current=${current("overview")}>Overview</a>
      <a href="#/create" aria-current=${current("create")}>Create environment</a>
    </nav>
    <div class="user">
      <span>Signed in as <strong>${who}</strong></span>
      <button type="button" class="btn btn-small" onClick=${onSignOut}>Sign out</button>
    </div>
  </header>`;
}

const TITLES = { overview: "Overview", create: "Create environment", signin: "Sign in", notfound: "Not found" };

function Page({ route, session }) {
  switch (route.page) {
    case "overview": return html`<${OverviewPage} session=${session} />`;
    case "create": return html`<${CreatePage} session=${session} />`;
    case "environment":
      return html`<${EnvironmentRoute} key=${route.name} name=${route.name} tab=${route.tab} session=${session} />`;
    default:
      return html`<div class="card empty"><h1>Page not found</h1>
        <p>There is no console page at <code>${location.hash}</code>.</p>
        <a class="btn btn-primary" href="#/">Go to the overview</a></div>`;
  }
}

function App() {
  // undefined: still asking the server; null: signed out; else the SessionView.
  const [session, setSession] = useState(undefined);
  const [bootError, setBootError] = useState(null);
  const route = useRoute();
  const mainRef = useRef(null);
  const firstRoute = useRef(true);

  async function checkSession() {
    setBootError(null);
    try {
      const view = await api("GET", "/session");
      setCsrf(view.csrf_token);
      setSession(view);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) setSession(null);
      else setBootError(e.message || String(e));
    }
  }

  // The page comes with the session in a meta element when the browser is signed in (no
  // request needed to know it); without one, the sign-in page. A 401 later brings it back.
  useEffect(() => {
    const meta = document.querySelector('meta[name="beanpole-session"]');
    if (!meta) { setSession(null); return; }
    try {
      const view = JSON.parse(meta.content);
      setCsrf(view.csrf_token);
      setSession(view);
    } catch { checkSession(); }
    meta.remove(); // read once: a later sign-in must not find a stale one
  }, []);

  // Any 401 (the session expired, the server forgot it) brings the sign-in page back.
  useEffect(() => {
    const onSignedOut = () => { setCsrf(""); setSession(null); };
    window.addEventListener("beanpole:signed-out", onSignedOut);
    return () => window.removeEventListener("beanpole:signed-out", onSignedOut);
  }, []);

  // Signed out: the sign-in page, remembering where the user was going; signed in, no
  // sign-in page. The live hash is read, not `route`: a navigation just made may not have
  // reached `route` yet.
  useEffect(() => {
    const page = parseRoute(location.hash).page;
    if (session === null && page !== "signin") { rememberPlace(); navigate("#/signin"); }
    if (session && page === "signin") navigate("#/");
  }, [session, route.page]);

  useEffect(() => {
    const name = route.page === "environment" ? route.name : TITLES[route.page] || "Beanpole";
    document.title = `${name} · Beanpole`;
    // A new page: move focus to its content, as a full page load would (not on first load).
    if (firstRoute.current) firstRoute.current = false;
    else if (mainRef.current && session) mainRef.current.focus({ preventScroll: false });
  }, [route.page, route.name]);

  async function signOut() {
    try { await api("DELETE", "/session"); } catch (e) { /* signed out either way */ }
    setCsrf("");
    returnTo = "#/";
    setSession(null);
    navigate("#/signin");
  }

  function signedIn(view) {
    setCsrf(view.csrf_token);
    setSession(view);
    const target = returnTo;
    returnTo = "#/";
    navigate(parseRoute(target).page === "signin" ? "#/" : target);
  }

  if (bootError) {
    return html`<main id="main" tabindex="-1" class="signin">
      <div class="alert alert-error" role="alert">
        <span class="alert-title">The console could not reach the Beanpole server</span>
        <p>${bootError}</p>
        <p>Check that <code>beanpole server</code> is running, then try again.</p>
      </div>
      <button type="button" class="btn btn-primary" onClick=${checkSession}>Try again</button>
    </main>`;
  }
  if (session === undefined) {
    return html`<main id="main" tabindex="-1"><p class="muted" role="status">Loading…</p></main>`;
  }
  if (session === null) {
    return html`<main id="main" tabindex="-1" ref=${mainRef}><${SignInPage} onSignedIn=${signedIn} /></main>`;
  }
  return html`
    <${TopBar} session=${session} route=${route} onSignOut=${signOut} />
    <main id="main" tabindex="-1" ref=${mainRef}><${Page} route=${route} session=${session} /></main>`;
}

render(html`<${App} />`, document.getElementById("root"));
