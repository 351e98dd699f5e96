import { describe, expect, it } from "vitest";
import { segmentUsage } from "./scan";
import { checkgate } from "./testFlag";
import { reportedVariants } from "./values";

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
