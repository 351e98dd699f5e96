// Building blocks shared by the workspace and project screens: a form dialog, the dialog that
// shows a new secret once, a typed confirmation for destructive actions, labelled selects and
// switches, relative times and empty states.

import {
  useEffect,
  useId,
  useRef,
  useState,
  type ReactNode,
  type SelectHTMLAttributes,
} from "react";
import { ApiError, describe } from "../api";
import { ago, ErrorBanner, Modal } from "../ui";
import "./pages.css";

export { Modal } from "../ui";

/**
 * Shows a secret that exists only in this answer of the server: a read-only field, a copy
 * button and a plain statement that it will not be shown again. The secret lives only in the
 * caller's component state and is gone once the dialog closes.
 */
export function SecretDialog({
  title,
  label,
  secret,
  children,
  onClose,
}: {
  title: string;
  /** The label of the field holding the secret, e.g. "SDK key". */
  label: string;
  secret: string;
  children?: ReactNode;
  onClose: () => void;
}) {
  const [copied, setCopied] = useState<"yes" | "no" | null>(null);
  const inputRef = useRef<HTMLInputElement>(null);
  const id = useId();
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(secret);
      setCopied("yes");
    } catch {
      inputRef.current?.select();
      setCopied("no");
    }
  };
  return (
    <Modal title={title} onClose={onClose} wide>
      <div className="banner banner-warn secret-warning">
        <strong>Copy it now: you will not see it again.</strong> Checkgate keeps only a hash. If
        it is lost, revoke it and create another.
      </div>
      {children}
      <div className="field secret-field">
        <label htmlFor={id}>{label}</label>
        <div className="secret-row">
          <input
            id={id}
            ref={inputRef}
            className="mono"
            readOnly
            value={secret}
            spellCheck={false}
            autoComplete="off"
            onFocus={(e) => e.currentTarget.select()}
          />
          <button type="button" className="primary" onClick={copy}>
            {copied === "yes" ? "Copied" : "Copy"}
          </button>
        </div>
        <p className="hint" role="status" aria-live="polite">
          {copied === "yes"
            ? "Copied to the clipboard."
            : copied === "no"
              ? "The clipboard is not available here: the text is selected, press Ctrl+C (⌘C) to copy it."
              : ""}
        </p>
      </div>
      <div className="actions">
        <button type="button" onClick={onClose}>
          {copied === "yes" ? "Done" : "I have stored it, close"}
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
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const id = useId();
  const matches = typed.trim() === expected.trim();
  return (
    <Modal title={title} onClose={() => !busy && onCancel()}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          if (!matches || busy) return;
          setBusy(true);
          setError(null);
          try {
            await onConfirm();
          } catch (err) {
            setError(err);
            setBusy(false);
          }
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

/** A labelled <select> with an optional hint and error, like `Field`. */
export function SelectField({
  label,
  hint,
  error,
  children,
  ...select
}: {
  label: string;
  hint?: string;
  error?: string;
  children: ReactNode;
} & SelectHTMLAttributes<HTMLSelectElement>) {
  const id = useId();
  return (
    <div className={"field" + (error ? " field-invalid" : "")}>
      <label htmlFor={id}>{label}</label>
      <select
        id={id}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? id + "-error" : hint ? id + "-hint" : undefined}
        {...select}
      >
        {children}
      </select>
      {hint && !error && (
        <p className="hint" id={id + "-hint"}>
          {hint}
        </p>
      )}
      {error && (
        <p className="error-text" id={id + "-error"} role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

/** An on/off switch: a button with role="switch" and its visible label. */
export function Switch({
  label,
  context,
  checked,
  onChange,
  disabled,
  hint,
}: {
  label: string;
  /** Said to screen readers after the label, e.g. " in Staging" when several switches share it. */
  context?: string;
  checked: boolean;
  onChange: (next: boolean) => void;
  disabled?: boolean;
  hint?: ReactNode;
}) {
  const id = useId();
  return (
    <div className="switch-row">
      <button
        type="button"
        role="switch"
        id={id}
        aria-checked={checked}
        aria-describedby={hint ? id + "-hint" : undefined}
        className={"switch" + (checked ? " switch-on" : "")}
        disabled={disabled}
        onClick={() => onChange(!checked)}
      >
        <span className="switch-knob" aria-hidden="true" />
        <span className="switch-label">
          {label}
          {context && <span className="visually-hidden">{context}</span>}
        </span>
      </button>
      {hint && (
        <span className="hint" id={id + "-hint"}>
          {hint}
        </span>
      )}
    </div>
  );
}

/** Re-renders every `ms` milliseconds so relative times stay true. */
export function useNow(ms = 30_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

/** A relative time ("3 minutes ago") with the exact local time as its tooltip. */
export function When({ iso, now, empty = "never" }: { iso: string | null | undefined; now?: number; empty?: string }) {
  if (!iso) return <span className="muted">{empty}</span>;
  const exact = new Date(iso);
  const title = Number.isNaN(exact.getTime()) ? iso : exact.toLocaleString();
  return (
    <time dateTime={iso} title={title}>
      {ago(iso, now)}
    </time>
  );
}

/** An empty state: what is missing and the next step. */
export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <p className="empty-title">{title}</p>
      {children && <div className="empty-body">{children}</div>}
    </div>
  );
}

/** The title row of a screen, with its main actions on the right. */
export function PageHeader({
  title,
  children,
  lead,
}: {
  title: ReactNode;
  children?: ReactNode;
  lead?: ReactNode;
}) {
  return (
    <header className="page-header">
      <div className="page-title">
        <h1>{title}</h1>
        {lead && <p className="lead">{lead}</p>}
      </div>
      {children && <div className="page-actions">{children}</div>}
    </header>
  );
}

/** A loading line that screen readers announce. */
export function Loading({ what = "Loading…" }: { what?: string }) {
  return (
    <p className="loading" role="status">
      {what}
    </p>
  );
}

/** For a 403 or 404 when loading a screen: a plain statement instead of a raw error. */
export function LoadError({ error }: { error: unknown }) {
  if (error instanceof ApiError && error.status === 403) {
    return (
      <div className="banner banner-info" role="alert">
        You do not have access to this. {describe(error)}
      </div>
    );
  }
  if (error instanceof ApiError && error.status === 404) {
    return (
      <div className="banner banner-info" role="alert">
        This does not exist, or you are not a member of its project.
      </div>
    );
  }
  return <ErrorBanner error={error} />;
}

/**
 * Splits a server error between a form's fields and its banner: a 400, 409 or 422 whose message
 * starts with one of `fields` ("slug must be …", "email is not …"), or a 409 naming one ("a user
 * with email … already exists"), belongs to that field;
 * anything else goes to the banner (`rest`).
 */
export function formErrors<F extends string>(
  error: unknown,
  fields: readonly F[],
): { field: Partial<Record<F, string>>; rest: unknown } {
  if (error instanceof ApiError && [400, 409, 422].includes(error.status)) {
    const first = /^([a-z_]+)\b/.exec(error.message)?.[1];
    // A conflict names the clashing field: "a user with email … already exists".
    const clash = error.status === 409 ? /\bwith ([a-z_]+)\b/.exec(error.message)?.[1] : undefined;
    const hit = fields.find((f) => f === first) ?? fields.find((f) => f === clash);
    if (hit) return { field: { [hit]: error.message } as Partial<Record<F, string>>, rest: null };
  }
  return { field: {}, rest: error };
}

/** A role badge with a word, not only a colour. */
export function RoleBadge({ role }: { role: string }) {
  return <span className={`badge role role-${role}`}>{role}</span>;
}

/** An environment's colour dot and name. */
export function EnvName({ name, color, production }: { name: string; color?: string; production?: boolean }) {
  return (
    <span className="env-name">
      <span className="env-dot" style={{ background: color ?? "#6366f1" }} aria-hidden="true" />
      {name}
      {production && <span className="badge prod">production</span>}
    </span>
  );
}
