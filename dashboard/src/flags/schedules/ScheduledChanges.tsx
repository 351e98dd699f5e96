// An environment's scheduled changes: the upcoming ones (soonest first, each with Cancel for
// editors) and the past ones — applied, failed with the reason, or cancelled.

import { useState } from "react";
import { Link, useParams } from "react-router-dom";
import { api, seg } from "../../api";
import { can, useProjectRole } from "../../session";
import { ConfirmDialog, ErrorBanner, useLoad, useNow, When } from "../../ui";
import type { Env } from "../model";
import { cancelSchedule, schedulesUrl, type ScheduledChange } from "./model";

/** The fields a change sets, as `field = value`, shortened. */
export function describePatch(patch: Record<string, unknown>): string {
  const text = Object.entries(patch)
    .map(([k, v]) => `${k} = ${JSON.stringify(v)}`)
    .join(", ");
  return text.length > 120 ? text.slice(0, 117) + "…" : text;
}

function Exact({ iso }: { iso: string | null }) {
  if (!iso) return <span className="muted">—</span>;
  return <time dateTime={iso}>{new Date(iso).toLocaleString()}</time>;
}

export function ScheduledChangesPage() {
  const { projectId = "", envId = "" } = useParams();
  const canEdit = can(useProjectRole(projectId), "editor");
  const now = useNow(15_000);
  const envs = useLoad(() => api.get<Env[]>(`/api/projects/${seg(projectId)}/environments`), [projectId]);
  const envName = envs.data?.find((e) => e.id === envId)?.name ?? "this environment";
  const list = useLoad(() => api.get<ScheduledChange[]>(`${schedulesUrl(envId)}?limit=500`), [envId]);
  const [cancelling, setCancelling] = useState<ScheduledChange | null>(null);
  const base = `/projects/${projectId}/envs/${envId}`;
  const upcoming = (list.data ?? []).filter((s) => s.status === "pending");
  const past = (list.data ?? []).filter((s) => s.status !== "pending");

  const flagLink = (s: ScheduledChange) => (
    <Link to={`${base}/flags/${seg(s.flag_key)}`} className="mono">
      {s.flag_key}
    </Link>
  );

  return (
    <section className="schedules-page">
      <header className="page-head">
        <div>
          <h1>Scheduled changes</h1>
          <p className="muted">Flag edits set to apply later in {envName}. Schedule one from a flag's editor with “Apply at…”.</p>
        </div>
      </header>
      <ErrorBanner error={list.error} />
      {list.loading && !list.data && (
        <p className="loading" role="status">
          Loading scheduled changes…
        </p>
      )}
      {list.data && (
        <>
          <h2>Upcoming</h2>
          {upcoming.length === 0 ? (
            <p className="muted">Nothing is scheduled in {envName}.</p>
          ) : (
            <table aria-label="Upcoming changes">
              <thead>
                <tr>
                  <th scope="col">Flag</th>
                  <th scope="col">Change</th>
                  <th scope="col">Applies</th>
                  <th scope="col">By</th>
                  {canEdit && <th scope="col"><span className="visually-hidden">Actions</span></th>}
                </tr>
              </thead>
              <tbody>
                {upcoming.map((s) => (
                  <tr key={s.id}>
                    <td>{flagLink(s)}</td>
                    <td className="mono">{describePatch(s.patch)}</td>
                    <td>
                      <Exact iso={s.scheduled_at} />
                    </td>
                    <td>{s.created_by.name}</td>
                    {canEdit && (
                      <td>
                        <button type="button" className="danger-outline" onClick={() => setCancelling(s)}>
                          Cancel
                        </button>
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h2>Past</h2>
          {past.length === 0 ? (
            <p className="muted">No change has come due yet.</p>
          ) : (
            <table aria-label="Past changes">
              <thead>
                <tr>
                  <th scope="col">Flag</th>
                  <th scope="col">Change</th>
                  <th scope="col">Due</th>
                  <th scope="col">Outcome</th>
                </tr>
              </thead>
              <tbody>
                {past.map((s) => (
                  <tr key={s.id}>
                    <td>{flagLink(s)}</td>
                    <td className="mono">{describePatch(s.patch)}</td>
                    <td>
                      <When iso={s.scheduled_at} now={now} />
                    </td>
                    <td>
                      {s.status === "applied" && (
                        <>
                          <span className="badge">applied</span> as version {s.applied_version} <Exact iso={s.applied_at} />
                        </>
                      )}
                      {s.status === "failed" && (
                        <>
                          <span className="badge danger">failed</span> {s.failure_reason}
                        </>
                      )}
                      {s.status === "cancelled" && <span className="badge">cancelled</span>}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
      {cancelling && (
        <ConfirmDialog
          title={`Cancel the change to ${cancelling.flag_key}?`}
          danger
          confirmLabel="Cancel change"
          body={
            <p>
              <code>{describePatch(cancelling.patch)}</code> will not be applied at {new Date(cancelling.scheduled_at).toLocaleString()}.
            </p>
          }
          onCancel={() => setCancelling(null)}
          onConfirm={async () => {
            await cancelSchedule(envId, cancelling.id);
            setCancelling(null);
            list.reload();
          }}
        />
      )}
    </section>
  );
}
