import { fireEvent, render, screen, within } from "@testing-library/react";
import { MemoryRouter } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AuditPage, auditQuery, describeAction, filtersFrom } from "./Audit";
import { mockFetch } from "./testutil";

vi.mock("../session", () => ({
  useSession: () => ({ user: { id: "u1", name: "Ada", email: "ada@example.com", role: "admin" } }),
}));

const empty = filtersFrom(new URLSearchParams());

describe("auditQuery", () => {
  it("maps filters to the API's query parameters", () => {
    const q = new URLSearchParams(
      auditQuery({ ...empty, project: "p1", env: "e1", actor: "u1", kind: "flag", key: " checkout " }, 0),
    );
    expect(Object.fromEntries(q)).toEqual({
      project_id: "p1",
      environment_id: "e1",
      actor_id: "u1",
      target_kind: "flag",
      target_key: "checkout",
      limit: "50",
    });
  });

  it("turns a preset range into `since` and a custom one into since/until", () => {
    const now = Date.parse("2026-01-02T00:00:00Z");
    expect(new URLSearchParams(auditQuery({ ...empty, range: "24h" }, now)).get("since")).toBe("2026-01-01T00:00:00.000Z");
    const custom = new URLSearchParams(auditQuery({ ...empty, range: "custom", from: "2026-01-01T10:00", to: "" }, now));
    expect(custom.get("since")).toBe(new Date("2026-01-01T10:00").toISOString());
    expect(custom.has("until")).toBe(false);
  });

  it("pages with the cursor", () => {
    expect(new URLSearchParams(auditQuery(empty, 0, 1234)).get("cursor")).toBe("1234");
  });

  it("reads actions as verbs", () => {
    expect(describeAction("flag.update")).toBe("updated");
    expect(describeAction("environment.set_default")).toBe("made the default");
    expect(describeAction("edge_token.something_new")).toBe("something new");
  });
});

describe("AuditPage", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("lists entries that open to a diff, and pages on", async () => {
    const entry = (id: number, after: unknown) => ({
      id,
      at: "2026-01-01T00:00:00.000Z",
      actor: { kind: "user", id: "u1", name: "ada@example.com" },
      project_id: "p1",
      environment_id: "e1",
      action: "flag.update",
      target: { kind: "flag", key: "checkout" },
      before: { enabled: false },
      after,
    });
    const { calls } = mockFetch({
      "GET /api/projects": { body: [{ id: "p1", name: "Web", slug: "web", created_at: "", environment_count: 1 }] },
      "GET /api/projects/p1/environments": {
        body: [{ id: "e1", project_id: "p1", name: "Production", slug: "production", color: "#ef4444", is_default: true, version: 1, created_at: "", client_keys_read_rules: false }],
      },
      "GET /api/users": { body: [{ id: "u1", name: "Ada", email: "ada@example.com", role: "admin", created_at: "" }] },
      "GET /api/audit": (_init, url) =>
        url.includes("cursor=")
          ? { body: { entries: [entry(1, { enabled: true })], next_cursor: null } }
          : { body: { entries: [entry(2, { enabled: true })], next_cursor: 2 } },
    });
    render(
      <MemoryRouter initialEntries={["/audit"]}>
        <AuditPage />
      </MemoryRouter>,
    );
    const list = await screen.findByRole("list", { name: /Audit entries/ });
    const toggle = within(list).getAllByRole("button")[0];
    expect(toggle.getAttribute("aria-expanded")).toBe("false");
    expect(toggle.textContent).toContain("updated");
    expect(toggle.textContent).toContain("checkout");
    fireEvent.click(toggle);
    expect(toggle.getAttribute("aria-expanded")).toBe("true");
    expect(screen.getByText(/1 difference: 1 changed/)).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Load older entries" }));
    await screen.findByText(/2 entries, the oldest reached/);
    expect(calls.some((c) => c.url.includes("cursor=2"))).toBe(true);
  });
});
