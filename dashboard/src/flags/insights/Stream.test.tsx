// The Stream tab and its poller, on fake timers: a first page, then a poll every 3 s with
// since_id, one at a time, none while hidden or after unmount, a bounded number of rows,
// filters, and contexts shown as text.

import { act, cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ImpressionStream, FILTER_DELAY_MS } from "./Stream";
import type { Impression } from "./types";
import { MAX_ROWS, POLL_LIMIT, POLL_MS } from "./useImpressionTail";

interface Call {
  url: URL;
  signal: AbortSignal | undefined;
  answer: (body: unknown, status?: number) => void;
}

/** A fetch whose answers the test gives, one call at a time. */
function controlledFetch(): Call[] {
  const calls: Call[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(
      (input: RequestInfo | URL, init?: RequestInit) =>
        new Promise<Response>((resolve, reject) => {
          const signal = init?.signal ?? undefined;
          signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
          calls.push({
            url: new URL(String(input), "http://localhost"),
            signal,
            answer: (body, status = 200) =>
              resolve(new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } })),
          });
        }),
    ),
  );
  return calls;
}

const imp = (id: number, extra: Partial<Impression> = {}): Impression => ({
  id,
  flag_key: "checkout",
  user_id: `u-${id}`,
  value: id % 2 ? "true" : "false",
  context: null,
  evaluated_at: new Date(Date.now() - 1000).toISOString(),
  ...extra,
});
/** `n` impressions with ids from `from` upwards, newest (highest id) first. */
const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => imp(from + n - 1 - i));

/** Lets timers run for `ms` and every promise they free settle. */
const advance = (ms: number) => act(async () => void (await vi.advanceTimersByTimeAsync(ms)));

const setVisibility = (state: "hidden" | "visible") => {
  Object.defineProperty(document, "visibilityState", { value: state, configurable: true });
  act(() => void document.dispatchEvent(new Event("visibilitychange")));
};

// By selector: role queries over hundreds of rows are slow in jsdom.
const rows = () => document.querySelectorAll("tbody tr").length;
const firstUser = () => document.querySelector("tbody tr td.mono")?.textContent;

vi.setConfig({ testTimeout: 30_000 });

