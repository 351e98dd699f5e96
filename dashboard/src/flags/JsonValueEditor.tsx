// Typed value inputs: a JSON editor with live validation, an input per flag type (switch, text,
// whole number, JSON), and a picker of a flag's named variants with a custom value.

import { useId, useState } from "react";
import { describedBy, FieldBox, Switch } from "./controls";
import { canonical, parseRaw, prettyJson, type FlagType, type VariantDraft } from "./model";

/** A JSON textarea that says, as you type, whether the text is JSON and where it is not. */
export function JsonValueEditor({
  label,
  value,
  onChange,
  error,
  hint,
  field,
  disabled,
  rows,
  requireObject,
}: {
  label: string;
  value: string;
  onChange: (text: string) => void;
  error?: string;
  hint?: string;
  field?: string;
  disabled?: boolean;
  rows?: number;
  /** Only a JSON object is accepted. */
  requireObject?: boolean;
}) {
  const id = useId();
  const parsed = parseRaw("json", value);
  let problem = parsed.ok ? undefined : parsed.error;
  if (parsed.ok && requireObject && (typeof parsed.value !== "object" || parsed.value === null || Array.isArray(parsed.value)))
    problem = "Enter a JSON object, such as {\"targetingKey\": \"user-1\"}.";
  const shown = problem ?? error;
  return (
    <FieldBox id={id} label={label} hint={hint} error={shown} field={field} className="json-field">
      <textarea
        id={id}
        className="json-editor"
        value={value}
        rows={rows ?? Math.min(12, Math.max(3, value.split("\n").length + 1))}
        spellCheck={false}
        autoCapitalize="off"
        autoCorrect="off"
        disabled={disabled}
        aria-invalid={shown ? true : undefined}
        aria-describedby={describedBy(id, hint, shown)}
        onChange={(e) => onChange(e.target.value)}
      />
      <div className="json-status">
        <span className={problem ? "json-bad" : "json-ok"} aria-live="polite">
          {problem ? "Not valid JSON" : "Valid JSON"}
        </span>
        {!disabled && parsed.ok && (
          <button
            type="button"
            className="link"
            onClick={() => onChange(JSON.stringify(parsed.value, null, 2))}
          >
            Format<span className="visually-hidden"> {label}</span>
          </button>
        )}
      </div>
    </FieldBox>
  );
}

/** A whole-number input: characters that cannot be part of one are refused as they are typed. */
export function IntegerInput({
  label,
  value,
  onChange,
  error,
  hint,
  field,
  disabled,
}: {
  label: string;
  value: string;
  onChange: (text: string) => void;
  error?: string;
  hint?: string;
  field?: string;
  disabled?: boolean;
}) {
  const id = useId();
  const [refused, setRefused] = useState<string | null>(null);
  const parsed = value === "" ? undefined : parseRaw("integer", value);
  const problem = parsed && !parsed.ok ? parsed.error : undefined;
  const shown = error ?? problem;
  const note = refused ? `${JSON.stringify(refused)} is not allowed: whole numbers only.` : undefined;
  return (
    <FieldBox id={id} label={label} hint={note ?? hint} error={shown} field={field}>
      <input
        id={id}
        type="text"
        inputMode="numeric"
        autoComplete="off"
        value={value}
        disabled={disabled}
        aria-invalid={shown ? true : undefined}
        aria-describedby={describedBy(id, note ?? hint, shown)}
        onChange={(e) => {
          const v = e.target.value.trim();
          if (/^-?\d*$/.test(v)) {
            setRefused(null);
            onChange(v);
          } else {
            const bad = [...v].find((c, i) => !(/\d/.test(c) || (c === "-" && i === 0))) ?? v;
            setRefused(bad);
          }
        }}
      />
    </FieldBox>
  );
}

/** The input for one value of a flag of `type`. */
export function TypedValueInput({
  type,
  raw,
  onChange,
  label,
  error,
  hint,
  field,
  disabled,
}: {
  type: FlagType;
  raw: string;
  onChange: (raw: string) => void;
  label: string;
  error?: string;
  hint?: string;
  field?: string;
  disabled?: boolean;
}) {
  const id = useId();
  switch (type) {
    case "boolean":
      return (
        <FieldBox id={id} label={label} hint={hint} error={error} field={field}>
          <Switch
            id={id}
            label={label}
            checked={raw === "true"}
            onChange={(on) => onChange(on ? "true" : "false")}
            onText="true"
            offText="false"
            disabled={disabled}
            describedby={describedBy(id, hint, error)}
          />
        </FieldBox>
      );
    case "string":
      return (
        <FieldBox id={id} label={label} hint={hint} error={error} field={field}>
          <input
            id={id}
            value={raw}
            disabled={disabled}
            aria-invalid={error ? true : undefined}
            aria-describedby={describedBy(id, hint, error)}
            onChange={(e) => onChange(e.target.value)}
          />
        </FieldBox>
      );
    case "integer":
      return (
        <IntegerInput label={label} value={raw} onChange={onChange} error={error} hint={hint} field={field} disabled={disabled} />
      );
    case "json":
      return (
        <JsonValueEditor label={label} value={raw} onChange={onChange} error={error} hint={hint} field={field} disabled={disabled} />
      );
  }
}

