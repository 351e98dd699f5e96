// The working copy of one versioned document (a flag or a segment) in its editor: loading it,
// editing a draft, telling whether the draft differs from what was loaded, saving (POST for a new
// document; PATCH with If-Match of the version it was opened at, so a change made meanwhile is a
// 412 and never lost), showing a 422 on the field its path names, and asking before the user
// leaves with unsaved changes.

import { useCallback, useEffect, useMemo, useRef, useState, type KeyboardEvent, type RefObject } from "react";
import { api, ApiError, describe, seg } from "../api";
import { useLeaveGuard } from "../leave";
import { focusField } from "./controls";
import { draftFingerprint, fieldForServerPath, stripPath, type Built, type FieldErrors, type RuleDraft } from "./model";

/** What the editor says above the form. */
export type EditorBanner =
  | { kind: "stale" }
  | { kind: "gone" }
  | { kind: "error"; text: string }
  | { kind: "invalid"; count: number }
  | { kind: "saved"; text: string }
  | null;

/** A draft has rules: a 422 about a rule is placed on the rule's field. */
type WithRules = { rules: RuleDraft[] };

export interface DocumentEditorOptions<
  Saved extends Doc & { version: number },
  Doc extends { key: string },
  Draft extends WithRules,
> {
  /** What the document is called in messages: "flag" or "segment". */
  noun: string;
  /** The collection's path, as in `/api/environments/{id}/flags`; a document is `{collection}/{key}`. */
  collection: string;
  /** The key of the document to edit; undefined for a new one. */
  docKey: string | undefined;
  readOnly: boolean;
  /** The environment's name, for messages. */
  envName: string;
  newDraft: () => Draft;
  toDraft: (saved: Saved) => Draft;
  /** The document for a draft and every problem found on the way. */
  build: (draft: Draft) => Built<Doc>;
  /**
   * How a new document's key is found taken: by asking for it before the POST ("before"), or by
   * the POST's 409 ("conflict").
   */
  takenKey: "before" | "conflict";
  /** Whether a 404 when saving says the document was deleted meanwhile (else a plain error). */
  reportsGone: boolean;
  /** The banner after a successful save. */
  savedText: (updated: Saved) => string;
  /** Called once a new document is created (its editor usually navigates to it). */
  onCreated: (doc: Doc) => void;
}

/** The parts of the editor that do not depend on the kind of document. */
export interface DocumentEditor {
  isNew: boolean;
  saved: { key: string; version: number } | null | undefined;
  dirty: boolean;
  saving: boolean;
  banner: EditorBanner;
  bannerRef: RefObject<HTMLDivElement | null>;
  save: () => Promise<void>;
  reload: () => Promise<void>;
}

export function useDocumentEditor<
  Saved extends Doc & { version: number },
  Doc extends { key: string },
  Draft extends WithRules,
