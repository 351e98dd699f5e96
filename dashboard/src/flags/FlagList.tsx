// The flags of an environment: search (key, description, tags), filters (on/off, type, tag),
// sorting (key, last change), and an on/off switch per flag that writes with the version the
// row shows (If-Match), asking first in production environments. Each row also shows when the
// flag was last evaluated and a Stale badge (GET /api/environments/{env}/insights), and the list
// can show stale flags only; without those numbers the list still works and says so.

import { useEffect, useId, useMemo, useState } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";
import { api, ApiError, describe, seg } from "../api";
import { can, useProjectRole } from "../session";
import { ago, ConfirmDialog, ErrorBanner, useLoad, useNow, When } from "../ui";
import { attrValue, Switch } from "./controls";
import type { FlagActivity } from "./insights/types";
import { staleText } from "./insights/types";
import { FLAG_TYPES, loadAllFlags, type Env, type Flag } from "./model";
import "./flags.css";

type Notice = { kind: "info" | "error"; text: string } | null;

export function matchesSearch(flag: Flag, q: string): boolean {
  const needle = q.trim().toLowerCase();
  if (!needle) return true;
  return (
    flag.key.toLowerCase().includes(needle) ||
    (flag.description ?? "").toLowerCase().includes(needle) ||
    (flag.tags ?? []).some((t) => t.toLowerCase().includes(needle))
  );
}

/** Newest change first: `updated_at` when the API gives it, else the version (a change counter of the environment). */
function changeOrder(a: Flag, b: Flag): number {
  if (a.updated_at && b.updated_at) {
    const d = Date.parse(b.updated_at) - Date.parse(a.updated_at);
    if (d) return d;
  }
  return b.version - a.version;
}