beforeEach(() => {
  vi.useFakeTimers();
  setVisibility("visible");
});
afterEach(() => {
  cleanup();
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

function mount() {
  const calls = controlledFetch();
  const view = render(<ImpressionStream envId="e1" flagKey="checkout" values={["true", "false"]} />);
  return { calls, ...view };
}

describe("Stream", () => {
  it("loads the newest page, then polls every 3 s for what is newer than the newest seen", async () => {
    const { calls } = mount();
    expect(calls).toHaveLength(1);
    expect(calls[0].url.pathname).toBe("/api/environments/e1/impressions");
    expect(calls[0].url.searchParams.get("flag_key")).toBe("checkout");
    expect(calls[0].url.searchParams.has("since_id")).toBe(false);
    calls[0].answer({ items: batch(1, 3), total: 3 });
    await advance(0);
    expect(rows()).toBe(3);
    expect(screen.getByText("● Live")).toBeTruthy();

    await advance(POLL_MS - 1);
    expect(calls).toHaveLength(1);
    await advance(1);
    expect(calls).toHaveLength(2);
    expect(calls[1].url.searchParams.get("since_id")).toBe("3");
    expect(calls[1].url.searchParams.get("limit")).toBe(String(POLL_LIMIT));
    calls[1].answer({ items: [imp(5), imp(4)], total: 2 });
    await advance(0);
    expect(rows()).toBe(5);
    expect(firstUser()).toBe("u-5");

    await advance(POLL_MS);
    expect(calls[2].url.searchParams.get("since_id")).toBe("5");
    // Nothing new: the same since_id next time.
    calls[2].answer({ items: [], total: 0 });
    await advance(POLL_MS);
    expect(calls[3].url.searchParams.get("since_id")).toBe("5");
  });

  it("never has two polls in flight, and waits 3 s after each answer", async () => {
    const { calls } = mount();
    calls[0].answer({ items: [], total: 0 });
    await advance(POLL_MS);
    expect(calls).toHaveLength(2);
    expect(calls[1].url.searchParams.get("since_id")).toBe("0");
    // A slow server: nothing more is sent while the poll is on its way.
    await advance(POLL_MS * 5);
    expect(calls).toHaveLength(2);
    calls[1].answer({ items: [imp(1)], total: 1 });
    await advance(POLL_MS - 1);
    expect(calls).toHaveLength(2);
    await advance(1);
    expect(calls).toHaveLength(3);
  });

  it("stops on unmount: the poll in flight is aborted and nothing more is sent", async () => {
    const { calls, unmount } = mount();
    calls[0].answer({ items: [imp(1)], total: 1 });
    await advance(POLL_MS);
    expect(calls).toHaveLength(2);
    unmount();
    expect(calls[1].signal?.aborted).toBe(true);
    await advance(POLL_MS * 10);
    expect(calls).toHaveLength(2);
  });

  it("pauses while the page is hidden or the Pause button is pressed, and catches up at once after", async () => {
    const { calls } = mount();
    calls[0].answer({ items: [imp(1)], total: 1 });
    await advance(0);
    setVisibility("hidden");
    await advance(POLL_MS * 5);
    expect(calls).toHaveLength(1);
    expect(screen.getByText("Paused while the page is hidden")).toBeTruthy();
    setVisibility("visible");
    await advance(0);
    expect(calls).toHaveLength(2);
    expect(calls[1].url.searchParams.get("since_id")).toBe("1");
    calls[1].answer({ items: [], total: 0 });
    await advance(0);

    fireEvent.click(screen.getByRole("button", { name: "Pause" }));
    await advance(POLL_MS * 5);
    expect(calls).toHaveLength(2);
    expect(screen.getByRole("button", { name: "Resume" }).getAttribute("aria-pressed")).toBe("true");
    fireEvent.click(screen.getByRole("button", { name: "Resume" }));
    await advance(0);
    expect(calls).toHaveLength(3);
  });

  it(`keeps at most ${MAX_ROWS} rows, and says when a poll could not carry everything`, async () => {
    const { calls } = mount();
    calls[0].answer({ items: batch(1, 50), total: 50 });
    let next = 51;
    for (let i = 0; i < 4; i++) {
      await advance(POLL_MS);
      calls[calls.length - 1].answer({ items: batch(next, POLL_LIMIT), total: i === 3 ? 1200 : POLL_LIMIT });
      next += POLL_LIMIT;
    }
    await advance(0);
    expect(rows()).toBe(MAX_ROWS);
    // The newest is first.
    expect(firstUser()).toBe(`u-${next - 1}`);
    expect(screen.getByText(/1,000 impressions arrived faster than the tail can show/)).toBeTruthy();
  });

  it("filters by user and value on the server, starting a new tail and dropping the old one's answer", async () => {
    const { calls } = mount();
    calls[0].answer({ items: [imp(1), imp(2)], total: 2 });
    await advance(POLL_MS);
    const stale = calls[1];
    fireEvent.change(screen.getByLabelText("User"), { target: { value: "u-7" } });
    fireEvent.change(screen.getByLabelText("Value"), { target: { value: "true" } });
    await advance(FILTER_DELAY_MS);
    expect(stale.signal?.aborted).toBe(true);
    const first = calls[calls.length - 1];
    expect(first.url.searchParams.get("user_id")).toBe("u-7");
    expect(first.url.searchParams.get("value")).toBe("true");
    expect(first.url.searchParams.has("since_id")).toBe(false);
    first.answer({ items: [], total: 0 });
    await advance(0);
    expect(screen.getByText("No impression matches these filters yet.")).toBeTruthy();
  });

  it("shows a context as JSON text, never as markup", async () => {
    const { calls, container } = mount();
    calls[0].answer({ items: [imp(1, { context: { plan: "pro", note: '<img src=x onerror="alert(1)">' } })], total: 1 });
    await advance(0);
    const show = screen.getByRole("button", { name: "Show context of impression 1" });
    expect(show.getAttribute("aria-expanded")).toBe("false");
    fireEvent.click(show);
    const pre = container.querySelector("pre.context-json")!;
    expect(pre.textContent).toContain('"plan": "pro"');
    expect(pre.textContent).toContain("<img src=x");
    expect(container.querySelector("img")).toBeNull();
    expect(screen.getByRole("button", { name: "Hide context of impression 1" }).getAttribute("aria-expanded")).toBe("true");
  });

  it("shows an empty state, and errors: a failed poll is retried, a refusal stops the tail", async () => {
    const { calls } = mount();
    calls[0].answer({ items: [], total: 0 });
    await advance(0);
    expect(screen.getByText("No impressions of checkout yet.")).toBeTruthy();
    await advance(POLL_MS);
    calls[1].answer({ error: { code: "internal", message: "Something broke." } }, 500);
    await advance(0);
    expect(screen.getByRole("alert").textContent).toContain("Something broke.");
    await advance(POLL_MS);
    expect(calls).toHaveLength(3);
    calls[2].answer({ error: { code: "forbidden", message: "Not a member." } }, 403);
    await advance(0);
    expect(screen.getByText("Stopped")).toBeTruthy();
    await advance(POLL_MS * 5);
    expect(calls).toHaveLength(3);
  });

  it("shows loading until the first page is in", async () => {
    const { calls } = mount();
    expect(screen.getByText("Loading impressions…")).toBeTruthy();
    calls[0].answer({ items: [imp(1)], total: 1 });
    await advance(0);
    expect(screen.queryByText("Loading impressions…")).toBeNull();
  });
});