/** A short text for a value in option labels. */
export function shortValue(type: FlagType, raw: string): string {
  if (type === "string") return JSON.stringify(raw);
  const p = parseRaw(type, raw);
  const text = p.ok ? JSON.stringify(p.value) : raw;
  return text.length > 40 ? text.slice(0, 39) + "…" : text;
}

/**
 * Chooses a value of the flag: one of its named variants, or a custom value typed in; with
 * `unsetText`, also "not set" (raw null).
 */
export function ValueChoice({
  type,
  variants,
  raw,
  onChange,
  label,
  unsetText,
  error,
  hint,
  field,
  disabled,
}: {
  type: FlagType;
  variants: VariantDraft[];
  raw: string | null;
  onChange: (raw: string | null) => void;
  label: string;
  unsetText?: string;
  error?: string;
  hint?: string;
  field?: string;
  disabled?: boolean;
}) {
  const id = useId();
  const [custom, setCustom] = useState(false);
  const named = variants
    .map((v, i) => ({ v, i, parsed: parseRaw(type, v.raw) }))
    .filter((x) => x.v.key.trim() && x.parsed.ok);
  const current = raw === null ? undefined : parseRaw(type, raw);
  const match =
    current && current.ok ? named.find((x) => x.parsed.ok && canonical(x.parsed.value) === canonical(current.value)) : undefined;

  if (type === "boolean") {
    const nameOf = (b: boolean) => named.find((x) => x.parsed.ok && x.parsed.value === b)?.v.key;
    const opt = (b: boolean) => (nameOf(b) ? `${b} (${nameOf(b)})` : String(b));
    return (
      <FieldBox id={id} label={label} hint={hint} error={error} field={field}>
        <select
          id={id}
          value={raw ?? ""}
          disabled={disabled}
          aria-invalid={error ? true : undefined}
          aria-describedby={describedBy(id, hint, error)}
          onChange={(e) => onChange(e.target.value === "" ? null : e.target.value)}
        >
          {unsetText !== undefined && <option value="">{unsetText}</option>}
          <option value="true">{opt(true)}</option>
          <option value="false">{opt(false)}</option>
        </select>
      </FieldBox>
    );
  }

  if (named.length === 0 && unsetText === undefined) {
    return (
      <TypedValueInput type={type} raw={raw ?? ""} onChange={onChange} label={label} error={error} hint={hint} field={field} disabled={disabled} />
    );
  }

  const selected = raw === null ? "unset" : custom || !match ? "custom" : `v:${match.i}`;
  return (
    <div className="value-choice" data-field={field}>
      <FieldBox id={id} label={label} hint={selected === "custom" ? undefined : hint} error={selected === "custom" ? undefined : error}>
        <select
          id={id}
          value={selected}
          disabled={disabled}
          aria-invalid={error && selected !== "custom" ? true : undefined}
          onChange={(e) => {
            const v = e.target.value;
            if (v === "unset") {
              setCustom(false);
              onChange(null);
            } else if (v === "custom") {
              setCustom(true);
              if (raw === null) onChange(type === "json" ? "{}" : type === "integer" ? "0" : "");
            } else {
              setCustom(false);
              const variant = variants[Number(v.slice(2))];
              const p = parseRaw(type, variant.raw);
              onChange(p.ok && type === "json" ? prettyJson(p.value) : variant.raw);
            }
          }}
        >
          {unsetText !== undefined && <option value="unset">{unsetText}</option>}
          {named.map((x) => (
            <option key={x.v.id} value={`v:${x.i}`}>
              {x.v.key} — {shortValue(type, x.v.raw)}
            </option>
          ))}
          <option value="custom">Custom value…</option>
        </select>
      </FieldBox>
      {selected === "custom" && (
        <TypedValueInput
          type={type}
          raw={raw ?? ""}
          onChange={onChange}
          label={`${label} (custom)`}
          error={error}
          hint={hint}
          disabled={disabled}
        />
      )}
    </div>
  );
}
