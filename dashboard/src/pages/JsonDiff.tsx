// A structural diff of two JSON values, shown as indented JSON lines: removed lines marked "−"
// and added lines "+" (colour as well, never colour alone), changed values as a removed line
// followed by an added one, long unchanged stretches folded behind a button. Objects are
// compared key by key, arrays element by element (aligned by their longest common
// subsequence), so a rule inserted at the top does not show every later rule as changed.
//
//   <JsonDiff before={entry.before} after={entry.after} />

import { Fragment, useMemo, useState } from "react";
import "./pages.css";

export type DiffLineKind = "same" | "add" | "del";

export interface DiffLine {
  kind: DiffLineKind;
  /** Nesting depth, for indentation. */
  depth: number;
  /** The line's JSON text, without indentation. */
  text: string;
  /** Where the line is: `rules[0].variant`; "" for the root. */
  path: string;
}

export interface DiffChange {
  path: string;
  kind: "added" | "removed" | "changed";
}

export interface JsonDiffResult {
  lines: DiffLine[];
  changes: DiffChange[];
}

const MISSING: unique symbol = Symbol("missing");
type Value = unknown;

const isObject = (v: Value): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** Deep equality of JSON values (object key order does not matter). */
export function jsonEqual(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

const IDENT = /^[A-Za-z_$][\w$]*$/;
const keyPath = (path: string, key: string) =>
  IDENT.test(key) ? (path ? `${path}.${key}` : key) : `${path}[${JSON.stringify(key)}]`;
const indexPath = (path: string, i: number) => `${path}[${i}]`;

function scalar(v: Value): string {
  if (v === undefined) return "null";
  return JSON.stringify(v) ?? String(v);
}

/** Emits a whole value with one kind (unchanged, added or removed). */
function emit(out: DiffLine[], kind: DiffLineKind, depth: number, label: string | undefined, v: Value, path: string) {
  const prefix = label === undefined ? "" : `${JSON.stringify(label)}: `;
  if (Array.isArray(v)) {
    if (v.length === 0) {
      out.push({ kind, depth, text: prefix + "[]", path });
      return;
    }
    out.push({ kind, depth, text: prefix + "[", path });
    v.forEach((x, i) => emit(out, kind, depth + 1, undefined, x, indexPath(path, i)));
    out.push({ kind, depth, text: "]", path });
  } else if (isObject(v)) {
    const keys = Object.keys(v);
    if (keys.length === 0) {
      out.push({ kind, depth, text: prefix + "{}", path });
      return;
    }
    out.push({ kind, depth, text: prefix + "{", path });
    for (const k of keys) emit(out, kind, depth + 1, k, v[k], keyPath(path, k));
    out.push({ kind, depth, text: "}", path });
  } else {
    out.push({ kind, depth, text: prefix + scalar(v), path });
  }
}

type Op = { op: "same"; a: number; b: number } | { op: "del"; a: number } | { op: "add"; b: number };

/** Aligns two arrays: the longest common subsequence of equal elements, then the rest. */
function align(a: Value[], b: Value[]): Op[] {
  const n = a.length;
  const m = b.length;
  if (n * m > 250_000) {
    // Too large to align: compare position by position.
    const ops: Op[] = [];
    for (let i = 0; i < Math.max(n, m); i++) {
      if (i < n && i < m) ops.push(...(jsonEqual(a[i], b[i]) ? [{ op: "same", a: i, b: i } as Op] : [{ op: "del", a: i } as Op, { op: "add", b: i } as Op]));
      else if (i < n) ops.push({ op: "del", a: i });
      else ops.push({ op: "add", b: i });
    }
    return ops;
  }
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = jsonEqual(a[i], b[j]) ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (jsonEqual(a[i], b[j])) {
      ops.push({ op: "same", a: i++, b: j++ });
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) {
      ops.push({ op: "del", a: i++ });
    } else {
      ops.push({ op: "add", b: j++ });
    }
  }
  while (i < n) ops.push({ op: "del", a: i++ });
  while (j < m) ops.push({ op: "add", b: j++ });
  return ops;
}

function sameShape(a: Value, b: Value): boolean {
  return (Array.isArray(a) && Array.isArray(b)) || (isObject(a) && isObject(b));
}

