import { describe, expect, it } from "vitest";
import { ApiError } from "../api";
import {
  convertRaw,
  draftToFlag,
  draftToSegment,
  fieldForServerPath,
  flagToDraft,
  isInstant,
  isSemver,
  parseRaw,
  percentToUnits,
  regexProblem,
  reportedVariants,
  segmentToDraft,
  segmentUsage,
  stripPath,
  valuesAfterOperatorChange,
  type FlagDoc,
} from "./model";

const checkgate: FlagDoc = {
  key: "checkout",
  is_enabled: true,
  rollout_percentage: 50,
  description: null,
  rules: [{ attribute: "plan", operator: "equals", values: ["pro"], variant: "v3" }],
  flag_type: "string",
  default_value: "v2",
  disabled_value: "v1",
};

describe("flag documents and drafts", () => {
  it("gives back a Checkgate-shaped flag unchanged", () => {
    const { doc, errors } = draftToFlag(flagToDraft(checkgate));
    expect(errors).toEqual({});
    expect(doc).toMatchObject(checkgate);
    expect(doc.rules).toEqual(checkgate.rules);
    expect(doc.split).toBeNull();
  });

  it("reads a segment rule and rules with extra conditions, and writes the first condition inline", () => {
    const flag: FlagDoc = {
      ...checkgate,
      rollout_percentage: null,
      rules: [
        { segment_key: "beta", conditions: [{ attribute: "country", operator: "in", values: ["FR", "DE"] }] },
        // The inline condition is ignored when empty and conditions exist.
        {
          attribute: "",
          operator: "equals",
          values: [],
          conditions: [
            { attribute: "a", operator: "gt", values: ["1"] },
            { attribute: "b", operator: "regex", values: ["^x"] },
          ],
          split: { weights: [{ variant: "v1", weight: 25000 }, { variant: "v2", weight: 75000 }] },
        },
      ],
      variants: [
        { key: "v1", value: "v1" },
        { key: "v2", value: "v2" },
      ],
    };
    const draft = flagToDraft(flag);
    expect(draft.rules[0].conditions.map((c) => [c.operator, c.values])).toEqual([
      ["in_segment", ["beta"]],
      ["in", ["FR", "DE"]],
    ]);
    expect(draft.rules[1].conditions.map((c) => c.attribute)).toEqual(["a", "b"]);
    expect(draft.rules[1].serve).toMatchObject({ kind: "split", weights: [{ percent: "25" }, { percent: "75" }] });

    const { doc, errors } = draftToFlag(draft);
    expect(errors).toEqual({});
    expect(doc.rules[0]).toMatchObject({ segment_key: "beta", conditions: [{ attribute: "country", operator: "in", values: ["FR", "DE"] }] });
    expect(doc.rules[1]).toMatchObject({
      attribute: "a",
      operator: "gt",
      values: ["1"],
      conditions: [{ attribute: "b", operator: "regex", values: ["^x"] }],
      split: { weights: [{ variant: "v1", weight: 25000 }, { variant: "v2", weight: 75000 }] },
    });
    expect(doc.rules[1].variant).toBeUndefined();
  });

  it("reports problems with the editor's field paths", () => {
    const draft = flagToDraft({
      ...checkgate,
      rollout_percentage: null,
      variants: [
        { key: "a", value: "a" },
        { key: "a", value: "b" },
      ],
      rules: [
        { attribute: "", operator: "equals", values: ["x"] },
        { attribute: "n", operator: "lt", values: ["ten"] },
      ],
      split: { weights: [{ variant: "a", weight: 90000 }] },
    });
    draft.key = "bad key";
    const { errors } = draftToFlag(draft);
    expect(Object.keys(errors).sort()).toEqual(
      ["key", "variants[1].key", "rules[0].conditions[0].attribute", "rules[1].conditions[0].values", "split"].sort(),
    );
    expect(errors.split).toMatch(/90 %/);
  });

  it("refuses a JSON disabled value of null (the core would store it as not set)", () => {
    const draft = flagToDraft({ ...checkgate, flag_type: "json", default_value: { a: 1 }, disabled_value: { a: 0 }, rules: [] });
    draft.disabledRaw = "null";
    expect(draftToFlag(draft).errors.disabled_value).toMatch(/null/);
    draft.disabledRaw = "{ not json";
    expect(draftToFlag(draft).errors.disabled_value).toMatch(/Invalid JSON/);
  });

  it("round-trips segments", () => {
    const s = {
      key: "beta",
      name: "Beta",
      included: ["u1"],
      excluded: [],
      rules: [{ attribute: "email", operator: "ends_with" as const, values: ["@example.com"] }],
    };
    const { doc, errors } = draftToSegment(segmentToDraft(s));
    expect(errors).toEqual({});
    expect(doc).toMatchObject(s);
    const d = segmentToDraft(s);
    d.rules[0].conditions[0].operator = "in_segment";
    expect(draftToSegment(d).errors["rules[0].conditions[0].operator"]).toMatch(/Segments cannot refer/);
  });
});

