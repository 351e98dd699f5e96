// The parts the flag and segment editors share around their forms: breadcrumb, title row with the
// environment and version, the read-only note, the banners of `useDocumentEditor` and the save
// bar, the key and description fields, the attribute suggestions and the button that adds a
// rule.

import type { ReactNode, RefObject } from "react";
import { Link } from "react-router-dom";
import { ago } from "../ui";
import { describedBy, FieldBox, focusField, TextAreaField } from "./controls";
import type { DocumentEditor, EditorBanner } from "./useDocumentEditor";
import type { EditorScope } from "./useEditorScope";

/** The way back to the list, and (when given) the document's name. */
export function Breadcrumb({ to, label, current }: { to: string; label: string; current?: string }) {
  return (
    <nav aria-label="Breadcrumb" className="breadcrumb">
      <Link to={to}>{label}</Link>
      {current !== undefined && (
        <>
          {" "}
          <span aria-hidden="true">/</span>{" "}
          <span aria-current="page" className="mono">
            {current}
          </span>
        </>
      )}
    </nav>
  );
}

const listTitle = (noun: string) => noun.charAt(0).toUpperCase() + noun.slice(1) + "s";

/**
 * The breadcrumb and the title row: the document's key (or "New flag"), the environment with its
 * production mark, the saved version (and when it changed, where known), and the actions.
 */
export function EditorHeader({
  noun,
  editor,
  scope,
  changedAt,
  actions,
}: {
  noun: string;
  editor: Pick<DocumentEditor, "isNew" | "saved">;
  scope: Pick<EditorScope, "env" | "envName" | "listBase">;
  changedAt?: string;
  actions?: ReactNode;
}) {
  const { isNew, saved } = editor;
  const { env, envName } = scope;
  const title = isNew ? `New ${noun}` : (saved?.key ?? "");
  return (
    <>
      <Breadcrumb to={`${scope.listBase}/${noun}s`} label={listTitle(noun)} current={title} />
      <header className="page-head editor-head">
        <div>
          <h1 className={isNew ? undefined : "mono"}>{title}</h1>
          <p className="env-line">
            {env && <span className="env-dot" style={{ background: env.color }} aria-hidden="true" />}
            {envName}
            {env?.is_production && <span className="badge danger">Production</span>}
            {saved && <span className="badge">version {saved.version}</span>}
            {changedAt && (
              <span className="muted">
                changed <time dateTime={changedAt}>{ago(changedAt)}</time>
              </span>
            )}
          </p>
        </div>
        {actions && <div className="head-actions">{actions}</div>}
      </header>
    </>
  );
}

/**
 * Between the title row and the form: for a user who may only look, a note saying so; for
 * others, the save bar; for both, the editor's banners.
 */
export function EditorStatus({
  noun,
  editor,
  scope,
  onDiscard,
}: {
  noun: string;
  editor: Pick<DocumentEditor, "banner" | "bannerRef" | "reload" | "dirty" | "isNew" | "saving" | "save">;
  scope: Pick<EditorScope, "readOnly" | "role" | "listBase">;
  /** Offered while there are unsaved changes, when given. */
  onDiscard?: () => void;
}) {
  const { readOnly } = scope;
  return (
    <>
      {/* The note waits until the user's role is known. */}
      {readOnly && scope.role !== undefined && <ReadOnlyNote noun={noun} />}
      <EditorBanners
        banner={editor.banner}
        bannerRef={editor.bannerRef}
        noun={noun}
        listTo={`${scope.listBase}/${noun}s`}
        onReload={editor.reload}
      />
      {!readOnly && (
        <SaveBar
          noun={noun}
          dirty={editor.dirty}
          isNew={editor.isNew}
          saving={editor.saving}
          onSave={() => void editor.save()}
          onDiscard={onDiscard}
        />
      )}
    </>
  );
}

/** Said to a user who may look but not change. */
function ReadOnlyNote({ noun }: { noun: string }) {
  return (
    <p className="banner banner-info">{`You can view this ${noun}; changing it needs the editor role in this project.`}</p>
  );
}

