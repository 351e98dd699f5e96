import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it, vi } from "vitest";

vi.setConfig({ testTimeout: 20_000 });
import { newRule, uid, type FieldErrors, type RuleDraft, type VariantDraft } from "./model";
import { RuleEditor } from "./RuleEditor";

const segments = [
  { key: "beta-testers", name: "Beta testers" },
  { key: "staff", name: "staff" },
];

function setup({
  rule = newRule(),
  mode = "flag" as "flag" | "segment",
  variants = [] as VariantDraft[],
  errors = {} as FieldErrors,
  index = 0,
  count = 1,
} = {}) {
  const state: { rule: RuleDraft } = { rule };
  const onMove = vi.fn();
  const onRemove = vi.fn();
  function Harness() {
    const [r, setR] = useState(rule);
    state.rule = r;
    return (
      <RuleEditor
        rule={r}
        index={index}
        count={count}
        path={`rules[${index}]`}
        errors={errors}
        mode={mode}
        flagType="string"
        variants={variants}
        segments={mode === "flag" ? segments : []}
        onChange={setR}
        onMove={onMove}
        onRemove={onRemove}
      />
    );
  }
  const user = userEvent.setup();
  render(<Harness />);
  return { user, state, onMove, onRemove };
}

const conditionGroups = () => screen.getAllByRole("group", { name: /^Condition \d+$/ });

