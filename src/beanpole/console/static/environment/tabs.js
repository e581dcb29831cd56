// The page's tabs (WAI-ARIA tabs pattern): buttons with role "tab"; the arrow keys, Home and
// End move between them; choosing one sets the hash #/environments/NAME/TAB.
import { html, navigate, useRef } from "../lib.js";

export const TABS = [
  ["overview", "Overview"],
  ["events", "Events"],
  ["deployments", "Deployments"],
  ["configuration", "Configuration"],
  ["logs", "Logs"],
];

export function tabOf(tab) {
  return TABS.some(([id]) => id === tab) ? tab : "overview";
}

export function Tabs({ name, current }) {
  const refs = useRef({});
  const go = (id, focus) => {
    navigate(`#/environments/${encodeURIComponent(name)}/${id}`);
    if (focus && refs.current[id]) refs.current[id].focus();
  };
  const onKey = (e, i) => {
    const n = TABS.length;
    const j = { ArrowRight: (i + 1) % n, ArrowLeft: (i + n - 1) % n, Home: 0, End: n - 1 }[e.key];
    if (j === undefined) return;
    e.preventDefault();
    go(TABS[j][0], true);
  };
  return html`<div class="tabs env-tabs" role="tablist" aria-label="Environment sections">
    ${TABS.map(([id, label], i) => html`<button type="button" role="tab" id=${"env-tab-" + id}
      aria-selected=${id === current} aria-controls=${id === current ? "env-panel-" + id : undefined} tabindex=${id === current ? 0 : -1}
      class=${id === current ? "active" : ""}
      ref=${(el) => { refs.current[id] = el; }} onClick=${() => go(id)} onKeyDown=${(e) => onKey(e, i)}>${label}</button>`)}
  </div>`;
}
