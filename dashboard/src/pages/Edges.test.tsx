import { fireEvent, render, screen, within } from "@testing-library/react";
import { MemoryRouter } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";
import { EdgesPage, formatAge } from "./Edges";
import { mockFetch } from "./testutil";

vi.mock("../session", () => ({
  useSession: () => ({ user: { id: "u1", name: "Ada", email: "ada@example.com", role: "admin" } }),
}));

const base = {
  "GET /api/projects": { body: [{ id: "p1", name: "Web", slug: "web", created_at: "", environment_count: 1 }] },
  "GET /api/projects/p1/environments": {
    body: [{ id: "e1", project_id: "p1", name: "Production", slug: "production", color: "#ef4444", is_default: true, version: 1, created_at: "", client_keys_read_rules: false }],
  },
  "GET /api/edge-tokens": { body: [] },
};

const page = () =>
  render(
    <MemoryRouter>
      <EdgesPage />
    </MemoryRouter>,
  );

describe("EdgesPage", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("says when the control plane has no fleet status", async () => {
    mockFetch(base); // /api/edges is a 404
    page();
    expect(await screen.findByText("Fleet status is not available on this control plane.")).toBeTruthy();
  });

  it("explains how to connect an edge when there is none", async () => {
    mockFetch({ ...base, "GET /api/edges": { body: { edges: [] } } });
    page();
    expect(await screen.findByText("No edge relays have connected yet")).toBeTruthy();
    expect(screen.getByText(/Create an edge token below/)).toBeTruthy();
  });

  it("shows each edge with its environments named, lag and state", async () => {
    mockFetch({
      ...base,
      "GET /api/edge-tokens": {
        body: [{ id: "t1", name: "eu token", prefix: "cge_12ab…", environments: null, created_at: "2026-01-01T00:00:00Z", last_seen_at: null, revoked_at: null }],
      },
      "GET /api/edges": {
        body: {
          edges: [
            {
              id: "x",
              name: "eu-west-1a",
              region: "eu-west-1",
              state: "stale",
              connected_at: new Date().toISOString(),
              last_seen: new Date().toISOString(),
              data_age_ms: 1500,
              address: "10.0.0.7:51234",
              token_id: "t1",
              disconnected_at: null,
              environments: [{ environment_id: "e1", position: 7, head: 9, lag: 2 }],
            },
          ],
        },
      },
    });
    page();
    expect(await screen.findByText("eu-west-1a")).toBeTruthy();
    expect(await screen.findByText("Web / Production")).toBeTruthy();
    expect(screen.getByText("2 behind")).toBeTruthy();
    expect(screen.getByText("stale")).toBeTruthy();
    expect(screen.getByText("1.5 s")).toBeTruthy();
    expect(await screen.findByText("token eu token")).toBeTruthy();
    expect(screen.getByText("10.0.0.7:51234")).toBeTruthy();
    expect(screen.getByRole("switch", { name: "Refresh every 5 s" }).getAttribute("aria-checked")).toBe("true");
  });
});

describe("Edge tokens", () => {
  afterEach(() => vi.unstubAllGlobals());

  const token = { id: "t1", name: "eu token", prefix: "cge_12ab…", environments: ["e1"], created_at: "2026-01-01T00:00:00Z", last_seen_at: null, revoked_at: null };

  it("creates a token for chosen environments and shows it once", async () => {
    const { calls } = mockFetch({
      ...base,
      "GET /api/edges": { body: { edges: [] } },
      "GET /api/edge-tokens": { body: [token] },
      "POST /api/edge-tokens": { status: 201, body: { ...token, id: "t2", name: "us token", token: "cge_secret" } },
    });
    page();
    const table = await screen.findByRole("table", { name: "Edge tokens" });
    expect(within(table).getByText("eu token")).toBeTruthy();
    expect(await within(table).findByText("Web / Production")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "New edge token" }));
    const form = await screen.findByRole("dialog", { name: "New edge token" });
    fireEvent.change(within(form).getByLabelText("Token name"), { target: { value: "us token" } });
    fireEvent.click(within(form).getByRole("radio", { name: "Only these environments" }));
    expect((within(form).getByRole("button", { name: "Create edge token" }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(within(form).getByRole("checkbox", { name: /Production/ }));
    fireEvent.click(within(form).getByRole("button", { name: "Create edge token" }));
    const shown = await screen.findByRole("dialog", { name: "Edge token created" });
    expect((within(shown).getByLabelText("Edge token") as HTMLInputElement).value).toBe("cge_secret");
    expect(within(shown).getByText(/It may serve/).textContent).toContain("Web / Production");
    expect(calls.find((c) => c.method === "POST")?.body).toEqual({ name: "us token", environments: ["e1"] });
  });

  it("revokes a token after confirmation and offers to show the revoked ones", async () => {
    let revoked = false;
    const { calls } = mockFetch({
      ...base,
      "GET /api/edges": { body: { edges: [] } },
      "GET /api/edge-tokens": () => ({ body: [revoked ? { ...token, revoked_at: "2026-01-02T00:00:00Z" } : token] }),
      "DELETE /api/edge-tokens/t1": () => {
        revoked = true;
        return { status: 204 };
      },
    });
    page();
    fireEvent.click(await screen.findByRole("button", { name: "Revoke edge token eu token" }));
    const confirm = await screen.findByRole("dialog", { name: "Revoke edge token “eu token”?" });
    fireEvent.click(within(confirm).getByRole("button", { name: "Revoke token" }));
    expect(await screen.findByText("No active ones: every one has been revoked.")).toBeTruthy();
    expect(calls.some((c) => c.method === "DELETE")).toBe(true);
    fireEvent.click(screen.getByRole("checkbox", { name: "Show revoked tokens (1)" }));
    const table = screen.getByRole("table", { name: "Edge tokens" });
    expect(within(table).getByText("eu token")).toBeTruthy();
    expect(within(table).queryByRole("button", { name: /Revoke/ })).toBeNull();
  });
});

describe("formatAge", () => {
  it("picks a readable unit", () => {
    expect(formatAge(null)).toBe("—");
    expect(formatAge(850)).toBe("850 ms");
    expect(formatAge(4200)).toBe("4.2 s");
    expect(formatAge(45_000)).toBe("45 s");
    expect(formatAge(180_000)).toBe("3 min");
    expect(formatAge(2 * 3_600_000 + 5 * 60_000)).toBe("2 h 5 min");
  });
});
