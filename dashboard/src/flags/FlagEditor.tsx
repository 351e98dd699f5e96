// The flag editor, for a new flag (POST) and an existing one (PATCH with If-Match of the version
// it was opened at). Everything is a working copy until Save; a stale version (412) offers a
// reload that discards the edits; a 422 is shown on the field its path names. The working copy
// is `useDocumentEditor`'s; the form's sections are in ./flagEditor/. An existing flag's page
// has three tabs (`?tab=`): Targeting (this editor), Analytics and Stream (./insights/). The
// editor stays mounted, only hidden, on the other tabs, so no edit is lost by looking at them;
// Analytics and Stream are mounted only while shown, so nothing of theirs polls in the
// background.

import { useEffect, useId, useState } from "react";
import { Link, useLocation, useNavigate, useParams, useSearchParams } from "react-router-dom";
import { api, ApiError, seg } from "../api";
import { ConfirmDialog, ErrorBanner, Loading } from "../ui";
import { AttributeSuggestions, Breadcrumb, EditorHeader, EditorStatus } from "./EditorChrome";
import { BucketingSection } from "./flagEditor/BucketingSection";
import { OutcomeSections } from "./flagEditor/OutcomeSections";
import { PrerequisitesSection } from "./flagEditor/PrerequisitesSection";
import { RulesSection } from "./flagEditor/RulesSection";
import { SettingsSection } from "./flagEditor/SettingsSection";
import { Summary } from "./flagEditor/Summary";
import { VariantsSection } from "./flagEditor/VariantsSection";
import { draftToFlag, flagToDraft, newFlagDraft, type Flag, type FlagDoc, type FlagDraft } from "./model";
import { FlagTabList, isFlagTab, panelId, tabId, type FlagTab } from "./FlagTabs";
import { FlagAnalytics } from "./insights/Analytics";
import { ImpressionStream } from "./insights/Stream";
import { isRange, type Range } from "./insights/types";
import { PromoteDialog } from "./PromoteDialog";
import { changedFields } from "./schedules/model";
import { ScheduleDialog } from "./schedules/ScheduleDialog";
import { TryContext } from "./TryContext";
import { useDocumentEditor } from "./useDocumentEditor";
import { useEditorScope } from "./useEditorScope";
import "./flags.css";

export function FlagEditorPage() {
  const { envId = "", flagKey } = useParams();
  // A fresh editor per flag: nothing of one flag's working copy can leak into another's.
  return <FlagEditor key={`${envId}/${flagKey ?? ""}`} />;
}