/** The editor's banner, in a slot that takes the focus when a banner needs attention. */
function EditorBanners({
  banner,
  bannerRef,
  noun,
  listTo,
  onReload,
}: {
  banner: EditorBanner;
  bannerRef: RefObject<HTMLDivElement | null>;
  noun: string;
  /** The list of documents, for when this one was deleted. */
  listTo: string;
  onReload: () => Promise<void>;
}) {
  return (
    <div ref={bannerRef} tabIndex={-1} className="banner-slot">
      {banner?.kind === "stale" && (
        <div className="banner banner-warn stale" role="alert">
          <span>{`This ${noun} was changed by someone else since you opened it.`}</span>
          <button type="button" onClick={() => void onReload()}>
            Reload
          </button>
          <span className="muted">Reloading discards your edits.</span>
        </div>
      )}
      {banner?.kind === "gone" && (
        <div className="banner banner-error" role="alert">
          {`This ${noun} was deleted by someone else. `}
          <Link to={listTo}>{`Back to the ${noun}s`}</Link>
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
  );
}

/** Whether there are unsaved changes, Discard (when offered) and Save or Create. */
function SaveBar({
  noun,
  dirty,
  isNew,
  saving,
  onSave,
  onDiscard,
}: {
  noun: string;
  dirty: boolean;
  isNew: boolean;
  saving: boolean;
  onSave: () => void;
  /** Offered while there are unsaved changes, when given. */
  onDiscard?: () => void;
}) {
  return (
    <div className="save-bar" role="group" aria-label="Save">
      <span className={"save-state" + (dirty ? " is-dirty" : "")} role="status">
        {dirty ? "Unsaved changes" : isNew ? `New ${noun}` : "No unsaved changes"}
      </span>
      {dirty && onDiscard && (
        <button type="button" onClick={onDiscard} disabled={saving}>
          Discard changes
        </button>
      )}
      <button
        type="button"
        className="primary"
        title="Save (Ctrl+S)"
        aria-keyshortcuts="Control+S Meta+S"
        onClick={onSave}
        disabled={saving || (!dirty && !isNew)}
        aria-busy={saving || undefined}
      >
        {saving ? "Saving…" : isNew ? `Create ${noun}` : "Save"}
      </button>
    </div>
  );
}

/** The key of a new document (it cannot be changed later). */
export function KeyField({
  id,
  value,
  error,
  hint,
  onChange,
}: {
  id: string;
  value: string;
  error: string | undefined;
  hint: string;
  onChange: (key: string) => void;
}) {
  return (
    <FieldBox id={id} label="Key" field="key" error={error} hint={hint}>
      <input
        id={id}
        className="mono"
        value={value}
        autoComplete="off"
        spellCheck={false}
        maxLength={100}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(id, "x", error)}
        onChange={(e) => onChange(e.target.value)}
      />
    </FieldBox>
  );
}

/** The description of a flag or segment. */
export function DescriptionField({
  value,
  error,
  onChange,
}: {
  value: string;
  error: string | undefined;
  onChange: (description: string) => void;
}) {
  return (
    <TextAreaField
      label="Description"
      field="description"
      rows={2}
      value={value}
      error={error}
      onChange={(e) => onChange(e.target.value)}
    />
  );
}

/** The attributes in use in the environment, offered as suggestions by attribute inputs. */
export function AttributeSuggestions({ id, attributes }: { id: string; attributes: string[] }) {
  return (
    <datalist id={id}>
      {attributes.map((a) => (
        <option key={a} value={a} />
      ))}
    </datalist>
  );
}

/** "+ Add rule": adds one (the caller's `onAdd`) and moves the focus to its first attribute. */
export function AddRuleButton({ count, onAdd }: { count: number; onAdd: () => void }) {
  return (
    <button
      type="button"
      className="add-button"
      onClick={() => {
        onAdd();
        requestAnimationFrame(() => focusField(`rules[${count}].conditions[0].attribute`));
      }}
    >
      + Add rule
    </button>
  );
}
