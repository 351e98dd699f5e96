// The dialog that creates a credential (an SDK key, an API token, an edge token): its name, the
// fields of its kind, and Create; a server error lands on the field it names.

import { useState, type FormEvent, type ReactNode } from "react";
import { ErrorBanner, Field, formErrors, Modal } from "../ui";

export function CreateTokenDialog<C, F extends string>({
  title,
  nameLabel,
  namePlaceholder,
  nameHint,
  fields,
  ready = true,
  submitLabel,
  wide,
  create,
  onCreated,
  onClose,
  children,
}: {
  title: string;
  nameLabel: string;
  namePlaceholder: string;
  nameHint?: string;
  /** The other fields a server error may name, besides `name`. */
  fields: readonly F[];
  /** Whether the other fields are complete (the name is checked here). */
  ready?: boolean;
  submitLabel: string;
  wide?: boolean;
  /** Sends the request for the trimmed name; its answer goes to `onCreated`. */
  create: (name: string) => Promise<C>;
  onCreated: (created: C) => void;
  onClose: () => void;
  /** The fields of this kind of credential, given the errors that name them. */
  children: (errors: Partial<Record<F, string>>) => ReactNode;
}) {
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const errs = formErrors<F | "name">(error, ["name", ...fields]);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onCreated(await create(name.trim()));
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <Modal title={title} onClose={onClose} wide={wide}>
      <form onSubmit={submit}>
        <Field
          label={nameLabel}
          value={name}
          onChange={(e) => setName(e.target.value)}
          maxLength={100}
          required
          autoFocus
          placeholder={namePlaceholder}
          hint={nameHint}
          error={errs.field.name}
        />
        {children(errs.field)}
        <ErrorBanner error={errs.rest} />
        <div className="actions">
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy || !name.trim() || !ready}>
            {busy ? "Creating…" : submitLabel}
          </button>
        </div>
      </form>
    </Modal>
  );
}
