// Formatters and small display pieces the environment page's modules share.
import { html, HealthPill as SharedPill, StatusLabel } from "../lib.js";

const pad = (n) => String(n).padStart(2, "0");

// Epoch seconds -> "2025-01-31 14:05:09" in the browser's time zone.
export function fmtTime(t) {
  if (t == null) return "—";
  const d = new Date(t * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// Epoch seconds -> "3 min ago".
export function fmtAgo(t) {
  if (t == null) return "—";
  const s = Math.max(0, Date.now() / 1000 - t);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

// A duration in seconds -> "3 h 12 min".
export function fmtDuration(s) {
  if (s == null) return "—";
  s = Math.round(s);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

// A number with at most `digits` decimals; "—" for none.
export function fmtNum(n, digits = 1) {
  if (n == null || Number.isNaN(n)) return "—";
  return Number(n).toLocaleString(undefined, { maximumFractionDigits: digits });
}

export function fmtMiB(bytes) {
  return bytes == null ? "—" : fmtNum(bytes / 1048576, 0);
}

// The latency percentile `p` ("99.0") of a WindowView, or null.
export function percentile(window, p) {
  if (!window || !window.latency_ms) return null;
  const v = window.latency_ms[p];
  return v == null ? null : v;
}

// Health: the colour AND the word, never the colour alone (lib.js draws the pill). `status`
// is EB's word (Ok, Warning, Degraded, Severe, Info, Pending, Unknown, Suspended); without
// one (an environment summary carries only the colour) the colour's name is the word.
export function HealthPill({ colour, status }) {
  return html`<${SharedPill} colour=${colour || "Grey"} word=${status || undefined} />`;
}

// An environment's status (Launching, Updating, Ready, Terminating…), a spinner while it changes.
export function EnvStatus({ status }) {
  return html`<${StatusLabel} status=${status} />`;
}

// An error (ApiError or any Error) as the server's message, announced to screen readers.
export function ErrorText({ error, id }) {
  if (!error) return null;
  const text = typeof error === "string" ? error : error.message || String(error);
  return html`<p class="field-error" role="alert" id=${id}>${text}</p>`;
}
