// Modal dialogs: the native <dialog> frame (focus is trapped, Escape closes), a confirmation
// whose button names the action, and a destructive confirmation that asks for a typed name.

import { useEffect, useId, useRef, useState, type ReactNode } from "react";
import { ErrorBanner } from "./page";

/** A modal dialog (native <dialog>: focus is trapped, Escape closes) around arbitrary content. */
export function Modal({
  title,
  onClose,
  children,
  wide,
  closeLabel,
}: {
  title: string;
  onClose: () => void;
  children: ReactNode;
  wide?: boolean;
  /** When set, a close button with this label is shown under the content. */
  closeLabel?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) {
      if (typeof d.showModal === "function") d.showModal();
      else d.setAttribute("open", "");
    }
  }, []);
  return (
    <dialog
      ref={ref}
      className={"dialog" + (wide ? " dialog-wide" : "")}
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <h2 id={titleId}>{title}</h2>
      {children}
      {closeLabel && (
        <div className="actions">
          <button type="button" onClick={onClose}>
            {closeLabel}
          </button>
        </div>
      )}
    </dialog>
  );
}

/**
 * A confirmed action: busy while it runs; when it fails, the error to show and the buttons
 * usable again (on success the caller closes the dialog).
 */
function useConfirmedAction(action: () => void | Promise<void>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return { busy, error, run };
}

/**
 * A modal confirmation. `body` says exactly what will happen (and what is lost); the confirm
 * button is labelled with the action.
 */
export function ConfirmDialog({
  title,
  body,
  confirmLabel,
  danger,
  onConfirm,
  onCancel,
}: {
  title: string;
  body: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => void | Promise<void>;
  onCancel: () => void;
}) {
  const { busy, error, run } = useConfirmedAction(onConfirm);
  return (
    <Modal title={title} onClose={onCancel}>
      <div className="dialog-body">{body}</div>
      <ErrorBanner error={error} />
      <div className="actions">
        <button type="button" onClick={onCancel} disabled={busy}>
          Cancel
        </button>
        <button type="button" className={danger ? "danger" : "primary"} disabled={busy} onClick={() => void run()}>
          {confirmLabel}
        </button>
      </div>
    </Modal>
  );
}

/**
 * A destructive confirmation that names what is lost and asks the user to type a name
 * (a project's) before the button acts.
 */
export function TypeToConfirmDialog({
  title,
  body,
  expected,
  inputLabel,
  confirmLabel,
  onConfirm,
  onCancel,
}: {
  title: string;
  body: ReactNode;
  expected: string;
  inputLabel: string;
  confirmLabel: string;
  onConfirm: () => Promise<void> | void;
  onCancel: () => void;
}) {
  const [typed, setTyped] = useState("");
  const { busy, error, run } = useConfirmedAction(onConfirm);
  const id = useId();
  const matches = typed.trim() === expected.trim();
  return (
    <Modal title={title} onClose={() => !busy && onCancel()}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          if (!matches || busy) return;
          await run();
        }}
      >
        <div className="dialog-body">{body}</div>
        <div className="field">
          <label htmlFor={id}>{inputLabel}</label>
          <p className="hint" id={id + "-hint"}>
            Enter <strong>{expected}</strong> exactly.
          </p>
          <input
            id={id}
            aria-describedby={id + "-hint"}
            value={typed}
            onChange={(e) => setTyped(e.target.value)}
            autoComplete="off"
            spellCheck={false}
            autoFocus
          />
        </div>
        <ErrorBanner error={error} />
        <div className="actions">
          <button type="button" onClick={onCancel} disabled={busy}>
            Cancel
          </button>
          <button type="submit" className="danger" disabled={!matches || busy}>
            {busy ? "Deleting…" : confirmLabel}
          </button>
        </div>
      </form>
    </Modal>
  );
}
