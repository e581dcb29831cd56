// A modal <dialog>: mounted when open, shown with showModal() so the page behind is inert,
// Escape closes it (through onClose, so the owner unmounts it), focus goes to its first field.
import { html, useEffect, useRef } from "../lib.js";

let counter = 0;

export function Modal({ title, onClose, children, wide }) {
  const ref = useRef(null);
  const idRef = useRef(null);
  if (!idRef.current) idRef.current = `env-dialog-${++counter}`;
  const id = idRef.current;

  useEffect(() => {
    const dialog = ref.current;
    const opener = document.activeElement;
    if (!dialog.open) dialog.showModal();
    // The field marked data-autofocus, else the first field (else the first button).
    const first = dialog.querySelector("[data-autofocus]:not([disabled])") || dialog.querySelector(
      "input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea:not([disabled])," +
      " .env-dialog-body button:not([disabled])"
    );
    if (first) first.focus();
    const onCancel = (e) => { e.preventDefault(); onClose(); };
    dialog.addEventListener("cancel", onCancel);
    return () => {
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
      // Back to the control that opened it, when it is still there.
      if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
    };
  }, []);

  return html`<dialog ref=${ref} class=${wide ? "env-dialog env-dialog-wide" : "env-dialog"}
      aria-labelledby=${id + "-title"}>
    <h2 id=${id + "-title"} class="env-dialog-title">${title}</h2>
    <div class="env-dialog-body">${children}</div>
  </dialog>`;
}
