import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Environment } from "../types";
import { ProjectSettingsPage, slugify } from "./ProjectSettings";
import { AtRoute, mockFetch } from "./testutil";

vi.mock("../session", () => ({
  useSession: () => ({ user: { id: "me", name: "Me", email: "me@example.com", role: "admin" } }),
  useProjectRole: () => "admin",
  can: () => true,
}));

const env = (id: string, name: string, extra: Partial<Environment> = {}): Environment => ({
  id,
  project_id: "p1",
  name,
  slug: slugify(name),
  color: "#22c55e",
  is_default: false,
  version: 1,
  created_at: "",
  client_keys_read_rules: false,
  ...extra,
});

const page = () =>
  render(
    <AtRoute path="/projects/p1" pattern="/projects/:projectId">
      <ProjectSettingsPage />
    </AtRoute>,
  );

describe("ProjectSettingsPage", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("toggles the production marker and asks before letting client keys read rules", async () => {
    const { calls } = mockFetch({
      "GET /api/projects/p1": { body: { id: "p1", name: "Web", slug: "web", created_at: "", environment_count: 2 } },
      "GET /api/projects/p1/environments": {
        body: [env("e1", "Development", { is_default: true, is_production: false }), env("e2", "Production", { is_production: true })],
      },
      "PATCH /api/projects/p1/environments/e1": { body: env("e1", "Development") },
    });
    page();
    const prod = await screen.findByRole("switch", { name: "Production in Development" });
    expect(prod.getAttribute("aria-checked")).toBe("false");
    expect(screen.getByRole("switch", { name: "Production in Production" }).getAttribute("aria-checked")).toBe("true");
    fireEvent.click(prod);
    await waitFor(() => expect(calls.some((c) => c.method === "PATCH")).toBe(true));
    expect(calls.find((c) => c.method === "PATCH")?.body).toEqual({ is_production: true });

    const rules = screen.getByRole("switch", { name: "Client keys may read rules in Development" }) as HTMLButtonElement;
    await waitFor(() => expect(rules.disabled).toBe(false));
    fireEvent.click(rules);
    expect(screen.getByText(/Let client keys read rules in Development\?/)).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Allow client keys to read rules" }));
    await waitFor(() =>
      expect(calls.filter((c) => c.method === "PATCH").map((c) => c.body)).toContainEqual({ client_keys_read_rules: true }),
    );
  });

  it("hides the production marker from a control plane without it", async () => {
    mockFetch({
      "GET /api/projects/p1": { body: { id: "p1", name: "Web", slug: "web", created_at: "", environment_count: 1 } },
      "GET /api/projects/p1/environments": { body: [env("e1", "Development", { is_default: true })] },
    });
    page();
    await screen.findByRole("switch", { name: "Client keys may read rules in Development" });
    expect(screen.queryByRole("switch", { name: /^Production/ })).toBeNull();
    // The default environment cannot be deleted.
    expect((screen.getByRole("button", { name: "Delete Development" }) as HTMLButtonElement).disabled).toBe(true);
  });
});

describe("slugify", () => {
  it("makes slugs the API accepts", () => {
    expect(slugify("QA Europe")).toBe("qa-europe");
    expect(slugify("  Prod — EU (1) ")).toBe("prod-eu-1");
    expect(slugify("Café")).toBe("cafe");
  });
});
