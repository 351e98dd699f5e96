// A side-by-side diff of two JSON documents (object keys sorted, two-space indents), line by
// line: removed lines on the left, added lines on the right, long unchanged runs folded.

import { sortKeys } from "./model";

export type DiffRow =
  | { kind: "same"; left: number; right: number; text: string }
  | { kind: "change"; left?: number; leftText?: string; right?: number; rightText?: string }
  | { kind: "fold"; count: number };

export function jsonLines(value: unknown): string[] {
  if (value === undefined) return [];
  return JSON.stringify(sortKeys(value), null, 2).split("\n");
}

/** Line diff by longest common subsequence; removals and additions side by side. */
export function diffLines(a: string[], b: string[], context = 3): DiffRow[] {
  const n = a.length;
  const m = b.length;
  // For very large documents, fall back to comparing line by line.
  const ops: ("same" | "del" | "add")[] = [];
  if (n * m > 4_000_000) {
    for (let i = 0; i < Math.max(n, m); i++) {
      if (i < n && i < m && a[i] === b[i]) ops.push("same");
      else {
        if (i < n) ops.push("del");
        if (i < m) ops.push("add");
      }
    }
  } else {
    const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--)
      for (let j = m - 1; j >= 0; j--)
        lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a[i] === b[j]) {
        ops.push("same");
        i++;
        j++;
      } else if (j < m && (i >= n || lcs[i][j + 1] >= lcs[i + 1][j])) {
        ops.push("add");
        j++;
      } else {
        ops.push("del");
        i++;
      }
    }
  }
  // Pair runs of removals and additions into change rows.
  const rows: DiffRow[] = [];
  let i = 0;
  let j = 0;
  let k = 0;
  while (k < ops.length) {
    if (ops[k] === "same") {
      rows.push({ kind: "same", left: i + 1, right: j + 1, text: a[i] });
      i++;
      j++;
      k++;
      continue;
    }
    const dels: number[] = [];
    const adds: number[] = [];
    while (k < ops.length && ops[k] !== "same") {
      if (ops[k] === "del") dels.push(i++);
      else adds.push(j++);
      k++;
    }
    for (let x = 0; x < Math.max(dels.length, adds.length); x++) {
      const l = dels[x];
      const r = adds[x];
      rows.push({
        kind: "change",
        left: l === undefined ? undefined : l + 1,
        leftText: l === undefined ? undefined : a[l],
        right: r === undefined ? undefined : r + 1,
        rightText: r === undefined ? undefined : b[r],
      });
    }
  }
  // Fold unchanged runs far from any change.
  const near = rows.map(() => false);
  rows.forEach((r, x) => {
    if (r.kind === "change") for (let y = Math.max(0, x - context); y <= Math.min(rows.length - 1, x + context); y++) near[y] = true;
  });
  const out: DiffRow[] = [];
  let run = 0;
  rows.forEach((r, x) => {
    if (r.kind === "same" && !near[x]) {
      run++;
      return;
    }
    if (run) out.push({ kind: "fold", count: run });
    run = 0;
    out.push(r);
  });
  if (run) out.push({ kind: "fold", count: run });
  return out;
}

export function SideBySideDiff({
  left,
  right,
  leftTitle,
  rightTitle,
  caption,
}: {
  /** Undefined: the document does not exist on that side. */
  left: unknown;
  right: unknown;
  leftTitle: string;
  rightTitle: string;
  caption: string;
}) {
  const a = jsonLines(left);
  const b = jsonLines(right);
  const rows = diffLines(a, b);
  const changes = rows.filter((r) => r.kind === "change").length;
  return (
    <div className="diff">
      <p className="diff-summary" role="status">
        {left === undefined
          ? `New: ${b.length} lines`
          : changes === 0
            ? "No differences."
            : `${changes} changed line${changes === 1 ? "" : "s"}`}
      </p>
      <div className="diff-scroll">
        <table className="diff-table">
          <caption className="visually-hidden">{caption}</caption>
          <colgroup>
            <col className="ln-col" />
            <col />
            <col className="ln-col" />
            <col />
          </colgroup>
          <thead>
            <tr>
              <th colSpan={2} scope="colgroup">
                {leftTitle}
              </th>
              <th colSpan={2} scope="colgroup">
                {rightTitle}
              </th>
            </tr>
          </thead>
          <tbody>
            {left === undefined && (
              <tr>
                <td className="ln" />
                <td className="diff-absent">Does not exist</td>
                <td className="ln" />
                <td />
              </tr>
            )}
            {rows.map((r, x) => {
              if (r.kind === "fold")
                return (
                  <tr key={x} className="diff-fold">
                    <td colSpan={4}>⋯ {r.count} unchanged line{r.count === 1 ? "" : "s"}</td>
                  </tr>
                );
              if (r.kind === "same")
                return (
                  <tr key={x}>
                    <td className="ln">{r.left}</td>
                    <td className="code">{r.text}</td>
                    <td className="ln">{r.right}</td>
                    <td className="code">{r.text}</td>
                  </tr>
                );
              return (
                <tr key={x}>
                  <td className="ln">{r.left ?? ""}</td>
                  <td className={"code" + (r.leftText !== undefined ? " del" : " empty")}>
                    {r.leftText !== undefined && <span className="visually-hidden">Removed: </span>}
                    {r.leftText}
                  </td>
                  <td className="ln">{r.right ?? ""}</td>
                  <td className={"code" + (r.rightText !== undefined ? " add" : " empty")}>
                    {r.rightText !== undefined && <span className="visually-hidden">Added: </span>}
                    {r.rightText}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </div>
  );
}
