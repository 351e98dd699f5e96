// A targeting rule: conditions that must all hold (attribute, operator, values), and — for
// flags — what the rule serves: the default value, a value, or a weighted split. Segments use the
// same editor without the "serve" part and without segment conditions.

import { useId } from "react";
import { ChipsInput, describedBy, FieldBox, SelectField } from "./controls";
import { ValueChoice } from "./JsonValueEditor";
import {
  defaultRaw,
  newCondition,
  OPERATOR_GROUPS,
  operatorInfo,
  parseRaw,
  prettyJson,
  VALUE_HINTS,
  valueProblem,
  valuesAfterOperatorChange,
  type ConditionDraft,
  type FieldErrors,
  type FlagType,
  type Operator,
  type RuleDraft,
  type ServeDraft,
  type VariantDraft,
} from "./model";
import { evenSplit, SplitEditor } from "./SplitEditor";

export interface SegmentOption {
  key: string;
  name?: string;
}

export function ConditionEditor({
  condition,
  index,
  path,
  errors,
  onChange,
  onRemove,
  canRemove,
  segments,
  allowSegments,
  attributesListId,
  disabled,
}: {
  condition: ConditionDraft;
  index: number;
  /** Editor path, such as `rules[0].conditions[1]`. */
  path: string;
  errors: FieldErrors;
  onChange: (c: ConditionDraft) => void;
  onRemove: () => void;
  canRemove: boolean;
  segments: SegmentOption[];
  allowSegments: boolean;
  attributesListId?: string;
  disabled?: boolean;
}) {
  const id = useId();
  const info = operatorInfo(condition.operator);
  const hint = VALUE_HINTS[info.kind];
  const serverError = errors[`${path}.values`];
  const multi = info.multi || condition.values.length > 1;
  const single = condition.values[0] ?? "";
  const liveProblem = !multi && single !== "" ? valueProblem(info.kind, single) : undefined;
  const valuesError = serverError ?? liveProblem;
  const attrError = errors[`${path}.attribute`];

  const setOperator = (op: Operator) =>
    onChange({ ...condition, operator: op, values: valuesAfterOperatorChange(condition.operator, op, condition.values) });

  let valuesInput;
  if (info.kind === "segment" && !multi) {
    const sid = id + "-segment";
    const known = segments.some((s) => s.key === single);
    const segHint = segments.length === 0 ? "This environment has no segments yet." : undefined;
    valuesInput = (
      <FieldBox
        id={sid}
        label="Segment"
        error={valuesError}
        field={`${path}.values`}
        hint={segHint}
        className="cond-values"
      >
        <select
          id={sid}
          value={single}
          disabled={disabled}
          aria-invalid={valuesError ? true : undefined}
          aria-describedby={describedBy(sid, segHint, valuesError)}
          onChange={(e) => onChange({ ...condition, values: e.target.value ? [e.target.value] : [] })}
        >
          <option value="">Choose a segment…</option>
          {single && !known && <option value={single}>{single} (not in this environment)</option>}
          {segments.map((s) => (
            <option key={s.key} value={s.key}>
              {s.name && s.name !== s.key ? `${s.name} (${s.key})` : s.key}
            </option>
          ))}
        </select>
      </FieldBox>
    );
  } else if (multi) {
    valuesInput = (
      <div className="cond-values">
        <ChipsInput
          label={info.kind === "segment" ? "Segments" : "Values"}
          values={condition.values}
          onChange={(values) => onChange({ ...condition, values })}
          error={serverError}
          field={`${path}.values`}
          disabled={disabled}
          problem={(v) => valueProblem(info.kind, v)}
          hint={info.kind === "text" ? "Press Enter after each value. Matches when the attribute equals any of them." : `Press Enter after each value. ${hint ?? ""}`}
        />
      </div>
    );
  } else {
    const vid = id + "-value";
    valuesInput = (
      <FieldBox id={vid} label="Value" error={valuesError} hint={info.kind === "text" ? undefined : hint} field={`${path}.values`} className="cond-values">
        <input
          id={vid}
          value={single}
          disabled={disabled}
          inputMode={info.kind === "number" ? "decimal" : undefined}
          spellCheck={info.kind === "regex" ? false : undefined}
          className={info.kind === "regex" ? "mono" : undefined}
          placeholder={
            info.kind === "semver" ? "1.4.0" : info.kind === "date" ? "2026-01-31T09:00:00Z" : info.kind === "regex" ? "^user-\\d+$" : undefined
          }
          aria-invalid={valuesError ? true : undefined}
          aria-describedby={describedBy(vid, info.kind === "text" ? undefined : hint, valuesError)}
          onChange={(e) => onChange({ ...condition, values: e.target.value === "" ? [] : [e.target.value] })}
        />
      </FieldBox>
    );
  }

  return (
    <fieldset className="condition" data-field={path}>
      <legend className="visually-hidden">Condition {index + 1}</legend>
      <span className="cond-joiner" aria-hidden="true">
        {index === 0 ? "If" : "and"}
      </span>
      <div className="cond-fields">
        {info.kind !== "segment" ? (
          <FieldBox id={id + "-attr"} label="Attribute" error={attrError} field={`${path}.attribute`} className="cond-attr">
            <input
              id={id + "-attr"}
              value={condition.attribute}
              list={attributesListId}
              placeholder="plan"
              autoComplete="off"
              spellCheck={false}
              disabled={disabled}
              aria-invalid={attrError ? true : undefined}
              aria-describedby={describedBy(id + "-attr", undefined, attrError)}
              onChange={(e) => onChange({ ...condition, attribute: e.target.value })}
            />
          </FieldBox>
        ) : (
          <div className="cond-attr cond-context" aria-hidden="true">
            <span className="muted">The context</span>
          </div>
        )}
        <SelectField
          label="Operator"
          className="cond-op"
          value={condition.operator}
          disabled={disabled}
          error={errors[`${path}.operator`]}
          field={`${path}.operator`}
          onChange={(e) => setOperator(e.target.value as Operator)}
        >
          {OPERATOR_GROUPS.filter((g) => allowSegments || !g.ops.includes("in_segment")).map((g) => (
            <optgroup key={g.label} label={g.label}>
              {g.ops.map((op) => (
                <option key={op} value={op}>
                  {operatorInfo(op).label}
                </option>
              ))}
            </optgroup>
          ))}
          {!allowSegments && condition.operator === "in_segment" && <option value="in_segment">is in segment</option>}
        </SelectField>
        {valuesInput}
      </div>
      {!disabled && (
        <button
          type="button"
          className="icon-button cond-remove"
          aria-label={`Remove condition ${index + 1}`}
          disabled={!canRemove}
          title={canRemove ? undefined : "A rule needs at least one condition"}
          onClick={onRemove}
        >
          ×
        </button>
      )}
    </fieldset>
  );
}

