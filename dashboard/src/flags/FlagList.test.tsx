import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SessionProvider } from "../session";
import { FlagListPage } from "./FlagList";
import type { Flag } from "./model";
import { ENV, environments, error, fakeServer, PROJECT, sessionRoutes, type Handler } from "./testServer";

vi.setConfig({ testTimeout: 20_000 });

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const flag = (key: string, extra: Partial<Flag> = {}): Flag => ({
  key,
  version: 1,
  is_enabled: true,
  rollout_percentage: null,
  description: null,
  rules: [],
  flag_type: "boolean",
  ...extra,
});

function setup(
  flags: Flag[],
  opts: { production?: boolean; patch?: Handler; get?: Handler; role?: ["admin" | "member", string]; insights?: Handler } = {},
) {
  const srv = fakeServer([
    ...sessionRoutes(...(opts.role ?? ["admin", "editor"])),
    ["GET", /^\/api\/projects\/p1\/environments$/, () => ({ status: 200, body: environments(opts.production) })],
    ["GET", /^\/api\/environments\/e1\/flags$/, () => ({ status: 200, body: flags })],
    ["GET", /^\/api\/environments\/e1\/flags\/([^/]+)$/, (r, m) => opts.get?.(r, m)],
    ["GET", /^\/api\/environments\/e1\/insights$/, (r, m) => opts.insights?.(r, m)],
    ["PATCH", /^\/api\/environments\/e1\/flags\/([^/]+)$/, (r, m) => opts.patch?.(r, m)],
  ]);
  render(
    <MemoryRouter initialEntries={[`/projects/${PROJECT}/envs/${ENV}/flags`]}>
      <SessionProvider>
        <Routes>
          <Route path="/projects/:projectId/envs/:envId/flags" element={<FlagListPage />} />
        </Routes>
      </SessionProvider>
    </MemoryRouter>,
  );
  return { user: userEvent.setup(), ...srv };
}

const rowKeys = () =>
  screen
    .getAllByRole("row")
    .slice(1)
    .map((r) => within(r).getAllByRole("link")[0].textContent);

