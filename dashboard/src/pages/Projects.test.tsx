import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { pickEnvironment } from "./Home";
import { DeleteProjectDialog } from "./Projects";
import { mockFetch } from "./testutil";
import type { Environment } from "../types";

const env = (id: string, name: string, is_default = false): Environment => ({
  id,
  project_id: "p1",
  name,
  slug: name.toLowerCase(),
  color: "#22c55e",
  is_default,
  version: 1,
  created_at: "",
  client_keys_read_rules: false,
});

describe("DeleteProjectDialog", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("names what is lost and deletes only once the name is typed", async () => {
    const { calls } = mockFetch({
      "GET /api/projects/p1/environments": { body: [env("e1", "Development", true), env("e2", "Production")] },
      "GET /api/projects/p1/keys": {
        body: [
          { id: "k1", environment_id: "e2", revoked_at: null },
          { id: "k2", environment_id: "e2", revoked_at: "2026-01-01T00:00:00Z" },
        ],
      },
      "GET /api/projects/p1/tokens": { body: [{ id: "t1", revoked_at: null }] },
      "GET /api/environments/e1/flags": { body: [{ key: "a" }, { key: "b" }] },
      "GET /api/environments/e2/flags": { body: [{ key: "a" }] },
      "GET /api/environments/e1/segments": { body: [] },
      "GET /api/environments/e2/segments": { body: [{ key: "beta" }] },
      "DELETE /api/projects/p1": { status: 204 },
    });
    const onDeleted = vi.fn();
    render(
      <DeleteProjectDialog
        project={{ id: "p1", name: "Web shop", slug: "web-shop", created_at: "", environment_count: 2 }}
        onCancel={() => undefined}
        onDeleted={onDeleted}
      />,
    );
    const list = await screen.findByRole("list");
    expect(list.textContent).toContain("2 environments: Development, Production");
    expect(list.textContent).toContain("3 flags");
    expect(list.textContent).toContain("1 segment");
    expect(list.textContent).toContain("1 SDK key");
    expect(list.textContent).toContain("1 API token");

    const button = screen.getByRole("button", { name: "Delete project" }) as HTMLButtonElement;
    expect(button.disabled).toBe(true);
    fireEvent.change(screen.getByLabelText("Type the project name to confirm"), { target: { value: "Web sho" } });
    expect(button.disabled).toBe(true);
    fireEvent.change(screen.getByLabelText("Type the project name to confirm"), { target: { value: "Web shop" } });
    expect(button.disabled).toBe(false);
    fireEvent.click(button);
    await waitFor(() => expect(onDeleted).toHaveBeenCalled());
    expect(calls.some((c) => c.method === "DELETE" && c.url === "/api/projects/p1")).toBe(true);
  });
});

describe("pickEnvironment", () => {
  const envs = [env("e1", "Development"), env("e2", "Staging", true), env("e3", "Production")];
  it("prefers the remembered environment, then the default, then the first", () => {
    expect(pickEnvironment(envs, "e3")?.id).toBe("e3");
    expect(pickEnvironment(envs, "gone")?.id).toBe("e2");
    expect(pickEnvironment(envs, null)?.id).toBe("e2");
    expect(pickEnvironment([env("e1", "Development"), env("e3", "Production")], null)?.id).toBe("e1");
    expect(pickEnvironment([], null)).toBeUndefined();
  });
});
