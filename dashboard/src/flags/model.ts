// Flags and segments: the API's shapes, the editors' working copies ("drafts") and the
// conversions between them, client-side checks that mirror the evaluation core
// (core/src/compile.rs, condition.rs, semver.rs, date.rs), and the mapping of the server's
// 422 paths to the editors' fields.

import type { Environment } from "../types";

export type FlagType = "boolean" | "string" | "integer" | "json";
export const FLAG_TYPES: FlagType[] = ["boolean", "string", "integer", "json"];

export type Operator =
  | "equals"
  | "not_equals"
  | "contains"
  | "starts_with"
  | "ends_with"
  | "in"
  | "not_in"
  | "regex"
  | "lt"
  | "lte"
  | "gt"
  | "gte"
  | "semver_lt"
  | "semver_eq"
  | "semver_gt"
  | "date_before"
  | "date_after"
  | "in_segment";

export interface ConditionDoc {
  attribute: string;
  operator: Operator;
  values: string[];
}

export interface WeightDoc {
  variant: string;
  /** Share in 1/100,000. */
  weight: number;
}

export interface SplitDoc {
  weights: WeightDoc[];
}

export interface RuleDoc {
  attribute?: string;
  operator?: Operator;
  values?: string[];
  segment_key?: string;
  conditions?: ConditionDoc[];
  /** The value served when the rule matches (Checkgate's name). */
  variant?: unknown;
  split?: SplitDoc;
  description?: string;
}

export interface VariantDoc {
  key: string;
  value: unknown;
  description?: string;
}

export interface PrerequisiteDoc {
  key: string;
  variants?: string[];
}

export interface FlagDoc {
  key: string;
  is_enabled: boolean;
  rollout_percentage: number | null;
  description: string | null;
  rules: RuleDoc[];
  flag_type: FlagType;
  default_value?: unknown;
  disabled_value?: unknown;
  variants?: VariantDoc[];
  split?: SplitDoc | null;
  bucket_by?: string | null;
  salt?: string | null;
  prerequisites?: PrerequisiteDoc[];
  tags?: string[];
}

/** A flag as the API answers it. */
export interface Flag extends FlagDoc {
  version: number;
  /** RFC 3339; being added to the API, so optional. */
  updated_at?: string;
  created_at?: string;
}

export interface SegmentDoc {
  key: string;
  name: string;
  description?: string | null;
  included?: string[];
  excluded?: string[];
  rules: RuleDoc[];
}

export interface Segment extends SegmentDoc {
  version: number;
  updated_at?: string;
}

export type EvalReason = "STATIC" | "TARGETING_MATCH" | "SPLIT" | "DISABLED" | "DEFAULT" | "ERROR";

export interface EvalResult {
  key: string;
  value: unknown;
  variant: string | null;
  reason: EvalReason;
  error_code?: string;
  /** Checkgate's `enabled`: false when off, outside the rollout, blocked by a prerequisite, or in error. */
  enabled?: boolean;
  version: number;
}

/** An environment, with the production mark the API is gaining. */
export interface Env extends Environment {
  is_production?: boolean;
}

export const SPLIT_SCALE = 100_000;
export const MAX_KEY_LEN = 100;

// ---------------------------------------------------------------------------------------------
// Operators

export type ValueKind = "text" | "regex" | "number" | "semver" | "date" | "segment";

export interface OperatorInfo {
  op: Operator;
  label: string;
  kind: ValueKind;
  /** Offered as a list of values (any matches); single-valued otherwise. */
  multi: boolean;
}

export const OPERATORS: OperatorInfo[] = [
  { op: "equals", label: "is", kind: "text", multi: false },
  { op: "not_equals", label: "is not", kind: "text", multi: false },
  { op: "in", label: "is one of", kind: "text", multi: true },
  { op: "not_in", label: "is not one of", kind: "text", multi: true },
  { op: "contains", label: "contains", kind: "text", multi: false },
  { op: "starts_with", label: "starts with", kind: "text", multi: false },
  { op: "ends_with", label: "ends with", kind: "text", multi: false },
  { op: "regex", label: "matches regex", kind: "regex", multi: false },
  { op: "lt", label: "< (number)", kind: "number", multi: false },
  { op: "lte", label: "≤ (number)", kind: "number", multi: false },
  { op: "gt", label: "> (number)", kind: "number", multi: false },
  { op: "gte", label: "≥ (number)", kind: "number", multi: false },
  { op: "semver_lt", label: "version before", kind: "semver", multi: false },
  { op: "semver_eq", label: "version equals", kind: "semver", multi: false },
  { op: "semver_gt", label: "version after", kind: "semver", multi: false },
  { op: "date_before", label: "date before", kind: "date", multi: false },
  { op: "date_after", label: "date after", kind: "date", multi: false },
  { op: "in_segment", label: "is in segment", kind: "segment", multi: false },
];

