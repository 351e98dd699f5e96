// Value checks that mirror the evaluation core (core/src/compile.rs, condition.rs, semver.rs,
// date.rs): the browser says what the server would refuse before anything is sent.

import type { ValueKind } from "./operators";
import { MAX_KEY_LEN } from "./types";

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
