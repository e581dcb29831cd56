// The environment's events: a table, newest first, filtered by severity; new ones arrive
// through the page's stream.
import { html, useState } from "../lib.js";
import { fmtTime } from "./format.js";

export const SEVERITIES = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
export const MAX_EVENTS = 1000;

// Adds new EventViews (oldest first) to the list, skipping any already there.
export function mergeEvents(events, fresh) {
  const lastId = events.length ? events[events.length - 1].id : -1;
  const seen = new Set(events.map((e) => e.id));
  const added = fresh.filter((e) => !seen.has(e.id));
  if (!added.length) return events;
  let all = [...events, ...added];
  if (added.some((e) => e.id < lastId)) all.sort((a, b) => a.id - b.id);
  return all.length > MAX_EVENTS ? all.slice(all.length - MAX_EVENTS) : all;
}

export function EventsTable({ events, limit, caption }) {
  const rows = events.slice().reverse().slice(0, limit || events.length);
  if (!rows.length) return html`<p class="muted">No events.</p>`;
  return html`<div class="table-wrap" tabindex="0" role="region" aria-label=${caption}>
    <table class="env-table env-events">
      <caption class="visually-hidden">${caption}</caption>
      <thead><tr><th scope="col">Time</th><th scope="col">Severity</th><th scope="col">Message</th></tr></thead>
      <tbody>${rows.map((e) => html`<tr key=${e.id}>
        <td class="env-nowrap">${fmtTime(e.time)}</td>
        <td><span class=${`sev sev-${e.severity}`}>${e.severity}</span></td>
        <td class="env-message">${e.message}</td>
      </tr>`)}</tbody>
    </table>
  </div>`;
}

export function EventsTab({ events }) {
  const [severity, setSeverity] = useState("");
  const shown = severity ? events.filter((e) => e.severity === severity) : events;
  return html`<section class="card" aria-labelledby="env-events-title">
    <div class="env-section-head">
      <h2 id="env-events-title">Events</h2>
      <div class="field env-inline-field">
        <label for="env-events-severity">Severity</label>
        <select id="env-events-severity" value=${severity} onChange=${(e) => setSeverity(e.currentTarget.value)}>
          <option value="">All</option>
          ${SEVERITIES.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </div>
    </div>
    <p class="muted">${shown.length} of ${events.length} events${severity ? ` (${severity} only)` : ""}, newest first; new ones appear as they happen.</p>
    <${EventsTable} events=${shown} caption="Events, newest first" />
  </section>`;
}
