// The flag's named variants: name, value and description of each; renaming one renames it in
// the splits that use it.

import { describedBy, FieldBox, focusField } from "../controls";
import { TypedValueInput } from "../JsonValueEditor";
import { defaultRaw, uid, type WeightDraft } from "../model";
import type { FlagSectionProps } from "./section";

export function VariantsSection({ draft: d, update, errors, readOnly, ids }: FlagSectionProps) {
  const renameVariant = (i: number, key: string) =>
    update((x) => {
      const old = x.variants[i].key.trim();
      const unique = old && x.variants.filter((v) => v.key.trim() === old).length === 1;
      const rename = (w: WeightDraft): WeightDraft => (unique && w.variant === old ? { ...w, variant: key.trim() } : w);
      return {
        ...x,
        variants: x.variants.map((v, j) => (j === i ? { ...v, key } : v)),
        rules: x.rules.map((r) => (r.serve.kind === "split" ? { ...r, serve: { ...r.serve, weights: r.serve.weights.map(rename) } } : r)),
        fallthrough: x.fallthrough.kind === "split" ? { ...x.fallthrough, weights: x.fallthrough.weights.map(rename) } : x.fallthrough,
      };
    });

  return (
    <section className="card" aria-labelledby={ids + "-variants"}>
      <h2 id={ids + "-variants"}>Variants</h2>
      <p className="hint">
        {d.type === "boolean"
          ? "Optional names for true and false; splits need named variants."
          : "Named values the flag can serve; splits and prerequisites refer to them by name."}
      </p>
      {errors.variants && <p className="error-text">{errors.variants}</p>}
      <ol className="variant-list">
        {d.variants.map((v, i) => (
          <li key={v.id} className="variant-row">
            <FieldBox id={`${ids}-vk${i}`} label={`Variant ${i + 1} name`} field={`variants[${i}].key`} error={errors[`variants[${i}].key`]}>
              <input
                id={`${ids}-vk${i}`}
                className="mono"
                value={v.key}
                autoComplete="off"
                aria-invalid={errors[`variants[${i}].key`] ? true : undefined}
                aria-describedby={describedBy(`${ids}-vk${i}`, undefined, errors[`variants[${i}].key`])}
                onChange={(e) => renameVariant(i, e.target.value)}
              />
            </FieldBox>
            <TypedValueInput
              type={d.type}
              raw={v.raw}
              label={`Variant ${i + 1} value`}
              field={`variants[${i}].value`}
              error={errors[`variants[${i}].value`]}
              disabled={readOnly}
              onChange={(raw) => update((x) => ({ ...x, variants: x.variants.map((y, j) => (j === i ? { ...y, raw } : y)) }))}
            />
            <FieldBox id={`${ids}-vd${i}`} label={`Variant ${i + 1} description`}>
              <input
                id={`${ids}-vd${i}`}
                value={v.description}
                onChange={(e) =>
                  update((x) => ({ ...x, variants: x.variants.map((y, j) => (j === i ? { ...y, description: e.target.value } : y)) }))
                }
              />
            </FieldBox>
            {!readOnly && (
              <button
                type="button"
                className="icon-button"
                aria-label={`Remove variant ${i + 1}${v.key ? ` (${v.key})` : ""}`}
                onClick={() => update((x) => ({ ...x, variants: x.variants.filter((_, j) => j !== i) }))}
              >
                ×
              </button>
            )}
          </li>
        ))}
      </ol>
      {!readOnly && (
        <button
          type="button"
          className="add-button"
          onClick={() => {
            const n = d.variants.length;
            update((x) => ({
              ...x,
              variants: [
                ...x.variants,
                {
                  id: uid("v"),
                  key: d.type === "boolean" ? (n === 0 ? "on" : n === 1 ? "off" : "") : "",
                  raw: d.type === "boolean" ? (n === 1 ? "false" : "true") : defaultRaw(d.type, true),
                  description: "",
                },
              ],
            }));
            requestAnimationFrame(() => focusField(`variants[${n}].key`));
          }}
        >
          + Add variant
        </button>
      )}
    </section>
  );
}
