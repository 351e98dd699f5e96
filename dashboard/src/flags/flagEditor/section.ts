// What every section of the flag editor is given.

import type { FieldErrors, FlagDraft } from "../model";

export interface FlagSectionProps {
  draft: FlagDraft;
  /** Changes the draft (see `useDocumentEditor`). */
  update: (fn: (d: FlagDraft) => FlagDraft) => void;
  errors: FieldErrors;
  readOnly: boolean;
  /** The editor's id prefix (from useId), which the sections' ids and the attribute list share. */
  ids: string;
}
