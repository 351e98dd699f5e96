// "Apply at…": schedules the flag editor's unsaved edit (the fields it changes) for a time
// instead of saving it now. The server checks the edit against the flag as it is, and applies
// it at that time only if the flag is still at the version the edit was made on.

import { useState } from "react";
import { ApiError, describe } from "../../api";
import { Field, Modal } from "../../ui";
import { localToRfc3339, schedule, toLocalInput, type ScheduledChange } from "./model";

export function ScheduleDialog({
  envId,
  flagKey,
  version,
  patch,
  envName,
  onClose,
  onScheduled,
}: {
  envId: string;
  flagKey: string;
  /** The flag version the edit was made on: the change applies only if it is still current. */
  version: number;
  patch: Record<string, unknown>;
  envName: string;
  onClose: () => void;
  onScheduled: (s: ScheduledChange) => void;
}) {
  const [at, setAt] = useState(() => toLocalInput(Date.now() + 3_600_000));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>("");
  const fields = Object.keys(patch);

  const submit = async () => {
    const scheduledAt = localToRfc3339(at);
    if (!scheduledAt) {
      setError("Pick a date and a time.");
      return;
    }
    if (Date.parse(scheduledAt) <= Date.now()) {
      setError("Pick a time in the future.");
      return;
    }
    setBusy(true);
    setError("");
    try {
      const created = await schedule(envId, flagKey, { scheduled_at: scheduledAt, patch, if_version: version });
      onScheduled(created);
    } catch (e) {
      setError(e instanceof ApiError && e.status === 412 ? "The flag changed since you opened it: reload it first." : describe(e));
      setBusy(false);
    }
  };

  return (
    <Modal title={`Apply this edit to ${flagKey} later`} onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <p>
          Changes {fields.length === 1 ? "field" : "fields"} <strong>{fields.join(", ")}</strong> in {envName} at the time below
          (your local time), if the flag is still at version {version} then.
        </p>
        <Field label="Apply at" type="datetime-local" value={at} onChange={(e) => setAt(e.target.value)} required error={error || undefined} />
        <div className="actions">
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy || fields.length === 0}>
            {busy ? "Scheduling…" : "Schedule change"}
          </button>
        </div>
      </form>
    </Modal>
  );
}
