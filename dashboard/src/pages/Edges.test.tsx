import { render, screen } from "@testing-library/react";
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
