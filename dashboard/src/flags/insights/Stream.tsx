// The flag page's Stream tab: a live tail of the impressions SDKs report for this flag, newest
// first, with filters by user and value, a pause button, and each row's context expandable as
// JSON text (rendered as text, never as HTML). The polling is `useImpressionTail`'s.

import { useEffect, useId, useState } from "react";
import { ErrorBanner, useNow, When } from "../../ui";
import "./insights.css";
import type { Impression } from "./types";
import { MAX_ROWS, useImpressionTail } from "./useImpressionTail";

/** Filters apply this long after the last keystroke, so typing does not send a poll per key. */
export const FILTER_DELAY_MS = 400;

function useDebounced(value: string, ms: number): string {
  const [out, setOut] = useState(value);
  useEffect(() => {
    if (value === out) return;
    const t = setTimeout(() => setOut(value), ms);
    return () => clearTimeout(t);
  }, [value, out, ms]);
  return out;
}

export function ImpressionStream({ envId, flagKey, values }: { envId: string; flagKey: string; values?: string[] }) {
  const ids = useId();
  const [userInput, setUserInput] = useState("");
  const [valueInput, setValueInput] = useState("");
  const [paused, setPaused] = useState(false);
  const userId = useDebounced(userInput.trim(), FILTER_DELAY_MS);
  const value = useDebounced(valueInput, FILTER_DELAY_MS);
  const tail = useImpressionTail({ envId, flagKey, userId, value }, paused);
  const [open, setOpen] = useState<Set<number>>(new Set());
  const now = useNow(10_000);
  const filtered = !!(userId || value);

  const toggle = (id: number) =>
    setOpen((o) => {
      const n = new Set(o);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });

  return (
    <section className="card stream" aria-labelledby={ids + "h"}>
      <div className="stream-head">
        <h2 id={ids + "h"}>Impressions of {flagKey}</h2>
        <span className={"live-state live-" + tail.state} role="status">
          {stateText(tail.state)}
        </span>
        <button type="button" onClick={() => setPaused((p) => !p)} aria-pressed={paused} disabled={tail.state === "stopped"}>
          {paused ? "Resume" : "Pause"}
        </button>
      </div>
      <div className="filters" role="search" aria-label="Filter impressions">
        <label className="filter">
          <span>User</span>
          <input
            type="search"
            className="mono"
            value={userInput}
            placeholder="Any user"
            spellCheck={false}
            autoComplete="off"
            onChange={(e) => setUserInput(e.target.value)}
          />
        </label>
        <label className="filter">
          <span>Value</span>
          <input
            type="search"
            className="mono"
            list={ids + "values"}
            value={valueInput}
            placeholder="Any value"
            spellCheck={false}
            autoComplete="off"
            onChange={(e) => setValueInput(e.target.value)}
          />
        </label>
        <datalist id={ids + "values"}>
          {(values ?? []).map((v) => (
            <option key={v} value={v} />
          ))}
        </datalist>
      </div>
      <p className="hint">
        Newest first, checked every 3 seconds while this tab is open; the last {MAX_ROWS} are kept. User ids are matched as
        stored (a hash, if this environment hashes them).
      </p>
      <ErrorBanner error={tail.error} />
      {tail.skipped > 0 && (
        <p className="banner banner-warn">
          {tail.skipped.toLocaleString()} impression{tail.skipped === 1 ? "" : "s"} arrived faster than the tail can show; the
          newest are shown.
        </p>
      )}
      {tail.state === "loading" && !tail.error && (
        <p className="loading" role="status">
          Loading impressions…
        </p>
      )}
      {tail.state !== "loading" && tail.rows.length === 0 && !tail.error && (
        <div className="empty-state">
          <p>{filtered ? "No impression matches these filters yet." : `No impressions of ${flagKey} yet.`}</p>
          <p className="muted">
            SDKs report them with <code>POST /api/environments/…/impressions</code> and an SDK key; they appear here as they
            arrive.
          </p>
        </div>
      )}
      {tail.rows.length > 0 && (
        <table className="responsive stream-table">
          <caption className="visually-hidden">Impressions of {flagKey}, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Evaluated</th>
              <th scope="col">User</th>
              <th scope="col">Value</th>
              <th scope="col">Context</th>
            </tr>
          </thead>
          <tbody>
            {tail.rows.map((row) => (
              <Row key={row.id} row={row} now={now} open={open.has(row.id)} onToggle={() => toggle(row.id)} />
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function stateText(state: string): string {
  switch (state) {
    case "live":
      return "● Live";
    case "paused":
      return "Paused";
    case "hidden":
      return "Paused while the page is hidden";
    case "stopped":
      return "Stopped";
    default:
      return "Connecting…";
  }
}

function Row({ row, now, open, onToggle }: { row: Impression; now: number; open: boolean; onToggle: () => void }) {
  const hasContext = row.context !== null && row.context !== undefined;
  const panel = `impression-${row.id}-context`;
  return (
    <>
      <tr>
        <td>
          <When iso={row.evaluated_at} now={now} />
        </td>
        <td className="mono">{row.user_id ?? <span className="muted">anonymous</span>}</td>
        <td>
          <span className="badge value-badge mono">{row.value}</span>
        </td>
        <td>
          {hasContext ? (
            <button
              type="button"
              className="link"
              aria-expanded={open}
              aria-controls={panel}
              aria-label={`${open ? "Hide" : "Show"} context of impression ${row.id}`}
              onClick={onToggle}
            >
              {open ? "Hide" : "Show"}
            </button>
          ) : (
            <span className="muted">none</span>
          )}
        </td>
      </tr>
      {hasContext && open && (
        <tr className="context-row">
          <td colSpan={4} id={panel}>
            {/* Text, never markup: React escapes whatever the SDK sent. */}
            <pre className="context-json">{JSON.stringify(row.context, null, 2)}</pre>
          </td>
        </tr>
      )}
    </>
  );
}
