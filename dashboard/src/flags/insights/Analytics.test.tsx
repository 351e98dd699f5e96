// The Analytics tab: a range's numbers, the chart (uPlot, replaced here by a recorder since
// jsdom has no canvas) with its text alternative, the value split, the range picker, and the
// empty, error and stale states.

import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { error, fakeServer, type FakeAnswer } from "../testServer";
import { FlagAnalytics } from "./Analytics";
import type { FlagInsights, Range } from "./types";

vi.setConfig({ testTimeout: 20_000 });

const charts = vi.hoisted(() => ({ created: [] as { data: unknown[][]; label: string[] }[], updated: [] as unknown[][][] }));
vi.mock("uplot", () => ({
  default: class {
    width = 640;
    constructor(opts: { series: { label?: string }[] }, data: unknown[][]) {
      charts.created.push({ data, label: opts.series.map((s) => s.label ?? "") });
    }
    setData(data: unknown[][]) {
      charts.updated.push(data);
    }
    setSize() {}
    destroy() {}
  },
}));

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  charts.created.length = 0;
  charts.updated.length = 0;
});

const hour = 3_600_000;
const start = Date.parse("2026-11-23T00:00:00Z");

function insights(range: Range, extra: Partial<FlagInsights> = {}): FlagInsights {
  const n = range === "1h" ? 60 : range === "24h" ? 24 : range === "7d" ? 168 : 30;
  const step = range === "1h" ? 60_000 : range === "30d" ? 24 * hour : hour;
  const series = Array.from({ length: n }, (_, i) => ({
    at: new Date(start + i * step).toISOString(),
    evaluations: i === 2 ? 120 : i === 5 ? 30 : 0,
    impressions: i === 2 ? 7 : 0,
  }));
  return {
    flag_key: "checkout",
    range,
    from: series[0].at,
    to: new Date(start + n * step).toISOString(),
    bucket_minutes: range === "1h" ? 1 : range === "30d" ? 1440 : 60,
    series,
    values: [
      { value: "true", evaluations: 100, impressions: 5 },
      { value: "false", evaluations: 50, impressions: 2 },
    ],
    evaluations: 150,
    impressions: 7,
    unique_users: 42,
    last_evaluated: new Date(Date.now() - 5 * 60_000).toISOString(),
    stale: false,
    stale_reason: null,
    ...extra,
  };
}

function Harness({ initial = "24h" as Range }) {
  const [range, setRange] = useState<Range>(initial);
  return <FlagAnalytics envId="e1" flagKey="checkout" range={range} onRange={setRange} />;
}

function setup(answer: (range: Range) => FakeAnswer) {
  const srv = fakeServer([
    ["GET", /^\/api\/environments\/e1\/flags\/checkout\/insights$/, (r) => answer((r.query.get("range") ?? "24h") as Range)],
  ]);
  render(<Harness />);
  return { user: userEvent.setup(), ...srv };
}

describe("Analytics", () => {
  it("shows a range's totals, unique users, last evaluation, chart, its table and the value split", async () => {
    const { requests } = setup((range) => ({ status: 200, body: insights(range) }));
    expect(screen.getByText("Loading analytics…")).toBeTruthy();
    const kpis = await screen.findByText("Unique users");
    expect(requests[0].query.get("range")).toBe("24h");
    const dl = kpis.closest("dl")!;
    expect(within(dl).getByText("150")).toBeTruthy();
    expect(within(dl).getByText("42")).toBeTruthy();
    expect(within(dl).getByText("5 minutes ago")).toBeTruthy();

    // The chart: uPlot gets seconds and both series; its text alternative says the totals.
    await waitFor(() => expect(charts.created).toHaveLength(1));
    const [xs, evals, imps] = charts.created[0].data;
    expect(xs[0]).toBe(start / 1000);
    expect(evals[2]).toBe(120);
    expect(imps[2]).toBe(7);
    expect(charts.created[0].label).toEqual(["", "Evaluations", "Impressions"]);
    const img = screen.getByRole("img");
    expect(img.getAttribute("aria-label")).toMatch(/150 evaluations and 7 impressions/);
    expect(img.getAttribute("aria-label")).toMatch(/busiest hour/);
    const table = screen.getByRole("table", { name: "Evaluations and impressions per hour" });
    // Only the buckets with something in them.
    expect(within(table).getAllByRole("row")).toHaveLength(3);

    const split = screen.getByRole("table", { name: "Served values" });
    expect(within(split).getAllByRole("row")[1].textContent).toMatch(/true.*100.*5.*67 %/);
    expect(screen.getByRole("meter", { name: "Share of false" })).toBeTruthy();
  });

  it("asks for the range picked, and redraws the same chart with it", async () => {
    const { user, requests } = setup((range) => ({ status: 200, body: insights(range) }));
    await screen.findByText("Unique users");
    await waitFor(() => expect(charts.created).toHaveLength(1));
    for (const [label, range] of [
      ["the last 7 days", "7d"],
      ["the last hour", "1h"],
      ["the last 30 days", "30d"],
    ] as const) {
      await user.click(screen.getByRole("radio", { name: label }));
      await waitFor(() => expect(requests[requests.length - 1].query.get("range")).toBe(range));
      expect((screen.getByRole("radio", { name: label }) as HTMLInputElement).checked).toBe(true);
    }
    await waitFor(() => expect(charts.updated.at(-1)?.[0]).toHaveLength(30));
    expect(charts.created).toHaveLength(1);
    expect(screen.getByRole("table", { name: "Evaluations and impressions per day" })).toBeTruthy();
  });

  it("shows an empty state when nothing was evaluated in the range", async () => {
    setup((range) => ({
      status: 200,
      body: insights(range, {
        series: insights(range).series.map((b) => ({ ...b, evaluations: 0, impressions: 0 })),
        values: [],
        evaluations: 0,
        impressions: 0,
        unique_users: 0,
        last_evaluated: null,
      }),
    }));
    expect(await screen.findByText("No evaluations of checkout in the last 24 hours.")).toBeTruthy();
    expect(screen.getByText("never")).toBeTruthy();
    expect(screen.queryByRole("img")).toBeNull();
  });

  it("says why a flag is stale", async () => {
    setup((range) => ({ status: 200, body: insights(range, { stale: true, stale_reason: "single_value" }) }));
    const note = await screen.findByRole("note");
    expect(note.textContent).toMatch(/Stale.*one value to everyone/);
  });

  it("shows errors plainly", async () => {
    setup(() => error(500, "internal", "The database is unavailable."));
    expect((await screen.findByRole("alert")).textContent).toContain("The database is unavailable.");
    cleanup();
    setup(() => error(404, "not_found", 'flag "checkout" not found'));
    expect((await screen.findByRole("alert")).textContent).toMatch(/does not exist/);
  });
});