export const OPERATOR_GROUPS: { label: string; ops: Operator[] }[] = [
  { label: "Text", ops: ["equals", "not_equals", "in", "not_in", "contains", "starts_with", "ends_with", "regex"] },
  { label: "Number", ops: ["lt", "lte", "gt", "gte"] },
  { label: "Semantic version", ops: ["semver_lt", "semver_eq", "semver_gt"] },
  { label: "Date", ops: ["date_before", "date_after"] },
  { label: "Segment", ops: ["in_segment"] },
];

export function operatorInfo(op: Operator): OperatorInfo {
  return OPERATORS.find((o) => o.op === op) ?? OPERATORS[0];
}

export const VALUE_HINTS: Record<ValueKind, string | undefined> = {
  text: "Compared exactly (case-sensitive); numbers compare as numbers.",
  regex: "RE2 syntax, searched anywhere in the value (anchor with ^ and $). No look-around or back-references.",
  number: "A number such as 42 or 3.5.",
  semver: "A version such as 2.4.0 (a leading v, and 1.2 for 1.2.0, are accepted).",
  date: "RFC 3339 such as 2026-01-31T09:00:00Z or 2026-01-31, or Unix milliseconds.",
  segment: undefined,
};

/** The values a condition keeps when its operator changes. */
export function valuesAfterOperatorChange(from: Operator, to: Operator, values: string[]): string[] {
  const a = operatorInfo(from);
  const b = operatorInfo(to);
  if (a.kind !== b.kind) return [];
  if (!b.multi && values.length > 1) return values.slice(0, 1);
  return values;
}

// ---------------------------------------------------------------------------------------------
// Value checks mirroring the core

const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function isNumberValue(s: string): boolean {
  const t = s.trim();
  return NUMBER_RE.test(t) && Number.isFinite(Number(t));
}

function semverNumber(s: string): boolean {
  return /^\d+$/.test(s) && !(s.length > 1 && s.startsWith("0"));
}

function validIdentifiers(s: string): boolean {
  return s.split(".").every((id) => id.length > 0 && /^[A-Za-z0-9-]+$/.test(id));
}

/** Whether the core reads `s` as a semantic version (core/src/semver.rs). */
export function isSemver(input: string): boolean {
  let s = input.trim();
  if (s.startsWith("v") || s.startsWith("V")) s = s.slice(1);
  const plus = s.indexOf("+");
  if (plus >= 0) {
    if (!validIdentifiers(s.slice(plus + 1))) return false;
    s = s.slice(0, plus);
  }
  const dash = s.indexOf("-");
  if (dash >= 0) {
    if (!validIdentifiers(s.slice(dash + 1))) return false;
    s = s.slice(0, dash);
  }
  const parts = s.split(".");
  if (parts.length > 3) return false;
  return parts.every(semverNumber);
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(m) ? 30 : 31;
}

/** Whether the core reads `s` as an instant: RFC 3339, a date, or Unix milliseconds. */
export function isInstant(input: string): boolean {
  const t = input.trim();
  if (/^-?\d+$/.test(t)) return true;
  const m =
    /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2})))?$/.exec(
      t,
    );
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return false;
  if (m[4] !== undefined) {
    if (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6]) > 60) return false;
    if (m[7] !== undefined && (Number(m[7]) > 23 || Number(m[8]) > 59)) return false;
  }
  return true;
}

/**
 * A problem with a regex, as far as the browser can tell: patterns use RE2 syntax, which
 * JavaScript mostly shares. Look-around and back-references are refused outright; inline flags
 * such as `(?i)` are allowed. Undefined when the pattern looks fine (the server decides).
 */
