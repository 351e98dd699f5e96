import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ProjectRole } from "../../types";
import { AtRoute, mockFetch } from "../../pages/testutil";
import { changedFields, localToRfc3339, type ScheduledChange } from "./model";
import { ScheduleDialog } from "./ScheduleDialog";
import { ScheduledChangesPage } from "./ScheduledChanges";

let role: ProjectRole = "editor";
vi.mock("../../session", () => ({
  useSession: () => ({ user: { id: "me", name: "Me", email: "me@example.com", role: "member" } }),
  useProjectRole: () => role,
  can: (r: ProjectRole | null | undefined, needed: ProjectRole) =>
    !!r && ({ viewer: 0, editor: 1, admin: 2 } as const)[r] >= ({ viewer: 0, editor: 1, admin: 2 } as const)[needed],
}));

const env = { id: "e1", project_id: "p1", name: "Staging", slug: "staging", color: "#22c55e", is_default: true, version: 1, created_at: "", client_keys_read_rules: false };

function change(over: Partial<ScheduledChange>): ScheduledChange {
  return {
    id: "s1",
    environment_id: "e1",
    flag_key: "checkout",
    scheduled_at: "2099-01-01T09:00:00.000Z",
    patch: { is_enabled: true },
    executed_at: null,
    created_at: "2026-01-01T00:00:00.000Z",
    status: "pending",
    applied_at: null,
    applied_version: null,
    failure_reason: null,
    cancelled_at: null,
    if_version: 3,
    created_by: { kind: "user", id: "u1", name: "ann@example.com" },
    ...over,
  };
}

const list = [
  change({}),
  change({ id: "s2", flag_key: "search", status: "applied", applied_at: "2026-01-02T00:00:01.000Z", executed_at: "2026-01-02T00:00:01.000Z", applied_version: 9, scheduled_at: "2026-01-02T00:00:00.000Z" }),
  change({ id: "s3", flag_key: "banner", status: "failed", failure_reason: "flag \"banner\" not found", scheduled_at: "2026-01-01T00:00:00.000Z" }),
];

const page = () =>
  render(
    <AtRoute path="/projects/p1/envs/e1/schedules" pattern="/projects/:projectId/envs/:envId/schedules">
      <ScheduledChangesPage />
    </AtRoute>,
  );

describe("ScheduledChangesPage", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("lists upcoming and past changes with their outcome, and cancels a pending one", async () => {
    role = "editor";
    const { calls } = mockFetch({
      "GET /api/projects/p1/environments": { body: [env] },
      "GET /api/environments/e1/scheduled-changes": { body: list },
      "DELETE /api/environments/e1/scheduled-changes/s1": { status: 204 },
    });
    page();
    const upcoming = await screen.findByRole("table", { name: "Upcoming changes" });
    expect(within(upcoming).getByText("checkout")).toBeTruthy();
    expect(within(upcoming).getByText("is_enabled = true")).toBeTruthy();
    const past = screen.getByRole("table", { name: "Past changes" });
    expect(within(past).getByText("applied")).toBeTruthy();
    expect(within(past).getByText(/as version 9/)).toBeTruthy();
    expect(within(past).getByText("failed")).toBeTruthy();
    expect(within(past).getByText(/"banner" not found/)).toBeTruthy();

    fireEvent.click(within(upcoming).getByRole("button", { name: "Cancel" }));
    fireEvent.click(await screen.findByRole("button", { name: "Cancel change" }));
    await waitFor(() => expect(calls.some((c) => c.method === "DELETE" && c.url.endsWith("/scheduled-changes/s1"))).toBe(true));
  });

  it("offers no cancel to viewers", async () => {
    role = "viewer";
    mockFetch({
      "GET /api/projects/p1/environments": { body: [env] },
      "GET /api/environments/e1/scheduled-changes": { body: list },
    });
    page();
    const upcoming = await screen.findByRole("table", { name: "Upcoming changes" });
    expect(within(upcoming).queryByRole("button", { name: "Cancel" })).toBeNull();
  });
});

describe("ScheduleDialog", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("schedules the edit's fields at the chosen time, guarded by the version it was made on", async () => {
    const { calls } = mockFetch({
      "POST /api/environments/e1/flags/checkout/scheduled-changes": { status: 201, body: change({}) },
    });
    const onScheduled = vi.fn();
    render(
      <ScheduleDialog envId="e1" flagKey="checkout" version={3} patch={{ is_enabled: true }} envName="Staging" onClose={() => {}} onScheduled={onScheduled} />,
    );
    fireEvent.change(screen.getByLabelText("Apply at"), { target: { value: "2099-01-01T10:00" } });
    fireEvent.click(screen.getByRole("button", { name: "Schedule change" }));
    await waitFor(() => expect(onScheduled).toHaveBeenCalled());
    const post = calls.find((c) => c.method === "POST");
    expect(post?.body).toEqual({ scheduled_at: localToRfc3339("2099-01-01T10:00"), patch: { is_enabled: true }, if_version: 3 });
  });

  it("refuses a time in the past without asking the server", async () => {
    const { calls } = mockFetch({});
    render(
      <ScheduleDialog envId="e1" flagKey="checkout" version={3} patch={{ is_enabled: true }} envName="Staging" onClose={() => {}} onScheduled={() => {}} />,
    );
    fireEvent.change(screen.getByLabelText("Apply at"), { target: { value: "2001-01-01T10:00" } });
    fireEvent.click(screen.getByRole("button", { name: "Schedule change" }));
    expect(await screen.findByText("Pick a time in the future.")).toBeTruthy();
    expect(calls.length).toBe(0);
  });
});

describe("changedFields", () => {
  it("keeps only the fields the edit changes, never the key", () => {
    const saved = { key: "f", version: 2, is_enabled: false, rollout_percentage: null, description: "a", rules: [] } as never;
    const doc = { key: "f", is_enabled: true, rollout_percentage: null, description: "a", rules: [] } as never;
    expect(changedFields(saved, doc)).toEqual({ is_enabled: true });
  });

  it("takes an empty list for a field the saved flag leaves out, so the edit does not name it", () => {
    const saved = { key: "f", version: 2, description: "a", tags: ["x"] } as never;
    const doc = { key: "f", description: "b", tags: ["x"], prerequisites: [], variants: [], rules: [] } as never;
    expect(changedFields(saved, doc)).toEqual({ description: "b" });
    const cleared = { key: "f", description: "a", tags: [] } as never;
    expect(changedFields(saved, cleared)).toEqual({ tags: [] });
  });
});