describe("FlagList", () => {
  const flags = [
    flag("checkout-v2", { description: "New checkout flow", tags: ["checkout", "web"], version: 7, updated_at: "2026-11-01T00:00:00Z" }),
    flag("dark-mode", { is_enabled: false, tags: ["ui"], version: 9, updated_at: "2026-11-20T00:00:00Z" }),
    flag("max-items", { flag_type: "integer", version: 3, updated_at: "2026-10-01T00:00:00Z" }),
  ];

  it("searches by key, description and tag; filters and sorts", async () => {
    const { user } = setup(flags);
    await screen.findByRole("switch", { name: "Toggle checkout-v2" });
    expect(rowKeys()).toEqual(["checkout-v2", "dark-mode", "max-items"]);

    await user.type(screen.getByRole("searchbox", { name: "Search flags" }), "flow");
    expect(rowKeys()).toEqual(["checkout-v2"]);
    await user.clear(screen.getByRole("searchbox", { name: "Search flags" }));
    await user.type(screen.getByRole("searchbox", { name: "Search flags" }), "ui");
    expect(rowKeys()).toEqual(["dark-mode"]);
    expect(screen.getByText("1 of 3 flags")).toBeTruthy();
    await user.click(screen.getByRole("button", { name: "Clear filters" }));

    await user.selectOptions(screen.getByLabelText("Status"), "off");
    expect(rowKeys()).toEqual(["dark-mode"]);
    await user.selectOptions(screen.getByLabelText("Status"), "");
    await user.selectOptions(screen.getByLabelText("Type"), "integer");
    expect(rowKeys()).toEqual(["max-items"]);
    await user.selectOptions(screen.getByLabelText("Type"), "");
    await user.selectOptions(screen.getByLabelText("Tag"), "web");
    expect(rowKeys()).toEqual(["checkout-v2"]);
    await user.selectOptions(screen.getByLabelText("Tag"), "");

    await user.selectOptions(screen.getByLabelText("Sort by"), "changed");
    expect(rowKeys()).toEqual(["dark-mode", "checkout-v2", "max-items"]);
  });

  it("toggles with If-Match, and asks first in production", async () => {
    const { user, requests } = setup(flags, {
      production: true,
      patch: (r) => ({ status: 200, body: { ...flags[0], ...(r.body as object), version: 10 } }),
    });
    const toggle = await screen.findByRole("switch", { name: "Toggle checkout-v2" });
    expect(toggle.getAttribute("aria-checked")).toBe("true");
    await user.click(toggle);
    const dialog = await screen.findByRole("dialog", { name: "Turn off checkout-v2 in Production?" });
    expect(requests.some((r) => r.method === "PATCH")).toBe(false);

    await user.click(within(dialog).getByRole("button", { name: "Cancel" }));
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(requests.some((r) => r.method === "PATCH")).toBe(false);

    await user.click(screen.getByRole("switch", { name: "Toggle checkout-v2" }));
    await user.click(within(await screen.findByRole("dialog")).getByRole("button", { name: "Turn off" }));
    await waitFor(() => expect(screen.getByRole("switch", { name: "Toggle checkout-v2" }).getAttribute("aria-checked")).toBe("false"));
    const patch = requests.find((r) => r.method === "PATCH")!;
    expect(patch.path).toBe("/api/environments/e1/flags/checkout-v2");
    expect(patch.body).toEqual({ is_enabled: false });
    expect(patch.headers["If-Match"]).toBe('"7"');
  });

  it("toggles at once outside production", async () => {
    const { user, requests } = setup(flags, {
      patch: (r) => ({ status: 200, body: { ...flags[1], ...(r.body as object), version: 10 } }),
    });
    await user.click(await screen.findByRole("switch", { name: "Toggle dark-mode" }));
    await waitFor(() => expect(screen.getByRole("switch", { name: "Toggle dark-mode" }).getAttribute("aria-checked")).toBe("true"));
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(requests.find((r) => r.method === "PATCH")!.headers["If-Match"]).toBe('"9"');
  });

  it("on 412 says someone else changed it and reloads the row", async () => {
    const { user } = setup(flags, {
      patch: () => error(412, "precondition_failed", 'flag "dark-mode" is at version 12, not 9; reload it and try again'),
      get: () => ({ status: 200, body: { ...flags[1], is_enabled: true, version: 12, description: "Changed elsewhere" } }),
    });
    await user.click(await screen.findByRole("switch", { name: "Toggle dark-mode" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toMatch(/dark-mode was changed by someone else/);
    await waitFor(() => expect(screen.getByText("Changed elsewhere")).toBeTruthy());
    expect(screen.getByRole("switch", { name: "Toggle dark-mode" }).getAttribute("aria-checked")).toBe("true");
  });

  it("shows an empty state with Create flag", async () => {
    setup([]);
    expect(await screen.findByRole("heading", { name: "No flags in Staging yet" })).toBeTruthy();
    await waitFor(() => expect(screen.getAllByRole("link", { name: "Create flag" }).length).toBeGreaterThan(0));
  });

  it("shows viewers the state without switches", async () => {
    setup(flags, { role: ["member", "viewer"] });
    await screen.findByText("checkout-v2");
    await waitFor(() => expect(screen.getAllByText("Off").length).toBeGreaterThan(0));
    expect(screen.queryByRole("switch")).toBeNull();
    expect(screen.queryByRole("link", { name: "Create flag" })).toBeNull();
  });

  it("shows when each flag was last evaluated, marks stale ones and filters them", async () => {
    const { user } = setup(flags, {
      role: ["member", "viewer"],
      insights: () => ({
        status: 200,
        body: [
          { flag_key: "checkout-v2", last_evaluated: new Date(Date.now() - 3 * 3_600_000).toISOString(), stale: false, stale_reason: null },
          { flag_key: "dark-mode", last_evaluated: null, stale: true, stale_reason: "not_evaluated" },
          { flag_key: "max-items", last_evaluated: "2026-01-01T00:00:00Z", stale: true, stale_reason: "single_value" },
        ],
      }),
    });
    await screen.findByText("3 hours ago");
    const row = (key: string) => screen.getByRole("link", { name: key }).closest("tr")!;
    expect(within(row("dark-mode")).getByText("never")).toBeTruthy();
    expect(within(row("dark-mode")).getByText(/Stale/).textContent).toMatch(/Not evaluated/);
    expect(within(row("max-items")).getByText(/Stale/).textContent).toMatch(/one value to everyone/);
    expect(within(row("checkout-v2")).queryByText(/Stale/)).toBeNull();

    await user.selectOptions(screen.getByLabelText("Activity"), "1");
    expect(rowKeys()).toEqual(["dark-mode", "max-items"]);
    expect(screen.getByText("2 of 3 flags")).toBeTruthy();
    await user.selectOptions(screen.getByLabelText("Activity"), "");
    await user.selectOptions(screen.getByLabelText("Sort by"), "evaluated-asc");
    expect(rowKeys()).toEqual(["dark-mode", "max-items", "checkout-v2"]);
  });

  it("works without the last evaluations when they cannot be loaded", async () => {
    setup(flags, { insights: () => error(500, "internal", "insights are down") });
    await screen.findByText(/Last evaluations could not be loaded \(insights are down\)/);
    expect(rowKeys()).toEqual(["checkout-v2", "dark-mode", "max-items"]);
    expect((screen.getByLabelText("Activity") as HTMLSelectElement).disabled).toBe(true);
  });
});