>(
  options: DocumentEditorOptions<Saved, Doc, Draft>,
) {
  const { noun, collection, docKey, readOnly, envName } = options;
  const isNew = docKey === undefined;
  // The functions among the options may be new on every render: read the latest through a ref.
  const opts = useRef(options);
  opts.current = options;

  const [saved, setSaved] = useState<Saved | null | undefined>(isNew ? null : undefined);
  const [draft, setDraft] = useState<Draft | undefined>(isNew ? options.newDraft() : undefined);
  const [base, setBase] = useState<string>(isNew ? draftFingerprint(options.newDraft()) : "");
  const [loadError, setLoadError] = useState<unknown>(null);
  const [serverErrors, setServerErrors] = useState<FieldErrors>({});
  const [attempted, setAttempted] = useState(false);
  const [banner, setBanner] = useState<EditorBanner>(null);
  const [saving, setSaving] = useState(false);
  const bannerRef = useRef<HTMLDivElement>(null);

  /** Makes `doc` the saved version and a fresh draft of it. */
  const apply = useCallback((doc: Saved) => {
    const d = opts.current.toDraft(doc);
    setSaved(doc);
    setDraft(d);
    setBase(draftFingerprint(d));
    setServerErrors({});
    setAttempted(false);
  }, []);

  const startNew = useCallback(() => {
    const d = opts.current.newDraft();
    setDraft(d);
    setBase(draftFingerprint(d));
    setServerErrors({});
    setAttempted(false);
  }, []);

  const docUrl = useCallback((key: string) => `${collection}/${seg(key)}`, [collection]);

  const load = useCallback(async () => {
    if (isNew) return;
    setLoadError(null);
    try {
      apply(await api.get<Saved>(docUrl(docKey)));
    } catch (e) {
      setLoadError(e);
    }
  }, [apply, docUrl, docKey, isNew]);

  useEffect(() => {
    setBanner(null);
    if (isNew) {
      setSaved(null);
      startNew();
      return;
    }
    setSaved(undefined);
    setDraft(undefined);
    void load();
  }, [isNew, load, startNew]);

  const dirty = !!draft && draftFingerprint(draft) !== base;
  useLeaveGuard(dirty && !readOnly, `Leave this ${noun}? Your unsaved changes will be lost.`);

  const built = useMemo(() => (draft ? opts.current.build(draft) : undefined), [draft]);
  const errors: FieldErrors = { ...(attempted && built ? built.errors : {}), ...serverErrors };

  /** Changes the draft; the server's complaints and any banner but a stale or gone one go. */
  const update = (fn: (d: Draft) => Draft) => {
    setDraft((d) => (d ? fn(d) : d));
    setServerErrors({});
    if (banner?.kind !== "stale" && banner?.kind !== "gone") setBanner(null);
  };

  /** Shows a banner and moves the focus to it. */
  const showBanner = (b: EditorBanner) => {
    setBanner(b);
    requestAnimationFrame(() => bannerRef.current?.focus());
  };

  /** Whether a new document's key is taken: asked before the POST, or answered by its 409. */
  const create = async (doc: Doc): Promise<"created" | "taken"> => {
    if (opts.current.takenKey === "before") {
      const exists = await api
        .get<Saved>(docUrl(doc.key))
        .then(() => true)
        .catch((e) => {
          if (e instanceof ApiError && e.status === 404) return false;
          throw e;
        });
      if (exists) return "taken";
    }
    try {
      await api.post<Saved>(collection, doc);
      return "created";
    } catch (e) {
      if (opts.current.takenKey === "conflict" && e instanceof ApiError && e.status === 409) return "taken";
      throw e;
    }
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
        if ((await create(built.doc)) === "taken") {
          setServerErrors({ key: `A ${noun} named ${built.doc.key} already exists in ${envName}.` });
          requestAnimationFrame(() => focusField("key"));
          return;
        }
        setBase(draftFingerprint(draft));
        opts.current.onCreated(built.doc);
        return;
      }
      const { key: _key, ...patch } = built.doc;
      void _key;
      const updated = await api.patch<Saved>(docUrl(saved!.key), patch, { ifMatch: saved!.version });
      apply(updated);
      setBanner({ kind: "saved", text: opts.current.savedText(updated) });
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) showBanner({ kind: "stale" });
      else if (e instanceof ApiError && e.status === 404 && !isNew && opts.current.reportsGone) showBanner({ kind: "gone" });
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

  /** Back to the saved version (or an empty new document), without a banner. */
  const discard = () => {
    if (saved) apply(saved);
    else startNew();
    setBanner(null);
  };

  /** Loads the current version again (after a stale banner), dropping the edits. */
  const reload = async () => {
    setBanner(null);
    await load();
  };

  /** Takes the draft as it is for saved, so leaving (after a delete) does not ask. */
  const markClean = () => setBase(draftFingerprint(draft));

  /** Ctrl+S (⌘S) saves, when there is something to save. */
  const onKeyDown = (e: KeyboardEvent) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "s" && !readOnly) {
      e.preventDefault();
      if (dirty || isNew) void save();
    }
  };

  return {
    isNew,
    saved,
    draft,
    loadError,
    errors,
    dirty,
    saving,
    banner,
    bannerRef,
    setBanner,
    showBanner,
    update,
    save,
    discard,
    apply,
    reload,
    markClean,
    onKeyDown,
    docUrl,
  };
}
