// The segments of an environment, with the flags that use each (found by scanning the
// environment's flags for in_segment conditions and segment rules).

import { useId, useMemo, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { api, seg } from "../api";
import { can, useProjectRole } from "../session";
import { ConfirmDialog, ErrorBanner, useLoad } from "../ui";
import { loadAllFlags, ruleConditions, segmentUsage, type Env, type Segment } from "./model";
import "./flags.css";

export function conditionCount(s: Segment): number {
  return s.rules.reduce((n, r) => n + ruleConditions(r).length, 0);
}

/** Links to the flags using a segment, the first few then "+ n more". */
export function UsedBy({ keys, listBase, max = 3 }: { keys: string[]; listBase: string; max?: number }) {
  const [all, setAll] = useState(false);
  if (keys.length === 0) return <span className="muted">No flags</span>;
  const shown = all ? keys : keys.slice(0, max);
  return (
    <ul className="inline-list">
      {shown.map((k) => (
        <li key={k}>
          <Link to={`${listBase}/flags/${seg(k)}`} className="mono">
            {k}
          </Link>
        </li>
      ))}
      {keys.length > shown.length && (
        <li>
          <button type="button" className="link" onClick={() => setAll(true)}>
            + {keys.length - shown.length} more
          </button>
        </li>
      )}
    </ul>
  );
}

/** Confirms deleting a segment, warning when flags still use it (the server refuses then). */
export function DeleteSegmentDialog({
  segment,
  envName,
  usedBy,
  onCancel,
  onConfirm,
}: {
  segment: Segment;
  envName: string;
  usedBy: string[];
  onCancel: () => void;
  onConfirm: () => Promise<void>;
}) {
  return (
    <ConfirmDialog
      title={`Delete segment ${segment.key} from ${envName}?`}
      danger
      confirmLabel="Delete segment"
      body={
        usedBy.length > 0 ? (
          <div className="banner banner-warn">
            <p>
              {usedBy.length === 1 ? "1 flag uses" : `${usedBy.length} flags use`} this segment:{" "}
              <strong>{usedBy.join(", ")}</strong>.
            </p>
            <p>A segment in use cannot be deleted: remove it from those flags' rules first.</p>
          </div>
        ) : (
          <p>No flag uses this segment. Deleting it cannot be undone.</p>
        )
      }
      onCancel={onCancel}
      onConfirm={onConfirm}
    />
  );
}

export function SegmentsPage() {
  const { projectId = "", envId = "" } = useParams();
  const role = useProjectRole(projectId);
  const canEdit = can(role, "editor");
  const ids = useId();
  const envs = useLoad(() => api.get<Env[]>(`/api/projects/${seg(projectId)}/environments`), [projectId]);
  const env = envs.data?.find((e) => e.id === envId);
  const envName = env?.name ?? "this environment";
  const segments = useLoad(() => api.get<Segment[]>(`/api/environments/${seg(envId)}/segments`), [envId]);
  const flags = useLoad(() => loadAllFlags(api.get, envId), [envId]);
  const usage = useMemo(() => segmentUsage(flags.data ?? []), [flags.data]);
  const [q, setQ] = useState("");
  const [deleting, setDeleting] = useState<Segment | null>(null);
  const [notice, setNotice] = useState("");
  const base = `/projects/${projectId}/envs/${envId}`;

  const shown = (segments.data ?? [])
    .filter((s) => {
      const n = q.trim().toLowerCase();
      return !n || [s.key, s.name, s.description ?? ""].some((t) => t.toLowerCase().includes(n));
    })
    .sort((a, b) => a.key.localeCompare(b.key));

  return (
    <section className="segments-page">
      <header className="page-head">
        <div>
          <h1>Segments</h1>
          {env && (
            <p className="env-line">
              <span className="env-dot" style={{ background: env.color }} aria-hidden="true" />
              {env.name}
              {env.is_production && <span className="badge danger">Production</span>}
            </p>
          )}
        </div>
        {canEdit && (
          <Link className="button primary" to={`${base}/segments/new`}>
            Create segment
          </Link>
        )}
      </header>
      <p className="muted">Reusable groups of contexts: listed targeting keys, or contexts matching any of the segment's rules.</p>
      <ErrorBanner error={segments.error} />
      <ErrorBanner error={flags.error} />
      {notice && (
        <p className="banner banner-info" role="status">
          {notice}
        </p>
      )}
      {segments.loading && !segments.data && (
        <p className="loading" role="status">
          Loading segments…
        </p>
      )}
      {segments.data && segments.data.length === 0 && (
        <div className="card empty-state">
          <h2>No segments in {envName} yet</h2>
          <p className="muted">Define a group once — beta testers, internal staff, a region — and target it from any flag.</p>
          {canEdit && (
            <Link className="button primary" to={`${base}/segments/new`}>
              Create segment
            </Link>
          )}
        </div>
      )}
      {segments.data && segments.data.length > 0 && (
        <>
          <div className="filters" role="search" aria-label="Filter segments">
            <div className="filter-search">
              <label htmlFor={ids + "q"} className="visually-hidden">
                Search segments
              </label>
              <input id={ids + "q"} type="search" placeholder="Search by key, name or description" value={q} onChange={(e) => setQ(e.target.value)} />
            </div>
          </div>
          <table className="responsive segment-table">
            <caption className="visually-hidden">Segments in {envName}</caption>
            <thead>
              <tr>
                <th scope="col">Segment</th>
                <th scope="col">Rules</th>
                <th scope="col">Used by</th>
                {canEdit && (
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {shown.map((s) => {
                const used = usage.get(s.key) ?? [];
                const conds = conditionCount(s);
                return (
                  <tr key={s.key}>
                    <td>
                      <Link to={`${base}/segments/${seg(s.key)}`} className="mono flag-key">
                        {s.key}
                      </Link>
                      {s.name && s.name !== s.key && <span className="seg-name"> {s.name}</span>}
                      {s.description && <p className="flag-desc muted">{s.description}</p>}
                    </td>
                    <td>
                      {s.rules.length} rule{s.rules.length === 1 ? "" : "s"}, {conds} condition{conds === 1 ? "" : "s"}
                      {((s.included?.length ?? 0) > 0 || (s.excluded?.length ?? 0) > 0) && (
                        <p className="muted small">
                          {s.included?.length ?? 0} included · {s.excluded?.length ?? 0} excluded
                        </p>
                      )}
                    </td>
                    <td>{flags.data ? <UsedBy keys={used} listBase={base} /> : <span className="muted">…</span>}</td>
                    {canEdit && (
                      <td className="row-actions">
                        <button type="button" className="danger-outline small-button" aria-label={`Delete segment ${s.key}`} onClick={() => setDeleting(s)}>
                          Delete
                        </button>
                      </td>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
          {shown.length === 0 && <p className="muted">No segment matches “{q}”.</p>}
        </>
      )}
      {deleting && (
        <DeleteSegmentDialog
          segment={deleting}
          envName={envName}
          usedBy={usage.get(deleting.key) ?? []}
          onCancel={() => setDeleting(null)}
          onConfirm={async () => {
            await api.delete(`/api/environments/${seg(envId)}/segments/${seg(deleting.key)}`);
            setNotice(`Segment ${deleting.key} deleted.`);
            setDeleting(null);
            segments.reload();
          }}
        />
      )}
    </section>
  );
}
