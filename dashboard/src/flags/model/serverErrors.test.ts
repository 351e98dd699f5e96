import { describe, expect, it } from "vitest";
import { ApiError } from "../../api";
import { flagToDraft } from "./drafts";
import { fieldForServerPath, stripPath } from "./serverErrors";
import { checkgate } from "./testFlag";

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