function walk(
  out: DiffLine[],
  changes: DiffChange[],
  depth: number,
  label: string | undefined,
  a: Value | typeof MISSING,
  b: Value | typeof MISSING,
  path: string,
) {
  const prefix = label === undefined ? "" : `${JSON.stringify(label)}: `;
  if (a === MISSING && b === MISSING) return;
  if (a === MISSING) {
    emit(out, "add", depth, label, b, path);
    changes.push({ path, kind: "added" });
    return;
  }
  if (b === MISSING) {
    emit(out, "del", depth, label, a, path);
    changes.push({ path, kind: "removed" });
    return;
  }
  if (jsonEqual(a, b)) {
    emit(out, "same", depth, label, a, path);
    return;
  }
  if (isObject(a) && isObject(b)) {
    out.push({ kind: "same", depth, text: prefix + "{", path });
    const keys = [...Object.keys(a), ...Object.keys(b).filter((k) => !Object.prototype.hasOwnProperty.call(a, k))];
    for (const k of keys) {
      const has = (o: Record<string, unknown>) => Object.prototype.hasOwnProperty.call(o, k);
      walk(out, changes, depth + 1, k, has(a) ? a[k] : MISSING, has(b) ? b[k] : MISSING, keyPath(path, k));
    }
    out.push({ kind: "same", depth, text: "}", path });
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    out.push({ kind: "same", depth, text: prefix + "[", path });
    const ops = align(a, b);
    for (let k = 0; k < ops.length; ) {
      const op = ops[k];
      if (op.op === "same") {
        emit(out, "same", depth + 1, undefined, a[op.a], indexPath(path, op.b));
        k++;
        continue;
      }
      // A run of removals and additions: pair them up in order, so an edited element shows
      // what changed inside it.
      const dels: number[] = [];
      const adds: number[] = [];
      while (k < ops.length && ops[k].op !== "same") {
        const o = ops[k] as Op;
        if (o.op === "del") dels.push(o.a);
        else if (o.op === "add") adds.push(o.b);
        k++;
      }
      const pairs = Math.min(dels.length, adds.length);
      for (let p = 0; p < pairs; p++) {
        const x = a[dels[p]];
        const y = b[adds[p]];
        if (sameShape(x, y)) walk(out, changes, depth + 1, undefined, x, y, indexPath(path, adds[p]));
        else {
          emit(out, "del", depth + 1, undefined, x, indexPath(path, adds[p]));
          emit(out, "add", depth + 1, undefined, y, indexPath(path, adds[p]));
          changes.push({ path: indexPath(path, adds[p]), kind: "changed" });
        }
      }
      for (let p = pairs; p < dels.length; p++) {
        emit(out, "del", depth + 1, undefined, a[dels[p]], indexPath(path, dels[p]));
        changes.push({ path: indexPath(path, dels[p]), kind: "removed" });
      }
      for (let p = pairs; p < adds.length; p++) {
        emit(out, "add", depth + 1, undefined, b[adds[p]], indexPath(path, adds[p]));
        changes.push({ path: indexPath(path, adds[p]), kind: "added" });
      }
    }
    out.push({ kind: "same", depth, text: "]", path });
    return;
  }
  emit(out, "del", depth, label, a, path);
  emit(out, "add", depth, label, b, path);
  changes.push({ path, kind: "changed" });
}

/**
 * The diff of two JSON values. `null` or `undefined` on one side means the thing did not exist
 * (a creation or a deletion): everything on the other side is added or removed.
 */
export function diffJson(before: unknown, after: unknown): JsonDiffResult {
  const lines: DiffLine[] = [];
  const changes: DiffChange[] = [];
  walk(lines, changes, 0, undefined, before ?? MISSING, after ?? MISSING, "");
  return { lines, changes };
}

type Block = { kind: "line"; line: DiffLine; index: number } | { kind: "fold"; from: number; to: number };

