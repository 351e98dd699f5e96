// Test helpers: a fetch stand-in answering by method and path, and a router wrapper.

import type { ReactNode } from "react";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { vi } from "vitest";

export interface Answer {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
}
export type Handler = (init: RequestInit | undefined, url: string) => Answer;

/** Installs a fetch that answers `METHOD /path` (query ignored unless the key has one) from `routes`; 404 otherwise. */
export function mockFetch(routes: Record<string, Handler | Answer>) {
  const calls: { method: string; url: string; body: unknown }[] = [];
  const fn = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    const method = (init?.method ?? "GET").toUpperCase();
    calls.push({ method, url, body: init?.body ? JSON.parse(String(init.body)) : undefined });
    const path = url.split("?")[0];
    const route = routes[`${method} ${url}`] ?? routes[`${method} ${path}`];
    const answer = typeof route === "function" ? route(init, url) : route;
    if (!answer) {
      return new Response(JSON.stringify({ error: { code: "not_found", message: "not found" } }), { status: 404 });
    }
    const status = answer.status ?? 200;
    return new Response(status === 204 ? null : JSON.stringify(answer.body ?? null), {
      status,
      headers: { "Content-Type": "application/json", ...(answer.headers ?? {}) },
    });
  });
  vi.stubGlobal("fetch", fn);
  return { fn, calls };
}

/** Renders `element` at `path` under a route `pattern`. */
export function AtRoute({ path, pattern, children }: { path: string; pattern: string; children: ReactNode }) {
  return (
    <MemoryRouter initialEntries={[path]}>
      <Routes>
        <Route path={pattern} element={children} />
        <Route path="*" element={<p>elsewhere</p>} />
      </Routes>
    </MemoryRouter>
  );
}