export function FlagListPage() {
  const { projectId = "", envId = "" } = useParams();
  const role = useProjectRole(projectId);
  const canEdit = can(role, "editor");
  const envs = useLoad(() => api.get<Env[]>(`/api/projects/${seg(projectId)}/environments`), [projectId]);
  const env = envs.data?.find((e) => e.id === envId);
  const list = useLoad(() => loadAllFlags(api.get, envId), [envId]);
  const activity = useLoad(() => api.get<FlagActivity[]>(`/api/environments/${seg(envId)}/insights`), [envId]);
  const activityByKey = useMemo(() => new Map((activity.data ?? []).map((a) => [a.flag_key, a])), [activity.data]);
  const now = useNow();
  const [rows, setRows] = useState<Flag[] | undefined>(undefined);
  useEffect(() => setRows(list.data), [list.data]);
  const [params, setParams] = useSearchParams();
  const q = params.get("q") ?? "";
  const status = params.get("status") ?? "";
  const type = params.get("type") ?? "";
  const tag = params.get("tag") ?? "";
  const sort = params.get("sort") ?? "key";
  const stale = params.get("stale") ?? "";
  const [pending, setPending] = useState<Set<string>>(new Set());
  const [confirm, setConfirm] = useState<{ flag: Flag; next: boolean } | null>(null);
  const [notice, setNotice] = useState<Notice>(null);
  const ids = useId();

  const setParam = (name: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    setParams(next, { replace: true });
  };

  const allTags = useMemo(() => [...new Set((rows ?? []).flatMap((f) => f.tags ?? []))].sort(), [rows]);
  const shown = useMemo(() => {
    const out = (rows ?? []).filter(
      (f) =>
        matchesSearch(f, q) &&
        (!status || (status === "on") === f.is_enabled) &&
        (!type || f.flag_type === type) &&
        (!tag || (f.tags ?? []).includes(tag)) &&
        (!stale || activityByKey.get(f.key)?.stale === true),
    );
    out.sort((a, b) => {
      switch (sort) {
        case "key-desc":
          return b.key.localeCompare(a.key);
        case "changed":
          return changeOrder(a, b);
        case "changed-asc":
          return -changeOrder(a, b);
        case "evaluated-asc":
          return evaluatedAt(activityByKey.get(a.key)) - evaluatedAt(activityByKey.get(b.key)) || a.key.localeCompare(b.key);
        default:
          return a.key.localeCompare(b.key);
      }
    });
    return out;
  }, [rows, q, status, type, tag, sort, stale, activityByKey]);

  const base = `/projects/${projectId}/envs/${envId}`;
  const envName = env?.name ?? "this environment";
  const filtered = !!(q || status || type || tag || stale);
  const staleCount = (activity.data ?? []).filter((a) => a.stale).length;

  const replaceRow = (key: string, flag: Flag | null) =>
    setRows((rs) => (rs ? (flag ? rs.map((f) => (f.key === key ? flag : f)) : rs.filter((f) => f.key !== key)) : rs));

  const focusToggle = (key: string) =>
    requestAnimationFrame(() => document.querySelector<HTMLElement>(`[data-toggle="${attrValue(key)}"] button`)?.focus());

  const doToggle = async (flag: Flag, next: boolean) => {
    setPending((p) => new Set(p).add(flag.key));
    setNotice(null);
    try {
      const updated = await api.patch<Flag>(
        `/api/environments/${seg(envId)}/flags/${seg(flag.key)}`,
        { is_enabled: next },
        { ifMatch: flag.version },
      );
      replaceRow(flag.key, updated);
      setNotice({ kind: "info", text: `${flag.key} is now ${next ? "on" : "off"} in ${envName}.` });
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) {
        let current: Flag | null = null;
        try {
          current = await api.get<Flag>(`/api/environments/${seg(envId)}/flags/${seg(flag.key)}`);
        } catch (e2) {
          if (!(e2 instanceof ApiError && e2.status === 404)) {
            setNotice({ kind: "error", text: `${flag.key} was changed by someone else; reload the page (${describe(e2)}).` });
            return;
          }
        }
        replaceRow(flag.key, current);
        setNotice({
          kind: "error",
          text: current
            ? `${flag.key} was changed by someone else, so nothing was changed. The row now shows its current state (${current.is_enabled ? "on" : "off"}); try again if needed.`
            : `${flag.key} was deleted by someone else.`,
        });
      } else {
        setNotice({ kind: "error", text: `Could not turn ${flag.key} ${next ? "on" : "off"}: ${describe(e)}` });
      }
    } finally {
      setPending((p) => {
        const n = new Set(p);
        n.delete(flag.key);
        return n;
      });
      focusToggle(flag.key);
    }
  };

  const toggle = (flag: Flag, next: boolean) => {
    if (env?.is_production) setConfirm({ flag, next });
    else void doToggle(flag, next);
  };

  return (
    <section className="flags-page">
      <header className="page-head">
        <div>
          <h1>Flags</h1>
          {env && (
            <p className="env-line">
              <span className="env-dot" style={{ background: env.color }} aria-hidden="true" />
              {env.name}
              {env.is_production && <span className="badge danger">Production</span>}
            </p>
          )}
        </div>
        {canEdit && (
          <Link className="button primary" to={`${base}/flags/new`}>
            Create flag
          </Link>
        )}
      </header>
      <ErrorBanner error={envs.error} />
      <ErrorBanner error={list.error} />
      {notice && (
        <div className={"banner " + (notice.kind === "error" ? "banner-error" : "banner-info")} role={notice.kind === "error" ? "alert" : "status"}>
          {notice.text}
          <button type="button" className="link" onClick={() => setNotice(null)} aria-label="Dismiss message">
            ×
          </button>
        </div>
      )}
      {rows === undefined && !list.error && (
        <p className="loading" role="status">
          Loading flags…
        </p>
      )}
      {rows && rows.length === 0 && (
        <div className="card empty-state">
          <h2>No flags in {envName} yet</h2>
          <p className="muted">Flags turn features on and off, or serve variants, for the contexts you choose — without a deploy.</p>
          {canEdit ? (
            <Link className="button primary" to={`${base}/flags/new`}>
              Create flag
            </Link>
          ) : (
            <p className="muted">Ask an editor of this project to create one.</p>
          )}
        </div>
      )}
      {rows && rows.length > 0 && (
        <>
          <div className="filters" role="search" aria-label="Filter flags">
            <div className="filter-search">
              <label htmlFor={ids + "q"} className="visually-hidden">
                Search flags
              </label>
              <input
                id={ids + "q"}
                type="search"
                placeholder="Search by key, description or tag"
                value={q}
                onChange={(e) => setParam("q", e.target.value)}
              />
            </div>
            <label className="filter">
              <span>Status</span>
              <select value={status} onChange={(e) => setParam("status", e.target.value)}>
                <option value="">All</option>
                <option value="on">On</option>
                <option value="off">Off</option>
              </select>
            </label>
            <label className="filter">
              <span>Type</span>
              <select value={type} onChange={(e) => setParam("type", e.target.value)}>
                <option value="">All types</option>
                {FLAG_TYPES.map((t) => (
                  <option key={t} value={t}>
                    {t}
                  </option>
                ))}
              </select>
            </label>
            {(allTags.length > 0 || tag) && (
              <label className="filter">
                <span>Tag</span>
                <select value={tag} onChange={(e) => setParam("tag", e.target.value)}>
                  <option value="">All tags</option>
                  {tag && !allTags.includes(tag) && <option value={tag}>{tag}</option>}
                  {allTags.map((t) => (
                    <option key={t} value={t}>
                      {t}
                    </option>
                  ))}
                </select>
              </label>
            )}
            <label className="filter">
              <span>Activity</span>
              <select value={stale} onChange={(e) => setParam("stale", e.target.value)} disabled={!activity.data && !stale}>
                <option value="">All flags</option>
                <option value="1">Stale only{activity.data ? ` (${staleCount})` : ""}</option>
              </select>
            </label>
            <label className="filter">
              <span>Sort by</span>
              <select value={sort} onChange={(e) => setParam("sort", e.target.value === "key" ? "" : e.target.value)}>
                <option value="key">Key (A–Z)</option>
                <option value="key-desc">Key (Z–A)</option>
                <option value="changed">Last change (newest first)</option>
                <option value="changed-asc">Last change (oldest first)</option>
                <option value="evaluated-asc">Last evaluated (oldest first)</option>
              </select>
            </label>
          </div>
          {activity.error ? (
            <p className="muted small">Last evaluations could not be loaded ({describe(activity.error)}); the list works without them.</p>
          ) : null}
          <p className="muted count" role="status">
            {filtered ? `${shown.length} of ${rows.length} flags` : `${rows.length} flag${rows.length === 1 ? "" : "s"}`}
            {filtered && (
              <button type="button" className="link" onClick={() => setParams(new URLSearchParams(sort !== "key" ? { sort } : {}), { replace: true })}>
                Clear filters
              </button>
            )}
          </p>
          {shown.length === 0 ? (
            <div className="card empty-state">
              <p>No flag matches these filters.</p>
            </div>
          ) : (
            <table className="responsive flag-table">
              <caption className="visually-hidden">Flags in {envName}</caption>
              <thead>
                <tr>
                  <th scope="col">Flag</th>
                  <th scope="col">Type</th>
                  <th scope="col">Tags</th>
                  <th scope="col">Last change</th>
                  <th scope="col">Last evaluated</th>
                  <th scope="col">{canEdit ? "On / off" : "Status"}</th>
                </tr>
              </thead>
              <tbody>
                {shown.map((f) => (
                  <tr key={f.key}>
                    <td className="flag-cell">
                      <Link to={`${base}/flags/${seg(f.key)}`} className="flag-key mono">
                        {f.key}
                      </Link>
                      {f.description && <p className="flag-desc muted">{f.description}</p>}
                    </td>
                    <td>
                      <span className="badge type-badge">{f.flag_type}</span>
                    </td>
                    <td>
                      <ul className="tag-list" aria-label={`Tags of ${f.key}`}>
                        {(f.tags ?? []).map((t) => (
                          <li key={t}>
                            <button
                              type="button"
                              className={"tag" + (t === tag ? " tag-active" : "")}
                              aria-pressed={t === tag}
                              onClick={() => setParam("tag", t === tag ? "" : t)}
                              title={`Show only flags tagged ${t}`}
                            >
                              {t}
                            </button>
                          </li>
                        ))}
                      </ul>
                    </td>
                    <td>
                      {f.updated_at ? (
                        <time dateTime={f.updated_at} title={new Date(f.updated_at).toLocaleString()}>
                          {ago(f.updated_at)}
                        </time>
                      ) : (
                        <span className="muted" title="The time of the last change is not available">
                          version {f.version}
                        </span>
                      )}
                    </td>
                    <td>
                      <Activity activity={activityByKey.get(f.key)} loaded={!!activity.data} now={now} />
                    </td>
                    <td className="toggle-cell">
                      {canEdit ? (
                        <span data-toggle={f.key} className="toggle-wrap">
                          <Switch
                            label={`Toggle ${f.key}`}
                            checked={f.is_enabled}
                            busy={pending.has(f.key)}
                            onChange={(next) => toggle(f, next)}
                          />
                        </span>
                      ) : (
                        <span className={"badge " + (f.is_enabled ? "on" : "off")}>{f.is_enabled ? "On" : "Off"}</span>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
      {confirm && (
        <ConfirmDialog
          title={`Turn ${confirm.next ? "on" : "off"} ${confirm.flag.key} in ${envName}?`}
          body={
            confirm.next ? (
              <p>
                {envName} is a production environment. Its contexts start getting {confirm.flag.key}'s targeting and default
                value at once.
              </p>
            ) : (
              <p>
                {envName} is a production environment. Every context there gets {confirm.flag.key}'s disabled value at once.
              </p>
            )
          }
          confirmLabel={confirm.next ? "Turn on" : "Turn off"}
          danger={!confirm.next}
          onCancel={() => {
            const key = confirm.flag.key;
            setConfirm(null);
            focusToggle(key);
          }}
          onConfirm={async () => {
            const c = confirm;
            setConfirm(null);
            await doToggle(c.flag, c.next);
          }}
        />
      )}
    </section>
  );
}

/** Ordering by last evaluation: never evaluated first. */
function evaluatedAt(a: FlagActivity | undefined): number {
  return a?.last_evaluated ? Date.parse(a.last_evaluated) : 0;
}

/** A row's last evaluation and, when the flag looks stale, a badge saying why. */
function Activity({ activity, loaded, now }: { activity: FlagActivity | undefined; loaded: boolean; now: number }) {
  if (!loaded) return <span className="muted">…</span>;
  return (
    <span className="activity">
      <span className="visually-hidden">Last evaluated: </span>
      <When iso={activity?.last_evaluated} now={now} />
      {activity?.stale && (
        <span className="badge stale-badge" title={staleText(activity.stale_reason)}>
          Stale
          <span className="visually-hidden">: {staleText(activity.stale_reason)}</span>
        </span>
      )}
    </span>
  );
}
