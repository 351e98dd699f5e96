// Promote: copy the saved flag to another environment of the project
// (POST …/flags/{key}/promote), after a side-by-side diff against the target's current version.

import { useEffect, useId, useRef, useState } from "react";
import { api, ApiError, describe, seg } from "../api";
import { SideBySideDiff } from "./Diff";
import { canonical, docOnly, loadAllFlags, segmentUsage, type Env, type Flag, type Segment } from "./model";

interface TargetState {
  /** null: the flag does not exist in the target. */
  flag: Flag | null;
  missingSegments: string[];
  missingPrerequisites: string[];
}

export function PromoteDialog({
  flag,
  sourceEnv,
  envs,
  dirty,
  onClose,
  onPromoted,
}: {
  flag: Flag;
  sourceEnv: Env;
  envs: Env[];
  dirty: boolean;
  onClose: () => void;
  onPromoted?: (target: Env, copy: Flag) => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const selectId = useId();
  const others = envs.filter((e) => e.id !== sourceEnv.id);
  const [targetId, setTargetId] = useState(others[0]?.id ?? "");
  const [target, setTarget] = useState<TargetState | undefined>(undefined);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<Flag | null>(null);
  const targetEnv = others.find((e) => e.id === targetId);

  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) {
      if (typeof d.showModal === "function") d.showModal();
      else d.setAttribute("open", "");
    }
  }, []);

  useEffect(() => {
    if (!targetId) return;
    let live = true;
    setTarget(undefined);
    setLoadError(null);
    setError(null);
    setDone(null);
    (async () => {
      let current: Flag | null;
      try {
        current = await api.get<Flag>(`/api/environments/${seg(targetId)}/flags/${seg(flag.key)}`);
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) current = null;
        else throw e;
      }
      const used = [...segmentUsage([flag]).keys()];
      let missingSegments: string[] = [];
      if (used.length) {
        const segs = await api.get<Segment[]>(`/api/environments/${seg(targetId)}/segments`);
        missingSegments = used.filter((k) => !segs.some((s) => s.key === k));
      }
      let missingPrerequisites: string[] = [];
      const pres = (flag.prerequisites ?? []).map((p) => p.key);
      if (pres.length) {
        const flags = await loadAllFlags(api.get, targetId);
        missingPrerequisites = pres.filter((k) => !flags.some((f) => f.key === k));
      }
      return { flag: current, missingSegments, missingPrerequisites };
    })()
      .then((t) => live && setTarget(t))
      .catch((e) => live && setLoadError(e));
    return () => {
      live = false;
    };
  }, [targetId, flag]);

  const promote = async () => {
    if (!targetEnv) return;
    setBusy(true);
    setError(null);
    try {
      const copy = await api.post<Flag>(`/api/environments/${seg(sourceEnv.id)}/flags/${seg(flag.key)}/promote`, {
        target_env_id: targetEnv.id,
      });
      setDone(copy);
      onPromoted?.(targetEnv, copy);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const identical =
    !!target?.flag && canonical(docOnly(target.flag)) === canonical(docOnly(flag));
  const blocked = !!target && (target.missingSegments.length > 0 || target.missingPrerequisites.length > 0);

  return (
    <dialog
      ref={ref}
      className="dialog dialog-wide"
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <h2 id={titleId}>
        Promote <code>{flag.key}</code>
      </h2>
      {others.length === 0 ? (
        <p>This project has no other environment to promote to.</p>
      ) : (
        <>
          <p className="muted">
            Copies the flag as saved in <strong>{sourceEnv.name}</strong> (version {flag.version}) over the target's
            version.
          </p>
          {dirty && (
            <p className="banner banner-warn" role="note">
              Your unsaved edits are not promoted: save first to include them.
            </p>
          )}
          <div className="field">
            <label htmlFor={selectId}>Target environment</label>
            <select id={selectId} value={targetId} disabled={busy} onChange={(e) => setTargetId(e.target.value)}>
              {others.map((e) => (
                <option key={e.id} value={e.id}>
                  {e.name}
                  {e.is_production ? " (production)" : ""}
                </option>
              ))}
            </select>
          </div>
          {loadError ? <div className="banner banner-error" role="alert">{describe(loadError)}</div> : null}
          {!target && !loadError && (
            <p className="loading" role="status">
              Loading {targetEnv?.name}…
            </p>
          )}
          {target && targetEnv && (
            <>
              {target.flag === null ? (
                <p>
                  <span className="badge on">New in {targetEnv.name}</span> The flag does not exist there yet.
                </p>
              ) : identical ? (
                <p className="banner banner-info">The flag is already the same in {targetEnv.name}.</p>
              ) : null}
              {targetEnv.is_production && (
                <p className="banner banner-warn">{targetEnv.name} is a production environment: the change is live at once.</p>
              )}
              {target.missingSegments.map((s) => (
                <p key={s} className="banner banner-error">
                  Segment <code>{s}</code> does not exist in {targetEnv.name}: create it there first.
                </p>
              ))}
              {target.missingPrerequisites.map((s) => (
                <p key={s} className="banner banner-error">
                  Prerequisite flag <code>{s}</code> does not exist in {targetEnv.name}: promote it first.
                </p>
              ))}
              <SideBySideDiff
                left={target.flag ? docOnly(target.flag) : undefined}
                right={docOnly(flag)}
                leftTitle={`${targetEnv.name} now${target.flag ? ` (version ${target.flag.version})` : ""}`}
                rightTitle={`After promotion (from ${sourceEnv.name})`}
                caption={`Differences between ${flag.key} in ${targetEnv.name} and in ${sourceEnv.name}`}
              />
            </>
          )}
          {error ? <div className="banner banner-error" role="alert">{describe(error)}</div> : null}
          {done && targetEnv && (
            <p className="banner banner-info" role="status">
              Promoted: {targetEnv.name} now has version {done.version} of {flag.key}.
            </p>
          )}
        </>
      )}
      <div className="actions">
        <button type="button" onClick={onClose} disabled={busy}>
          {done ? "Close" : "Cancel"}
        </button>
        {others.length > 0 && !done && (
          <button
            type="button"
            className={targetEnv?.is_production ? "danger" : "primary"}
            disabled={busy || !target || !targetEnv || identical || blocked}
            onClick={() => void promote()}
          >
            {busy ? "Promoting…" : `Promote to ${targetEnv?.name ?? "…"}`}
          </button>
        )}
      </div>
    </dialog>
  );
}