/** Folds runs of unchanged lines longer than 2 × context + 2, keeping `context` lines around changes. */
export function foldLines(lines: DiffLine[], context: number, open: ReadonlySet<number>): Block[] {
  const blocks: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    if (lines[i].kind !== "same") {
      blocks.push({ kind: "line", line: lines[i], index: i });
      i++;
      continue;
    }
    let j = i;
    while (j < lines.length && lines[j].kind === "same") j++;
    // [i, j) unchanged; keep context after a change before it and before a change after it.
    const keepHead = i === 0 ? 0 : context;
    const keepTail = j === lines.length ? 0 : context;
    const hidden = j - i - keepHead - keepTail;
    if (hidden >= 2 && !open.has(i)) {
      for (let k = i; k < i + keepHead; k++) blocks.push({ kind: "line", line: lines[k], index: k });
      blocks.push({ kind: "fold", from: i + keepHead, to: j - keepTail });
      for (let k = j - keepTail; k < j; k++) blocks.push({ kind: "line", line: lines[k], index: k });
    } else {
      for (let k = i; k < j; k++) blocks.push({ kind: "line", line: lines[k], index: k });
    }
    i = j;
  }
  return blocks;
}

const MARK: Record<DiffLineKind, string> = { same: " ", add: "+", del: "−" };
const SPOKEN: Record<DiffLineKind, string> = { same: "", add: "added: ", del: "removed: " };

function summary(changes: DiffChange[]): string {
  if (changes.length === 0) return "No differences.";
  const n = (kind: DiffChange["kind"]) => changes.filter((c) => c.kind === kind).length;
  const parts = [
    [n("changed"), "changed"],
    [n("added"), "added"],
    [n("removed"), "removed"],
  ]
    .filter(([count]) => (count as number) > 0)
    .map(([count, what]) => `${count} ${what}`);
  return `${changes.length} ${changes.length === 1 ? "difference" : "differences"}: ${parts.join(", ")}.`;
}

/**
 * Shows the difference between two JSON values. `context` unchanged lines are kept around each
 * change; longer unchanged stretches fold behind a "Show N unchanged lines" button (unless
 * `fold` is false).
 */
export function JsonDiff({
  before,
  after,
  context = 3,
  fold = true,
  beforeLabel = "Before",
  afterLabel = "After",
}: {
  before: unknown;
  after: unknown;
  context?: number;
  fold?: boolean;
  beforeLabel?: string;
  afterLabel?: string;
}) {
  const result = useMemo(() => diffJson(before, after), [before, after]);
  const [open, setOpen] = useState<Set<number>>(() => new Set());
  const blocks = useMemo(
    () =>
      fold
        ? foldLines(result.lines, context, open)
        : result.lines.map((line, index) => ({ kind: "line" as const, line, index })),
    [result, context, fold, open],
  );
  if (before == null && after == null) {
    return <p className="json-diff-empty muted">Nothing recorded before or after.</p>;
  }
  const changedPaths = result.changes.filter((c) => c.path !== "");
  return (
    <div className="json-diff">
      <p className="json-diff-summary">
        <span>{summary(result.changes)}</span>
        <span className="json-diff-legend">
          <span className="diff-del-swatch">− {beforeLabel}</span>
          <span className="diff-add-swatch">+ {afterLabel}</span>
        </span>
      </p>
      {changedPaths.length > 0 && changedPaths.length <= 12 && (
        <ul className="json-diff-paths" aria-label="Changed fields">
          {changedPaths.map((c, i) => (
            <li key={i} className={`path-${c.kind}`}>
              <span className="mono">{c.path}</span> <span className="muted">{c.kind}</span>
            </li>
          ))}
        </ul>
      )}
      <div className="diff-lines" role="group" aria-label={`Changes from ${beforeLabel.toLowerCase()} to ${afterLabel.toLowerCase()}`}>
        {blocks.map((b) =>
          b.kind === "fold" ? (
            <button
              key={`fold-${b.from}`}
              type="button"
              className="diff-fold"
              onClick={() =>
                setOpen((o) => {
                  const next = new Set(o);
                  // Opening a fold opens the whole unchanged run it belongs to.
                  let start = b.from;
                  while (start > 0 && result.lines[start - 1].kind === "same") start--;
                  next.add(start);
                  return next;
                })
              }
            >
              Show {b.to - b.from} unchanged lines
            </button>
          ) : (
            <Fragment key={b.index}>
              <div className={`diff-line diff-${b.line.kind}`}>
                <span className="diff-marker" aria-hidden="true">
                  {MARK[b.line.kind]}
                </span>
                <span className="diff-text" style={{ paddingLeft: `${b.line.depth * 1.25}ch` }}>
                  {SPOKEN[b.line.kind] && <span className="visually-hidden">{SPOKEN[b.line.kind]}</span>}
                  {b.line.text}
                </span>
              </div>
            </Fragment>
          ),
        )}
      </div>
    </div>
  );
}
