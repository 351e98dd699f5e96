// What the flag serves when no rule matches (the default value, a percentage rollout or a split)
// and when it is off.

import { useEffect, useId, useState } from "react";
import { ValueChoice } from "../JsonValueEditor";
import type { FallthroughDraft } from "../model";
import { evenSplit, SplitEditor } from "../SplitEditor";
import type { FlagSectionProps } from "./section";

export function OutcomeSections({ draft: d, update, errors, readOnly, ids }: FlagSectionProps) {
  const variantKeys = d.variants.map((v) => v.key.trim()).filter(Boolean);
  const onFallback = d.type === "boolean" ? "true" : "null";

  const setFallthrough = (kind: FallthroughDraft["kind"]) =>
    update((x) => {
      if (x.fallthrough.kind === kind) return x;
      if (kind === "default") return { ...x, fallthrough: { kind } };
      if (kind === "rollout") return { ...x, fallthrough: { kind, percent: 50 } };
      return { ...x, fallthrough: { kind, weights: evenSplit(variantKeys) } };
    });

  return (
    <>
      <section className="card" aria-labelledby={ids + "-fallthrough"}>
        <h2 id={ids + "-fallthrough"}>When no rule matches</h2>
        <fieldset className="plain">
          <legend className="visually-hidden">What contexts that match no rule get</legend>
          <div className="radio-row">
            {(
              [
                ["default", "Serve the default value"],
                ["rollout", "Percentage rollout"],
                ["split", "Split between variants"],
              ] as const
            ).map(([kind, text]) => (
              <label key={kind} className="radio">
                <input
                  type="radio"
                  name={ids + "-fallthrough"}
                  checked={d.fallthrough.kind === kind}
                  disabled={kind === "split" && variantKeys.length === 0 && d.fallthrough.kind !== "split"}
                  onChange={() => setFallthrough(kind)}
                />
                {text}
              </label>
            ))}
          </div>
        </fieldset>
        {variantKeys.length === 0 && d.fallthrough.kind !== "split" && (
          <p className="hint">Add named variants above to split between them.</p>
        )}
        <ValueChoice
          type={d.type}
          variants={d.variants}
          raw={d.defaultRaw}
          label="Default value"
          unsetText={`Not set (serves ${onFallback})`}
          field="default_value"
          error={errors.default_value}
          hint="Served when the flag is on and no rule matches (inside the rollout), and by rules that serve the default."
          disabled={readOnly}
          onChange={(raw) => update((x) => ({ ...x, defaultRaw: raw }))}
        />
        {d.fallthrough.kind === "rollout" && (
          <Rollout
            percent={d.fallthrough.percent}
            error={errors.rollout_percentage}
            disabled={readOnly}
            onChange={(percent) => update((x) => ({ ...x, fallthrough: { kind: "rollout", percent } }))}
          />
        )}
        {d.fallthrough.kind === "split" && (
          <SplitEditor
            legend="Default split"
            weights={d.fallthrough.weights}
            variants={variantKeys}
            field="split"
            error={errors.split}
            disabled={readOnly}
            onChange={(weights) => update((x) => ({ ...x, fallthrough: { kind: "split", weights } }))}
          />
        )}
      </section>

      <section className="card" aria-labelledby={ids + "-off"}>
        <h2 id={ids + "-off"}>When off</h2>
        <ValueChoice
          type={d.type}
          variants={d.variants}
          raw={d.disabledRaw}
          label="Disabled value"
          unsetText="Not set (serves false)"
          field="disabled_value"
          error={errors.disabled_value}
          hint="Served when the flag is off, outside the rollout, when a prerequisite is not met, or on an error."
          disabled={readOnly}
          onChange={(raw) => update((x) => ({ ...x, disabledRaw: raw }))}
        />
      </section>
    </>
  );
}

/** Percentage rollout: a slider and the exact number. */
function Rollout({
  percent,
  onChange,
  error,
  disabled,
}: {
  percent: number;
  onChange: (p: number) => void;
  error?: string;
  disabled?: boolean;
}) {
  const id = useId();
  const [text, setText] = useState(String(percent));
  useEffect(() => setText(String(percent)), [percent]);
  return (
    <div className={"field rollout" + (error ? " field-invalid" : "")} data-field="rollout_percentage">
      <label htmlFor={id}>Rollout percentage</label>
      <div className="rollout-row">
        <input
          id={id}
          type="range"
          min={0}
          max={100}
          step={1}
          value={percent}
          disabled={disabled}
          aria-valuetext={`${percent} %`}
          aria-describedby={id + "-hint"}
          onChange={(e) => onChange(Number(e.target.value))}
        />
        <span className="pct-input">
          <input
            type="number"
            min={0}
            max={100}
            step={1}
            aria-label="Exact rollout percentage"
            value={text}
            disabled={disabled}
            aria-invalid={error ? true : undefined}
            onChange={(e) => {
              setText(e.target.value);
              const n = Number(e.target.value);
              if (e.target.value !== "" && Number.isInteger(n) && n >= 0 && n <= 100) onChange(n);
            }}
            onBlur={() => setText(String(percent))}
          />
          <span aria-hidden="true">%</span>
        </span>
      </div>
      <p className="hint" id={id + "-hint"}>
        {percent} % of contexts that match no rule get the default value; the others get the disabled value.
      </p>
      {error && <p className="error-text">{error}</p>}
    </div>
  );
}
