import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { useEffect } from "react";
import { MemoryRouter, useLocation } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "../App";
import { SessionProvider } from "../session";
import { ENV, environments, fakeServer, PROJECT, type Handler } from "../flags/testServer";

vi.setConfig({ testTimeout: 20_000 });

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

/** Records every address the app shows, in order. */
function Addresses({ into }: { into: string[] }) {
  const { pathname } = useLocation();
  useEffect(() => {
    into.push(pathname);
  }, [into, pathname]);
  return null;
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("SetupPage", () => {
  it("lands on the first project's flags and stays there, however late the session answers", async () => {
    let setUp = false;
    const admin = { id: "u1", email: "ada@example.com", name: "Ada", role: "admin", workspace_name: "Acme", is_setup_complete: true };
    const answer =
      (body: () => unknown): Handler =>
      () => ({ status: 200, body: body() });
    const srv = fakeServer([
      ["GET", /^\/api\/auth\/workspace$/, answer(() => ({ workspace_name: "Acme", is_setup_complete: setUp }))],
      [
        "POST",
        /^\/api\/setup\/complete$/,
        () => {
          setUp = true;
          return { status: 200, body: admin };
        },
      ],
      ["GET", /^\/api\/projects$/, answer(() => [{ id: PROJECT, name: "Web" }])],
      ["GET", /^\/api\/projects\/p1\/environments$/, answer(() => environments())],
      ["GET", /^\/api\/environments\/e1\/flags$/, answer(() => [])],
    ]);
    // The session's own reading of who is signed in answers well after everything else, as
    // a slow network would: the app must not move once it has found the flags.
    const fetchAll = srv.fetchMock.getMockImplementation()!;
    srv.fetchMock.mockImplementation(async (input, init) => {
      if (String(input).endsWith("/api/auth/me")) {
        await delay(150);
        return new Response(JSON.stringify(admin), { status: 200, headers: { "Content-Type": "application/json" } });
      }
      return fetchAll(input, init);
    });
    const addresses: string[] = [];
    render(
      <MemoryRouter initialEntries={["/"]}>
        <Addresses into={addresses} />
        <SessionProvider>
          <App />
        </SessionProvider>
      </MemoryRouter>,
    );
    fireEvent.change(await screen.findByLabelText("Workspace name"), { target: { value: "Acme" } });
    fireEvent.change(screen.getByLabelText("Your name"), { target: { value: "Ada" } });
    fireEvent.change(screen.getByLabelText("Email"), { target: { value: "ada@example.com" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "long enough" } });
    fireEvent.click(screen.getByRole("button", { name: "Create workspace" }));

    const flags = `/projects/${PROJECT}/envs/${ENV}/flags`;
    await waitFor(() => expect(addresses).toContain(flags));
    // Give a late navigation every chance to happen.
    await delay(400);
    expect(addresses.slice(addresses.indexOf(flags))).toEqual([flags]);
    expect(screen.getAllByRole("link", { name: "Create flag" }).length).toBeGreaterThan(0);
  });
});
