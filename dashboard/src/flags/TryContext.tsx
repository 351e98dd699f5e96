// "Try a context": evaluates the saved flag for a context typed as JSON, through
// POST /api/environments/{env}/flags/{key}/evaluate, and shows value, variant and reason.

import { useId, useState } from "react";
import { api, ApiError, describe, seg } from "../api";
import { JsonValueEditor } from "./JsonValueEditor";
import { parseRaw, type EvalReason, type EvalResult } from "./model";

const REASONS: Record<EvalReason, string> = {
  STATIC: "The flag serves the same value to every context.",
  TARGETING_MATCH: "A targeting rule matched this context.",
  SPLIT: "Served by the percentage rollout or a split.",
  DISABLED: "The flag is off, or one of its prerequisites is not met.",
  DEFAULT: "No rule matched; the default value was served.",
  ERROR: "The flag could not be evaluated for this context; the disabled value was served.",
};

/** Problems the server would refuse in a context: nested objects, lists of non-strings. */
export function contextProblems(ctx: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(ctx)) {
    if (v && typeof v === "object" && !Array.isArray(v)) out.push(`"${k}" is an object: nested objects are not accepted.`);
    if (Array.isArray(v) && v.some((x) => typeof x !== "string")) out.push(`"${k}" must be a list of strings.`);
  }
  if (ctx.targetingKey !== undefined && typeof ctx.targetingKey !== "string") out.push(`"targetingKey" must be a string.`);
  return out;
}

export function TryContext({
  envId,
  flagKey,
  savedVersion,
  dirty,
}: {
  envId: string;
  flagKey: string;
  savedVersion: number;
  dirty: boolean;
}) {
  const id = useId();
  const [text, setText] = useState('{\n  "targetingKey": "user-1"\n}');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<EvalResult | null>(null);
  const [error, setError] = useState<unknown>(null);
  const parsed = parseRaw("json", text);
  const isObject = parsed.ok && typeof parsed.value === "object" && parsed.value !== null && !Array.isArray(parsed.value);
  const problems = isObject ? contextProblems(parsed.value as Record<string, unknown>) : [];

  const evaluate = async () => {
    if (!isObject) return;
    setBusy(true);
    setError(null);
    try {
      const r = await api.post<EvalResult>(`/api/environments/${seg(envId)}/flags/${seg(flagKey)}/evaluate`, {
        context: parsed.value,
      });
      setResult(r);
    } catch (e) {
      setResult(null);
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card try" aria-labelledby={id + "-title"}>
      <h2 id={id + "-title"}>Try a context</h2>
      <p className="hint">
        Evaluates the <strong>saved</strong> flag (version {savedVersion}) as an SDK would.
      </p>
      {dirty && (
        <p className="banner banner-warn" role="note">
          You have unsaved changes: the result reflects the saved version, not your edits.
        </p>
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void evaluate();
        }}
      >
        <JsonValueEditor
          label="Evaluation context (JSON)"
          value={text}
          onChange={setText}
          requireObject
          rows={6}
          hint='The targeting key and attributes, e.g. {"targetingKey": "user-1", "plan": "pro", "groups": ["beta"]}.'
        />
        {problems.length > 0 && (
          <ul className="error-text">
            {problems.map((p) => (
              <li key={p}>{p}</li>
            ))}
          </ul>
        )}
        <button type="submit" className="primary" disabled={!isObject || busy}>
          {busy ? "Evaluating…" : "Evaluate"}
        </button>
      </form>
      <div role="region" aria-label="Evaluation result" aria-live="polite" className="try-result">
        {error ? (
          <p className="banner banner-error">
            {describe(error)}
            {error instanceof ApiError && (error.status === 405 || (error.status === 404 && /route/.test(error.message)))
              ? " — this control plane cannot evaluate flags from the dashboard yet."
              : ""}
          </p>
        ) : null}
        {result && (
          <dl className="result-list">
            <dt>Value</dt>
            <dd>
              <code className="result-value">{JSON.stringify(result.value, null, 2)}</code>
            </dd>
            <dt>Variant</dt>
            <dd>{result.variant ? <code>{result.variant}</code> : <span className="muted">none</span>}</dd>
            <dt>Reason</dt>
            <dd>
              <span className={"badge reason reason-" + result.reason.toLowerCase()}>{result.reason}</span>{" "}
              <span className="muted">{REASONS[result.reason] ?? ""}</span>
              {result.error_code && (
                <>
                  {" "}
                  Error code: <code>{result.error_code}</code>
                </>
              )}
            </dd>
            {result.enabled !== undefined && (
              <>
                <dt>Enabled</dt>
                <dd>{result.enabled ? "yes" : "no"}</dd>
              </>
            )}
            <dt>Version</dt>
            <dd>
              {result.version}
              {result.version !== savedVersion && (
                <span className="muted"> (the editor was opened at version {savedVersion}; the flag has changed since)</span>
              )}
            </dd>
          </dl>
        )}
      </div>
    </section>
  );
}
