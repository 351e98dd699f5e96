import { fireEvent, render, screen } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../api";
import { duration, LoginPage, retryAfterSeconds } from "./Login";
import { mockFetch } from "./testutil";

const session = {
  user: null,
  workspace: { workspace_name: "Acme", is_setup_complete: true },
  refresh: vi.fn(async () => undefined),
  setUser: vi.fn(),
  signOut: vi.fn(),
};
vi.mock("../session", () => ({ useSession: () => session }));

function renderLogin(from?: string) {
  return render(
    <MemoryRouter initialEntries={[{ pathname: "/login", state: from ? { from } : null }]}>
      <Routes>
        <Route path="/login" element={<LoginPage />} />
        <Route path="*" element={<p>landed</p>} />
      </Routes>
    </MemoryRouter>,
  );
}

function fill() {
  fireEvent.change(screen.getByLabelText("Email"), { target: { value: "ada@example.com" } });
  fireEvent.change(screen.getByLabelText("Password"), { target: { value: "secret pass" } });
  fireEvent.click(screen.getByRole("button", { name: "Sign in" }));
}

describe("LoginPage", () => {
  beforeEach(() => {
    session.setUser.mockClear();
  });
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it("names the workspace", () => {
    mockFetch({});
    renderLogin();
    expect(screen.getByRole("heading", { name: "Sign in to Acme" })).toBeTruthy();
  });

  it("says plainly when the credentials are wrong", async () => {
    mockFetch({
      "POST /api/auth/login": { status: 401, body: { error: { code: "invalid_credentials", message: "invalid email or password" } } },
    });
    renderLogin();
    fill();
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("That email and password do not match");
    expect(session.setUser).not.toHaveBeenCalled();
  });

  it("shows when to retry after too many attempts and holds the button", async () => {
    mockFetch({
      "POST /api/auth/login": {
        status: 429,
        body: { error: { code: "too_many_requests", message: "too many attempts; try again in 125 seconds" } },
        headers: { "Retry-After": "125" },
      },
    });
    renderLogin();
    fill();
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Too many failed sign-in attempts");
    expect(alert.textContent).toContain("2 minutes 5 seconds");
    expect((screen.getByRole("button", { name: "Sign in" }) as HTMLButtonElement).disabled).toBe(true);
  });

  it("signs in and goes where the visitor was headed", async () => {
    const user = { id: "u1", email: "ada@example.com", name: "Ada", role: "admin", workspace_name: "Acme", is_setup_complete: true };
    const { calls } = mockFetch({ "POST /api/auth/login": { body: user } });
    renderLogin("/audit");
    fill();
    await screen.findByText("landed");
    expect(session.setUser).toHaveBeenCalledWith(user);
    expect(calls[0].body).toEqual({ email: "ada@example.com", password: "secret pass" });
  });
});

describe("retry helpers", () => {
  it("reads the seconds from a 429", () => {
    expect(retryAfterSeconds(new ApiError(429, "too_many_requests", "too many attempts; try again in 42 seconds"))).toBe(42);
    expect(retryAfterSeconds(new ApiError(401, "invalid_credentials", "no"))).toBeUndefined();
  });
  it("writes durations for people", () => {
    expect(duration(1)).toBe("1 second");
    expect(duration(60)).toBe("1 minute");
    expect(duration(899)).toBe("14 minutes 59 seconds");
  });
});

