// The operators of rule conditions: their labels, the kind of value each compares, how the
// editor groups them, and what a condition keeps when its operator changes.

import type { Operator } from "./types";

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