/** The conditions of one rule, ANDed, with "Add condition". */
export function ConditionsEditor({
  conditions,
  onChange,
  path,
  errors,
  segments,
  allowSegments,
  attributesListId,
  disabled,
}: {
  conditions: ConditionDraft[];
  onChange: (c: ConditionDraft[]) => void;
  /** The rule's editor path, such as `rules[0]`. */
  path: string;
  errors: FieldErrors;
  segments: SegmentOption[];
  allowSegments: boolean;
  attributesListId?: string;
  disabled?: boolean;
}) {
  return (
    <div className="conditions">
      <ol className="condition-list">
        {conditions.map((c, j) => (
          <li key={c.id}>
            <ConditionEditor
              condition={c}
              index={j}
              path={`${path}.conditions[${j}]`}
              errors={errors}
              segments={segments}
              allowSegments={allowSegments}
              attributesListId={attributesListId}
              disabled={disabled}
              canRemove={conditions.length > 1}
              onChange={(next) => onChange(conditions.map((x, k) => (k === j ? next : x)))}
              onRemove={() => onChange(conditions.filter((_, k) => k !== j))}
            />
          </li>
        ))}
      </ol>
      {!disabled && (
        <button type="button" className="add-button" onClick={() => onChange([...conditions, newCondition()])}>
          + Add condition
        </button>
      )}
    </div>
  );
}

