import { describe, expect, it } from "vitest";
import { percentToUnits } from "./drafts";
import { valuesAfterOperatorChange } from "./operators";
import { isInstant, isSemver, regexProblem } from "./validation";
import { convertRaw, parseRaw } from "./values";

describe("values", () => {
  it("parses typed values and refuses what the type cannot hold", () => {
    expect(parseRaw("integer", "42")).toEqual({ ok: true, value: 42 });
    expect(parseRaw("integer", "-7")).toEqual({ ok: true, value: -7 });
    expect(parseRaw("integer", "4.2").ok).toBe(false);
    expect(parseRaw("integer", "1e3").ok).toBe(false);
    expect(parseRaw("integer", "99999999999999999999").ok).toBe(false);
    expect(parseRaw("boolean", "yes").ok).toBe(false);
    expect(parseRaw("json", '{"a":[1,2]}')).toEqual({ ok: true, value: { a: [1, 2] } });
    const bad = parseRaw("json", '{"a": 1,\n "b": }');
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.error).toMatch(/^Invalid JSON/);
  });

  it("converts values when the type changes", () => {
    expect(convertRaw("string", "json", "hello", true)).toBe('"hello"');
    expect(convertRaw("integer", "string", "5", true)).toBe("5");
    expect(convertRaw("string", "integer", "five", true)).toBe("1");
    expect(convertRaw("json", "boolean", "true", true)).toBe("true");
  });

  it("reads versions and instants as the core does", () => {
    for (const v of ["1.2.3", "v1.2", "1", "1.0.0-beta.1+build.5", "V2.0.0"]) expect(isSemver(v), v).toBe(true);
    for (const v of ["01.2.3", "1.2.3.4", "1.x", "", "1.2.3-", "1.2.3-be..ta"]) expect(isSemver(v), v).toBe(false);
    for (const v of ["2026-11-23T12:34:56.789Z", "2026-11-23", "2026-11-23T13:34:56+01:00", "1795437296789", "2000-02-29"])
      expect(isInstant(v), v).toBe(true);
    for (const v of ["2026-13-01", "2026-02-30", "2025-02-29", "2026-11-23T25:00:00Z", "2026-11-23T12:00:00", "yesterday", "2026/11/23"])
      expect(isInstant(v), v).toBe(false);
  });

  it("checks regexes with RE2's refusals", () => {
    expect(regexProblem("^user-\\d+$")).toBeUndefined();
    expect(regexProblem("(?i)admin")).toBeUndefined();
    expect(regexProblem("(?P<n>x)")).toBeUndefined();
    expect(regexProblem("(?!x)")).toMatch(/look-around/);
    expect(regexProblem("(a)\\1")).toMatch(/back-references/);
    expect(regexProblem("[a-")).toMatch(/invalid regex/);
  });

  it("reads split shares to the 1/100,000", () => {
    expect(percentToUnits("33.333")).toBe(33333);
    expect(percentToUnits("100")).toBe(100000);
    expect(percentToUnits("100.001")).toBeUndefined();
    expect(percentToUnits("1.2345")).toBeUndefined();
    expect(percentToUnits("-1")).toBeUndefined();
  });

  it("resets values when the operator takes another kind of value", () => {
    expect(valuesAfterOperatorChange("in", "not_in", ["a", "b"])).toEqual(["a", "b"]);
    expect(valuesAfterOperatorChange("in", "equals", ["a", "b"])).toEqual(["a"]);
    expect(valuesAfterOperatorChange("equals", "gt", ["a"])).toEqual([]);
    expect(valuesAfterOperatorChange("semver_lt", "semver_gt", ["1.0.0"])).toEqual(["1.0.0"]);
    expect(valuesAfterOperatorChange("equals", "in_segment", ["a"])).toEqual([]);
  });
});
