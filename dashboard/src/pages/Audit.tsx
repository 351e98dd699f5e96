// The audit log: every change, newest first, filtered by project, environment, person, target
// and time (kept in the address, so a filtered view can be shared); each entry opens to the
// difference between before and after.

import { useEffect, useId, useMemo, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { api, seg } from "../api";
import { useSession } from "../session";
import type { AuditEntry, AuditPage, Environment, Member, Project, User } from "../types";
import {
  Empty,
  EnvName,
  ErrorBanner,
  LoadError,
  Loading,
  PageHeader,
  SelectField,
  useNow,
  When,
} from "../ui";
import { JsonDiff } from "./JsonDiff";
import "./pages.css";

export const PAGE_SIZE = 50;

export const RANGES: { value: string; label: string; ms?: number }[] = [
  { value: "", label: "Any time" },
  { value: "1h", label: "Last hour", ms: 3_600_000 },
  { value: "24h", label: "Last 24 hours", ms: 86_400_000 },
  { value: "7d", label: "Last 7 days", ms: 7 * 86_400_000 },
  { value: "30d", label: "Last 30 days", ms: 30 * 86_400_000 },
  { value: "custom", label: "Custom range…" },
];

export const TARGET_KINDS: { value: string; label: string }[] = [
  { value: "", label: "Anything" },
  { value: "flag", label: "Flags" },
  { value: "segment", label: "Segments" },
  { value: "environment", label: "Environments" },
  { value: "project", label: "Projects" },
  { value: "sdk_key", label: "SDK keys" },
  { value: "api_token", label: "API tokens" },
  { value: "member", label: "Members" },
  { value: "user", label: "Users" },
  { value: "edge_token", label: "Edge tokens" },
];

export interface AuditFilters {
  project: string;
  env: string;
  actor: string;
  kind: string;
  key: string;
  range: string;
  /** `datetime-local` values, for the custom range. */
  from: string;
  to: string;
}

export function filtersFrom(params: URLSearchParams): AuditFilters {
  const get = (k: string) => params.get(k) ?? "";
  return {
    project: get("project"),
    env: get("env"),
    actor: get("actor"),
    kind: get("kind"),
    key: get("key"),
    range: get("range"),
    from: get("from"),
    to: get("to"),
  };
}

/** The query string of GET /api/audit for these filters (and a page's cursor). */
export function auditQuery(f: AuditFilters, now: number, cursor?: number | null, limit = PAGE_SIZE): string {
  const q = new URLSearchParams();
  if (f.project) q.set("project_id", f.project);
  if (f.env) q.set("environment_id", f.env);
  if (f.actor) q.set("actor_id", f.actor);
  if (f.kind) q.set("target_kind", f.kind);
  if (f.key.trim()) q.set("target_key", f.key.trim());
  const preset = RANGES.find((r) => r.value === f.range);
  if (preset?.ms) q.set("since", new Date(now - preset.ms).toISOString());
  if (f.range === "custom") {
    const from = f.from ? new Date(f.from) : null;
    const to = f.to ? new Date(f.to) : null;
    if (from && !Number.isNaN(from.getTime())) q.set("since", from.toISOString());
    if (to && !Number.isNaN(to.getTime())) q.set("until", to.toISOString());
  }
  if (cursor != null) q.set("cursor", String(cursor));
  q.set("limit", String(limit));
  return q.toString();
}

const VERBS: Record<string, string> = {
  create: "created",
  update: "updated",
  delete: "deleted",
  rename: "renamed",
  revoke: "revoked",
  remove: "removed",
  promote: "promoted",
  set: "set the role of",
  set_default: "made the default",
  settings: "changed settings of",
  password_change: "changed the password of",
  complete: "set up",
};

const KIND_WORDS: Record<string, string> = {
  flag: "flag",
  segment: "segment",
  project: "project",
  environment: "environment",
  sdk_key: "SDK key",
  api_token: "API token",
  member: "member",
  user: "user",
  edge_token: "edge token",
  workspace: "workspace",
};

/** "flag.update" → "updated"; an unknown action reads as its words. */
export function describeAction(action: string): string {
  if (action === "setup.complete") return "set up";
  const verb = action.includes(".") ? action.slice(action.indexOf(".") + 1) : action;
  return VERBS[verb] ?? verb.replace(/[._]/g, " ");
}

interface Names {
  projects: Map<string, Project>;
  envs: Map<string, Environment>;
  people: Map<string, string>;
}

/** Projects, their environments and the people who can act, for filters and names. */
function useNames(isAdmin: boolean): { names: Names; projects: Project[]; envs: Environment[]; people: { id: string; name: string }[] } {
  const [projects, setProjects] = useState<Project[]>([]);
  const [envs, setEnvs] = useState<Environment[]>([]);
  const [people, setPeople] = useState<{ id: string; name: string }[]>([]);
  useEffect(() => {
    let live = true;
    (async () => {
      const ps = await api.get<Project[]>("/api/projects");
      if (!live) return;
      setProjects(ps);
      const lists = await Promise.all(
        ps.map((p) => api.get<Environment[]>(`/api/projects/${seg(p.id)}/environments`).catch(() => [] as Environment[])),
      );
      if (!live) return;
      setEnvs(lists.flat());
      if (isAdmin) {
        const users = await api.get<User[]>("/api/users").catch(() => [] as User[]);
        if (live) setPeople(users.map((u) => ({ id: u.id, name: `${u.name} (${u.email})` })));
      } else {
        const members = await Promise.all(
          ps.map((p) => api.get<Member[]>(`/api/projects/${seg(p.id)}/members`).catch(() => [] as Member[])),
        );
        const seen = new Map<string, string>();
        for (const m of members.flat()) seen.set(m.user_id, `${m.name} (${m.email})`);
        if (live) setPeople([...seen].map(([id, name]) => ({ id, name })).sort((a, b) => a.name.localeCompare(b.name)));
      }
    })().catch(() => undefined);
    return () => {
      live = false;
    };
  }, [isAdmin]);
  const names = useMemo<Names>(
    () => ({
      projects: new Map(projects.map((p) => [p.id, p])),
      envs: new Map(envs.map((e) => [e.id, e])),
      people: new Map(people.map((p) => [p.id, p.name])),
    }),
    [projects, envs, people],
  );
  return { names, projects, envs, people };
}

export function AuditPage() {
  const { user } = useSession();
  const [params, setParams] = useSearchParams();
  const filters = filtersFrom(params);
  const { names, projects, envs, people } = useNames(user?.role === "admin");
  const now = useNow();
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [next, setNext] = useState<number | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const [moreError, setMoreError] = useState<unknown>(null);
  const [keyDraft, setKeyDraft] = useState(filters.key);
  const queryKey = auditQuery(filters, 0); // identity of the filters (time presets resolved at load)

  const setFilter = (patch: Partial<AuditFilters>) => {
    const merged = { ...filters, ...patch };
    const out = new URLSearchParams();
    (Object.keys(merged) as (keyof AuditFilters)[]).forEach((k) => {
      if (merged[k]) out.set(k, merged[k]);
    });
    if (merged.range !== "custom") {
      out.delete("from");
      out.delete("to");
    }
    setParams(out, { replace: true });
  };

  useEffect(() => {
    let live = true;
    setLoading(true);
    setError(null);
    setMoreError(null);
    api
      .get<AuditPage>(`/api/audit?${auditQuery(filters, Date.now())}`)
      .then((page) => {
        if (!live) return;
        setEntries(page.entries);
        setNext(page.next_cursor);
      })
      .catch((e) => {
        if (!live) return;
        setEntries([]);
        setNext(null);
        setError(e);
      })
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [queryKey]);

  // Follows the address (back and forward, "Clear filters").
  useEffect(() => setKeyDraft(filters.key), [filters.key]);
  // The key filter applies after typing pauses.
  useEffect(() => {
    if (keyDraft === filters.key) return;
    const t = setTimeout(() => setFilter({ key: keyDraft }), 400);
    return () => clearTimeout(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [keyDraft]);

  const loadMore = async () => {
    if (next == null) return;
    setLoading(true);
    setMoreError(null);
    try {
      const page = await api.get<AuditPage>(`/api/audit?${auditQuery(filters, Date.now(), next)}`);
      setEntries((e) => [...e, ...page.entries]);
      setNext(page.next_cursor);
    } catch (e) {
      setMoreError(e);
    } finally {
      setLoading(false);
    }
  };

  const envChoices = filters.project ? envs.filter((e) => e.project_id === filters.project) : envs;
  const filtered = Object.entries(filters).some(([k, v]) => v && k !== "from" && k !== "to");
  const keyId = useId();

  return (
    <section className="page">
      <PageHeader title="Audit log" lead="Every change to flags, segments, environments, keys and people, newest first." />
      <form className="filters card" role="search" aria-label="Filter the audit log" onSubmit={(e) => {
        e.preventDefault();
        setFilter({ key: keyDraft });
      }}>
        <SelectField label="Project" value={filters.project} onChange={(e) => setFilter({ project: e.target.value, env: "" })}>
          <option value="">All projects</option>
          {projects.map((p) => (
            <option key={p.id} value={p.id}>
              {p.name}
            </option>
          ))}
        </SelectField>
        <SelectField label="Environment" value={filters.env} onChange={(e) => setFilter({ env: e.target.value })}>
          <option value="">All environments</option>
          {filters.project
            ? envChoices.map((e) => (
                <option key={e.id} value={e.id}>
                  {e.name}
                </option>
              ))
            : projects.map((p) => (
                <optgroup key={p.id} label={p.name}>
                  {envs
                    .filter((e) => e.project_id === p.id)
                    .map((e) => (
                      <option key={e.id} value={e.id}>
                        {p.name} / {e.name}
                      </option>
                    ))}
                </optgroup>
              ))}
        </SelectField>
        <SelectField label="Changed by" value={filters.actor} onChange={(e) => setFilter({ actor: e.target.value })}>
          <option value="">Anyone</option>
          {people.map((p) => (
            <option key={p.id} value={p.id}>
              {p.name}
            </option>
          ))}
          {filters.actor && !names.people.has(filters.actor) && <option value={filters.actor}>{filters.actor}</option>}
        </SelectField>
        <SelectField label="What changed" value={filters.kind} onChange={(e) => setFilter({ kind: e.target.value })}>
          {TARGET_KINDS.map((k) => (
            <option key={k.value} value={k.value}>
              {k.label}
            </option>
          ))}
        </SelectField>
        <div className="field">
          <label htmlFor={keyId}>{filters.kind === "flag" ? "Flag key" : filters.kind === "segment" ? "Segment key" : "Flag or target key"}</label>
          <input
            id={keyId}
            type="search"
            value={keyDraft}
            onChange={(e) => setKeyDraft(e.target.value)}
            placeholder="checkout-v2"
            className="mono"
            spellCheck={false}
          />
        </div>
        <SelectField label="Time" value={filters.range} onChange={(e) => setFilter({ range: e.target.value })}>
          {RANGES.map((r) => (
            <option key={r.value} value={r.value}>
              {r.label}
            </option>
          ))}
        </SelectField>
        {filters.range === "custom" && (
          <>
            <DateTimeField label="From" value={filters.from} onChange={(v) => setFilter({ from: v })} />
            <DateTimeField label="To" value={filters.to} onChange={(v) => setFilter({ to: v })} />
          </>
        )}
        {filtered && (
          <div className="field filters-clear">
            <button
              type="button"
              className="link"
              onClick={() => {
                setKeyDraft("");
                setParams(new URLSearchParams(), { replace: true });
              }}
            >
              Clear filters
            </button>
          </div>
        )}
      </form>

      {error ? <LoadError error={error} /> : null}
      {loading && entries.length === 0 && !error && <Loading what="Loading the audit log…" />}
      {!loading && !error && entries.length === 0 && (
        <Empty title={filtered ? "No changes match these filters" : "No changes recorded yet"}>
          <p>
            {filtered
              ? "Widen the time range or clear a filter."
              : "Every change to flags, segments, environments, keys and people will appear here."}
          </p>
        </Empty>
      )}
      {entries.length > 0 && (
        <>
          <ol className="audit-list" aria-label="Audit entries, newest first">
            {entries.map((e) => (
              <AuditRow key={e.id} entry={e} names={names} now={now} />
            ))}
          </ol>
          <div className="list-foot">
            <span className="muted" role="status">
              {entries.length} {entries.length === 1 ? "entry" : "entries"}
              {next == null ? ", the oldest reached" : ""}
            </span>
            {next != null && (
              <button type="button" onClick={loadMore} disabled={loading}>
                {loading ? "Loading…" : "Load older entries"}
              </button>
            )}
          </div>
          <ErrorBanner error={moreError} />
        </>
      )}
    </section>
  );
}

function DateTimeField({ label, value, onChange }: { label: string; value: string; onChange: (v: string) => void }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input id={id} type="datetime-local" value={value} onChange={(e) => onChange(e.target.value)} />
    </div>
  );
}

function AuditRow({ entry, names, now }: { entry: AuditEntry; names: Names; now: number }) {
  const [open, setOpen] = useState(false);
  const panelId = useId();
  const project = entry.project_id ? names.projects.get(entry.project_id) : undefined;
  const env = entry.environment_id ? names.envs.get(entry.environment_id) : undefined;
  const kindWord = KIND_WORDS[entry.target.kind] ?? entry.target.kind.replace(/_/g, " ");
  const recorded = [entry.after, entry.before]
    .map((d) => (d && typeof d === "object" && typeof (d as { name?: unknown }).name === "string" ? (d as { name: string }).name : undefined))
    .find(Boolean);
  const actorName = (entry.actor.id && names.people.get(entry.actor.id)?.replace(/ \(.*\)$/, "")) || entry.actor.name;
  const targetName =
    entry.target.kind === "project"
      ? (names.projects.get(entry.target.key)?.name ?? entry.target.key)
      : entry.target.kind === "environment"
        ? (names.envs.get(entry.target.key)?.name ?? entry.target.key)
        : entry.target.kind === "user" || entry.target.kind === "member"
          ? (names.people.get(entry.target.key)?.replace(/ \(.*\)$/, "") ?? recorded ?? entry.target.key)
          : entry.target.kind === "flag" || entry.target.kind === "segment"
            ? entry.target.key
            : (recorded ?? entry.target.key);
  const where = [project?.name, env?.name].filter(Boolean).join(" / ");
  const link =
    env && project && !entry.action.endsWith("delete") && (entry.target.kind === "flag" || entry.target.kind === "segment")
      ? `/projects/${project.id}/envs/${env.id}/${entry.target.kind === "flag" ? "flags" : "segments"}/${seg(entry.target.key)}`
      : undefined;
  const actionClass = entry.action.endsWith("delete") || entry.action.endsWith("revoke") ? "del" : entry.action.endsWith("create") ? "add" : "mod";

  return (
    <li className={"audit-entry" + (open ? " open" : "")}>
      <button
        type="button"
        className="audit-toggle"
        aria-expanded={open}
        aria-controls={panelId}
        onClick={() => setOpen((o) => !o)}
      >
        <span className="chevron" aria-hidden="true">
          ▸
        </span>
        <span className="audit-summary">
          <span className="audit-actor" title={entry.actor.name}>
            {actorName}
            {entry.actor.kind !== "user" && <span className="badge">{entry.actor.kind.replace(/_/g, " ")}</span>}
          </span>{" "}
          <span className={`audit-action action-${actionClass}`}>{describeAction(entry.action)}</span>{" "}
          <span className="audit-kind">{kindWord}</span> <span className="audit-target mono">{targetName}</span>
          {where && (
            <span className="audit-where">
              {" "}
              in {env ? <EnvName name={where} color={env.color} production={env.is_production} /> : where}
            </span>
          )}
        </span>
        <span className="audit-time">
          <When iso={entry.at} now={now} />
        </span>
      </button>
      {open && (
        <div id={panelId} className="audit-panel">
          <dl className="facts compact">
            <dt>When</dt>
            <dd>{new Date(entry.at).toLocaleString()}</dd>
            <dt>Who</dt>
            <dd>
              {actorName}
              {actorName !== entry.actor.name && <> · {entry.actor.name}</>}{" "}
              <span className="muted">({entry.actor.kind.replace(/_/g, " ")})</span>
            </dd>
            <dt>Action</dt>
            <dd className="mono">{entry.action}</dd>
            <dt>Target</dt>
            <dd>
              {kindWord} <span className="mono">{entry.target.key}</span>
              {link && (
                <>
                  {" "}
                  · <Link to={link}>Open {kindWord}</Link>
                </>
              )}
            </dd>
          </dl>
          <JsonDiff before={entry.before} after={entry.after} />
        </div>
      )}
      {!open && <div id={panelId} hidden />}
    </li>
  );
}
