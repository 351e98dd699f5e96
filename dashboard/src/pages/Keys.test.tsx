import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ProjectRole } from "../types";
import { KeysPage } from "./Keys";
import { AtRoute, mockFetch } from "./testutil";

let role: ProjectRole = "admin";
vi.mock("../session", () => ({
  useSession: () => ({ user: { id: "me", name: "Me", email: "me@example.com", role: "member" } }),
  useProjectRole: () => role,
  can: (r: ProjectRole | null | undefined, needed: ProjectRole) =>
    !!r && ({ viewer: 0, editor: 1, admin: 2 } as const)[r] >= ({ viewer: 0, editor: 1, admin: 2 } as const)[needed],
}));

const env = { id: "e1", project_id: "p1", name: "Staging", slug: "staging", color: "#22c55e", is_default: true, version: 1, created_at: "", client_keys_read_rules: false };
const sdkKeys = [
  { id: "k1", name: "checkout", kind: "server", prefix: "cgs_ab12…", environment_id: "e1", environment_name: "Staging", created_at: "2026-01-01T00:00:00Z", revoked_at: null, last_used_at: null },
  { id: "k2", name: "old app", kind: "client", prefix: "cgc_cd34…", environment_id: "e1", environment_name: "Staging", created_at: "2026-01-01T00:00:00Z", revoked_at: "2026-01-02T00:00:00Z", last_used_at: null },
];
const apiTokens = [
  { id: "t1", name: "GitHub Actions", role: "editor", prefix: "cgt_ef56…", created_at: "2026-01-01T00:00:00Z", last_used_at: null, revoked_at: null },
];
const routes = {
  "GET /api/projects/p1/environments": { body: [env] },
  "GET /api/projects/p1/keys": { body: sdkKeys },
  "GET /api/projects/p1/tokens": { body: apiTokens },
  "POST /api/projects/p1/keys": {
    status: 201,
    body: { ...sdkKeys[0], id: "k3", name: "billing", prefix: "cgs_9999…", key: "cgs_9999secret" },
  },
  "DELETE /api/projects/p1/tokens/t1": { status: 204 },
};
const page = () =>
  render(
    <AtRoute path="/projects/p1/keys" pattern="/projects/:projectId/keys">
      <KeysPage />
    </AtRoute>,
  );

describe("KeysPage", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("lists SDK keys and API tokens, hiding revoked ones until asked", async () => {
    role = "admin";
    mockFetch(routes);
    page();
    const keys = await screen.findByRole("table", { name: "SDK keys" });
    expect(within(keys).getByText("checkout")).toBeTruthy();
    expect(within(keys).getByText("cgs_ab12…")).toBeTruthy();
    expect(within(keys).queryByText("old app")).toBeNull();
    fireEvent.click(screen.getByRole("checkbox", { name: "Show revoked keys (1)" }));
    expect(within(keys).getByText("old app")).toBeTruthy();
    expect(within(keys).getByText(/^revoked/)).toBeTruthy();

    const tokens = await screen.findByRole("table", { name: "API tokens" });
    expect(within(tokens).getByText("GitHub Actions")).toBeTruthy();
    expect(within(tokens).getByText("editor")).toBeTruthy();
    expect(screen.queryByRole("checkbox", { name: /Show revoked tokens/ })).toBeNull();
  });

  it("shows a new SDK key once, then lists it by prefix", async () => {
    role = "admin";
    const { calls } = mockFetch(routes);
    page();
    fireEvent.click(await screen.findByRole("button", { name: "New SDK key" }));
    const form = await screen.findByRole("dialog", { name: "New SDK key" });
    fireEvent.change(within(form).getByLabelText("Key name"), { target: { value: "billing" } });
    await waitFor(() => expect((within(form).getByLabelText("Environment") as HTMLSelectElement).value).toBe("e1"));
    fireEvent.click(within(form).getByRole("button", { name: "Create key" }));
    const shown = await screen.findByRole("dialog", { name: "SDK key created" });
    expect((within(shown).getByLabelText("SDK key") as HTMLInputElement).value).toBe("cgs_9999secret");
    expect(within(shown).getByText("Copy it now: you will not see it again.")).toBeTruthy();
    expect(calls.find((c) => c.method === "POST")?.body).toEqual({ name: "billing", environment_id: "e1", kind: "server" });
    fireEvent.click(within(shown).getByRole("button", { name: "I have stored it, close" }));
    expect(screen.queryByRole("dialog", { name: "SDK key created" })).toBeNull();
  });

  it("revokes an API token after confirmation", async () => {
    role = "admin";
    const { calls } = mockFetch(routes);
    page();
    fireEvent.click(await screen.findByRole("button", { name: "Revoke API token GitHub Actions" }));
    const confirm = await screen.findByRole("dialog", { name: "Revoke API token “GitHub Actions”?" });
    expect(within(confirm).getByText("cgt_ef56…")).toBeTruthy();
    fireEvent.click(within(confirm).getByRole("button", { name: "Revoke token" }));
    await waitFor(() => expect(calls.some((c) => c.method === "DELETE" && c.url === "/api/projects/p1/tokens/t1")).toBe(true));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(calls.filter((c) => c.method === "GET" && c.url === "/api/projects/p1/tokens")).toHaveLength(2);
  });

  it("lets non-admins see SDK keys but not manage them, nor see API tokens", async () => {
    role = "editor";
    const { calls } = mockFetch(routes);
    page();
    const keys = await screen.findByRole("table", { name: "SDK keys" });
    expect(within(keys).getByText("checkout")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "New SDK key" })).toBeNull();
    expect(screen.queryByRole("button", { name: /^Revoke/ })).toBeNull();
    expect(screen.getByText("Only project admins can see and manage API tokens.")).toBeTruthy();
    expect(calls.some((c) => c.url.includes("/tokens"))).toBe(false);
  });

  it("shows this project's connected SDKs per environment to any member", async () => {
    role = "viewer";
    const server = { kind: "edge", name: "eu-west-1a", region: null, session_id: "s1", reported_at: new Date().toISOString() };
    const entry = { environment_id: "e1", environment_name: "Staging", project_id: "p1", key_id: "k1", key_name: "checkout", server, count: 3, clients: [] };
    mockFetch({
      ...routes,
      "GET /api/health/connections": {
        body: { total: 5, truncated: false, connections: [entry, { ...entry, environment_id: "e9", environment_name: "Other", project_id: "p2", count: 2 }] },
      },
    });
    page();
    const staging = await screen.findByRole("region", { name: "Connected SDKs in Staging" });
    expect(within(staging).getByText("eu-west-1a")).toBeTruthy();
    expect(within(staging).getByText("· 3 streams")).toBeTruthy();
    expect(screen.queryByRole("region", { name: "Connected SDKs in Other" })).toBeNull();
  });
});
