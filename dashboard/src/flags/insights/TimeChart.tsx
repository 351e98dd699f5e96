// Evaluations and impressions over time, drawn by uPlot (a small, maintained canvas chart
// library, loaded on first use so the rest of the dashboard does not carry it). The canvas is
// for the eye; its text alternative is the `summary` (the chart's accessible name) and the
// table of the same numbers under it, which also stands in if the chart cannot be drawn.

import { useEffect, useRef, useState } from "react";
import type uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface ChartSeries {
  /** Bucket starts, Unix seconds, oldest first. */
  at: number[];
  evaluations: number[];
  impressions: number[];
}

const HEIGHT = 240;

export function TimeChart({ data, summary, bucketMinutes }: { data: ChartSeries; summary: string; bucketMinutes: number }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const [failed, setFailed] = useState(false);

  // Create the chart once; later data only replaces its series.
  useEffect(() => {
    let gone = false;
    let observer: ResizeObserver | undefined;
    import("uplot")
      .then(({ default: UPlot }) => {
        const el = box.current;
        if (gone || !el) return;
        const width = Math.max(280, el.clientWidth || 640);
        const opts: uPlot.Options = {
          width,
          height: HEIGHT,
          scales: { x: { time: true } },
          cursor: { drag: { x: false, y: false } },
          legend: { show: true },
          series: [
            {},
            { label: "Evaluations", stroke: "#3b5bdb", fill: "rgba(59, 91, 219, 0.12)", width: 2, points: { show: false } },
            { label: "Impressions", stroke: "#e67700", width: 2, points: { show: false } },
          ],
          axes: [{}, { size: 56 }],
        };
        plot.current = new UPlot(opts, toAligned(data), el);
        if (typeof ResizeObserver !== "undefined") {
          observer = new ResizeObserver(() => {
            const w = Math.max(280, el.clientWidth);
            if (plot.current && w !== plot.current.width) plot.current.setSize({ width: w, height: HEIGHT });
          });
          observer.observe(el);
        }
      })
      .catch(() => !gone && setFailed(true));
    return () => {
      gone = true;
      observer?.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useEffect(() => {
    plot.current?.setData(toAligned(data));
  }, [data]);

  return (
    <figure className="chart">
      <div ref={box} className="chart-canvas" role="img" aria-label={summary} />
      <figcaption className="visually-hidden">{summary}</figcaption>
      {failed && <p className="muted">The chart could not be drawn; the table below has the same numbers.</p>}
      <details className="chart-table" open={failed || undefined}>
        <summary>Show the numbers as a table</summary>
        <BucketTable data={data} bucketMinutes={bucketMinutes} />
      </details>
    </figure>
  );
}

function toAligned(d: ChartSeries): uPlot.AlignedData {
  return [d.at, d.evaluations, d.impressions];
}

/** The chart's numbers: every bucket with something in it. */
function BucketTable({ data, bucketMinutes }: { data: ChartSeries; bucketMinutes: number }) {
  const rows = data.at.map((at, i) => ({ at, e: data.evaluations[i] ?? 0, n: data.impressions[i] ?? 0 })).filter((r) => r.e || r.n);
  if (rows.length === 0) return <p className="muted">Every bucket is empty.</p>;
  const fmt = (s: number) =>
    new Date(s * 1000).toLocaleString(undefined, bucketMinutes >= 1440 ? { dateStyle: "medium" } : { dateStyle: "short", timeStyle: "short" });
  return (
    <table className="bucket-table">
      <caption className="visually-hidden">Evaluations and impressions per {bucketWord(bucketMinutes)}</caption>
      <thead>
        <tr>
          <th scope="col">{bucketWord(bucketMinutes) === "day" ? "Day" : "From"}</th>
          <th scope="col">Evaluations</th>
          <th scope="col">Impressions</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.at}>
            <td>
              <time dateTime={new Date(r.at * 1000).toISOString()}>{fmt(r.at)}</time>
            </td>
            <td>{r.e.toLocaleString()}</td>
            <td>{r.n.toLocaleString()}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function bucketWord(minutes: number): string {
  return minutes >= 1440 ? "day" : minutes >= 60 ? "hour" : "minute";
}
