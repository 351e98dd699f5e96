// The flag's settings: key (new flags only), description, tags, type and whether it is on.

import { ChipsInput, FieldBox, SelectField, Switch } from "../controls";
import { DescriptionField, KeyField } from "../EditorChrome";
import { convertRaw, defaultRaw, FLAG_TYPES, keyProblem, type FlagType } from "../model";
import type { FlagSectionProps } from "./section";

export function SettingsSection({
  draft: d,
  update,
  errors,
  readOnly,
  ids,
  isNew,
  envName,
}: FlagSectionProps & { isNew: boolean; envName: string }) {
  /** A new type converts every value of the flag (a new flag's untouched defaults become the new type's). */
  const changeType = (t: FlagType) =>
    update((x) => {
      const conv = (raw: string, on: boolean) =>
        isNew && raw === defaultRaw(x.type, on) ? defaultRaw(t, on) : convertRaw(x.type, t, raw, on);
      return {
        ...x,
        type: t,
        variants: x.variants.map((v) => ({ ...v, raw: conv(v.raw, true) })),
        defaultRaw: x.defaultRaw === null ? null : conv(x.defaultRaw, true),
        disabledRaw: x.disabledRaw === null ? null : conv(x.disabledRaw, false),
        rules: x.rules.map((r) => (r.serve.kind === "value" ? { ...r, serve: { kind: "value", raw: conv(r.serve.raw, true) } } : r)),
      };
    });

  return (
    <section className="card" aria-labelledby={ids + "-settings"}>
      <h2 id={ids + "-settings"}>Settings</h2>
      {isNew ? (
        <KeyField
          id={ids + "-key"}
          value={d.key}
          error={errors.key ?? (d.key ? keyProblem(d.key) : undefined)}
          hint="What your code asks for. Letters, digits, '-', '_' and '.'; it cannot be changed later."
          onChange={(key) => update((x) => ({ ...x, key }))}
        />
      ) : null}
      <DescriptionField
        value={d.description}
        error={errors.description}
        onChange={(description) => update((x) => ({ ...x, description }))}
      />
      <ChipsInput
        label="Tags"
        field="tags"
        values={d.tags}
        error={errors.tags}
        hint="Press Enter after each tag."
        disabled={readOnly}
        onChange={(tags) => update((x) => ({ ...x, tags }))}
      />
      <SelectField
        label="Type"
        field="flag_type"
        value={d.type}
        error={errors.flag_type}
        hint={isNew ? "The type of every value the flag serves." : "Changing the type converts the flag's values; check them before saving."}
        onChange={(e) => changeType(e.target.value as FlagType)}
      >
        {FLAG_TYPES.map((t) => (
          <option key={t} value={t}>
            {t}
          </option>
        ))}
      </SelectField>
      <FieldBox
        id={ids + "-enabled"}
        label={`Enabled in ${envName}`}
        hint="When off, every context gets the disabled value."
      >
        <Switch
          id={ids + "-enabled"}
          label={`Enabled in ${envName}`}
          checked={d.isEnabled}
          disabled={readOnly}
          describedby={ids + "-enabled-hint"}
          onChange={(on) => update((x) => ({ ...x, isEnabled: on }))}
        />
      </FieldBox>
    </section>
  );
}
