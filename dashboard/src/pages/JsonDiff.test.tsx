import { fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { diffJson, foldLines, jsonEqual, JsonDiff } from "./JsonDiff";

const text = (r: ReturnType<typeof diffJson>) => r.lines.map((l) => `${l.kind === "add" ? "+" : l.kind === "del" ? "-" : " "}${"  ".repeat(l.depth)}${l.text}`);

describe("diffJson", () => {
  it("finds nothing between equal values, whatever the key order", () => {
    expect(jsonEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 })).toBe(true);
    const r = diffJson({ a: 1, b: 2 }, { b: 2, a: 1 });
    expect(r.changes).toEqual([]);
    expect(r.lines.every((l) => l.kind === "same")).toBe(true);
  });

  it("marks a changed value as removed then added, with its path", () => {
    const r = diffJson({ key: "checkout", enabled: false }, { key: "checkout", enabled: true });
    expect(r.changes).toEqual([{ path: "enabled", kind: "changed" }]);
    expect(text(r)).toEqual([" {", '   "key": "checkout"', '-  "enabled": false', '+  "enabled": true', " }"]);
  });

  it("reports added and removed keys", () => {
    const r = diffJson({ a: 1, gone: { x: 1 } }, { a: 1, fresh: [1] });
    expect(r.changes).toEqual([
      { path: "gone", kind: "removed" },
      { path: "fresh", kind: "added" },
    ]);
    expect(text(r)).toContain('-  "gone": {');
    expect(text(r)).toContain('-    "x": 1');
    expect(text(r)).toContain('+  "fresh": [');
  });

  it("aligns arrays so an insertion at the top does not change every later element", () => {
    const before = { rules: [{ id: "a" }, { id: "b" }] };
    const after = { rules: [{ id: "new" }, { id: "a" }, { id: "b" }] };
    const r = diffJson(before, after);
    expect(r.changes).toEqual([{ path: "rules[0]", kind: "added" }]);
    expect(r.lines.filter((l) => l.kind === "add").map((l) => l.text)).toEqual(["{", '"id": "new"', "}"]);
    expect(r.lines.filter((l) => l.kind === "del")).toEqual([]);
  });

  it("goes inside an edited array element", () => {
    const before = { rules: [{ variant: "on", weight: 10 }] };
    const after = { rules: [{ variant: "on", weight: 20 }] };
    expect(diffJson(before, after).changes).toEqual([{ path: "rules[0].weight", kind: "changed" }]);
  });

  it("treats a null side as creation or deletion", () => {
    const created = diffJson(null, { key: "x" });
    expect(created.lines.every((l) => l.kind === "add")).toBe(true);
    expect(created.changes).toEqual([{ path: "", kind: "added" }]);
    const deleted = diffJson({ key: "x" }, null);
    expect(deleted.lines.every((l) => l.kind === "del")).toBe(true);
  });

  it("quotes keys that are not identifiers in paths", () => {
    expect(diffJson({ "a b": 1 }, { "a b": 2 }).changes[0].path).toBe('["a b"]');
  });

  it("folds long unchanged stretches but keeps context around changes", () => {
    const before = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i]));
    const after = { ...before, k10: "changed" };
    const { lines } = diffJson(before, after);
    const blocks = foldLines(lines, 2, new Set());
    const folds = blocks.filter((b) => b.kind === "fold");
    expect(folds.length).toBe(2);
    const shown = blocks.filter((b) => b.kind === "line").map((b) => (b.kind === "line" ? b.line.text : ""));
    expect(shown).toContain('"k9": 9');
    expect(shown).toContain('"k11": 11');
    expect(shown).not.toContain('"k2": 2');
  });
});

describe("<JsonDiff>", () => {
  it("shows + and − markers with a summary, not colour alone", () => {
    render(<JsonDiff before={{ on: false, name: "a" }} after={{ on: true, name: "a", tags: ["x"] }} />);
    expect(screen.getByText(/2 differences: 1 changed, 1 added/)).toBeTruthy();
    const lines = document.querySelectorAll(".diff-line");
    const markers = Array.from(lines).map((l) => l.querySelector(".diff-marker")?.textContent);
    expect(markers.filter((m) => m === "+").length).toBeGreaterThanOrEqual(2);
    expect(markers.filter((m) => m === "−").length).toBe(1);
    // Screen readers hear what each marked line is.
    expect(document.querySelector(".diff-del .visually-hidden")?.textContent).toBe("removed: ");
    expect(screen.getByRole("list", { name: "Changed fields" }).textContent).toContain("tags");
  });

  it("opens a fold on request", () => {
    const before = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, i]));
    render(<JsonDiff before={before} after={{ ...before, k29: 0 }} />);
    const fold = screen.getByRole("button", { name: /Show \d+ unchanged lines/ });
    const count = document.querySelectorAll(".diff-line").length;
    fireEvent.click(fold);
    expect(screen.queryByRole("button", { name: /unchanged lines/ })).toBeNull();
    expect(document.querySelectorAll(".diff-line").length).toBeGreaterThan(count);
  });

  it("says so when there is nothing on either side", () => {
    render(<JsonDiff before={null} after={null} />);
    expect(screen.getByText("Nothing recorded before or after.")).toBeTruthy();
  });
});