export function RuleEditor({
  rule,
  index,
  count,
  path,
  errors,
  onChange,
  onMove,
  onRemove,
  mode,
  flagType = "boolean",
  variants = [],
  segments,
  attributesListId,
  disabled,
}: {
  rule: RuleDraft;
  index: number;
  count: number;
  path: string;
  errors: FieldErrors;
  onChange: (r: RuleDraft) => void;
  onMove: (delta: -1 | 1) => void;
  onRemove: () => void;
  mode: "flag" | "segment";
  flagType?: FlagType;
  variants?: VariantDraft[];
  segments: SegmentOption[];
  attributesListId?: string;
  disabled?: boolean;
}) {
  const id = useId();
  const n = index + 1;
  const variantKeys = variants.map((v) => v.key.trim()).filter(Boolean);
  const setServe = (kind: ServeDraft["kind"]) => {
    if (kind === rule.serve.kind) return;
    if (kind === "default") onChange({ ...rule, serve: { kind } });
    else if (kind === "value") {
      const first = variants.find((v) => v.key.trim() && parseRaw(flagType, v.raw).ok);
      const p = first ? parseRaw(flagType, first.raw) : undefined;
      const raw = p && p.ok ? (flagType === "json" ? prettyJson(p.value) : first!.raw) : defaultRaw(flagType, true);
      onChange({ ...rule, serve: { kind, raw } });
    } else onChange({ ...rule, serve: { kind, weights: evenSplit(variantKeys) } });
  };
  const ruleError = errors[path];

  return (
    <section className={"rule card" + (ruleError ? " rule-invalid" : "")} aria-labelledby={id + "-title"} data-field={path}>
      <header className="rule-head">
        <h3 id={id + "-title"}>Rule {n}</h3>
        <div className="rule-desc">
          <label htmlFor={id + "-desc"} className="visually-hidden">
            Description of rule {n}
          </label>
          <input
            id={id + "-desc"}
            value={rule.description}
            placeholder="Describe this rule (optional)"
            disabled={disabled}
            onChange={(e) => onChange({ ...rule, description: e.target.value })}
          />
        </div>
        {!disabled && (
          <div className="rule-tools">
            <button type="button" className="icon-button" aria-label={`Move rule ${n} up`} disabled={index === 0} onClick={() => onMove(-1)}>
              ↑
            </button>
            <button
              type="button"
              className="icon-button"
              aria-label={`Move rule ${n} down`}
              disabled={index === count - 1}
              onClick={() => onMove(1)}
            >
              ↓
            </button>
            <button type="button" className="icon-button danger-text" aria-label={`Delete rule ${n}`} onClick={onRemove}>
              <svg width="14" height="14" viewBox="0 0 16 16" aria-hidden="true" focusable="false">
                <path
                  fill="currentColor"
                  d="M6 1h4a1 1 0 0 1 1 1v1h3v1.5H2V3h3V2a1 1 0 0 1 1-1Zm.5 2h3v-.5h-3V3ZM3.5 5.5h9l-.7 8.6a1 1 0 0 1-1 .9H5.2a1 1 0 0 1-1-.9l-.7-8.6Zm3 1.5v6h1V7h-1Zm2 0v6h1V7h-1Z"
                />
              </svg>
            </button>
          </div>
        )}
      </header>
      {ruleError && (
        <p className="error-text" role="alert">
          {ruleError}
        </p>
      )}
      <ConditionsEditor
        conditions={rule.conditions}
        onChange={(conditions) => onChange({ ...rule, conditions })}
        path={path}
        errors={errors}
        segments={segments}
        allowSegments={mode === "flag"}
        attributesListId={attributesListId}
        disabled={disabled}
      />
      {mode === "flag" && (
        <fieldset className="serve">
          <legend>Serve when rule {n} matches</legend>
          <div className="radio-row">
            {(
              [
                ["default", "The default value"],
                ["value", "A value"],
                ["split", "A percentage split"],
              ] as const
            ).map(([kind, text]) => (
              <label key={kind} className={"radio" + (kind === "split" && variantKeys.length === 0 ? " radio-disabled" : "")}>
                <input
                  type="radio"
                  name={id + "-serve"}
                  value={kind}
                  checked={rule.serve.kind === kind}
                  disabled={disabled || (kind === "split" && variantKeys.length === 0 && rule.serve.kind !== "split")}
                  onChange={() => setServe(kind)}
                />
                {text}
              </label>
            ))}
          </div>
          {variantKeys.length === 0 && rule.serve.kind !== "split" && (
            <p className="hint">Add named variants to the flag to split between them.</p>
          )}
          {rule.serve.kind === "value" && (
            <ValueChoice
              type={flagType}
              variants={variants}
              raw={rule.serve.raw}
              onChange={(raw) => onChange({ ...rule, serve: { kind: "value", raw: raw ?? "" } })}
              label="Served value"
              error={errors[`${path}.value`]}
              field={`${path}.value`}
              disabled={disabled}
            />
          )}
          {rule.serve.kind === "split" && (
            <SplitEditor
              legend={`Split for rule ${n}`}
              weights={rule.serve.weights}
              variants={variantKeys}
              onChange={(weights) => onChange({ ...rule, serve: { kind: "split", weights } })}
              error={errors[`${path}.split`]}
              field={`${path}.split`}
              disabled={disabled}
            />
          )}
        </fieldset>
      )}
    </section>
  );
}

/** Moves item `i` of `list` by `delta`, returning a new list. */
export function move<T>(list: T[], i: number, delta: number): T[] {
  const j = i + delta;
  if (j < 0 || j >= list.length) return list;
  const out = [...list];
  [out[i], out[j]] = [out[j], out[i]];
  return out;
}
