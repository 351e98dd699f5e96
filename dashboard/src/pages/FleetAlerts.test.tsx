import { render, screen, within } from "@testing-library/react";
import { MemoryRouter } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";
import { byEnvironment } from "./Connections";
import { EdgesPage } from "./Edges";
import { mockFetch } from "./testutil";

vi.mock("../session", () => ({
  useSession: () => ({ user: { id: "u1", name: "Ada", email: "ada@example.com", role: "admin" } }),
}));

const base = {
  "GET /api/projects": { body: [{ id: "p1", name: "Web", slug: "web", created_at: "", environment_count: 2 }] },
  "GET /api/projects/p1/environments": {
    body: [
      { id: "e1", project_id: "p1", name: "Production", slug: "production", color: "#ef4444", is_default: true, version: 1, created_at: "", client_keys_read_rules: false },
      { id: "e2", project_id: "p1", name: "Staging", slug: "staging", color: "#f59e0b", is_default: false, version: 1, created_at: "", client_keys_read_rules: false },
    ],
  },
  "GET /api/edge-tokens": { body: [] },
  "GET /api/edges": { body: { edges: [] } },
};

const alert = (id: string, open: boolean, edge = "eu-west-1a") => ({
  id,
  kind: "edge.stale",
  subject: `t1/${edge}`,
  edge_name: edge,
  environments: ["e1"],
  opened_at: new Date(Date.now() - 120_000).toISOString(),
  resolved_at: open ? null : new Date().toISOString(),
  detail: { state: "disconnected" },
});

const server = (kind: "edge" | "control_plane", name: string) => ({
  kind,
  name,
  region: kind === "edge" ? "eu-west-1" : null,
  session_id: kind === "edge" ? "s1" : null,
  reported_at: new Date().toISOString(),
});

const entry = (env: string, key: string, count: number, kind: "edge" | "control_plane", name: string, clients: string[] = []) => ({
  environment_id: env,
  environment_name: env === "e1" ? "Production" : "Staging",
  project_id: "p1",
  key_id: `k-${key}`,
  key_name: key,
  server: server(kind, name),
  count,
  clients: clients.map((ip) => ({ ip, connected_at: new Date().toISOString() })),
});

const page = () =>
  render(
    <MemoryRouter>
      <EdgesPage />
    </MemoryRouter>,
  );

describe("Fleet alerts", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("shows open alerts and the resolved history", async () => {
    const { calls } = mockFetch({
      ...base,
      "GET /api/fleet/alerts?state=open&limit=200": { body: { alerts: [alert("a1", true)], more: false } },
      "GET /api/fleet/alerts?state=resolved&limit=50": { body: { alerts: [alert("a0", false, "us-east-1a")], more: false } },
    });
    page();
    const open = await screen.findByRole("table", { name: "Open alerts" });
    expect(within(open).getByText("Edge stale or disconnected")).toBeTruthy();
    expect(await within(open).findByText("eu-west-1a · Web / Production")).toBeTruthy();
    expect(within(open).getByText("open")).toBeTruthy();
    const history = screen.getByRole("table", { name: "Resolved alerts", hidden: true });
    expect(within(history).getByText(/us-east-1a/)).toBeTruthy();
    expect(within(history).getByText("resolved")).toBeTruthy();
    expect(screen.getByText("History (1 resolved)")).toBeTruthy();
    expect(calls.some((c) => c.url.includes("state=open"))).toBe(true);
  });

  it("says when nothing is open", async () => {
    mockFetch({
      ...base,
      "GET /api/fleet/alerts?state=open&limit=200": { body: { alerts: [], more: false } },
      "GET /api/fleet/alerts?state=resolved&limit=50": { body: { alerts: [], more: false } },
    });
    page();
    expect(await screen.findByText("No open alerts.")).toBeTruthy();
  });

  it("shows nothing where the control plane has no alerts", async () => {
    mockFetch(base);
    page();
    expect(await screen.findByText("No edge relays have connected yet")).toBeTruthy();
    expect(screen.queryByRole("heading", { name: "Alerts" })).toBeNull();
  });
});

describe("Connected SDKs", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("shows per environment how many SDKs are connected at each edge and the control plane", async () => {
    mockFetch({
      ...base,
      "GET /api/health/connections": {
        body: {
          total: 6,
          truncated: false,
          connections: [
            entry("e1", "mobile", 3, "edge", "eu-west-1a", ["10.0.0.7"]),
            entry("e2", "web", 2, "edge", "eu-west-1a"),
            entry("e1", "backend", 1, "control_plane", "control plane 1a2b3c4d"),
          ],
        },
      },
    });
    page();
    const production = await screen.findByRole("region", { name: "Connected SDKs in Web / Production" });
    expect(within(production).getByText("mobile")).toBeTruthy();
    expect(within(production).getByText("eu-west-1a")).toBeTruthy();
    expect(within(production).getByText("Control plane (control plane 1a2b3c4d)")).toBeTruthy();
    expect(within(production).getByText("10.0.0.7")).toBeTruthy();
    expect(within(production).getByText("· 4 streams")).toBeTruthy();
    const staging = screen.getByRole("region", { name: "Connected SDKs in Web / Staging" });
    expect(within(staging).getByText("web")).toBeTruthy();
  });

  it("says when no stream is open", async () => {
    mockFetch({ ...base, "GET /api/health/connections": { body: { total: 0, truncated: false, connections: [] } } });
    page();
    expect(await screen.findByText("No SDK streams are open.")).toBeTruthy();
  });

  it("groups entries by environment, most streams first", () => {
    const groups = byEnvironment([entry("e2", "web", 1, "edge", "a"), entry("e1", "m", 2, "edge", "a"), entry("e2", "x", 3, "edge", "b")]);
    expect(groups.map((g) => [g.id, g.total])).toEqual([
      ["e2", 4],
      ["e1", 2],
    ]);
  });
});
