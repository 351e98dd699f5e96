// Labelled form controls: a text input, a select and an on/off switch. Every control has a
// visible label; a hint or an error is wired to it with aria-describedby.

import { useId, type InputHTMLAttributes, type ReactNode, type SelectHTMLAttributes } from "react";

/** The attributes that tie a control to its label's hint or error. */
function controlAria(id: string, hint: string | undefined, error: string | undefined) {
  return {
    id,
    "aria-invalid": error ? true : undefined,
    "aria-describedby": error ? id + "-error" : hint ? id + "-hint" : undefined,
  } as const;
}

/** A field's frame: the label, then the control, then its hint or (instead) its error. */
function FieldFrame({
  id,
  label,
  hint,
  error,
  children,
}: {
  id: string;
  label: string;
  hint?: string;
  error?: string;
  children: ReactNode;
}) {
  return (
    <div className={"field" + (error ? " field-invalid" : "")}>
      <label htmlFor={id}>{label}</label>
      {children}
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

/** A labelled input with an optional hint and error, wired with aria attributes. */
export function Field({
  label,
  error,
  hint,
  ...input
}: { label: string; error?: string; hint?: string } & InputHTMLAttributes<HTMLInputElement>) {
  const id = useId();
  return (
    <FieldFrame id={id} label={label} hint={hint} error={error}>
      <input {...controlAria(id, hint, error)} {...input} />
    </FieldFrame>
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
    <FieldFrame id={id} label={label} hint={hint} error={error}>
      <select {...controlAria(id, hint, error)} {...select}>
        {children}
      </select>
    </FieldFrame>
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