describe("RuleEditor", () => {
  it("adds and removes conditions; the last one cannot be removed", async () => {
    const { user, state } = setup();
    expect(conditionGroups()).toHaveLength(1);
    expect(screen.getByRole("button", { name: "Remove condition 1" }).hasAttribute("disabled")).toBe(true);

    await user.click(screen.getByRole("button", { name: /Add condition/ }));
    await user.click(screen.getByRole("button", { name: /Add condition/ }));
    expect(conditionGroups()).toHaveLength(3);
    expect(state.rule.conditions).toHaveLength(3);

    const second = screen.getByRole("group", { name: "Condition 2" });
    await user.type(within(second).getByLabelText("Attribute"), "country");
    await user.click(screen.getByRole("button", { name: "Remove condition 1" }));
    expect(conditionGroups()).toHaveLength(2);
    // The condition that was second is now first, its attribute kept.
    expect(state.rule.conditions[0].attribute).toBe("country");
    expect((within(screen.getByRole("group", { name: "Condition 1" })).getByLabelText("Attribute") as HTMLInputElement).value).toBe(
      "country",
    );
  });

  it("offers every operator of the core, grouped", () => {
    setup();
    const select = screen.getByLabelText("Operator") as HTMLSelectElement;
    const ops = [...select.options].map((o) => o.value);
    expect(ops.sort()).toEqual(
      [
        "equals", "not_equals", "contains", "starts_with", "ends_with", "in", "not_in", "regex", "lt", "lte", "gt",
        "gte", "semver_lt", "semver_eq", "semver_gt", "date_before", "date_after", "in_segment",
      ].sort(),
    );
  });

  it("takes several values for in/not_in and keeps only what still makes sense when the operator changes", async () => {
    const { user, state } = setup();
    await user.type(screen.getByLabelText("Attribute"), "plan");
    await user.selectOptions(screen.getByLabelText("Operator"), "in");
    const values = screen.getByLabelText("Values");
    await user.type(values, "pro{Enter}team{Enter}");
    expect(state.rule.conditions[0].values).toEqual(["pro", "team"]);
    expect(screen.getAllByRole("listitem").map((li) => li.textContent)).toEqual(expect.arrayContaining(["pro×", "team×"]));

    // Removing one chip.
    await user.click(screen.getByRole("button", { name: "Remove team" }));
    await user.type(screen.getByLabelText("Values"), "team{Enter}enterprise{Enter}");
    expect(state.rule.conditions[0].values).toEqual(["pro", "team", "enterprise"]);

    // A single-valued text operator keeps the first value only.
    await user.selectOptions(screen.getByLabelText("Operator"), "not_equals");
    expect(state.rule.conditions[0].values).toEqual(["pro"]);
    expect((screen.getByLabelText("Value") as HTMLInputElement).value).toBe("pro");
    expect(screen.queryByLabelText("Values")).toBeNull();

    // Another kind of value (a version) starts empty, with a format hint.
    await user.selectOptions(screen.getByLabelText("Operator"), "semver_gt");
    expect(state.rule.conditions[0].values).toEqual([]);
    const version = screen.getByLabelText("Value") as HTMLInputElement;
    expect(version.value).toBe("");
    expect(screen.getByText(/A version such as 2.4.0/)).toBeTruthy();
    expect(state.rule.conditions[0].attribute).toBe("plan");
  });

  it("validates versions, dates, numbers and regexes as they are typed", async () => {
    const { user } = setup();
    await user.type(screen.getByLabelText("Attribute"), "app_version");
    await user.selectOptions(screen.getByLabelText("Operator"), "semver_lt");
    await user.type(screen.getByLabelText("Value"), "1.02");
    expect(screen.getByText('"1.02" is not a semantic version')).toBeTruthy();
    expect(screen.getByLabelText("Value").getAttribute("aria-invalid")).toBe("true");
    await user.clear(screen.getByLabelText("Value"));
    await user.type(screen.getByLabelText("Value"), "v1.2");
    expect(screen.queryByText(/is not a semantic version/)).toBeNull();
    expect(screen.getByLabelText("Value").getAttribute("aria-invalid")).toBeNull();

    await user.selectOptions(screen.getByLabelText("Operator"), "date_after");
    await user.type(screen.getByLabelText("Value"), "2026-02-30");
    expect(screen.getByText(/is not an RFC 3339 timestamp/)).toBeTruthy();
    await user.clear(screen.getByLabelText("Value"));
    await user.type(screen.getByLabelText("Value"), "2026-02-28T09:00:00Z");
    expect(screen.queryByText(/is not an RFC 3339 timestamp/)).toBeNull();

    await user.selectOptions(screen.getByLabelText("Operator"), "gte");
    await user.type(screen.getByLabelText("Value"), "ten");
    expect(screen.getByText('"ten" is not a number')).toBeTruthy();

    await user.selectOptions(screen.getByLabelText("Operator"), "regex");
    expect((screen.getByLabelText("Value") as HTMLInputElement).value).toBe("");
    await user.type(screen.getByLabelText("Value"), "^(?=admin)");
    expect(screen.getByText(/look-around .* is not supported/)).toBeTruthy();
    await user.clear(screen.getByLabelText("Value"));
    await user.type(screen.getByLabelText("Value"), "^user-[[0-9+$");
    expect(screen.getByText(/invalid regex/)).toBeTruthy();
    await user.clear(screen.getByLabelText("Value"));
    await user.type(screen.getByLabelText("Value"), "(?i)^user-\\d+$");
    expect(screen.queryByText(/invalid regex/)).toBeNull();
  });

  it("picks a segment for in_segment and hides the attribute", async () => {
    const { user, state } = setup();
    await user.type(screen.getByLabelText("Attribute"), "plan");
    await user.selectOptions(screen.getByLabelText("Operator"), "in_segment");
    expect(screen.queryByLabelText("Attribute")).toBeNull();
    const picker = screen.getByLabelText("Segment") as HTMLSelectElement;
    expect([...picker.options].map((o) => o.value)).toEqual(["", "beta-testers", "staff"]);
    await user.selectOptions(picker, "beta-testers");
    expect(state.rule.conditions[0]).toMatchObject({ operator: "in_segment", values: ["beta-testers"] });
  });

  it("does not offer in_segment in segment rules, nor a served value", () => {
    setup({ mode: "segment" });
    const ops = [...(screen.getByLabelText("Operator") as HTMLSelectElement).options].map((o) => o.value);
    expect(ops).not.toContain("in_segment");
    expect(screen.queryByRole("group", { name: /Serve when/ })).toBeNull();
  });

  it("serves the default, a value or a split", async () => {
    const variants: VariantDraft[] = [
      { id: uid(), key: "blue", raw: "#00f", description: "" },
      { id: uid(), key: "green", raw: "#0f0", description: "" },
    ];
    const { user, state } = setup({ variants });
    expect(state.rule.serve.kind).toBe("default");

    await user.click(screen.getByRole("radio", { name: "A value" }));
    expect(state.rule.serve).toEqual({ kind: "value", raw: "#00f" });
    const choice = screen.getByLabelText("Served value") as HTMLSelectElement;
    await user.selectOptions(choice, "custom");
    const custom = screen.getByLabelText("Served value (custom)") as HTMLInputElement;
    await user.clear(custom);
    await user.type(custom, "red");
    expect(state.rule.serve).toEqual({ kind: "value", raw: "red" });

    await user.click(screen.getByRole("radio", { name: "A percentage split" }));
    expect(state.rule.serve.kind).toBe("split");
    expect(screen.getByRole("status").textContent).toBe("Total: 100 %");
    expect((screen.getByLabelText("Share of blue (%)") as HTMLInputElement).value).toBe("50");
  });

  it("cannot split without named variants", () => {
    setup();
    expect(screen.getByRole("radio", { name: "A percentage split" }).hasAttribute("disabled")).toBe(true);
    expect(screen.getByText(/Add named variants/)).toBeTruthy();
  });

  it("moves and deletes, with the ends disabled", async () => {
    const { user, onMove, onRemove } = setup({ index: 0, count: 3 });
    expect(screen.getByRole("button", { name: "Move rule 1 up" }).hasAttribute("disabled")).toBe(true);
    await user.click(screen.getByRole("button", { name: "Move rule 1 down" }));
    expect(onMove).toHaveBeenCalledWith(1);
    await user.click(screen.getByRole("button", { name: "Delete rule 1" }));
    expect(onRemove).toHaveBeenCalledTimes(1);
  });

  it("shows a server error on the field its path names", () => {
    const rule: RuleDraft = {
      ...newRule(),
      conditions: [
        { id: uid(), attribute: "plan", operator: "equals", values: ["pro"] },
        { id: uid(), attribute: "seats", operator: "gt", values: ["x"] },
      ],
    };
    setup({ rule, errors: { "rules[0].conditions[1].values": '"x" is not a finite number' } });
    const second = screen.getByRole("group", { name: "Condition 2" });
    const input = within(second).getByLabelText("Value");
    expect(input.getAttribute("aria-invalid")).toBe("true");
    const describedBy = input.getAttribute("aria-describedby")!.split(" ");
    expect(describedBy.map((id) => document.getElementById(id)?.textContent)).toContain('"x" is not a finite number');
    expect(within(screen.getByRole("group", { name: "Condition 1" })).getByLabelText("Value").getAttribute("aria-invalid")).toBeNull();
  });
});
