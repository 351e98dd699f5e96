import { describe, expect, it } from "vitest";
import { flagToDraft, segmentToDraft } from "./drafts";
import { draftToFlag, draftToSegment } from "./serialize";
import { checkgate } from "./testFlag";
import type { FlagDoc } from "./types";

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
