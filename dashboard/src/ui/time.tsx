// Relative times: "3 minutes ago" as text, a <time> element with the exact time as its tooltip,
// and a clock that re-renders so they stay true.

import { useEffect, useState } from "react";

/** A relative time such as "3 minutes ago", with the exact time as a tooltip by the caller. */
export function ago(iso: string, now: number = Date.now()): string {
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (!Number.isFinite(seconds)) return iso;
  if (seconds < 45) return "just now";
  const units: [number, string][] = [
    [60, "minute"],
    [3600, "hour"],
    [86400, "day"],
    [2592000, "month"],
    [31536000, "year"],
  ];
  let label = "";
  for (let i = units.length - 1; i >= 0; i--) {
    const [size, name] = units[i];
    if (seconds >= size * 0.9 || i === 0) {
      const n = Math.max(1, Math.round(seconds / size));
      label = `${n} ${name}${n === 1 ? "" : "s"} ago`;
      break;
    }
  }
  return label;
}

/** Re-renders every `ms` milliseconds so relative times stay true. */
export function useNow(ms = 30_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

/** A relative time ("3 minutes ago") with the exact local time as its tooltip. */
export function When({ iso, now, empty = "never" }: { iso: string | null | undefined; now?: number; empty?: string }) {
  if (!iso) return <span className="muted">{empty}</span>;
  const exact = new Date(iso);
  const title = Number.isNaN(exact.getTime()) ? iso : exact.toLocaleString();
  return (
    <time dateTime={iso} title={title}>
      {ago(iso, now)}
    </time>
  );
}
