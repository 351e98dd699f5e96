// Form controls of the flag and segment editors: a switch, a list-of-values input, and labelled
// wrappers that carry `data-field` so a server error can focus the field it names.

import {
  useId,
  useRef,
  useState,
  type ClipboardEvent,
  type KeyboardEvent,
  type ReactNode,
  type SelectHTMLAttributes,
  type TextareaHTMLAttributes,
} from "react";

/** The ids wiring a control to its hint and error. */
export function describedBy(id: string, hint?: string, error?: string): string | undefined {
  const ids = [error ? id + "-error" : "", hint ? id + "-hint" : ""].filter(Boolean).join(" ");
  return ids || undefined;
}

/** A label, a control, a hint and an error; `field` is the editor path the error belongs to. */
export function FieldBox({
  id,
  label,
  hint,
  error,
  field,
  className,
  children,
  hideLabel,
}: {
  id: string;
  label: ReactNode;
  hint?: ReactNode;
  error?: string;
  field?: string;
  className?: string;
  children: ReactNode;
  hideLabel?: boolean;
}) {
  return (
    <div className={"field " + (className ?? "") + (error ? " field-invalid" : "")} data-field={field}>
      <label htmlFor={id} className={hideLabel ? "visually-hidden" : undefined}>
        {label}
      </label>
      {children}
      {hint && (
        <p className="hint" id={id + "-hint"}>
          {hint}
        </p>
      )}
      {error && (
        <p className="error-text" id={id + "-error"}>
          {error}
        </p>
      )}
    </div>
  );
}

export function TextAreaField({
  label,
  hint,
  error,
  field,
  ...rest
}: { label: string; hint?: string; error?: string; field?: string } & TextareaHTMLAttributes<HTMLTextAreaElement>) {
  const id = useId();
  return (
    <FieldBox id={id} label={label} hint={hint} error={error} field={field}>
      <textarea id={id} aria-invalid={error ? true : undefined} aria-describedby={describedBy(id, hint, error)} {...rest} />
    </FieldBox>
  );
}

export function SelectField({
  label,
  hint,
  error,
  field,
  children,
  className,
  ...rest
}: { label: string; hint?: string; error?: string; field?: string } & SelectHTMLAttributes<HTMLSelectElement>) {
  const id = useId();
  return (
    <FieldBox id={id} label={label} hint={hint} error={error} field={field} className={className}>
      <select id={id} aria-invalid={error ? true : undefined} aria-describedby={describedBy(id, hint, error)} {...rest}>
        {children}
      </select>
    </FieldBox>
  );
}

/** An on/off switch: a button with role "switch" whose name is `label`. */
export function Switch({
  label,
  checked,
  onChange,
  disabled,
  busy,
  onText = "On",
  offText = "Off",
  id,
  describedby,
}: {
  label: string;
  checked: boolean;
  onChange: (next: boolean) => void;
  disabled?: boolean;
  busy?: boolean;
  onText?: string;
  offText?: string;
  id?: string;
  describedby?: string;
}) {
  return (
    <button
      type="button"
      id={id}
      role="switch"
      aria-checked={checked}
      aria-label={label}
      aria-busy={busy || undefined}
      aria-disabled={busy || undefined}
      aria-describedby={describedby}
      className={"switch" + (checked ? " switch-on" : "")}
      disabled={disabled}
      onClick={() => {
        // Busy keeps focus on the switch (a disabled button would drop it) but ignores presses.
        if (!busy) onChange(!checked);
      }}
    >
      <span className="switch-track" aria-hidden="true">
        <span className="switch-thumb" />
      </span>
      <span className="switch-text" aria-hidden="true">
        {checked ? onText : offText}
      </span>
    </button>
  );
}

/**
 * A list of text values: type one and press Enter (or paste several lines); each entered value
 * is a chip with its own remove button. Text left in the box is added when it loses focus.
 */
