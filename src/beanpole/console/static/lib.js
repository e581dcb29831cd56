// What every page imports: Preact with htm, the API client and the live stream.
// Pages import from here, never from the vendor files directly.
import { h, render } from "preact";
import { useState, useEffect, useRef, useMemo, useCallback } from "preact/hooks";
import htm from "htm";

export const html = htm.bind(h);
export { h, render, useState, useEffect, useRef, useMemo, useCallback };

export const API = "/api/v1";

let csrfToken = "";
export function setCsrf(token) { csrfToken = token || ""; }

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

// One call to the REST API. `body`: an object (sent as JSON), a Blob/File (sent as is,
// application/zip), or undefined. Answers the parsed JSON (or null for an empty body);
// throws ApiError with the server's {error: {code, message}} on any non-2xx.
export async function api(method, path, body, retried = false) {
  const headers = {};
  let payload;
  if (body instanceof Blob) { headers["Content-Type"] = "application/zip"; payload = body; }
  else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken;
  const res = await fetch(API + path, { method, headers, body: payload, credentials: "same-origin" });
  const text = await res.text();
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch { data = text; } }
  if (!res.ok) {
    const err = data && data.error ? data.error : { code: String(res.status), message: text || res.statusText };
    if (res.status === 401) window.dispatchEvent(new CustomEvent("beanpole:signed-out"));
    // A stale CSRF token (this browser signed in again in another tab, which made a new
    // session): learn the current session's token and try the change once more.
    if (res.status === 403 && err.code === "forbidden" && !retried) {
      const session = await api("GET", "/session");
      setCsrf(session.csrf_token);
      return api(method, path, body, true);
    }
    throw new ApiError(res.status, err.code, err.message);
  }
  return data;
}

// Server-sent events: `handlers` maps an event name to a function of its parsed data.
// Answers a function that closes the stream. The browser reconnects on its own.
// Two names are the connection's own, called with the raw Event: `open` (connected, again
// after each reconnect: the moment to fetch what may have been missed) and `error`.
//
// The browser reconnects by itself after a network error, but not after a refusal (the
// session ended: 401; the environment is gone: 404): then the session is asked for (a 401
// brings the sign-in page back) and the stream is opened again a few seconds later.
export function stream(path, handlers) {
  let source = null;
  let timer = null;
  let closed = false;
  const connect = () => {
    source = new EventSource(API + path, { withCredentials: true });
    for (const [name, fn] of Object.entries(handlers)) {
      if (name === "open" || name === "error") source.addEventListener(name, fn);
      else source.addEventListener(name, (e) => fn(JSON.parse(e.data)));
    }
    source.addEventListener("error", () => {
      if (closed || source.readyState !== EventSource.CLOSED) return;
      api("GET", "/session")
        .then(() => { if (!closed) timer = setTimeout(connect, 3000); })
        .catch(() => {}); // signed out: the sign-in page takes over
    });
  };
  connect();
  return () => { closed = true; clearTimeout(timer); source.close(); };
}

export function navigate(hash) { if (location.hash !== hash) location.hash = hash; }

// --- Shared helpers for the pages (formatting, the health pill, a ticking clock) ---------

// Where an environment's page lives: "#/environments/NAME" or "#/environments/NAME/TAB".
export function environmentHash(name, tab) {
  return `#/environments/${encodeURIComponent(name)}` + (tab ? `/${encodeURIComponent(tab)}` : "");
}

// "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago" (epoch seconds; `now` too).
export function relativeTime(epochSeconds, now = Date.now() / 1000) {
  if (epochSeconds == null) return "";
  const s = Math.max(0, Math.round(now - epochSeconds));
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

// The local date and time of an epoch-seconds instant, for titles and tables.
export function formatTime(epochSeconds) {
  if (epochSeconds == null) return "";
  return new Date(epochSeconds * 1000).toLocaleString();
}

// A number of bytes in words: "512 B", "3.4 KB", "12.0 MB".
export function formatBytes(n) {
  if (n == null) return "";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

export const HEALTH_COLOURS = ["Green", "Yellow", "Red", "Grey"];

// Health as colour AND word: `colour` is EB's Green/Yellow/Red/Grey, `word` what to say
// (an enhanced-health status such as "Ok" or "Degraded"; the colour's name when omitted).
export function HealthPill({ colour, word }) {
  const c = HEALTH_COLOURS.includes(colour) ? colour : "Grey";
  return html`<span class=${`pill pill-${c}`} title=${`Health: ${word || c}`}>
    <span class="pill-dot" aria-hidden="true"></span>${word || c}</span>`;
}

// An environment status (Launching, Updating, Ready, Terminating, Terminated); the ones
// that mean work in progress carry a spinner.
const BUSY = new Set(["Launching", "Updating", "Terminating"]);
export function StatusLabel({ status }) {
  return html`<span class="status">${BUSY.has(status) ? html`<span class="spinner" aria-hidden="true"></span>` : null}${status}</span>`;
}

// Re-renders the component every `ms` so relative times stay true (a clock, not polling).
export function useNow(ms = 15000) {
  const [now, setNow] = useState(() => Date.now() / 1000);
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now() / 1000), ms);
    return () => clearInterval(id);
  }, [ms]);
  return now;
}
