// Typed values. Drafts keep every value as text ("raw") so half-typed input survives; `parseRaw`
// turns it into the JSON value of the flag's type. Also: canonical JSON for comparing values, and
// the variant names a flag can report.

import type { FlagDoc, FlagType } from "./types";

export type Parsed = { ok: true; value: unknown } | { ok: false; error: string };

export function parseRaw(type: FlagType, raw: string): Parsed {
  switch (type) {
    case "boolean":
      if (raw === "true") return { ok: true, value: true };
      if (raw === "false") return { ok: true, value: false };
      return { ok: false, error: "Choose true or false." };
    case "string":
      return { ok: true, value: raw };
    case "integer": {
      const t = raw.trim();
      if (!/^-?\d+$/.test(t)) return { ok: false, error: "Enter a whole number." };
      const n = Number(t);
      if (!Number.isSafeInteger(n))
        return { ok: false, error: "Too large: at most 9007199254740991 in either direction." };
      return { ok: true, value: n };
    }
    case "json":
      try {
        return { ok: true, value: JSON.parse(raw) };
      } catch (e) {
        return { ok: false, error: jsonErrorMessage(raw, e) };
      }
  }
}

/** A readable JSON parse error with line and column when the browser gives a position. */
export function jsonErrorMessage(text: string, e: unknown): string {
  if (!text.trim()) return "Enter a JSON value.";
  const message = e instanceof Error ? e.message : String(e);
  const pos = /position (\d+)/.exec(message);
  if (pos) {
    const at = Number(pos[1]);
    const before = text.slice(0, at);
    const line = before.split("\n").length;
    const column = at - before.lastIndexOf("\n");
    const clean = message.replace(/ in JSON at position \d+.*$/, "").replace(/ at position \d+.*$/, "");
    return `Invalid JSON: ${clean} (line ${line}, column ${column})`;
  }
  return `Invalid JSON: ${message}`;
}

export function rawOf(type: FlagType, value: unknown): string {
  switch (type) {
    case "boolean":
      return value === true ? "true" : value === false ? "false" : JSON.stringify(value);
    case "string":
      return typeof value === "string" ? value : JSON.stringify(value);
    case "integer":
      return typeof value === "number" ? String(value) : JSON.stringify(value);
    case "json":
      return prettyJson(value);
  }
}

export function prettyJson(value: unknown): string {
  const compact = JSON.stringify(value) ?? "null";
  return compact.length <= 60 ? compact : JSON.stringify(value, null, 2);
}

export function defaultRaw(type: FlagType, on: boolean): string {
  switch (type) {
    case "boolean":
      return on ? "true" : "false";
    case "string":
      return on ? "on" : "off";
    case "integer":
      return on ? "1" : "0";
    case "json":
      return "{}";
  }
}

/** A value converted to another flag type, kept when it reads as one, else that type's default. */
export function convertRaw(from: FlagType, to: FlagType, raw: string, on: boolean): string {
  if (from === to) return raw;
  const parsed = parseRaw(from, raw);
  const value = parsed.ok ? parsed.value : raw;
  switch (to) {
    case "json":
      return prettyJson(value);
    case "string":
      return typeof value === "string" ? value : JSON.stringify(value);
    case "boolean":
      return value === true || value === "true" ? "true" : value === false || value === "false" ? "false" : defaultRaw(to, on);
    case "integer": {
      const s = typeof value === "string" ? value.trim() : JSON.stringify(value);
      return parseRaw("integer", s).ok ? s : defaultRaw(to, on);
    }
  }
}

/** JSON with object keys sorted: equal values give equal text. */
export function canonical(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value as object).sort()) out[k] = sortKeys((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

/** Which named variant has this value, if any (the name the core reports for it). */
export function variantFor(variants: { key: string; value: unknown }[], value: unknown): string | undefined {
  const c = canonical(value);
  return variants.find((v) => canonical(v.value) === c)?.key;
}

/**
 * The variant names a flag can report (core: compile.rs `variant_name`), for prerequisite
 * pickers: its named variants, then the names of its other values.
 */
export function reportedVariants(flag: FlagDoc): string[] {
  const named = (flag.variants ?? []).map((v) => ({ key: v.key, value: v.value }));
  const out: string[] = named.map((v) => v.key);
  const add = (value: unknown, role: string) => {
    const n = variantFor(named, value);
    let name: string;
    if (n) name = n;
    else if (typeof value === "string" && value.length > 0 && [...value].length <= 100) name = value;
    else if (typeof value === "boolean") name = String(value);
    else if (typeof value === "number") name = String(value);
    else name = role;
    if (!out.includes(name)) out.push(name);
  };
  const on = flag.default_value !== undefined && flag.default_value !== null ? flag.default_value : flag.flag_type === "boolean" ? true : null;
  add(on, "default");
  add(flag.disabled_value !== undefined && flag.disabled_value !== null ? flag.disabled_value : false, "disabled");
  flag.rules.forEach((r, i) => {
    if (r.variant !== undefined && r.variant !== null) add(r.variant, `rules[${i}]`);
  });
  return out;
}
