// The flag's targeting rules, tried in order.

import { focusField } from "../controls";
import { AddRuleButton } from "../EditorChrome";
import { newRule } from "../model";
import { move, RuleEditor } from "../RuleEditor";
import type { FlagSectionProps } from "./section";

export function RulesSection({
  draft: d,
  update,
  errors,
  readOnly,
  ids,
  segments,
}: FlagSectionProps & { segments: { key: string; name: string }[] }) {
  return (
    <section className="card" aria-labelledby={ids + "-rules"}>
      <h2 id={ids + "-rules"}>Targeting rules</h2>
      <p className="hint">Tried in order; the first rule whose conditions all hold decides what the context gets.</p>
      {errors.rules && <p className="error-text">{errors.rules}</p>}
      {d.rules.length === 0 && <p className="muted">No rules: every context gets the default below.</p>}
      <div className="rule-list">
        {d.rules.map((r, i) => (
          <RuleEditor
            key={r.id}
            rule={r}
            index={i}
            count={d.rules.length}
            path={`rules[${i}]`}
            errors={errors}
            mode="flag"
            flagType={d.type}
            variants={d.variants}
            segments={segments}
            attributesListId={ids + "-attrs"}
            disabled={readOnly}
            onChange={(next) => update((x) => ({ ...x, rules: x.rules.map((y, j) => (j === i ? next : y)) }))}
            onMove={(delta) => {
              update((x) => ({ ...x, rules: move(x.rules, i, delta) }));
              requestAnimationFrame(() => {
                const btn = document.querySelector<HTMLButtonElement>(
                  `[data-field="rules[${i + delta}]"] button[aria-label^="Move rule ${i + delta + 1} ${delta < 0 ? "up" : "down"}"]`,
                );
                if (btn && !btn.disabled) btn.focus();
                else focusField(`rules[${i + delta}]`);
              });
            }}
            onRemove={() => update((x) => ({ ...x, rules: x.rules.filter((_, j) => j !== i) }))}
          />
        ))}
      </div>
      {!readOnly && (
        <AddRuleButton count={d.rules.length} onAdd={() => update((x) => ({ ...x, rules: [...x.rules, newRule()] }))} />
      )}
    </section>
  );
}