export function regexProblem(pattern: string): string | undefined {
  if (new TextEncoder().encode(pattern).length > 1024) return "invalid regex: longer than 1024 bytes";
  if (/\(\?<?[=!]/.test(pattern)) return "look-around such as (?=…) is not supported (RE2 syntax)";
  if (/(^|[^\\])(\\\\)*\\[1-9]/.test(pattern)) return "back-references such as \\1 are not supported (RE2 syntax)";
  // JavaScript lacks RE2's inline flags and a few escapes: remove those before asking it.
  const js = pattern
    .replace(/\(\?[imsU-]+\)/g, "")
    .replace(/\(\?[imsU-]+:/g, "(?:")
    .replace(/\(\?P<(\w+)>/g, "(?<$1>")
    .replace(/\\[Azpb]|\\P[A-Za-z]|\\p[A-Za-z]/g, "");
  try {
    new RegExp(js);
    return undefined;
  } catch (e) {
    return "invalid regex: " + (e instanceof Error ? e.message.replace(/^Invalid regular expression: /, "") : String(e));
  }
}

/** The problem with one condition value, as the core would report it; undefined when fine. */
export function valueProblem(kind: ValueKind, value: string): string | undefined {
  switch (kind) {
    case "number":
      return isNumberValue(value) ? undefined : `${JSON.stringify(value)} is not a number`;
    case "semver":
      return isSemver(value) ? undefined : `${JSON.stringify(value)} is not a semantic version`;
    case "date":
      return isInstant(value)
        ? undefined
        : `${JSON.stringify(value)} is not an RFC 3339 timestamp or Unix milliseconds`;
    case "regex":
      return regexProblem(value);
    case "segment":
      return value ? undefined : "choose a segment";
    default:
      return undefined;
  }
}

export function keyProblem(key: string): string | undefined {
  if (!key) return "Enter a key.";
  if (key.length > MAX_KEY_LEN) return `At most ${MAX_KEY_LEN} characters.`;
  const bad = [...key].find((c) => !/[A-Za-z0-9._-]/.test(c));
  if (bad) return `${JSON.stringify(bad)} is not allowed: use letters, digits, '-', '_' and '.'.`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Typed values. Drafts keep every value as text ("raw") so half-typed input survives; `parseRaw`
// turns it into the JSON value of the flag's type.

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

// ---------------------------------------------------------------------------------------------
// Drafts

let nextId = 1;
export const uid = (prefix = "x") => `${prefix}${nextId++}`;

export interface ConditionDraft {
  id: string;
  attribute: string;
  operator: Operator;
  values: string[];
}

export interface WeightDraft {
  id: string;
  variant: string;
  /** Percent as typed, up to three decimals (the core's unit is 1/100,000). */
  percent: string;
}

export type ServeDraft =
  | { kind: "default" }
  | { kind: "value"; raw: string }
  | { kind: "split"; weights: WeightDraft[] };

export interface RuleDraft {
  id: string;
  description: string;
  conditions: ConditionDraft[];
  serve: ServeDraft;
}

export interface VariantDraft {
  id: string;
  key: string;
  raw: string;
  description: string;
}

export interface PrereqDraft {
  id: string;
  key: string;
  variants: string[];
}

export type FallthroughDraft =
  | { kind: "default" }
  | { kind: "rollout"; percent: number }
  | { kind: "split"; weights: WeightDraft[] };

export interface FlagDraft {
  key: string;
  description: string;
  tags: string[];
  type: FlagType;
  isEnabled: boolean;
  variants: VariantDraft[];
  /** null: not set (the core's fallback applies). */
  defaultRaw: string | null;
  disabledRaw: string | null;
  rules: RuleDraft[];
  fallthrough: FallthroughDraft;
  bucketBy: string;
  salt: string;
  prerequisites: PrereqDraft[];
}

export interface SegmentDraft {
  key: string;
  name: string;
  description: string;
  included: string[];
  excluded: string[];
  rules: RuleDraft[];
}

export function newCondition(): ConditionDraft {
  return { id: uid("c"), attribute: "", operator: "equals", values: [] };
}

export function newRule(): RuleDraft {
  return { id: uid("r"), description: "", conditions: [newCondition()], serve: { kind: "default" } };
}

export function newFlagDraft(): FlagDraft {
  return {
    key: "",
    description: "",
    tags: [],
    type: "boolean",
    isEnabled: false,
    variants: [],
    defaultRaw: "true",
    disabledRaw: "false",
    rules: [],
    fallthrough: { kind: "default" },
    bucketBy: "",
    salt: "",
    prerequisites: [],
  };
}

export function newSegmentDraft(): SegmentDraft {
  return { key: "", name: "", description: "", included: [], excluded: [], rules: [] };
}

export function unitsToPercent(units: number): string {
  return String(Math.round(units) / 1000);
}

/** Units of 1/100,000 for a typed percentage, or undefined when it is not one. */
export function percentToUnits(percent: string): number | undefined {
  const t = percent.trim();
  if (!/^\d+(\.\d{0,3})?$/.test(t) && !/^\.\d{1,3}$/.test(t)) return undefined;
  const units = Math.round(Number(t) * 1000);
  return units <= SPLIT_SCALE ? units : undefined;
}

export function splitSum(weights: WeightDraft[]): number {
  return weights.reduce((s, w) => s + (percentToUnits(w.percent) ?? 0), 0);
}

/** Whether a split can be saved: every share a percentage, summing to exactly 100 %. */
export function splitProblem(weights: WeightDraft[], variantKeys: string[]): string | undefined {
  if (weights.length === 0) return "Add at least one variant to the split.";
  for (const w of weights) {
    if (!w.variant) return "Choose a variant for every share.";
    if (!variantKeys.includes(w.variant)) return `No variant named ${JSON.stringify(w.variant)}.`;
    if (percentToUnits(w.percent) === undefined)
      return `The share of ${w.variant} must be a percentage between 0 and 100, with at most 3 decimals.`;
  }
  const sum = splitSum(weights);
  if (sum !== SPLIT_SCALE) return `The shares add up to ${unitsToPercent(sum)} %; they must add up to 100 %.`;
  return undefined;
}

/** Shares of 100 % as even as 1/1000 % allows, the first ones taking the remainder. */
export function evenPercents(n: number): string[] {
  if (n <= 0) return [];
  const base = Math.floor(SPLIT_SCALE / n);
  const rest = SPLIT_SCALE - base * n;
  return Array.from({ length: n }, (_, i) => unitsToPercent(base + (i < rest ? 1 : 0)));
}

function weightsToDraft(split: SplitDoc | null | undefined): WeightDraft[] {
  return (split?.weights ?? []).map((w) => ({ id: uid("w"), variant: w.variant, percent: unitsToPercent(w.weight) }));
}

/** A rule's conditions as one list: Checkgate's inline condition or segment first, then the rest. */
export function ruleConditions(rule: RuleDoc): ConditionDraft[] {
  const out: ConditionDraft[] = [];
  const conditions = rule.conditions ?? [];
  const attribute = rule.attribute ?? "";
  const values = rule.values ?? [];
  if (rule.segment_key !== undefined && rule.segment_key !== null) {
    out.push({ id: uid("c"), attribute: "", operator: "in_segment", values: [rule.segment_key] });
  } else if (!(attribute === "" && values.length === 0 && conditions.length > 0)) {
    out.push({ id: uid("c"), attribute, operator: rule.operator ?? "equals", values: [...values] });
  }
  for (const c of conditions) {
    out.push({ id: uid("c"), attribute: c.attribute ?? "", operator: c.operator ?? "equals", values: [...(c.values ?? [])] });
  }
  return out;
}

export function ruleToDraft(rule: RuleDoc, type: FlagType): RuleDraft {
  let serve: ServeDraft = { kind: "default" };
  if (rule.split) serve = { kind: "split", weights: weightsToDraft(rule.split) };
  else if (rule.variant !== undefined && rule.variant !== null) serve = { kind: "value", raw: rawOf(type, rule.variant) };
  return { id: uid("r"), description: rule.description ?? "", conditions: ruleConditions(rule), serve };
}

export function flagToDraft(flag: FlagDoc): FlagDraft {
  const type = flag.flag_type ?? "boolean";
  let fallthrough: FallthroughDraft = { kind: "default" };
  if (flag.split) fallthrough = { kind: "split", weights: weightsToDraft(flag.split) };
  else if (flag.rollout_percentage !== null && flag.rollout_percentage !== undefined)
    fallthrough = { kind: "rollout", percent: flag.rollout_percentage };
  const has = (v: unknown) => v !== undefined && v !== null;
  return {
    key: flag.key,
    description: flag.description ?? "",
    tags: [...(flag.tags ?? [])],
    type,
    isEnabled: flag.is_enabled,
    variants: (flag.variants ?? []).map((v) => ({ id: uid("v"), key: v.key, raw: rawOf(type, v.value), description: v.description ?? "" })),
    defaultRaw: has(flag.default_value) ? rawOf(type, flag.default_value) : null,
    disabledRaw: has(flag.disabled_value) ? rawOf(type, flag.disabled_value) : null,
    rules: flag.rules.map((r) => ruleToDraft(r, type)),
    fallthrough,
    bucketBy: flag.bucket_by ?? "",
    salt: flag.salt ?? "",
    prerequisites: (flag.prerequisites ?? []).map((p) => ({ id: uid("p"), key: p.key, variants: [...(p.variants ?? [])] })),
  };
}

export function segmentToDraft(s: SegmentDoc): SegmentDraft {
  return {
    key: s.key,
    name: s.name ?? "",
    description: s.description ?? "",
    included: [...(s.included ?? [])],
    excluded: [...(s.excluded ?? [])],
    rules: s.rules.map((r) => ruleToDraft(r, "string")),
  };
}

/** Field errors, keyed by the editor's field paths such as `rules[0].conditions[1].values`. */
export type FieldErrors = Record<string, string>;

/** A draft's text without its React keys: equal text means no unsaved change. */
export function draftFingerprint(draft: unknown): string {
  return JSON.stringify(draft, (k, v) => (k === "id" ? undefined : v));
}

function conditionProblems(path: string, c: ConditionDraft, errors: FieldErrors, allowSegments: boolean) {
  const info = operatorInfo(c.operator);
  if (c.operator === "in_segment" && !allowSegments) errors[`${path}.operator`] = "Segments cannot refer to segments.";
  if (c.operator !== "in_segment" && !c.attribute.trim()) errors[`${path}.attribute`] = "Enter an attribute.";
  if (c.values.length === 0 || c.values.every((v) => v === "")) {
    errors[`${path}.values`] = info.kind === "segment" ? "Choose a segment." : info.multi ? "Add at least one value." : "Enter a value.";
    return;
  }
  for (const v of c.values) {
    const p = valueProblem(info.kind, v);
    if (p) {
      errors[`${path}.values`] = p;
      return;
    }
  }
}

/** A rule's conditions as a document: the first inline (Checkgate's shape), the others in `conditions`. */
function conditionsToRule(conditions: ConditionDraft[]): RuleDoc {
  const [first, ...rest] = conditions;
  const rule: RuleDoc = { attribute: "", operator: "equals", values: [] };
  if (first) {
    if (first.operator === "in_segment" && first.values.length === 1) {
      rule.segment_key = first.values[0];
    } else {
      rule.attribute = first.operator === "in_segment" ? "" : first.attribute.trim();
      rule.operator = first.operator;
      rule.values = [...first.values];
    }
  }
  if (rest.length > 0)
    rule.conditions = rest.map((c) => ({
      attribute: c.operator === "in_segment" ? "" : c.attribute.trim(),
      operator: c.operator,
      values: [...c.values],
    }));
  return rule;
}

function splitToDoc(weights: WeightDraft[]): SplitDoc {
  return { weights: weights.map((w) => ({ variant: w.variant, weight: percentToUnits(w.percent) ?? 0 })) };
}

export interface Built<T> {
  doc: T;
  errors: FieldErrors;
}

/** The flag document for a draft, and every problem found on the way (empty when it can be saved). */
export function draftToFlag(d: FlagDraft): Built<FlagDoc> {
  const errors: FieldErrors = {};
  const keyErr = keyProblem(d.key);
  if (keyErr) errors.key = keyErr;
  const value = (raw: string, path: string): unknown => {
    const p = parseRaw(d.type, raw);
    if (!p.ok) {
      errors[path] = p.error;
      return undefined;
    }
    return p.value;
  };
  const variantKeys: string[] = [];
  const variants: VariantDoc[] = d.variants.map((v, i) => {
    const key = v.key.trim();
    if (!key) errors[`variants[${i}].key`] = "Enter a name.";
    else if (key.length > MAX_KEY_LEN) errors[`variants[${i}].key`] = `At most ${MAX_KEY_LEN} characters.`;
    else if (variantKeys.includes(key)) errors[`variants[${i}].key`] = `There is already a variant named ${JSON.stringify(key)}.`;
    variantKeys.push(key);
    const out: VariantDoc = { key, value: value(v.raw, `variants[${i}].value`) };
    if (v.description.trim()) out.description = v.description.trim();
    return out;
  });
  const doc: FlagDoc = {
    key: d.key,
    is_enabled: d.isEnabled,
    rollout_percentage: null,
    description: d.description.trim() ? d.description : null,
    rules: [],
    flag_type: d.type,
    default_value: d.defaultRaw === null ? null : value(d.defaultRaw, "default_value"),
    disabled_value: d.disabledRaw === null ? null : value(d.disabledRaw, "disabled_value"),
    variants,
    split: null,
    bucket_by: d.bucketBy.trim() ? d.bucketBy.trim() : null,
    salt: d.salt !== "" ? d.salt : null,
    prerequisites: [],
    tags: d.tags,
  };
  if (d.disabledRaw !== null && doc.disabled_value === null && !errors.disabled_value)
    errors.disabled_value = "null cannot be stored: it means “not set”, which serves false.";
  doc.rules = d.rules.map((r, i) => {
    const path = `rules[${i}]`;
    if (r.conditions.length === 0) errors[path] = "Add at least one condition.";
    r.conditions.forEach((c, j) => conditionProblems(`${path}.conditions[${j}]`, c, errors, true));
    const rule = conditionsToRule(r.conditions);
    if (r.serve.kind === "value") {
      const v = value(r.serve.raw, `${path}.value`);
      if (v === null) errors[`${path}.value`] = "null means “not set”: choose “Default value” instead.";
      rule.variant = v;
    } else if (r.serve.kind === "split") {
      const p = splitProblem(r.serve.weights, variantKeys);
      if (p) errors[`${path}.split`] = p;
      rule.split = splitToDoc(r.serve.weights);
    }
    if (r.description.trim()) rule.description = r.description.trim();
    return rule;
  });
  if (d.fallthrough.kind === "rollout") {
    const p = d.fallthrough.percent;
    if (!Number.isInteger(p) || p < 0 || p > 100) errors.rollout_percentage = "A whole percentage from 0 to 100.";
    doc.rollout_percentage = p;
  } else if (d.fallthrough.kind === "split") {
    const p = splitProblem(d.fallthrough.weights, variantKeys);
    if (p) errors.split = p;
    doc.split = splitToDoc(d.fallthrough.weights);
  }
  doc.prerequisites = d.prerequisites.map((p, i) => {
    if (!p.key) errors[`prerequisites[${i}].key`] = "Choose a flag.";
    else if (p.key === d.key) errors[`prerequisites[${i}].key`] = "A flag cannot require itself.";
    const out: PrerequisiteDoc = { key: p.key };
    if (p.variants.length > 0) out.variants = [...p.variants];
    return out;
  });
  return { doc, errors };
}

export function draftToSegment(d: SegmentDraft): Built<SegmentDoc> {
  const errors: FieldErrors = {};
  const keyErr = keyProblem(d.key);
  if (keyErr) errors.key = keyErr;
  const rules = d.rules.map((r, i) => {
    const path = `rules[${i}]`;
    if (r.conditions.length === 0) errors[path] = "Add at least one condition.";
    r.conditions.forEach((c, j) => conditionProblems(`${path}.conditions[${j}]`, c, errors, false));
    const rule = conditionsToRule(r.conditions);
    if (r.description.trim()) rule.description = r.description.trim();
    return rule;
  });
  return {
    doc: {
      key: d.key,
      name: d.name,
      description: d.description.trim() ? d.description : null,
      included: d.included,
      excluded: d.excluded,
      rules,
    },
    errors,
  };
}

// ---------------------------------------------------------------------------------------------
// Server errors → fields

/** The message of a 422 without its leading path. */
export function stripPath(message: string, path: string | undefined): string {
  if (!path) return message;
  const rest = message.slice(path.length).replace(/^\s*:\s*/, "");
  return rest ? rest.charAt(0).toUpperCase() + rest.slice(1) : message;
}

/**
 * The editor field a path of the server's 422 (as in `rules[0].conditions[1].values[0]`) is
 * about, for a document built by `draftToFlag`/`draftToSegment` from `rules`. Undefined when no
 * field fits (show the message as a banner).
 */
export function fieldForServerPath(
  path: string,
  message: string,
  rules: RuleDraft[],
): string | undefined {
  const top = /^(key|description|tags|flag_type|default_value|disabled_value|rollout_percentage|bucket_by|salt|name|included|excluded)$/.exec(path);
  if (top) return top[1];
  if (/^split(\.|$)/.test(path)) return "split";
  const variant = /^variants\[(\d+)\]\.(key|value)/.exec(path);
  if (variant) return `variants[${variant[1]}].${variant[2]}`;
  const pre = /^prerequisites\[(\d+)\]/.exec(path);
  if (pre) return `prerequisites[${pre[1]}].key`;
  if (path === "rules") {
    // "rules: segment "x" does not exist in this environment"
    const seg = /segment "([^"]+)"/.exec(message);
    if (seg) {
      for (let i = 0; i < rules.length; i++) {
        const j = rules[i].conditions.findIndex((c) => c.operator === "in_segment" && c.values.includes(seg[1]));
        if (j >= 0) return `rules[${i}].conditions[${j}].values`;
      }
    }
    return undefined;
  }
  const rule = /^rules\[(\d+)\](.*)$/.exec(path);
  if (!rule) return undefined;
  const i = Number(rule[1]);
  const rest = rule[2];
  const base = `rules[${i}]`;
  const conditionField = (j: number, field: string) => {
    const f = /^\.?(attribute|operator|values)/.exec(field)?.[1] ?? "values";
    return `${base}.conditions[${j}].${f}`;
  };
  if (rest === "") {
    const cond = /^condition (\d+)/.exec(message);
    if (cond) return `${base}.conditions[${cond[1]}].operator`;
    return base;
  }
  if (/^\.(attribute|operator|values)/.test(rest)) return conditionField(0, rest.slice(1));
  if (/^\.segment_key/.test(rest)) return `${base}.conditions[0].values`;
  const c = /^\.conditions\[(\d+)\](.*)$/.exec(rest);
  if (c) {
    // The first condition is written inline, so `conditions[j]` is the editor's j + 1.
    const offset = rules[i] && rules[i].conditions.length > 0 ? 1 : 0;
    return conditionField(Number(c[1]) + offset, c[2]);
  }
  if (/^\.variant/.test(rest)) return `${base}.value`;
  if (/^\.split/.test(rest)) return `${base}.split`;
  return base;
}

/** Flags whose rules refer to each segment (by `in_segment` or `segment_key`). */
export function segmentUsage(flags: FlagDoc[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of flags) {
    const keys = new Set<string>();
    for (const r of f.rules ?? []) {
      if (r.segment_key) keys.add(r.segment_key);
      if (r.operator === "in_segment" && r.segment_key === undefined) (r.values ?? []).forEach((v) => keys.add(v));
      for (const c of r.conditions ?? []) if (c.operator === "in_segment") c.values.forEach((v) => keys.add(v));
    }
    for (const k of keys) {
      const list = out.get(k) ?? [];
      list.push(f.key);
      out.set(k, list);
    }
  }
  return out;
}

/** Attributes used by the environment's flags and segments, for suggestions. */
export function knownAttributes(docs: { rules: RuleDoc[] }[]): string[] {
  const set = new Set<string>(["targetingKey"]);
  for (const d of docs)
    for (const r of d.rules ?? []) {
      if (r.attribute) set.add(r.attribute);
      for (const c of r.conditions ?? []) if (c.attribute) set.add(c.attribute);
    }
  return [...set].sort();
}

/** Every flag of an environment (the API pages by 1000). */
export async function loadAllFlags(
  get: <T>(path: string) => Promise<T>,
  envId: string,
): Promise<Flag[]> {
  const out: Flag[] = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await get<Flag[]>(`/api/environments/${encodeURIComponent(envId)}/flags?limit=1000&offset=${offset}`);
    out.push(...page);
    if (page.length < 1000) return out;
  }
}

/** A flag document without the answer-only fields, for diffs. */
export function docOnly(flag: Flag): Record<string, unknown> {
  const { version: _v, updated_at: _u, created_at: _c, ...rest } = flag;
  void _v;
  void _u;
  void _c;
  return rest;
}
