import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ProjectRole } from "../types";
import { MembersPage } from "./Members";
import { AtRoute, mockFetch } from "./testutil";

let role: ProjectRole = "viewer";
let workspaceRole: "admin" | "member" = "member";
vi.mock("../session", () => ({
  useSession: () => ({ user: { id: "me", name: "Me", email: "me@example.com", role: workspaceRole } }),
  useProjectRole: () => role,
  can: (r: ProjectRole | null | undefined, needed: ProjectRole) =>
    !!r && ({ viewer: 0, editor: 1, admin: 2 } as const)[r] >= ({ viewer: 0, editor: 1, admin: 2 } as const)[needed],
}));

const members = [
  { user_id: "me", name: "Me", email: "me@example.com", role: "viewer" },
  { user_id: "u2", name: "Eve", email: "eve@example.com", role: "editor" },
];
const routes = {
  "GET /api/projects/p1": { body: { id: "p1", name: "Web", slug: "web", created_at: "", environment_count: 1 } },
  "GET /api/projects/p1/members": { body: members },
  "GET /api/users": {
    body: [
      { id: "me", name: "Me", email: "me@example.com", role: "admin", created_at: "" },
      { id: "u2", name: "Eve", email: "eve@example.com", role: "member", created_at: "" },
      { id: "u3", name: "Zed", email: "zed@example.com", role: "member", created_at: "" },
    ],
  },
  "PATCH /api/projects/p1/members/u2": { body: { user_id: "u2", role: "admin" } },
  "POST /api/projects/p1/members": { status: 201, body: { user_id: "u3", role: "viewer" } },
};
const page = () =>
  render(
    <AtRoute path="/projects/p1/members" pattern="/projects/:projectId/members">
      <MembersPage />
    </AtRoute>,
  );

describe("MembersPage", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("is read-only for viewers", async () => {
    role = "viewer";
    workspaceRole = "member";
    mockFetch(routes);
    page();
    expect(await screen.findByText("eve@example.com")).toBeTruthy();
    expect(screen.queryByRole("combobox", { name: "Role of Eve" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Remove Eve" })).toBeNull();
    expect(screen.queryByRole("heading", { name: "Add a member" })).toBeNull();
  });

  it("lets admins change roles and add workspace users who are not members yet", async () => {
    role = "admin";
    workspaceRole = "admin";
    const { calls } = mockFetch(routes);
    page();
    const select = (await screen.findByRole("combobox", { name: "Role of Eve" })) as HTMLSelectElement;
    fireEvent.change(select, { target: { value: "admin" } });
    await waitFor(() => expect(calls.some((c) => c.method === "PATCH")).toBe(true));
    expect(calls.find((c) => c.method === "PATCH")?.body).toEqual({ role: "admin" });

    const person = (await screen.findByRole("combobox", { name: "Person" })) as HTMLSelectElement;
    await waitFor(() => expect(person.options.length).toBe(2)); // the placeholder and Zed
    expect(person.options[1].textContent).toBe("Zed (zed@example.com)");
    fireEvent.change(person, { target: { value: "u3" } });
    fireEvent.change(screen.getByRole("combobox", { name: "Role" }), { target: { value: "viewer" } });
    fireEvent.click(screen.getByRole("button", { name: "Add member" }));
    await waitFor(() => expect(calls.some((c) => c.method === "POST")).toBe(true));
    expect(calls.find((c) => c.method === "POST")?.body).toEqual({ user_id: "u3", role: "viewer" });
  });
});
