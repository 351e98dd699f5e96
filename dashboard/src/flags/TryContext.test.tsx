import { cleanup, fireEvent, render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { error, fakeServer } from "./testServer";
import { TryContext } from "./TryContext";

vi.setConfig({ testTimeout: 20_000 });

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("TryContext", () => {
  it("evaluates the saved flag for a context and shows value, variant and reason", async () => {
    const { requests } = fakeServer([
      [
        "POST",
        /^\/api\/environments\/e1\/flags\/checkout\/evaluate$/,
        (r) =>
          (r.body as { context: { plan?: string } }).context.plan === "pro"
            ? { status: 200, body: { key: "checkout", value: "v3", variant: "v3", reason: "TARGETING_MATCH", enabled: true, version: 4 } }
            : error(422, "invalid", "context: nested objects are not accepted"),
      ],
    ]);
    render(<TryContext envId="e1" flagKey="checkout" savedVersion={4} dirty />);
    expect(screen.getByText(/You have unsaved changes/)).toBeTruthy();
    const box = screen.getByLabelText("Evaluation context (JSON)");
    fireEvent.change(box, { target: { value: '{"targetingKey": "u1", "plan": ' } });
    expect(screen.getByRole("button", { name: "Evaluate" }).hasAttribute("disabled")).toBe(true);
    expect(screen.getByText("Not valid JSON")).toBeTruthy();

    fireEvent.change(box, { target: { value: '{"targetingKey": "u1", "plan": "pro"}' } });
    const user = userEvent.setup();
    await user.click(screen.getByRole("button", { name: "Evaluate" }));
    const result = screen.getByRole("region", { name: "Evaluation result" });
    await within(result).findByText("TARGETING_MATCH");
    expect(within(result).getByText('"v3"')).toBeTruthy();
    expect(within(result).getByText("v3")).toBeTruthy();
    expect(requests[0].body).toEqual({ context: { targetingKey: "u1", plan: "pro" } });

    fireEvent.change(box, { target: { value: '{"targetingKey": "u1", "address": {"city": "Paris"}}' } });
    expect(screen.getByText(/nested objects are not accepted/)).toBeTruthy();
    await user.click(screen.getByRole("button", { name: "Evaluate" }));
    expect(await within(result).findByText(/context: nested objects are not accepted/)).toBeTruthy();
  });
});
