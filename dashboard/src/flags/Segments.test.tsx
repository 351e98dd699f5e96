import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SessionProvider } from "../session";
import type { Flag, Segment } from "./model";
import { SegmentsPage } from "./Segments";
import { ENV, environments, error, fakeServer, PROJECT, sessionRoutes } from "./testServer";

vi.setConfig({ testTimeout: 20_000 });

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const segments: Segment[] = [
  {
    key: "beta-testers",
    name: "Beta testers",
    version: 2,
    included: ["u1", "u2"],
    rules: [
      { attribute: "email", operator: "ends_with", values: ["@example.com"] },
      { attribute: "plan", operator: "in", values: ["pro"], conditions: [{ attribute: "country", operator: "equals", values: ["FR"] }] },
    ],
  },
  { key: "unused", name: "Unused", version: 3, rules: [] },
];

const flag = (key: string, rules: Flag["rules"]): Flag => ({
  key,
  version: 1,
  is_enabled: true,
  rollout_percentage: null,
  description: null,
  rules,
  flag_type: "boolean",
});

describe("Segments", () => {
  it("lists rules, conditions and the flags using each segment; warns before deleting one in use", async () => {
    const { requests } = fakeServer([
      ...sessionRoutes(),
      ["GET", /^\/api\/projects\/p1\/environments$/, () => ({ status: 200, body: environments() })],
      ["GET", /^\/api\/environments\/e1\/segments$/, () => ({ status: 200, body: segments })],
      [
        "GET",
        /^\/api\/environments\/e1\/flags$/,
        () => ({
          status: 200,
          body: [
            flag("checkout", [{ segment_key: "beta-testers" }]),
            flag("pricing", [{ attribute: "x", operator: "equals", values: ["1"], conditions: [{ attribute: "", operator: "in_segment", values: ["beta-testers"] }] }]),
          ],
        }),
      ],
      ["DELETE", /^\/api\/environments\/e1\/segments\/beta-testers$/, () => error(409, "conflict", 'segment "beta-testers" is used by flags checkout, pricing')],
    ]);
    render(
      <MemoryRouter initialEntries={[`/projects/${PROJECT}/envs/${ENV}/segments`]}>
        <SessionProvider>
          <Routes>
            <Route path="/projects/:projectId/envs/:envId/segments" element={<SegmentsPage />} />
          </Routes>
        </SessionProvider>
      </MemoryRouter>,
    );
    const row = (await screen.findByRole("link", { name: "beta-testers" })).closest("tr")!;
    expect(within(row).getByText(/2 rules, 3 conditions/)).toBeTruthy();
    expect(within(row).getByText("2 included · 0 excluded")).toBeTruthy();
    await waitFor(() => expect(within(row).getByRole("link", { name: "checkout" })).toBeTruthy());
    expect(within(row).getByRole("link", { name: "pricing" })).toBeTruthy();
    const unused = screen.getByRole("link", { name: "unused" }).closest("tr")!;
    expect(within(unused).getByText("No flags")).toBeTruthy();

    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Delete segment beta-testers" }));
    const dialog = screen.getByRole("dialog", { name: /Delete segment beta-testers/ });
    expect(dialog.textContent).toMatch(/2 flags use this segment: checkout, pricing/);
    await user.click(within(dialog).getByRole("button", { name: "Delete segment" }));
    // The server refuses; the dialog says why and stays open.
    expect(await within(dialog).findByRole("alert")).toBeTruthy();
    expect(within(dialog).getByRole("alert").textContent).toMatch(/is used by flags/);
    expect(requests.filter((r) => r.method === "DELETE")).toHaveLength(1);
  });
});