describe("server errors", () => {
  const rules = flagToDraft({
    ...checkgate,
    rules: [
      { attribute: "plan", operator: "equals", values: ["pro"], conditions: [{ attribute: "n", operator: "gt", values: ["x"] }] },
      { segment_key: "beta" },
      { attribute: "", operator: "in_segment", values: ["staff", "ops"] },
    ],
  }).rules;

  it("maps the paths of real 422 messages to fields", () => {
    const cases: [string, string | undefined][] = [
      ['rules[0].conditions[0].values[0]: "x" is not a finite number', "rules[0].conditions[1].values"],
      ['rules[0].values[0]: "x" is not a finite number', "rules[0].conditions[0].values"],
      ["rules[0].attribute: must not be empty", "rules[0].conditions[0].attribute"],
      ["rules[1].segment_key: must not be empty", "rules[1].conditions[0].values"],
      ["rules[0].variant: expected a boolean for a boolean flag, got a string", "rules[0].value"],
      ["rules[0].split.weights: weights must sum to 100000 (100 %), got 90000", "rules[0].split"],
      ["rules[0]: has no condition", "rules[0]"],
      ['rules: segment "ops" does not exist in this environment', "rules[2].conditions[0].values"],
      ['rules: segment "other" does not exist in this environment', undefined],
      ["default_value: expected a string for a string flag, got a boolean", "default_value"],
      ["split.weights[1].variant: no variant named \"x\"", "split"],
      ["variants[1].key: duplicate variant \"a\"", "variants[1].key"],
      ['prerequisites[0].key: no flag "zzz" in this environment', "prerequisites[0].key"],
      ["rollout_percentage: cannot be combined with a split", "rollout_percentage"],
      ["key: ' ' is not allowed (use letters, digits, '-', '_' and '.')", "key"],
    ];
    for (const [message, field] of cases) {
      const e = new ApiError(422, "invalid", message);
      expect(e.path, message).toBeDefined();
      expect(fieldForServerPath(e.path!, message, rules), message).toBe(field);
    }
  });

  it("finds no path in messages without one", () => {
    expect(new ApiError(422, "invalid", 'invalid type: string "x", expected a sequence').path).toBeUndefined();
    expect(stripPath("rules[0].values[0]: \"x\" is not a finite number", "rules[0].values[0]")).toBe('"x" is not a finite number');
  });
});

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

describe("environment scans", () => {
  it("finds the flags using each segment", () => {
    const usage = segmentUsage([
      { ...checkgate, key: "a", rules: [{ segment_key: "beta" }] },
      { ...checkgate, key: "b", rules: [{ attribute: "x", operator: "equals", values: ["1"], conditions: [{ attribute: "", operator: "in_segment", values: ["beta", "staff"] }] }] },
      { ...checkgate, key: "c", rules: [{ attribute: "", operator: "in_segment", values: ["staff"] }] },
    ]);
    expect(usage.get("beta")).toEqual(["a", "b"]);
    expect(usage.get("staff")).toEqual(["b", "c"]);
  });

  it("lists the variant names a flag can report, for prerequisites", () => {
    expect(reportedVariants({ ...checkgate, flag_type: "boolean", default_value: undefined, disabled_value: undefined, rules: [] })).toEqual([
      "true",
      "false",
    ]);
    expect(reportedVariants({ ...checkgate, variants: [{ key: "new", value: "v3" }] })).toEqual(["new", "v2", "v1"]);
  });
});
