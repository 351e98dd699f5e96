// The segment editor: key (new only), name, description, targeting keys always in or out, and
// rules (a context is in the segment when any rule's conditions all hold). Writes carry the
// version the editor opened (If-Match), so a change made in between is a 412, never lost.

import { useId, useMemo, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { api, ApiError, seg } from "../api";
import { ErrorBanner, Loading } from "../ui";
import { ChipsInput, FieldBox } from "./controls";
import {
  AddRuleButton,
  AttributeSuggestions,
  Breadcrumb,
  DescriptionField,
  EditorHeader,
  EditorStatus,
  KeyField,
} from "./EditorChrome";
import {
  draftToSegment,
  keyProblem,
  newRule,
  newSegmentDraft,
  segmentToDraft,
  segmentUsage,
  type Segment,
  type SegmentDoc,
  type SegmentDraft,
} from "./model";
import { move, RuleEditor } from "./RuleEditor";
import { DeleteSegmentDialog, UsedBy } from "./Segments";
import { useDocumentEditor } from "./useDocumentEditor";
import { useEditorScope } from "./useEditorScope";
import "./flags.css";

export function SegmentEditorPage() {
  const { envId = "", segmentKey } = useParams();
  return <SegmentEditor key={`${envId}/${segmentKey ?? ""}`} />;
}

function SegmentEditor() {
  const { segmentKey } = useParams();
  const scope = useEditorScope();
  const { envId, canEdit, readOnly, envName, flags, attributes, listBase } = scope;
  const navigate = useNavigate();
  const ids = useId();
  const [deleting, setDeleting] = useState(false);

  const editor = useDocumentEditor<Segment, SegmentDoc, SegmentDraft>({
    noun: "segment",
    collection: `/api/environments/${seg(envId)}/segments`,
    docKey: segmentKey,
    readOnly,
    envName,
    newDraft: newSegmentDraft,
    toDraft: segmentToDraft,
    build: draftToSegment,
    takenKey: "conflict",
    reportsGone: false,
    savedText: (s) => `Saved: version ${s.version} of ${s.key} is live in ${envName}.`,
    onCreated: (doc) => navigate(`${listBase}/segments/${seg(doc.key)}`, { replace: true }),
  });
  const { isNew, saved, draft, errors, update } = editor;

  const usedBy = useMemo(() => (saved ? segmentUsage(flags.data ?? []).get(saved.key) ?? [] : []), [flags.data, saved]);

  if (editor.loadError) {
    return (
      <section>
        <Breadcrumb to={`${listBase}/segments`} label="Segments" />
        {editor.loadError instanceof ApiError && editor.loadError.status === 404 ? (
          <div className="card">
            <p>
              There is no segment <code>{segmentKey}</code> in {envName}.
            </p>
            <Link to={`${listBase}/segments`}>Back to the segments</Link>
          </div>
        ) : (
          <ErrorBanner error={editor.loadError} />
        )}
      </section>
    );
  }
  if (!draft || saved === undefined) return <Loading what="Loading segment…" />;
  const d = draft;
  const keyError = errors.key ?? (d.key ? keyProblem(d.key) : undefined);

  return (
    <section className="segment-editor" onKeyDown={editor.onKeyDown}>
      <AttributeSuggestions id={ids + "-attrs"} attributes={attributes} />
      <EditorHeader
        noun="segment"
        editor={editor}
        scope={scope}
        actions={
          saved &&
          canEdit && (
            <button type="button" className="danger-outline" onClick={() => setDeleting(true)}>
              Delete segment
            </button>
          )
        }
      />
      <EditorStatus
        noun="segment"
        editor={editor}
        scope={scope}
        // Unlike the flag editor's Discard, this one leaves the banner as it is.
        onDiscard={isNew ? undefined : () => saved && editor.apply(saved)}
      />
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
              <KeyField
                id={ids + "-key"}
                value={d.key}
                error={keyError}
                hint="Letters, digits, '-', '_' and '.'; it cannot be changed later."
                onChange={(key) => update((x) => ({ ...x, key }))}
              />
            )}
            <FieldBox id={ids + "-name"} label="Name" field="name" error={errors.name}>
              <input id={ids + "-name"} value={d.name} onChange={(e) => update((x) => ({ ...x, name: e.target.value }))} />
            </FieldBox>
            <DescriptionField
              value={d.description}
              error={errors.description}
              onChange={(description) => update((x) => ({ ...x, description }))}
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
              <AddRuleButton count={d.rules.length} onAdd={() => update((x) => ({ ...x, rules: [...x.rules, newRule()] }))} />
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
            await api.delete(editor.docUrl(saved.key), { ifMatch: saved.version });
            editor.markClean();
            navigate(`${listBase}/segments`, { replace: true });
          }}
        />
      )}
    </section>
  );
}
