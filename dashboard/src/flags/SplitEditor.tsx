// A weighted split over a flag's named variants: a share per variant in percent (to 1/1000 %,
// the core's 1/100,000), a live bar, and the total, which must be exactly 100 %.

import { useId } from "react";
import {
  evenPercents,
  percentToUnits,
  SPLIT_SCALE,
  splitProblem,
  splitSum,
  uid,
  unitsToPercent,
  type WeightDraft,
} from "./model";

const COLORS = ["#3b5bdb", "#2b8a3e", "#e67700", "#ae3ec9", "#0c8599", "#c92a2a", "#5c940d", "#862e9c"];

export function variantColor(index: number): string {
  return COLORS[index % COLORS.length];
}

export function SplitEditor({
  legend,
  weights,
  variants,
  onChange,
  error,
  field,
  disabled,
}: {
  legend: string;
  weights: WeightDraft[];
  /** Keys of the flag's named variants. */
  variants: string[];
  onChange: (weights: WeightDraft[]) => void;
  /** An error from the server about this split. */
  error?: string;
  field?: string;
  disabled?: boolean;
}) {
  const id = useId();
  const sum = splitSum(weights);
  const problem = splitProblem(weights, variants);
  const sumOk = sum === SPLIT_SCALE;
  const unused = variants.filter((v) => !weights.some((w) => w.variant === v));
  const set = (i: number, patch: Partial<WeightDraft>) =>
    onChange(weights.map((w, j) => (j === i ? { ...w, ...patch } : w)));
  const colorOf = (variant: string) => {
    const i = variants.indexOf(variant);
    return i >= 0 ? variantColor(i) : "#868e96";
  };
  const shown = error ?? problem;

  return (
    <fieldset className={"split" + (shown ? " split-invalid" : "")} data-field={field} aria-describedby={id + "-sum"}>
      <legend>{legend}</legend>
      {variants.length === 0 && <p className="hint">Add named variants to the flag to split between them.</p>}
      <div
        className="split-bar"
        role="img"
        aria-label={
          "Split: " +
          (weights.length
            ? weights.map((w) => `${w.variant || "no variant"} ${unitsToPercent(percentToUnits(w.percent) ?? 0)} %`).join(", ")
            : "empty")
        }
      >
        {weights.map((w) => {
          const units = Math.min(percentToUnits(w.percent) ?? 0, SPLIT_SCALE);
          if (units === 0) return null;
          return (
            <span
              key={w.id}
              className="split-segment"
              style={{ width: `${(units / Math.max(sum, SPLIT_SCALE)) * 100}%`, background: colorOf(w.variant) }}
              title={`${w.variant}: ${unitsToPercent(units)} %`}
            />
          );
        })}
        {sum < SPLIT_SCALE && <span className="split-gap" style={{ width: `${((SPLIT_SCALE - sum) / SPLIT_SCALE) * 100}%` }} />}
      </div>
      <ul className="split-rows">
        {weights.map((w, i) => {
          const pctId = `${id}-pct-${i}`;
          const varId = `${id}-var-${i}`;
          const units = percentToUnits(w.percent);
          const name = w.variant || `share ${i + 1}`;
          return (
            <li key={w.id} className="split-row">
              <span className="swatch" style={{ background: colorOf(w.variant) }} aria-hidden="true" />
              <label htmlFor={varId} className="visually-hidden">
                Variant of share {i + 1}
              </label>
              <select
                id={varId}
                value={w.variant}
                disabled={disabled}
                aria-invalid={!w.variant || !variants.includes(w.variant) ? true : undefined}
                onChange={(e) => set(i, { variant: e.target.value })}
              >
                {!variants.includes(w.variant) && <option value={w.variant}>{w.variant ? `${w.variant} (missing)` : "Choose…"}</option>}
                {variants.map((v) => (
                  <option key={v} value={v}>
                    {v}
                  </option>
                ))}
              </select>
              <label htmlFor={pctId} className="visually-hidden">
                Share of {name} (%)
              </label>
              <span className="pct-input">
                <input
                  id={pctId}
                  type="number"
                  inputMode="decimal"
                  min={0}
                  max={100}
                  step="any"
                  value={w.percent}
                  disabled={disabled}
                  aria-invalid={units === undefined ? true : undefined}
                  aria-describedby={id + "-sum"}
                  onChange={(e) => set(i, { percent: e.target.value })}
                />
                <span aria-hidden="true">%</span>
              </span>
              {!disabled && (
                <button
                  type="button"
                  className="icon-button"
                  aria-label={`Remove ${name} from the split`}
                  onClick={() => onChange(weights.filter((_, j) => j !== i))}
                >
                  ×
                </button>
              )}
            </li>
          );
        })}
      </ul>
      <div className="split-footer">
        <p id={id + "-sum"} className={"split-sum " + (sumOk ? "sum-ok" : "sum-bad")} role="status">
          Total: {unitsToPercent(sum)} %{sumOk ? "" : " — must be 100 %"}
        </p>
        {!disabled && (
          <div className="split-actions">
            <button
              type="button"
              disabled={unused.length === 0}
              onClick={() => {
                const variant = unused[0] ?? variants[0] ?? "";
                onChange([...weights, { id: uid("w"), variant, percent: unitsToPercent(Math.max(0, SPLIT_SCALE - sum)) }]);
              }}
            >
              Add variant to split
            </button>
            <button
              type="button"
              disabled={weights.length === 0}
              onClick={() => {
                const even = evenPercents(weights.length);
                onChange(weights.map((w, i) => ({ ...w, percent: even[i] })));
              }}
            >
              Split evenly
            </button>
          </div>
        )}
      </div>
      {shown && (
        <p className="error-text" role={error ? "alert" : undefined}>
          {shown}
        </p>
      )}
    </fieldset>
  );
}

/** A new split giving every variant an even share. */
export function evenSplit(variants: string[]): WeightDraft[] {
  const even = evenPercents(variants.length);
  return variants.map((v, i) => ({ id: uid("w"), variant: v, percent: even[i] }));
}
