// The flags that must be on (and serve one of the chosen variants) before this one is evaluated,
// and the flags that require this one.

import { Link } from "react-router-dom";
import { seg } from "../../api";
import { focusField, SelectField } from "../controls";
import { reportedVariants, uid, type Flag, type PrereqDraft } from "../model";
import type { FlagSectionProps } from "./section";

export function PrerequisitesSection({
  draft: d,
  update,
  errors,
  readOnly,
  ids,
  others,
  requiredBy,
  listBase,
}: FlagSectionProps & {
  /** The environment's other flags, which this one may require. */
  others: Flag[];
  /** The flags that require this one. */
  requiredBy: Flag[];
  listBase: string;
}) {
  const setPrereq = (i: number, p: PrereqDraft) =>
    update((x) => ({ ...x, prerequisites: x.prerequisites.map((q, j) => (j === i ? p : q)) }));

  return (
    <section className="card" aria-labelledby={ids + "-pre"}>
      <h2 id={ids + "-pre"}>Prerequisites</h2>
      <p className="hint">Flags that must be on — and serve one of the chosen variants, if any — before this flag is evaluated; otherwise the disabled value is served.</p>
      {requiredBy.length > 0 && (
        <p className="muted">
          Required by:{" "}
          {requiredBy.map((f, i) => (
            <span key={f.key}>
              {i > 0 && ", "}
              <Link to={`${listBase}/flags/${seg(f.key)}`} className="mono">
                {f.key}
              </Link>
            </span>
          ))}
        </p>
      )}
      <ol className="prereq-list">
        {d.prerequisites.map((p, i) => {
          const other = others.find((f) => f.key === p.key);
          const names = other ? reportedVariants(other) : [];
          const extra = p.variants.filter((v) => !names.includes(v));
          return (
            <li key={p.id} className="prereq-row">
              <SelectField
                label={`Prerequisite ${i + 1}`}
                field={`prerequisites[${i}].key`}
                value={p.key}
                error={errors[`prerequisites[${i}].key`]}
                onChange={(e) => setPrereq(i, { ...p, key: e.target.value, variants: [] })}
              >
                <option value="">Choose a flag…</option>
                {p.key && !other && <option value={p.key}>{p.key} (not in this environment)</option>}
                {others.map((f) => (
                  <option key={f.key} value={f.key}>
                    {f.key}
                  </option>
                ))}
              </SelectField>
              {p.key && (
                <fieldset className="prereq-variants">
                  <legend>Must serve</legend>
                  <p className="hint">None checked: any value, as long as {p.key} is on for the context.</p>
                  {[...names, ...extra].map((name) => (
                    <label key={name} className="check">
                      <input
                        type="checkbox"
                        checked={p.variants.includes(name)}
                        onChange={(e) =>
                          setPrereq(i, {
                            ...p,
                            variants: e.target.checked ? [...p.variants, name] : p.variants.filter((v) => v !== name),
                          })
                        }
                      />
                      <code>{name}</code>
                    </label>
                  ))}
                </fieldset>
              )}
              {!readOnly && (
                <button
                  type="button"
                  className="icon-button"
                  aria-label={`Remove prerequisite ${i + 1}`}
                  onClick={() => update((x) => ({ ...x, prerequisites: x.prerequisites.filter((_, j) => j !== i) }))}
                >
                  ×
                </button>
              )}
            </li>
          );
        })}
      </ol>
      {!readOnly && (
        <button
          type="button"
          className="add-button"
          disabled={others.length === 0}
          onClick={() => {
            const n = d.prerequisites.length;
            update((x) => ({ ...x, prerequisites: [...x.prerequisites, { id: uid("p"), key: "", variants: [] }] }));
            requestAnimationFrame(() => focusField(`prerequisites[${n}].key`));
          }}
        >
          + Add prerequisite
        </button>
      )}
    </section>
  );
}
