// A read-only digest of the saved flag, beside the editor.

import { shortValue } from "../JsonValueEditor";
import type { Flag } from "../model";

/** A read-only digest of the saved flag. */
export function Summary({ flag }: { flag: Flag }) {
  const type = flag.flag_type;
  const raw = (v: unknown) => shortValue(type, type === "string" && typeof v === "string" ? v : JSON.stringify(v));
  return (
    <section className="card summary" aria-label="Saved flag at a glance">
      <h2>Saved version</h2>
      <dl>
        <dt>Status</dt>
        <dd>
          <span className={"badge " + (flag.is_enabled ? "on" : "off")}>{flag.is_enabled ? "On" : "Off"}</span>
        </dd>
        <dt>Rules</dt>
        <dd>{flag.rules.length}</dd>
        <dt>No rule matches</dt>
        <dd>
          {flag.split
            ? `split over ${flag.split.weights.length} variants`
            : flag.rollout_percentage !== null && flag.rollout_percentage !== undefined
              ? `${flag.rollout_percentage} % rollout`
              : "default value"}
        </dd>
        <dt>Default value</dt>
        <dd className="mono">{flag.default_value !== undefined ? raw(flag.default_value) : "not set"}</dd>
        <dt>Disabled value</dt>
        <dd className="mono">{flag.disabled_value !== undefined ? raw(flag.disabled_value) : "not set"}</dd>
      </dl>
    </section>
  );
}