export function ChipsInput({
  label,
  values,
  onChange,
  hint,
  error,
  field,
  disabled,
  placeholder,
  problem,
  list,
  hideLabel,
}: {
  label: string;
  values: string[];
  onChange: (values: string[]) => void;
  hint?: string;
  error?: string;
  field?: string;
  disabled?: boolean;
  placeholder?: string;
  /** The problem with one value, shown on its chip. */
  problem?: (value: string) => string | undefined;
  /** Id of a datalist of suggestions. */
  list?: string;
  hideLabel?: boolean;
}) {
  const id = useId();
  const [text, setText] = useState("");
  const [note, setNote] = useState("");
  const inputRef = useRef<HTMLInputElement>(null);

  const add = (raw: string[]) => {
    const fresh: string[] = [];
    let dup = "";
    for (const r of raw) {
      const v = r.trim();
      if (!v) continue;
      if (values.includes(v) || fresh.includes(v)) dup = v;
      else fresh.push(v);
    }
    setNote(dup ? `${JSON.stringify(dup)} is already in the list.` : "");
    if (fresh.length) onChange([...values, ...fresh]);
  };
  const onKeyDown = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === "Enter") {
      e.preventDefault();
      if (text.trim()) {
        add([text]);
        setText("");
      }
    } else if (e.key === "Backspace" && text === "" && values.length > 0) {
      onChange(values.slice(0, -1));
      setNote(`Removed ${JSON.stringify(values[values.length - 1])}.`);
    }
  };
  const onPaste = (e: ClipboardEvent<HTMLInputElement>) => {
    const pasted = e.clipboardData.getData("text");
    if (/[\n\r]/.test(pasted)) {
      e.preventDefault();
      add(pasted.split(/[\r\n]+/));
    }
  };
  const problems = values.map((v) => problem?.(v));
  const fullHint = hint ?? "Press Enter after each value; paste several lines to add them all.";
  return (
    <FieldBox id={id} label={label} hint={fullHint} error={error} field={field} className="chips-field" hideLabel={hideLabel}>
      <div className={"chips" + (disabled ? " chips-disabled" : "")} onClick={() => inputRef.current?.focus()}>
        {values.length > 0 && (
          <ul className="chip-list">
            {values.map((v, i) => (
              <li key={v + i} className={"chip" + (problems[i] ? " chip-invalid" : "")} title={problems[i]}>
                <span className="chip-text">{v}</span>
                {problems[i] && <span className="visually-hidden"> ({problems[i]})</span>}
                {!disabled && (
                  <button
                    type="button"
                    className="chip-remove"
                    aria-label={`Remove ${v}`}
                    onClick={(e) => {
                      e.stopPropagation();
                      onChange(values.filter((_, j) => j !== i));
                      inputRef.current?.focus();
                    }}
                  >
                    ×
                  </button>
                )}
              </li>
            ))}
          </ul>
        )}
        {!disabled && (
          <input
            ref={inputRef}
            id={id}
            value={text}
            list={list}
            placeholder={values.length === 0 ? placeholder : undefined}
            aria-invalid={error ? true : undefined}
            aria-describedby={describedBy(id, fullHint, error)}
            onChange={(e) => setText(e.target.value)}
            onKeyDown={onKeyDown}
            onPaste={onPaste}
            onBlur={() => {
              if (text.trim()) {
                add([text]);
                setText("");
              }
            }}
          />
        )}
        {disabled && <input id={id} disabled value="" aria-label={label} className="visually-hidden" readOnly />}
      </div>
      {problems.some(Boolean) && !error && (
        <p className="error-text">{problems.find(Boolean)}</p>
      )}
      <p className="hint chips-note" aria-live="polite">
        {note}
      </p>
    </FieldBox>
  );
}

/** Text for a quoted attribute selector value. */
export function attrValue(s: string): string {
  return s.replace(/["\\]/g, "\\$&");
}

/** Focuses (and scrolls to) the first control of the field an error names. */
export function focusField(field: string | undefined): boolean {
  if (!field) return false;
  const box = document.querySelector(`[data-field="${attrValue(field)}"]`);
  if (!box) return false;
  const control =
    box.querySelector<HTMLElement>("input:not([type=hidden]):not(:disabled), select:not(:disabled), textarea:not(:disabled)") ??
    box.querySelector<HTMLElement>("button:not(:disabled)");
  (control ?? (box as HTMLElement)).focus?.();
  box.scrollIntoView?.({ block: "center", behavior: "smooth" });
  return true;
}
