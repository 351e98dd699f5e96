// A fake control plane for component tests: routes `fetch` to handlers and records requests.

import { vi } from "vitest";

export interface FakeRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Record<string, string>;
  body: unknown;
}

export type FakeAnswer = { status: number; body?: unknown };
export type Handler = (req: FakeRequest, match: RegExpMatchArray) => FakeAnswer | undefined;

export function fakeServer(routes: [string, RegExp, Handler][]) {
  const requests: FakeRequest[] = [];
  const fetchMock = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(String(input), "http://localhost");
    const method = (init?.method ?? "GET").toUpperCase();
    const headers = Object.fromEntries(Object.entries((init?.headers ?? {}) as Record<string, string>));
    const req: FakeRequest = {
      method,
      path: decodeURIComponent(url.pathname),
      query: url.searchParams,
      headers,
      body: typeof init?.body === "string" ? JSON.parse(init.body) : undefined,
    };
    requests.push(req);
    for (const [m, re, handler] of routes) {
      const match = m === method ? req.path.match(re) : null;
      if (match) {
        const answer = handler(req, match);
        if (answer) return respond(answer);
      }
    }
    return respond({ status: 404, body: { error: { code: "not_found", message: "no such route" } } });
  });
  vi.stubGlobal("fetch", fetchMock);
  return { requests, fetchMock };
}

function respond({ status, body }: FakeAnswer): Response {
  return new Response(status === 204 || body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

export const error = (status: number, code: string, message: string): FakeAnswer => ({
  status,
  body: { error: { code, message } },
});

/**
 * One kind of document of environment e1 (`flags` or `segments`): GET by key answers `current()`
 * (a 404 for any other key), PATCH and POST answer with the given handlers.
 */
export function documentRoutes(
  kind: "flags" | "segments",
  current: () => { key: string } | null,
  writes: { patch?: Handler; post?: Handler } = {},
): [string, RegExp, Handler][] {
  const noun = kind === "flags" ? "flag" : "segment";
  return [
    [
      "GET",
      new RegExp(`^/api/environments/e1/${kind}/([^/]+)$`),
      (_r, m) => {
        const doc = current();
        return doc && doc.key === m[1] ? { status: 200, body: doc } : error(404, "not_found", `${noun} "${m[1]}" not found`);
      },
    ],
    ["PATCH", new RegExp(`^/api/environments/e1/${kind}/([^/]+)$`), (r, m) => writes.patch?.(r, m)],
    ["POST", new RegExp(`^/api/environments/e1/${kind}$`), (r, m) => writes.post?.(r, m)],
  ];
}

export const PROJECT = "p1";
export const ENV = "e1";

export function sessionRoutes(role: "admin" | "member" = "admin", projectRole = "editor"): [string, RegExp, Handler][] {
  return [
    ["GET", /^\/api\/auth\/workspace$/, () => ({ status: 200, body: { workspace_name: "Acme", is_setup_complete: true } })],
    [
      "GET",
      /^\/api\/auth\/me$/,
      () => ({
        status: 200,
        body: { id: "u1", email: "a@example.com", name: "Ada", role, workspace_name: "Acme", is_setup_complete: true },
      }),
    ],
    [
      "GET",
      /^\/api\/projects\/p1\/members$/,
      () => ({ status: 200, body: [{ user_id: "u1", email: "a@example.com", name: "Ada", role: projectRole }] }),
    ],
  ];
}

export function environments(production = false) {
  return [
    {
      id: ENV,
      project_id: PROJECT,
      name: production ? "Production" : "Staging",
      slug: production ? "production" : "staging",
      color: "#ef4444",
      is_default: true,
      version: 3,
      created_at: "2026-01-01T00:00:00.000Z",
      client_keys_read_rules: false,
      is_production: production,
    },
    {
      id: "e2",
      project_id: PROJECT,
      name: "Development",
      slug: "development",
      color: "#22c55e",
      is_default: false,
      version: 1,
      created_at: "2026-01-01T00:00:00.000Z",
      client_keys_read_rules: false,
    },
  ];
}