function FlagEditor() {
  const { flagKey } = useParams();
  const scope = useEditorScope();
  const { envId, canEdit, readOnly, envs, env, envName, flags: allFlags, segments, attributes, listBase } = scope;
  const navigate = useNavigate();
  const location = useLocation();
  const ids = useId();
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [promoting, setPromoting] = useState(false);
  const [scheduling, setScheduling] = useState(false);
  const [params, setParams] = useSearchParams();
  const tabParam = params.get("tab");
  const rangeParam = params.get("range");
  const range: Range = isRange(rangeParam) ? rangeParam : "24h";
  const setParam = (name: string, value: string | null) => {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    setParams(next, { replace: true });
  };

  const editor = useDocumentEditor<Flag, FlagDoc, FlagDraft>({
    noun: "flag",
    collection: `/api/environments/${seg(envId)}/flags`,
    docKey: flagKey,
    readOnly,
    envName,
    newDraft: newFlagDraft,
    toDraft: flagToDraft,
    build: draftToFlag,
    takenKey: "before",
    reportsGone: true,
    savedText: (f) => `Saved: version ${f.version} is live in ${envName}.`,
    onCreated: (doc) => navigate(`${listBase}/flags/${seg(doc.key)}`, { replace: true, state: { created: true } }),
  });
  const { isNew, saved, draft, errors, dirty, update, setBanner } = editor;

  useEffect(() => {
    if ((location.state as { created?: boolean } | null)?.created) setBanner({ kind: "saved", text: "Flag created." });
  }, [location.key, location.state, setBanner]);

  const others = (allFlags.data ?? []).filter((f) => f.key !== (saved?.key ?? draft?.key));
  const requiredBy = (allFlags.data ?? []).filter((f) => (f.prerequisites ?? []).some((p) => p.key === saved?.key));
  const segmentOptions = (segments.data ?? []).map((s) => ({ key: s.key, name: s.name }));

  // "Apply at…": the fields this edit changes, when it is valid and changes any.
  const built = draft && saved ? draftToFlag(draft) : undefined;
  const scheduledPatch =
    built && saved && Object.keys(built.errors).length === 0 ? changedFields(saved, built.doc) : undefined;
  const canSchedule = !!saved && canEdit && dirty && !!scheduledPatch && Object.keys(scheduledPatch).length > 0;

  const remove = async () => {
    if (!saved) return;
    try {
      await api.delete(editor.docUrl(saved.key), { ifMatch: saved.version });
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) {
        setConfirmDelete(false);
        editor.showBanner({ kind: "stale" });
        return;
      }
      throw e;
    }
    editor.markClean();
    navigate(`${listBase}/flags`, { replace: true });
  };

  if (editor.loadError) {
    const missing = editor.loadError instanceof ApiError && editor.loadError.status === 404;
    return (
      <section>
        <Breadcrumb to={`${listBase}/flags`} label="Flags" current={flagKey ?? ""} />
        <h1 className="mono">{flagKey}</h1>
        {missing ? (
          <div className="card">
            <p>
              There is no flag <code>{flagKey}</code> in {envName}.
            </p>
            <Link to={`${listBase}/flags`}>Back to the flags of {envName}</Link>
          </div>
        ) : (
          <ErrorBanner error={editor.loadError} />
        )}
      </section>
    );
  }
  if (!draft || saved === undefined) return <Loading what="Loading flag…" />;

  const section = { draft, update, errors, readOnly, ids };
  const tab: FlagTab = saved && isFlagTab(tabParam) ? tabParam : "targeting";
  const panel = (t: FlagTab) => ({ role: "tabpanel", id: panelId(ids, t), "aria-labelledby": tabId(ids, t) });

  return (
    <section className="flag-editor" onKeyDown={editor.onKeyDown}>
      <AttributeSuggestions id={ids + "-attrs"} attributes={attributes} />
      <EditorHeader
        noun="flag"
        editor={editor}
        scope={scope}
        changedAt={saved?.updated_at}
        actions={
          saved &&
          canEdit && (
            <>
              {canSchedule && (
                <button type="button" onClick={() => setScheduling(true)}>
                  Apply at…
                </button>
              )}
              {(envs.data?.length ?? 0) > 1 && (
                <button type="button" onClick={() => setPromoting(true)}>
                  Promote…
                </button>
              )}
              <button type="button" className="danger-outline" onClick={() => setConfirmDelete(true)}>
                Delete flag
              </button>
            </>
          )
        }
      />

      {saved && <FlagTabList ids={ids} current={tab} onSelect={(t) => setParam("tab", t === "targeting" ? null : t)} />}

      {saved && tab !== "targeting" && dirty && (
        <p className="banner banner-warn">You have unsaved changes on the Targeting tab.</p>
      )}
      {saved && tab === "analytics" && (
        <div {...panel("analytics")}>
          <FlagAnalytics envId={envId} flagKey={saved.key} range={range} onRange={(r) => setParam("range", r === "24h" ? null : r)} />
        </div>
      )}
      {saved && tab === "stream" && (
        <div {...panel("stream")}>
          <ImpressionStream envId={envId} flagKey={saved.key} values={knownValues(saved)} />
        </div>
      )}

      <div {...(saved ? panel("targeting") : {})} hidden={tab !== "targeting"}>
        <EditorStatus
          noun="flag"
          editor={editor}
          scope={scope}
          onDiscard={editor.discard}
        />

        <div className="editor-grid">
          <form
            className="editor-main"
            // Enter in a field does not save: saving is always the explicit Save button.
            onSubmit={(e) => e.preventDefault()}
            noValidate
          >
            <fieldset disabled={readOnly} className="plain">
              <SettingsSection {...section} isNew={isNew} envName={envName} />
              <VariantsSection {...section} />
              <RulesSection {...section} segments={segmentOptions} />
              <OutcomeSections {...section} />
              <PrerequisitesSection {...section} others={others} requiredBy={requiredBy} listBase={listBase} />
              <BucketingSection {...section} />
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
      {scheduling && saved && scheduledPatch && (
        <ScheduleDialog
          envId={envId}
          flagKey={saved.key}
          version={saved.version}
          patch={scheduledPatch}
          envName={envName}
          onClose={() => setScheduling(false)}
          onScheduled={(s) => {
            setScheduling(false);
            editor.discard();
            editor.setBanner({
              kind: "saved",
              text: `Scheduled: this edit applies at ${new Date(s.scheduled_at).toLocaleString()} (see Scheduled changes).`,
            });
          }}
        />
      )}
      {promoting && saved && env && envs.data && (
        <PromoteDialog flag={saved} sourceEnv={env} envs={envs.data} dirty={dirty} onClose={() => setPromoting(false)} />
      )}
    </section>
  );
}

/** The values a flag can serve, as impressions carry them (text), for the Stream's value filter. */
function knownValues(flag: Flag): string[] {
  if (flag.flag_type === "boolean") return ["true", "false"];
  const text = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));
  return [...new Set((flag.variants ?? []).map((v) => text(v.value)))];
}
