// The segment editor: key (new only), name, description, targeting keys always in or out, and
// rules (a context is in the segment when any rule's conditions all hold). Writes carry the
// version the editor opened (If-Match), so a change made in between is a 412, never lost.

import { useCallback, useEffect, useId, useMemo, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { api, ApiError, describe, seg } from "../api";
import { useLeaveGuard } from "../leave";
import { can, useProjectRole } from "../session";
import { ErrorBanner, useLoad } from "../ui";
import { ChipsInput, describedBy, FieldBox, focusField, TextAreaField } from "./controls";
import {
  draftFingerprint,
  draftToSegment,
  fieldForServerPath,
  keyProblem,
  knownAttributes,
  loadAllFlags,
  newRule,
  newSegmentDraft,
  segmentToDraft,
  segmentUsage,
  stripPath,
  type Env,
  type FieldErrors,
  type Segment,
  type SegmentDraft,
} from "./model";
import { move, RuleEditor } from "./RuleEditor";
import { DeleteSegmentDialog, UsedBy } from "./Segments";
import "./flags.css";

type Banner = { kind: "stale" } | { kind: "error"; text: string } | { kind: "saved"; text: string } | null;

export function SegmentEditorPage() {
  const { envId = "", segmentKey } = useParams();
  return <SegmentEditor key={`${envId}/${segmentKey ?? ""}`} />;
}

function SegmentEditor() {
  const { projectId = "", envId = "", segmentKey } = useParams();
  const isNew = segmentKey === undefined;
  const navigate = useNavigate();
  const role = useProjectRole(projectId);
  const canEdit = can(role, "editor");
  const readOnly = !canEdit;
  const ids = useId();
  const envs = useLoad(() => api.get<Env[]>(`/api/projects/${seg(projectId)}/environments`), [projectId]);
  const env = envs.data?.find((e) => e.id === envId);
  const envName = env?.name ?? "this environment";
  const flags = useLoad(() => loadAllFlags(api.get, envId), [envId]);
  const others = useLoad(() => api.get<Segment[]>(`/api/environments/${seg(envId)}/segments`), [envId]);

  const [saved, setSaved] = useState<Segment | null | undefined>(isNew ? null : undefined);
  const [draft, setDraft] = useState<SegmentDraft | undefined>(isNew ? newSegmentDraft() : undefined);
  const [base, setBase] = useState(isNew ? draftFingerprint(newSegmentDraft()) : "");
  const [loadError, setLoadError] = useState<unknown>(null);
  const [serverErrors, setServerErrors] = useState<FieldErrors>({});
  const [attempted, setAttempted] = useState(false);
  const [banner, setBanner] = useState<Banner>(null);
  const [saving, setSaving] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const bannerRef = useRef<HTMLDivElement>(null);
  const listBase = `/projects/${projectId}/envs/${envId}`;

  const apply = useCallback((s: Segment) => {
    const d = segmentToDraft(s);
    setSaved(s);
    setDraft(d);
    setBase(draftFingerprint(d));
    setServerErrors({});
    setAttempted(false);
  }, []);

  const load = useCallback(async () => {
    if (isNew) return;
    setLoadError(null);
    try {
      apply(await api.get<Segment>(`/api/environments/${seg(envId)}/segments/${seg(segmentKey!)}`));
    } catch (e) {
      setLoadError(e);
    }
  }, [apply, envId, segmentKey, isNew]);

  useEffect(() => {
    setBanner(null);
    if (isNew) {
      const d = newSegmentDraft();
      setSaved(null);
      setDraft(d);
      setBase(draftFingerprint(d));
      return;
    }
    setSaved(undefined);
    setDraft(undefined);
    void load();
  }, [envId, segmentKey, isNew, load]);

  const built = useMemo(() => (draft ? draftToSegment(draft) : undefined), [draft]);
  const errors: FieldErrors = { ...(attempted && built ? built.errors : {}), ...serverErrors };
  const dirty = !!draft && draftFingerprint(draft) !== base;
  const usedBy = useMemo(() => (saved ? segmentUsage(flags.data ?? []).get(saved.key) ?? [] : []), [flags.data, saved]);
  const attributes = useMemo(
    () => knownAttributes([...(flags.data ?? []), ...(others.data ?? [])]),
    [flags.data, others.data],
  );

  useLeaveGuard(dirty && !readOnly, "Leave this segment? Your unsaved changes will be lost.");

  const update = (fn: (d: SegmentDraft) => SegmentDraft) => {
    setDraft((d) => (d ? fn(d) : d));
    setServerErrors({});
    if (banner?.kind !== "stale") setBanner(null);
  };
  const showBanner = (b: Banner) => {
    setBanner(b);
    requestAnimationFrame(() => bannerRef.current?.focus());
  };

  const save = async () => {
    if (!draft || !built || readOnly) return;
    setAttempted(true);
    const problems = Object.keys(built.errors);
    if (problems.length) {
      showBanner({ kind: "error", text: `Not saved: ${problems.length === 1 ? "one field needs" : `${problems.length} fields need`} attention (marked below).` });
      requestAnimationFrame(() => focusField(problems[0]));
      return;
    }
    setSaving(true);
    setBanner(null);
    try {
      if (isNew) {
        await api.post<Segment>(`/api/environments/${seg(envId)}/segments`, built.doc);
        setBase(draftFingerprint(draft));
        navigate(`${listBase}/segments/${seg(built.doc.key)}`, { replace: true });
        return;
      }
      const url = `/api/environments/${seg(envId)}/segments/${seg(saved!.key)}`;
      const { key: _key, ...patch } = built.doc;
      void _key;
      const updated = await api.patch<Segment>(url, patch, { ifMatch: saved!.version });
      apply(updated);
      setBanner({ kind: "saved", text: `Saved: version ${updated.version} of ${updated.key} is live in ${envName}.` });
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) showBanner({ kind: "stale" });
      else if (e instanceof ApiError && e.status === 409 && isNew) {
        setServerErrors({ key: `A segment named ${built.doc.key} already exists in ${envName}.` });
        requestAnimationFrame(() => focusField("key"));
      } else if (e instanceof ApiError && e.status === 422) {
        const path = e.path;
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

  if (loadError) {
    return (
      <section>
        <nav aria-label="Breadcrumb" className="breadcrumb">
          <Link to={`${listBase}/segments`}>Segments</Link>
        </nav>
        {loadError instanceof ApiError && loadError.status === 404 ? (
          <div className="card">
            <p>
              There is no segment <code>{segmentKey}</code> in {envName}.
            </p>
            <Link to={`${listBase}/segments`}>Back to the segments</Link>
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
        Loading segment…
      </p>
    );
  }
  const d = draft;
  const title = isNew ? "New segment" : saved!.key;
  const keyError = errors.key ?? (d.key ? keyProblem(d.key) : undefined);

  return (
    <section
      className="segment-editor"
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
      <nav aria-label="Breadcrumb" className="breadcrumb">
        <Link to={`${listBase}/segments`}>Segments</Link> <span aria-hidden="true">/</span>{" "}
        <span aria-current="page" className="mono">
          {title}
        </span>
      </nav>
      <header className="page-head editor-head">
        <div>
          <h1 className={isNew ? undefined : "mono"}>{title}</h1>
          <p className="env-line">
            {env && <span className="env-dot" style={{ background: env.color }} aria-hidden="true" />}
            {envName}
            {env?.is_production && <span className="badge danger">Production</span>}
            {saved && <span className="badge">version {saved.version}</span>}
          </p>
        </div>
        {saved && canEdit && (
          <div className="head-actions">
            <button type="button" className="danger-outline" onClick={() => setDeleting(true)}>
              Delete segment
            </button>
          </div>
        )}
      </header>
      {readOnly && role !== undefined && (
        <p className="banner banner-info">You can view this segment; changing it needs the editor role in this project.</p>
      )}
      <div ref={bannerRef} tabIndex={-1} className="banner-slot">
        {banner?.kind === "stale" && (
          <div className="banner banner-warn stale" role="alert">
            <span>This segment was changed by someone else since you opened it.</span>
            <button type="button" onClick={() => void load().then(() => setBanner(null))}>
              Reload
            </button>
            <span className="muted">Reloading discards your edits.</span>
          </div>
        )}
        {banner?.kind === "error" && (
          <div className="banner banner-error" role="alert">
            {banner.text}
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
            {dirty ? "Unsaved changes" : isNew ? "New segment" : "No unsaved changes"}
          </span>
          {dirty && !isNew && (
            <button type="button" onClick={() => saved && apply(saved)} disabled={saving}>
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
          >
            {saving ? "Saving…" : isNew ? "Create segment" : "Save"}
          </button>
        </div>
      )}
      <form
        // Enter in a field does not save: saving is always the explicit Save button.
          onSubmit={(e) => e.preventDefault()}
        noValidate
        className="segment-form"
      >
        <fieldset disabled={readOnly} className="plain">
          <section className="card" aria-labelledby={ids + "-about"}>
            <h2 id={ids + "-about"}>Segment</h2>
            {isNew && (
              <FieldBox id={ids + "-key"} label="Key" field="key" error={keyError} hint="Letters, digits, '-', '_' and '.'; it cannot be changed later.">
                <input
                  id={ids + "-key"}
                  className="mono"
                  value={d.key}
                  autoComplete="off"
                  spellCheck={false}
                  maxLength={100}
                  aria-invalid={keyError ? true : undefined}
                  aria-describedby={describedBy(ids + "-key", "x", keyError)}
                  onChange={(e) => update((x) => ({ ...x, key: e.target.value }))}
                />
              </FieldBox>
            )}
            <FieldBox id={ids + "-name"} label="Name" field="name" error={errors.name}>
              <input id={ids + "-name"} value={d.name} onChange={(e) => update((x) => ({ ...x, name: e.target.value }))} />
            </FieldBox>
            <TextAreaField
              label="Description"
              field="description"
              rows={2}
              value={d.description}
              error={errors.description}
              onChange={(e) => update((x) => ({ ...x, description: e.target.value }))}
            />
            {saved && (
              <div className="muted used-by">
                Used by: <UsedBy keys={usedBy} listBase={listBase} max={8} />
              </div>
            )}
          </section>
          <section className="card" aria-labelledby={ids + "-keys"}>
            <h2 id={ids + "-keys"}>Targeting keys</h2>
            <ChipsInput
              label="Always included"
              field="included"
              values={d.included}
              disabled={readOnly}
              error={errors.included}
              hint="Targeting keys always in the segment. Press Enter after each; paste several lines to add them all."
              onChange={(included) => update((x) => ({ ...x, included }))}
            />
            <ChipsInput
              label="Always excluded"
              field="excluded"
              values={d.excluded}
              disabled={readOnly}
              error={errors.excluded}
              hint="Targeting keys never in the segment, whatever the rules say (wins over everything)."
              onChange={(excluded) => update((x) => ({ ...x, excluded }))}
            />
          </section>
          <section className="card" aria-labelledby={ids + "-rules"}>
            <h2 id={ids + "-rules"}>Rules</h2>
            <p className="hint">A context is in the segment when any rule matches; a rule matches when all its conditions hold.</p>
            {d.rules.length === 0 && <p className="muted">No rules: only the included targeting keys are in the segment.</p>}
            <div className="rule-list">
              {d.rules.map((r, i) => (
                <div key={r.id}>
                  {i > 0 && (
                    <p className="or-joiner" aria-hidden="true">
                      or
                    </p>
                  )}
                  <RuleEditor
                    rule={r}
                    index={i}
                    count={d.rules.length}
                    path={`rules[${i}]`}
                    errors={errors}
                    mode="segment"
                    segments={[]}
                    attributesListId={ids + "-attrs"}
                    disabled={readOnly}
                    onChange={(next) => update((x) => ({ ...x, rules: x.rules.map((y, j) => (j === i ? next : y)) }))}
                    onMove={(delta) => update((x) => ({ ...x, rules: move(x.rules, i, delta) }))}
                    onRemove={() => update((x) => ({ ...x, rules: x.rules.filter((_, j) => j !== i) }))}
                  />
                </div>
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
        </fieldset>
      </form>
      {deleting && saved && (
        <DeleteSegmentDialog
          segment={saved}
          envName={envName}
          usedBy={usedBy}
          onCancel={() => setDeleting(false)}
          onConfirm={async () => {
            await api.delete(`/api/environments/${seg(envId)}/segments/${seg(saved.key)}`, {
              ifMatch: saved.version,
            });
            setBase(draftFingerprint(draft));
            navigate(`${listBase}/segments`, { replace: true });
          }}
        />
      )}
    </section>
  );
}
