// The flag page's Analytics tab: the flag's evaluations (what edges count of their own
// server-side evaluations) and impressions (what SDKs report) over 1 h, 24 h, 7 d or 30 d, as a
// chart with a text alternative; the split by value; unique users; last evaluated and the stale
// signal. Read from GET /api/environments/{env}/flags/{key}/insights, which viewers may call.

import { useId, useMemo } from "react";
import { api, seg } from "../../api";
import { LoadError, useLoad, useNow, When } from "../../ui";
import { bucketWord, TimeChart, type ChartSeries } from "./TimeChart";
import { RANGE_LABELS, RANGE_WORDS, RANGES, staleText, type FlagInsights, type Range } from "./types";
import "./insights.css";

export function FlagAnalytics({
  envId,
  flagKey,
  range,
  onRange,
}: {
  envId: string;
  flagKey: string;
  range: Range;
  onRange: (r: Range) => void;
}) {
  const ids = useId();
  const now = useNow();
  const load = useLoad(
    () => api.get<FlagInsights>(`/api/environments/${seg(envId)}/flags/${seg(flagKey)}/insights?range=${range}`),
    [envId, flagKey, range],
  );
  // While a new range loads, the previous numbers stay (dimmed) rather than flashing away.
  const data = load.data;
  const chart = useMemo<ChartSeries | undefined>(
    () =>
      data && {
        at: data.series.map((b) => Math.floor(Date.parse(b.at) / 1000)),
        evaluations: data.series.map((b) => b.evaluations),
        impressions: data.series.map((b) => b.impressions),
      },
    [data],
  );

  return (
    <section className="analytics" aria-labelledby={ids + "h"} aria-busy={load.loading || undefined}>
      <div className="analytics-head">
        <h2 id={ids + "h"}>Evaluations of {flagKey}</h2>
        <fieldset className="range-picker">
          <legend className="visually-hidden">Range</legend>
          {RANGES.map((r) => (
            <label key={r} className={"range-option" + (r === range ? " is-selected" : "")}>
              <input type="radio" name={ids + "range"} value={r} checked={r === range} onChange={() => onRange(r)} />
              <span aria-hidden="true">{RANGE_LABELS[r]}</span>
              <span className="visually-hidden">{RANGE_WORDS[r]}</span>
            </label>
          ))}
        </fieldset>
      </div>
      {load.error ? <LoadError error={load.error} /> : null}
      {!data && !load.error && (
        <p className="loading" role="status">
          Loading analytics…
        </p>
      )}
      {data && chart && (
        <div className={load.loading ? "is-stale" : undefined}>
          {data.stale && (
            <p className="banner banner-warn" role="note">
              <span className="badge stale-badge">Stale</span> {staleText(data.stale_reason)}
            </p>
          )}
          <dl className="kpis">
            <div>
              <dt>Evaluations</dt>
              <dd>{data.evaluations.toLocaleString()}</dd>
            </div>
            <div>
              <dt>Impressions</dt>
              <dd>{data.impressions.toLocaleString()}</dd>
            </div>
            <div>
              <dt>Unique users</dt>
              <dd title="Estimated from the impressions (within 2 %; exact for small counts)">{data.unique_users.toLocaleString()}</dd>
            </div>
            <div>
              <dt>Last evaluated</dt>
              <dd>
                <When iso={data.last_evaluated} now={now} />
              </dd>
            </div>
          </dl>
          {data.evaluations + data.impressions === 0 ? (
            <div className="empty-state">
              <p>No evaluations of {flagKey} in {RANGE_WORDS[data.range] ?? RANGE_WORDS[range]}.</p>
              <p className="muted">
                Edges count the evaluations they serve; SDKs report impressions with an SDK key. Both show here as they arrive.
              </p>
            </div>
          ) : (
            <>
              <TimeChart data={chart} bucketMinutes={data.bucket_minutes} summary={summarize(data, range)} />
              <ValueSplit data={data} />
            </>
          )}
        </div>
      )}
    </section>
  );
}

/** The chart in one sentence: totals and the busiest bucket. */
export function summarize(d: FlagInsights, range: Range): string {
  const unit = bucketWord(d.bucket_minutes);
  let busiest = d.series[0];
  for (const b of d.series) if (b.evaluations + b.impressions > busiest.evaluations + busiest.impressions) busiest = b;
  const when = busiest ? new Date(busiest.at).toLocaleString() : "";
  return (
    `Chart of ${d.flag_key} over ${RANGE_WORDS[range]}, per ${unit}: ${d.evaluations.toLocaleString()} evaluations and ` +
    `${d.impressions.toLocaleString()} impressions in all` +
    (busiest && busiest.evaluations + busiest.impressions > 0
      ? `; the busiest ${unit} began ${when}, with ${busiest.evaluations.toLocaleString()} evaluations and ${busiest.impressions.toLocaleString()} impressions.`
      : ".")
  );
}

/** Each value's share of what was served: evaluations and impressions, with a bar. */
function ValueSplit({ data }: { data: FlagInsights }) {
  const total = data.values.reduce((s, v) => s + v.evaluations + v.impressions, 0);
  if (data.values.length === 0) return null;
  return (
    <div className="table-scroll">
      <table className="value-split">
        <caption>Served values</caption>
        <thead>
          <tr>
            <th scope="col">Value</th>
            <th scope="col">Evaluations</th>
            <th scope="col">Impressions</th>
            <th scope="col">Share</th>
          </tr>
        </thead>
        <tbody>
          {data.values.map((v) => {
            const share = total ? ((v.evaluations + v.impressions) / total) * 100 : 0;
            return (
              <tr key={v.value}>
                <td>
                  <span className="badge value-badge mono">{v.value}</span>
                </td>
                <td>{v.evaluations.toLocaleString()}</td>
                <td>{v.impressions.toLocaleString()}</td>
                <td>
                  <span className="share">
                    <meter min={0} max={100} value={share} aria-label={`Share of ${v.value}`} />
                    {share.toFixed(share < 10 && share > 0 ? 1 : 0)} %
                  </span>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
