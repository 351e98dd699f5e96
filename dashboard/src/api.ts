// The one way the dashboard talks to the control plane: its documented REST API under /api,
// authenticated by the session cookie. Every write carries the CSRF header the server
// requires of cookie-authenticated writes. Nothing secret is kept in browser storage.

/** An error answer of the API: `{"error":{"code","message"}}` with its HTTP status. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }

  /**
   * For a 422, the path of the problem named at the start of the message, such as
   * `rules[0].conditions[1].values` in "rules[0].conditions[1].values: ..."; undefined
   * otherwise.
   */
  get path(): string | undefined {
    if (this.status !== 422) return undefined;
    const m = /^([A-Za-z_][\w]*(?:\[\d+\]|\.[A-Za-z_]\w*)*)\s*:/.exec(this.message);
    return m?.[1];
  }
}

export interface RequestOptions {
  /** Sent as `If-Match` (a flag's or segment's version), so a stale edit gets a 412. */
  ifMatch?: string | number;
  signal?: AbortSignal;
}

/** Tells listeners (the session) that the server no longer knows this browser's session. */
export const SIGNED_OUT_EVENT = "checkgate:signed-out";

async function request<T>(
  method: string,
  path: string,
  body?: unknown,
  options: RequestOptions = {},
): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (method !== "GET") headers["X-Checkgate-Request"] = "1";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (options.ifMatch !== undefined) headers["If-Match"] = `"${options.ifMatch}"`;
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal: options.signal,
    });
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    throw new ApiError(0, "network", "The control plane could not be reached.");
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    const e = new ApiError(
      response.status,
      error?.code ?? "http_" + response.status,
      error?.message ?? `The server answered ${response.status}.`,
    );
    // A 401 means the session is gone — except a wrong password typed where one is checked
    // (signing in, changing it), which is the user's typo, not a signed-out browser.
    if (response.status === 401 && e.code !== "invalid_credentials" && path !== "/api/auth/login") {
      window.dispatchEvent(new Event(SIGNED_OUT_EVENT));
    }
    throw e;
  }
  return parsed as T;
}

export const api = {
  get: <T>(path: string, options?: RequestOptions) => request<T>("GET", path, undefined, options),
  post: <T>(path: string, body?: unknown, options?: RequestOptions) =>
    request<T>("POST", path, body ?? {}, options),
  patch: <T>(path: string, body: unknown, options?: RequestOptions) =>
    request<T>("PATCH", path, body, options),
  put: <T>(path: string, body: unknown, options?: RequestOptions) =>
    request<T>("PUT", path, body, options),
  delete: <T = void>(path: string, options?: RequestOptions) =>
    request<T>("DELETE", path, undefined, options),
};

/** Encodes one path segment (a flag or segment key, an id). */
export const seg = (s: string) => encodeURIComponent(s);

/** A human message for any error thrown by `api`. */
export function describe(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}
