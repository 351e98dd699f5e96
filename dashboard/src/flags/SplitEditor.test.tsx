import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it, vi } from "vitest";

vi.setConfig({ testTimeout: 20_000 });
import { splitProblem, uid, type WeightDraft } from "./model";
import { SplitEditor } from "./SplitEditor";

function setup(initial: [string, string][], variants = ["control", "treatment", "holdout"]) {
  const state: { weights: WeightDraft[] } = { weights: [] };
  const start = initial.map(([variant, percent]) => ({ id: uid("w"), variant, percent }));
  function Harness() {
    const [w, setW] = useState(start);
    state.weights = w;
    return <SplitEditor legend="Default split" weights={w} variants={variants} onChange={setW} />;
  }
  const user = userEvent.setup();
  render(<Harness />);
  return { user, state };
}

const sum = () => screen.getByRole("status").textContent;

describe("SplitEditor", () => {
  it("shows the total and accepts exactly 100 %", () => {
    const { state } = setup([
      ["control", "50"],
      ["treatment", "50"],
    ]);
    expect(sum()).toBe("Total: 100 %");
    expect(screen.queryByText(/must add up to 100 %/)).toBeNull();
    expect(splitProblem(state.weights, ["control", "treatment", "holdout"])).toBeUndefined();
    expect(screen.getByRole("img").getAttribute("aria-label")).toBe("Split: control 50 %, treatment 50 %");
  });

  it("marks the split invalid while the shares do not add up to 100 %", async () => {
    const { user, state } = setup([
      ["control", "50"],
      ["treatment", "50"],
    ]);
    const share = screen.getByLabelText("Share of treatment (%)");
    await user.clear(share);
    await user.type(share, "40");
    expect(sum()).toBe("Total: 90 % — must be 100 %");
    expect(screen.getByText("The shares add up to 90 %; they must add up to 100 %.")).toBeTruthy();
    expect(splitProblem(state.weights, ["control", "treatment"])).toMatch(/90 %/);
    // Over 100 % too.
    await user.clear(share);
    await user.type(share, "60.5");
    expect(sum()).toBe("Total: 110.5 % — must be 100 %");
    await user.clear(share);
    await user.type(share, "50");
    expect(sum()).toBe("Total: 100 %");
    expect(screen.queryByText(/must add up/)).toBeNull();
    expect(state.weights.map((w) => w.percent)).toEqual(["50", "50"]);
  });

  it("refuses shares finer than 1/1000 %", async () => {
    const { user } = setup([
      ["control", "50"],
      ["treatment", "50"],
    ]);
    const share = screen.getByLabelText("Share of control (%)");
    await user.clear(share);
    await user.type(share, "49.9995");
    expect(share.getAttribute("aria-invalid")).toBe("true");
    expect(screen.getByText(/at most 3 decimals/)).toBeTruthy();
  });

  it("splits evenly to the 1/1000 %", async () => {
    const { user, state } = setup([
      ["control", "10"],
      ["treatment", "10"],
      ["holdout", "10"],
    ]);
    await user.click(screen.getByRole("button", { name: "Split evenly" }));
    expect(state.weights.map((w) => w.percent)).toEqual(["33.334", "33.333", "33.333"]);
    expect(sum()).toBe("Total: 100 %");
  });

  it("adds unused variants with the remaining share and removes shares", async () => {
    const { user, state } = setup([["control", "70"]]);
    expect(sum()).toBe("Total: 70 % — must be 100 %");
    await user.click(screen.getByRole("button", { name: "Add variant to split" }));
    expect(state.weights.map((w) => [w.variant, w.percent])).toEqual([
      ["control", "70"],
      ["treatment", "30"],
    ]);
    expect(sum()).toBe("Total: 100 %");
    await user.click(screen.getByRole("button", { name: "Add variant to split" }));
    expect(state.weights[2]).toMatchObject({ variant: "holdout", percent: "0" });
    // Every variant is in the split now.
    expect(screen.getByRole("button", { name: "Add variant to split" }).hasAttribute("disabled")).toBe(true);
    await user.click(screen.getByRole("button", { name: "Remove treatment from the split" }));
    expect(state.weights.map((w) => w.variant)).toEqual(["control", "holdout"]);
    expect(sum()).toBe("Total: 70 % — must be 100 %");
  });

  it("changes the variant of a share", async () => {
    const { user, state } = setup([
      ["control", "50"],
      ["treatment", "50"],
    ]);
    await user.selectOptions(screen.getByLabelText("Variant of share 2"), "holdout");
    expect(state.weights[1].variant).toBe("holdout");
    expect(screen.getByLabelText("Share of holdout (%)")).toBeTruthy();
  });

  it("flags a share whose variant no longer exists", () => {
    setup(
      [
        ["control", "50"],
        ["gone", "50"],
      ],
      ["control", "treatment"],
    );
    expect(screen.getByText('No variant named "gone".')).toBeTruthy();
    expect(screen.getByLabelText("Variant of share 2").getAttribute("aria-invalid")).toBe("true");
  });
});
