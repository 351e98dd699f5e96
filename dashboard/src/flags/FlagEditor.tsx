// The flag editor, for a new flag (POST) and an existing one (PATCH with If-Match of the version
// it was opened at). Everything is a working copy until Save; a stale version (412) offers a
// reload that discards the edits; a 422 is shown on the field its path names.

import { useCallback, useEffect, useId, useMemo, useRef, useState } from "react";
import { Link, useLocation, useNavigate, useParams } from "react-router-dom";
import { api, ApiError, describe, seg } from "../api";
import { useLeaveGuard } from "../leave";
import { can, useProjectRole } from "../session";
import { ago, ConfirmDialog, ErrorBanner, useLoad } from "../ui";
import { ChipsInput, describedBy, FieldBox, focusField, SelectField, Switch, TextAreaField } from "./controls";
import { shortValue, TypedValueInput, ValueChoice } from "./JsonValueEditor";
import {
  convertRaw,
  defaultRaw,
  draftFingerprint,
  draftToFlag,
  FLAG_TYPES,
  fieldForServerPath,
  flagToDraft,
  keyProblem,
  knownAttributes,
  loadAllFlags,
  newFlagDraft,
  newRule,
  reportedVariants,
  stripPath,
  uid,
  type Env,
  type FallthroughDraft,
  type FieldErrors,
  type Flag,
  type FlagDraft,
  type FlagType,
  type PrereqDraft,
  type Segment,
  type WeightDraft,
} from "./model";
import { PromoteDialog } from "./PromoteDialog";
import { move, RuleEditor } from "./RuleEditor";
import { evenSplit, SplitEditor } from "./SplitEditor";
import { TryContext } from "./TryContext";
import "./flags.css";

type Banner =
  | { kind: "stale" }
  | { kind: "gone" }
  | { kind: "error"; text: string }
  | { kind: "invalid"; count: number }
  | { kind: "saved"; text: string }
  | null;

export function FlagEditorPage() {
  const { envId = "", flagKey } = useParams();
  // A fresh editor per flag: nothing of one flag's working copy can leak into another's.
  return <FlagEditor key={`${envId}/${flagKey ?? ""}`} />;
}

