import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ProjectRole } from "../types";
import { AtRoute, mockFetch } from "./testutil";
import { WebhooksPage } from "./Webhooks";

let role: ProjectRole = "admin";
vi.mock("../session", () => ({
  useSession: () => ({ user: { id: "me", name: "Me", email: "me@example.com", role: "member" } }),
  useProjectRole: () => role,
  can: (r: ProjectRole | null | undefined, needed: ProjectRole) =>
    !!r && ({ viewer: 0, editor: 1, admin: 2 } as const)[r] >= ({ viewer: 0, editor: 1, admin: 2 } as const)[needed],
}));

const hook = {
  id: "h1",
  environment_id: "e1",
  name: "Deploy bot",
  url: "https://hooks.example.com/x",
  format: "checkgate",
  enabled: true,
  has_secret: true,
  consecutive_failures: 6,
  failing: true,
  created_at: "2026-01-01T00:00:00.000Z",
  updated_at: "2026-01-01T00:00:00.000Z",
};
const base = "/api/environments/e1/webhooks";
const page = () =>
  render(
    <AtRoute path="/projects/p1/envs/e1/webhooks" pattern="/projects/:projectId/envs/:envId/webhooks">
      <WebhooksPage />
    </AtRoute>,
  );

describe("WebhooksPage", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("lists webhooks, shows deliveries, and lets an admin add, test, disable and delete", async () => {
    role = "admin";
    const { calls } = mockFetch({
      [`GET ${base}`]: { body: [hook] },
      [`POST ${base}`]: { status: 201, body: { ...hook, id: "h2", name: "Slack", format: "slack", has_secret: false } },
      [`PATCH ${base}/h1`]: { body: { ...hook, enabled: false } },
      [`POST ${base}/h1/test`]: { status: 202, body: { delivery_id: "d2" } },
      [`DELETE ${base}/h1`]: { status: 204 },
      [`GET ${base}/h1/deliveries`]: {
        body: [
          { id: "d1", webhook_id: "h1", event: "flag.updated", event_id: "x", state: "failed", attempts: 3, status_code: 500, latency_ms: 12, error: "answered 500", response_body: "oops", created_at: "2026-01-01T00:00:00.000Z", next_attempt_at: null, finished_at: null },
        ],
      },
    });
    page();
    const table = await screen.findByRole("table", { name: "Webhooks" });
    expect(within(table).getByText("Deploy bot")).toBeTruthy();
    expect(within(table).getByText("failing")).toBeTruthy();
    expect(within(table).getByText("yes")).toBeTruthy();

    fireEvent.click(within(table).getByRole("button", { name: "Deliveries" }));
    const log = await screen.findByRole("table", { name: "Deliveries" });
    expect(within(log).getByText("flag.updated")).toBeTruthy();
    expect(within(log).getByText("answered 500")).toBeTruthy();

    fireEvent.click(within(table).getByRole("button", { name: "Send test event" }));
    await screen.findByText("Test event queued for Deploy bot.");
    fireEvent.click(within(table).getByRole("button", { name: "Disable" }));
    await waitFor(() => expect(calls.some((c) => c.method === "PATCH")).toBe(true));
    expect(calls.find((c) => c.method === "PATCH")?.body).toEqual({ enabled: false });

    const form = screen.getByRole("form", { name: "New webhook" });
    fireEvent.change(within(form).getByLabelText("Name"), { target: { value: "Slack" } });
    fireEvent.change(within(form).getByLabelText("URL"), { target: { value: "https://hooks.slack.com/x" } });
    fireEvent.change(within(form).getByLabelText("Secret"), { target: { value: "s3cret" } });
    fireEvent.change(within(form).getByLabelText("Body"), { target: { value: "slack" } });
    fireEvent.click(within(form).getByRole("button", { name: "Add webhook" }));
    await waitFor(() => expect(calls.some((c) => c.method === "POST" && c.url === base)).toBe(true));
    expect(calls.find((c) => c.method === "POST" && c.url === base)?.body).toEqual({
      name: "Slack",
      url: "https://hooks.slack.com/x",
      format: "slack",
      secret: "s3cret",
    });

    fireEvent.click(within(table).getByRole("button", { name: "Delete" }));
    fireEvent.click(await screen.findByRole("button", { name: "Delete webhook" }));
    await waitFor(() => expect(calls.some((c) => c.method === "DELETE")).toBe(true));
  });

  it("shows a viewer the list without the controls", async () => {
    role = "viewer";
    mockFetch({ [`GET ${base}`]: { body: [hook] } });
    page();
    const table = await screen.findByRole("table", { name: "Webhooks" });
    expect(within(table).getByText("Deploy bot")).toBeTruthy();
    expect(within(table).queryByRole("button", { name: "Delete" })).toBeNull();
    expect(screen.queryByRole("form", { name: "New webhook" })).toBeNull();
  });
});
