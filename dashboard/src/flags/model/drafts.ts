// The editors' working copies ("drafts") of flags and segments: their shapes, empty ones, the
// conversion of a document into a draft, split shares in percent, and the fingerprint that tells
// whether a draft has unsaved changes.

import { SPLIT_SCALE, type FlagDoc, type FlagType, type Operator, type RuleDoc, type SegmentDoc, type SplitDoc } from "./types";
import { rawOf } from "./values";

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