function FlagEditor() {
  const { projectId = "", envId = "", flagKey } = useParams();
  const isNew = flagKey === undefined;
  const navigate = useNavigate();
  const location = useLocation();
  const role = useProjectRole(projectId);
  const canEdit = can(role, "editor");
  const readOnly = !canEdit;
  const ids = useId();

  const envs = useLoad(() => api.get<Env[]>(`/api/projects/${seg(projectId)}/environments`), [projectId]);
  const env = envs.data?.find((e) => e.id === envId);
  const envName = env?.name ?? "this environment";
  const allFlags = useLoad(() => loadAllFlags(api.get, envId), [envId]);
  const segments = useLoad(() => api.get<Segment[]>(`/api/environments/${seg(envId)}/segments`), [envId]);

  const [saved, setSaved] = useState<Flag | null | undefined>(isNew ? null : undefined);
  const [draft, setDraft] = useState<FlagDraft | undefined>(isNew ? newFlagDraft() : undefined);
  const [base, setBase] = useState<string>(isNew ? draftFingerprint(newFlagDraft()) : "");
  const [loadError, setLoadError] = useState<unknown>(null);
  const [serverErrors, setServerErrors] = useState<FieldErrors>({});
  const [attempted, setAttempted] = useState(false);
  const [banner, setBanner] = useState<Banner>(null);
  const [saving, setSaving] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [promoting, setPromoting] = useState(false);
  const bannerRef = useRef<HTMLDivElement>(null);

  const apply = useCallback((flag: Flag) => {
    const d = flagToDraft(flag);
    setSaved(flag);
    setDraft(d);
    setBase(draftFingerprint(d));
    setServerErrors({});
    setAttempted(false);
  }, []);

  const load = useCallback(async () => {
    if (isNew) return;
    setLoadError(null);
    try {
      apply(await api.get<Flag>(`/api/environments/${seg(envId)}/flags/${seg(flagKey!)}`));
    } catch (e) {
      setLoadError(e);
    }
  }, [apply, envId, flagKey, isNew]);

  useEffect(() => {
    setBanner(null);
    if (isNew) {
      const d = newFlagDraft();
      setSaved(null);
      setDraft(d);
      setBase(draftFingerprint(d));
      return;
    }
    setSaved(undefined);
    setDraft(undefined);
    void load();
  }, [envId, flagKey, isNew, load]);

  useEffect(() => {
    if ((location.state as { created?: boolean } | null)?.created) setBanner({ kind: "saved", text: "Flag created." });
  }, [location.key, location.state]);

  const dirty = !!draft && draftFingerprint(draft) !== base;
  useLeaveGuard(dirty && !readOnly, "Leave this flag? Your unsaved changes will be lost.");

  const built = useMemo(() => (draft ? draftToFlag(draft) : undefined), [draft]);
  const errors: FieldErrors = { ...(attempted && built ? built.errors : {}), ...serverErrors };

  const others = (allFlags.data ?? []).filter((f) => f.key !== (saved?.key ?? draft?.key));
  const requiredBy = (allFlags.data ?? []).filter((f) => (f.prerequisites ?? []).some((p) => p.key === saved?.key));
  const segmentOptions = (segments.data ?? []).map((s) => ({ key: s.key, name: s.name }));
  const attributes = useMemo(
    () => knownAttributes([...(allFlags.data ?? []), ...(segments.data ?? [])]),
    [allFlags.data, segments.data],
  );
  const listBase = `/projects/${projectId}/envs/${envId}`;

  const update = (fn: (d: FlagDraft) => FlagDraft) => {
    setDraft((d) => (d ? fn(d) : d));
    setServerErrors({});
    if (banner?.kind === "saved" || banner?.kind === "error" || banner?.kind === "invalid") setBanner(null);
  };

  const showBanner = (b: Banner) => {
    setBanner(b);
    requestAnimationFrame(() => bannerRef.current?.focus());
  };

  const save = async () => {
    if (!draft || !built || readOnly) return;
    setAttempted(true);
    const problems = Object.keys(built.errors);
    if (problems.length > 0) {
      setBanner({ kind: "invalid", count: problems.length });
      requestAnimationFrame(() => focusField(problems[0]));
      return;
    }
    setSaving(true);
    setBanner(null);
    try {
      if (isNew) {
        const exists = await api
          .get<Flag>(`/api/environments/${seg(envId)}/flags/${seg(built.doc.key)}`)
          .then(() => true)
          .catch((e) => {
            if (e instanceof ApiError && e.status === 404) return false;
            throw e;
          });
        if (exists) {
          setServerErrors({ key: `A flag named ${built.doc.key} already exists in ${envName}.` });
          requestAnimationFrame(() => focusField("key"));
          return;
        }
        await api.post<Flag>(`/api/environments/${seg(envId)}/flags`, built.doc);
        setBase(draftFingerprint(draft));
        navigate(`${listBase}/flags/${seg(built.doc.key)}`, { replace: true, state: { created: true } });
        return;
      }
      const { key: _key, ...patch } = built.doc;
      void _key;
      const updated = await api.patch<Flag>(`/api/environments/${seg(envId)}/flags/${seg(saved!.key)}`, patch, {
        ifMatch: saved!.version,
      });
      apply(updated);
      setBanner({ kind: "saved", text: `Saved: version ${updated.version} is live in ${envName}.` });
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) showBanner({ kind: "stale" });
      else if (e instanceof ApiError && e.status === 404 && !isNew) showBanner({ kind: "gone" });
      else if (e instanceof ApiError && e.status === 422) {
        const path = e.path ?? (e.message.startsWith("rules:") ? "rules" : undefined);
        const field = path ? fieldForServerPath(path, e.message, draft.rules) : undefined;
        if (field) {
          setServerErrors({ [field]: stripPath(e.message, path) });
          setBanner({ kind: "error", text: `Not saved: ${e.message}` });
          requestAnimationFrame(() => focusField(field));
        } else showBanner({ kind: "error", text: `Not saved: ${e.message}` });
      } else showBanner({ kind: "error", text: `Not saved: ${describe(e)}` });
    } finally {
      setSaving(false);
    }
  };

  const discard = () => {
    if (saved) apply(saved);
    else {
      const d = newFlagDraft();
      setDraft(d);
      setBase(draftFingerprint(d));
      setServerErrors({});
      setAttempted(false);
    }
    setBanner(null);
  };

  const reload = async () => {
    setBanner(null);
    await load();
  };

  const remove = async () => {
    if (!saved) return;
    try {
      await api.delete(`/api/environments/${seg(envId)}/flags/${seg(saved.key)}`, { ifMatch: saved.version });
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) {
        setConfirmDelete(false);
        showBanner({ kind: "stale" });
        return;
      }
      throw e;
    }
    setBase(draftFingerprint(draft));
    navigate(`${listBase}/flags`, { replace: true });
  };

  // ---- rendering

  if (loadError) {
    const missing = loadError instanceof ApiError && loadError.status === 404;
    return (
      <section>
        <Breadcrumb listBase={listBase} current={flagKey ?? ""} />
        <h1 className="mono">{flagKey}</h1>
        {missing ? (
          <div className="card">
            <p>
              There is no flag <code>{flagKey}</code> in {envName}.
            </p>
            <Link to={`${listBase}/flags`}>Back to the flags of {envName}</Link>
          </div>
        ) : (
          <ErrorBanner error={loadError} />
        )}
      </section>
    );
  }
  if (!draft || saved === undefined) {
    return (
      <p className="loading" role="status">
        Loading flag…
      </p>
    );
  }

  const d = draft;
  const variantKeys = d.variants.map((v) => v.key.trim()).filter(Boolean);
  const onFallback = d.type === "boolean" ? "true" : "null";

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

  const setFallthrough = (kind: FallthroughDraft["kind"]) =>
    update((x) => {
      if (x.fallthrough.kind === kind) return x;
      if (kind === "default") return { ...x, fallthrough: { kind } };
      if (kind === "rollout") return { ...x, fallthrough: { kind, percent: 50 } };
      return { ...x, fallthrough: { kind, weights: evenSplit(variantKeys) } };
    });

  const setPrereq = (i: number, p: PrereqDraft) =>
    update((x) => ({ ...x, prerequisites: x.prerequisites.map((q, j) => (j === i ? p : q)) }));

  const title = isNew ? "New flag" : saved!.key;

  return (
    <section
      className="flag-editor"
      onKeyDown={(e) => {
        if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "s" && !readOnly) {
          e.preventDefault();
          if (dirty || isNew) void save();
        }
      }}
    >
      <datalist id={ids + "-attrs"}>
        {attributes.map((a) => (
          <option key={a} value={a} />
        ))}
      </datalist>
      <Breadcrumb listBase={listBase} current={title} />
      <header className="page-head editor-head">
        <div>
          <h1 className={isNew ? undefined : "mono"}>{title}</h1>
          <p className="env-line">
            {env && <span className="env-dot" style={{ background: env.color }} aria-hidden="true" />}
            {envName}
            {env?.is_production && <span className="badge danger">Production</span>}
            {saved && <span className="badge">version {saved.version}</span>}
            {saved?.updated_at && (
              <span className="muted">
                changed <time dateTime={saved.updated_at}>{ago(saved.updated_at)}</time>
              </span>
            )}
          </p>
        </div>
        {saved && canEdit && (
          <div className="head-actions">
            {(envs.data?.length ?? 0) > 1 && (
              <button type="button" onClick={() => setPromoting(true)}>
                Promote…
              </button>
            )}
            <button type="button" className="danger-outline" onClick={() => setConfirmDelete(true)}>
              Delete flag
            </button>
          </div>
        )}
      </header>

      {readOnly && role !== undefined && (
        <p className="banner banner-info">You can view this flag; changing it needs the editor role in this project.</p>
      )}

      <div ref={bannerRef} tabIndex={-1} className="banner-slot">
        {banner?.kind === "stale" && (
          <div className="banner banner-warn stale" role="alert">
            <span>This flag was changed by someone else since you opened it.</span>
            <button type="button" onClick={() => void reload()}>
              Reload
            </button>
            <span className="muted">Reloading discards your edits.</span>
          </div>
        )}
        {banner?.kind === "gone" && (
          <div className="banner banner-error" role="alert">
            This flag was deleted by someone else. <Link to={`${listBase}/flags`}>Back to the flags</Link>
          </div>
        )}
        {banner?.kind === "error" && (
          <div className="banner banner-error" role="alert">
            {banner.text}
          </div>
        )}
        {banner?.kind === "invalid" && (
          <div className="banner banner-error" role="alert">
            Not saved: {banner.count === 1 ? "one field needs" : `${banner.count} fields need`} attention (marked below).
          </div>
        )}
        {banner?.kind === "saved" && (
          <div className="banner banner-info" role="status">
            {banner.text}
          </div>
        )}
      </div>

      {!readOnly && (
        <div className="save-bar" role="group" aria-label="Save">
          <span className={"save-state" + (dirty ? " is-dirty" : "")} role="status">
            {dirty ? "Unsaved changes" : isNew ? "New flag" : "No unsaved changes"}
          </span>
          {dirty && (
            <button type="button" onClick={discard} disabled={saving}>
              Discard changes
            </button>
          )}
          <button
            type="button"
            className="primary"
            title="Save (Ctrl+S)"
            aria-keyshortcuts="Control+S Meta+S"
            onClick={() => void save()}
            disabled={saving || (!dirty && !isNew)}
            aria-busy={saving || undefined}
          >
            {saving ? "Saving…" : isNew ? "Create flag" : "Save"}
          </button>
        </div>
      )}

      <div className="editor-grid">
        <form
          className="editor-main"
          // Enter in a field does not save: saving is always the explicit Save button.
          onSubmit={(e) => e.preventDefault()}
          noValidate
        >
          <fieldset disabled={readOnly} className="plain">
            <section className="card" aria-labelledby={ids + "-settings"}>
              <h2 id={ids + "-settings"}>Settings</h2>
              {isNew ? (
                <FieldBox
                  id={ids + "-key"}
                  label="Key"
                  field="key"
                  error={errors.key ?? (d.key ? keyProblem(d.key) : undefined)}
                  hint="What your code asks for. Letters, digits, '-', '_' and '.'; it cannot be changed later."
                >
                  <input
                    id={ids + "-key"}
                    className="mono"
                    value={d.key}
                    autoComplete="off"
                    spellCheck={false}
                    maxLength={100}
                    aria-invalid={errors.key || (d.key && keyProblem(d.key)) ? true : undefined}
                    aria-describedby={describedBy(ids + "-key", "x", errors.key ?? (d.key ? keyProblem(d.key) : undefined))}
                    onChange={(e) => update((x) => ({ ...x, key: e.target.value }))}
                  />
                </FieldBox>
              ) : null}
              <TextAreaField
                label="Description"
                field="description"
                rows={2}
                value={d.description}
                error={errors.description}
                onChange={(e) => update((x) => ({ ...x, description: e.target.value }))}
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
                    segments={segmentOptions}
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
                <button
                  type="button"
                  className="add-button"
                  onClick={() => {
                    const n = d.rules.length;
                    update((x) => ({ ...x, rules: [...x.rules, newRule()] }));
                    requestAnimationFrame(() => focusField(`rules[${n}].conditions[0].attribute`));
                  }}
                >
                  + Add rule
                </button>
              )}
            </section>

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

            <details className="card advanced" open={!!(d.bucketBy || d.salt || errors.bucket_by || errors.salt) || undefined}>
              <summary>Advanced: bucketing</summary>
              <FieldBox
                id={ids + "-bucket"}
                label="Bucket by attribute"
                field="bucket_by"
                error={errors.bucket_by}
                hint="The context attribute that places a context in rollouts and splits. Empty: the targeting key."
              >
                <input
                  id={ids + "-bucket"}
                  className="mono"
                  value={d.bucketBy}
                  placeholder="targetingKey"
                  list={ids + "-attrs"}
                  aria-describedby={describedBy(ids + "-bucket", "x", errors.bucket_by)}
                  onChange={(e) => update((x) => ({ ...x, bucketBy: e.target.value }))}
                />
              </FieldBox>
              <FieldBox
                id={ids + "-salt"}
                label="Salt"
                field="salt"
                error={errors.salt}
                hint="Mixed into the bucket hash. Empty: the flag key. Changing it reshuffles who is in the rollout and in each share of a split."
              >
                <input
                  id={ids + "-salt"}
                  className="mono"
                  value={d.salt}
                  placeholder={d.key || "flag key"}
                  aria-describedby={describedBy(ids + "-salt", "x", errors.salt)}
                  onChange={(e) => update((x) => ({ ...x, salt: e.target.value }))}
                />
              </FieldBox>
            </details>
          </fieldset>
        </form>

        <aside className="editor-side" aria-label="Try and promote">
          {saved ? (
            <TryContext envId={envId} flagKey={saved.key} savedVersion={saved.version} dirty={dirty} />
          ) : (
            <section className="card try">
              <h2>Try a context</h2>
              <p className="muted">Create the flag first; then you can evaluate it for any context here.</p>
            </section>
          )}
          {saved && <Summary flag={saved} />}
        </aside>
      </div>

      {confirmDelete && saved && (
        <ConfirmDialog
          title={`Delete ${saved.key} from ${envName}?`}
          danger
          confirmLabel="Delete flag"
          body={
            <>
              <p>
                SDKs in {envName} will no longer find <code>{saved.key}</code> and fall back to the default in their code.
                Other environments keep their copy.
              </p>
              {dirty && <p>Your unsaved changes are discarded too.</p>}
              {requiredBy.length > 0 && (
                <p className="banner banner-warn">
                  {requiredBy.map((f) => f.key).join(", ")} {requiredBy.length === 1 ? "requires" : "require"} this flag and
                  will serve {requiredBy.length === 1 ? "its" : "their"} disabled value.
                </p>
              )}
            </>
          }
          onCancel={() => setConfirmDelete(false)}
          onConfirm={remove}
        />
      )}
      {promoting && saved && env && envs.data && (
        <PromoteDialog flag={saved} sourceEnv={env} envs={envs.data} dirty={dirty} onClose={() => setPromoting(false)} />
      )}
    </section>
  );
}

function Breadcrumb({ listBase, current }: { listBase: string; current: string }) {
  return (
    <nav aria-label="Breadcrumb" className="breadcrumb">
      <Link to={`${listBase}/flags`}>Flags</Link> <span aria-hidden="true">/</span>{" "}
      <span aria-current="page" className="mono">
        {current}
      </span>
    </nav>
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

/** A read-only digest of the saved flag. */
function Summary({ flag }: { flag: Flag }) {
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
