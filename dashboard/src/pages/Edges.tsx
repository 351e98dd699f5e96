// The edge fleet (workspace admins): every edge relay, its state, and how far each environment
// it serves is behind, refreshed every 5 seconds; and the edge tokens edges connect with.

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { api, ApiError, seg } from "../api";
import { useSession } from "../session";
import type { EdgeStatus, EdgeToken, EdgeTokenCreated, Environment, Project } from "../types";
import { Empty, EnvName, Loading, PageHeader, Switch, useLoad, useNow, When } from "../ui";
import { ConnectedSdks } from "./Connections";
import { CreateTokenDialog } from "./CreateTokenDialog";
import { FleetAlerts } from "./FleetAlerts";
import { TokenSection } from "./TokenTable";
import "./pages.css";

export const REFRESH_MS = 5000;

/** "850 ms", "4.2 s", "3 min", "2 h 5 min". */
export function formatAge(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms)) return "—";
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.round((ms % 3_600_000) / 60_000);
  return m ? `${h} h ${m} min` : `${h} h`;
}

interface Catalog {
  projects: Project[];
  envs: Environment[];
  /** "Project / Environment" by environment id. */
  label: (id: string) => string;
  env: (id: string) => Environment | undefined;
}

/** Every project and environment, to name the ids edges and tokens carry. */
function useCatalog(): Catalog {
  const { data } = useLoad(async () => {
    const projects = await api.get<Project[]>("/api/projects");
    const lists = await Promise.all(
      projects.map((p) => api.get<Environment[]>(`/api/projects/${seg(p.id)}/environments`).catch(() => [] as Environment[])),
    );
    return { projects, envs: lists.flat() };
  }, []);
  return useMemo(() => {
    const projects = data?.projects ?? [];
    const envs = data?.envs ?? [];
    const byId = new Map(envs.map((e) => [e.id, e]));
    const projectName = new Map(projects.map((p) => [p.id, p.name]));
    return {
      projects,
      envs,
      env: (id: string) => byId.get(id),
      label: (id: string) => {
        const e = byId.get(id);
        if (!e) return `Deleted environment (${id.slice(0, 8)}…)`;
        return `${projectName.get(e.project_id) ?? "?"} / ${e.name}`;
      },
    };
  }, [data]);
}

type Fleet =
  | { status: "loading" }
  | { status: "unavailable" }
  | { status: "ready"; edges: EdgeStatus[]; at: number; error: unknown };

/** GET /api/edges now and every `REFRESH_MS` while `live` and the tab is visible. */
export function useFleet(live: boolean): { fleet: Fleet; refresh: () => void } {
  const [fleet, setFleet] = useState<Fleet>({ status: "loading" });
  const [tick, setTick] = useState(0);
  const stopped = useRef(false);
  useEffect(() => {
    let cancelled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const controller = new AbortController();
    const load = async () => {
      if (stopped.current) return;
      if (typeof document !== "undefined" && document.hidden) {
        timer = setTimeout(load, REFRESH_MS);
        return;
      }
      try {
        const answer = await api.get<{ edges: EdgeStatus[] }>("/api/edges", { signal: controller.signal });
        if (cancelled) return;
        setFleet({ status: "ready", edges: answer.edges ?? [], at: Date.now(), error: null });
      } catch (e) {
        if (cancelled) return;
        if (e instanceof ApiError && e.status === 404) {
          stopped.current = true;
          setFleet({ status: "unavailable" });
          return;
        }
        if (e instanceof DOMException && e.name === "AbortError") return;
        setFleet((f) =>
          f.status === "ready" ? { ...f, error: e } : { status: "ready", edges: [], at: 0, error: e },
        );
      }
      if (live && !cancelled) timer = setTimeout(load, REFRESH_MS);
    };
    void load();
    return () => {
      cancelled = true;
      controller.abort();
      if (timer) clearTimeout(timer);
    };
  }, [live, tick]);
  const refresh = useCallback(() => setTick((t) => t + 1), []);
  return { fleet, refresh };
}

const STATE_LABEL: Record<EdgeStatus["state"], { icon: string; text: string; cls: string }> = {
  connected: { icon: "●", text: "connected", cls: "on" },
  stale: { icon: "◐", text: "stale", cls: "warn" },
  disconnected: { icon: "○", text: "disconnected", cls: "off" },
};

export function EdgesPage() {
  const { user } = useSession();
  const isAdmin = !user || user.role === "admin";
  const tokens = useLoad(
    () => (isAdmin ? api.get<EdgeToken[]>("/api/edge-tokens") : Promise.resolve([] as EdgeToken[])),
    [isAdmin],
  );
  const catalog = useCatalog();
  if (!isAdmin) {
    return (
      <section className="page">
        <PageHeader title="Edge fleet" />
        <div className="banner banner-info" role="alert">
          Only workspace admins manage edges.
        </div>
      </section>
    );
  }
  return (
    <section className="page">
      <PageHeader
        title="Edge fleet"
        lead="Edge relays serve flags to your SDKs from memory, near them, and follow every change through the control plane's change feed."
      />
      <EdgeFleet tokens={tokens.data ?? []} catalog={catalog} />
      <FleetAlerts label={catalog.label} />
      <ConnectedSdks label={catalog.label} />
      <EdgeTokens tokens={tokens} catalog={catalog} />
    </section>
  );
}

function EdgeFleet({ tokens, catalog }: { tokens: EdgeToken[]; catalog: Catalog }) {
  const [auto, setAuto] = useState(true);
  const { fleet, refresh } = useFleet(auto);
  const now = useNow(1000);
  const tokenName = new Map(tokens.map((t) => [t.id, t.name]));

  if (fleet.status === "unavailable") {
    return (
      <>
        <h2>Edges</h2>
        <div className="banner banner-info" role="status">
          Fleet status is not available on this control plane.
        </div>
      </>
    );
  }
  const edges = fleet.status === "ready" ? fleet.edges : [];
  const counts = edges.reduce<Record<string, number>>((c, e) => ({ ...c, [e.state]: (c[e.state] ?? 0) + 1 }), {});

  return (
    <>
      <div className="section-header">
        <h2 id="edges-heading">Edges</h2>
        <div className="toolbar-inline">
          <Switch label="Refresh every 5 s" checked={auto} onChange={setAuto} />
          <button type="button" className="small" onClick={refresh}>
            Refresh now
          </button>
        </div>
      </div>
      {fleet.status === "loading" && <Loading what="Loading the fleet…" />}
      {fleet.status === "ready" && fleet.error ? (
        <div className="banner banner-error" role="alert">
          Could not refresh the fleet: {fleet.error instanceof Error ? fleet.error.message : String(fleet.error)}
          {fleet.at > 0 && <> Showing what was known {formatAge(now - fleet.at)} ago.</>}
        </div>
      ) : null}
      {fleet.status === "ready" && edges.length === 0 && !fleet.error && <NoEdges />}
      {edges.length > 0 && (
        <>
          <p className="fleet-summary">
            {edges.length} {edges.length === 1 ? "edge" : "edges"}:{" "}
            {(["connected", "stale", "disconnected"] as const)
              .filter((s) => counts[s])
              .map((s) => `${counts[s]} ${s}`)
              .join(", ")}
            {fleet.status === "ready" && fleet.at > 0 && (
              <span className="muted"> · updated {formatAge(Math.max(0, now - fleet.at))} ago</span>
            )}
          </p>
          <table className="responsive fleet" aria-labelledby="edges-heading">
            <thead>
              <tr>
                <th scope="col">Edge</th>
                <th scope="col">State</th>
                <th scope="col">Environments · position / head · lag</th>
                <th scope="col">Data age</th>
                <th scope="col">Last seen</th>
              </tr>
            </thead>
            <tbody>
              {edges.map((e) => {
                const s = STATE_LABEL[e.state] ?? { icon: "?", text: e.state, cls: "" };
                return (
                  <tr key={e.id} className={`edge-${e.state}`}>
                    <td data-label="Edge">
                      <span className="strong">{e.name}</span>
                      <div className="muted small-text">
                        {e.region || "no region"}
                        {e.address && <> · <span className="mono">{e.address}</span></>}
                      </div>
                      {e.token_id && (
                        <div className="muted small-text">token {tokenName.get(e.token_id) ?? e.token_id.slice(0, 8) + "…"}</div>
                      )}
                    </td>
                    <td data-label="State">
                      <span className={`badge state ${s.cls}`}>
                        <span aria-hidden="true">{s.icon}</span> {s.text}
                      </span>
                      {e.state === "disconnected" ? (
                        e.disconnected_at && (
                          <div className="muted small-text">
                            <When iso={e.disconnected_at} now={now} />
                          </div>
                        )
                      ) : (
                        e.connected_at && (
                          <div className="muted small-text">
                            since <When iso={e.connected_at} now={now} />
                          </div>
                        )
                      )}
                    </td>
                    <td data-label="Environments">
                      {e.environments.length === 0 ? (
                        <span className="muted">none yet</span>
                      ) : (
                        <ul className="edge-envs">
                          {e.environments.map((env) => {
                            const known = catalog.env(env.environment_id);
                            return (
                              <li key={env.environment_id}>
                                <EnvName
                                  name={catalog.label(env.environment_id)}
                                  color={known?.color}
                                  production={known?.is_production}
                                />{" "}
                                <span className="mono small-text" title={`Applied version ${env.position} of ${env.head}`}>
                                  {env.position} / {env.head}
                                </span>{" "}
                                {env.lag === 0 ? (
                                  <span className="badge on">up to date</span>
                                ) : (
                                  <span className="badge warn">{env.lag} behind</span>
                                )}
                              </li>
                            );
                          })}
                        </ul>
                      )}
                    </td>
                    <td data-label="Data age" className={e.data_age_ms != null && e.data_age_ms > 60_000 ? "warn-text" : undefined}>
                      {formatAge(e.data_age_ms)}
                    </td>
                    <td data-label="Last seen">
                      <When iso={e.last_seen} now={now} />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </>
      )}
    </>
  );
}

function NoEdges() {
  return (
    <Empty title="No edge relays have connected yet">
      <p>
        This control plane serves SDKs by itself, so you need no edge to start. To serve flags from
        other regions or closer to your applications:
      </p>
      <ol className="steps">
        <li>Create an edge token below.</li>
        <li>
          Run <span className="mono">checkgate-edge</span> with the token, the address of this
          control plane&apos;s change feed (UDP port 3443 by default) and the certificate
          fingerprint from the control plane&apos;s start-up log:
          <pre className="code">
            {`FEED_ADDR=control-plane.example.com:3443 \\
FEED_FINGERPRINT=7a:c5:…:c8 \\
EDGE_TOKEN=cge_… \\
EDGE_NAME=eu-west-1a EDGE_REGION=eu-west-1 \\
checkgate-edge`}
          </pre>
        </li>
        <li>It appears here within seconds of connecting.</li>
      </ol>
    </Empty>
  );
}

function EdgeTokens({ tokens, catalog }: { tokens: ReturnType<typeof useLoad<EdgeToken[]>>; catalog: Catalog }) {
  return (
    <TokenSection<EdgeToken, EdgeTokenCreated>
      list={tokens}
      headingId="edge-tokens-heading"
      noun="edge token"
      short="tokens"
      prefixHeader="Token"
      columns={[
        {
          header: "Environments",
          cell: (t) =>
            t.environments === null ? (
              <span>All environments</span>
            ) : (
              <ul className="edge-envs">
                {t.environments.map((id) => (
                  <li key={id}>
                    <EnvName name={catalog.label(id)} color={catalog.env(id)?.color} />
                  </li>
                ))}
              </ul>
            ),
        },
      ]}
      lastUse={{ header: "Last seen", at: (t) => t.last_seen_at }}
      lead={
        <>
          An edge presents its token (<span className="mono">EDGE_TOKEN</span>) on the change feed;
          the token decides which environments it may serve.
        </>
      }
      loadingText="Loading edge tokens…"
      empty={{
        title: "No edge tokens",
        body: <p>Create one for each edge or region, so you can revoke one without touching the others.</p>,
      }}
      canManage
      renderCreate={(close, created) => <CreateEdgeTokenDialog catalog={catalog} onClose={close} onCreated={created} />}
      secret={{
        value: (t) => t.token,
        body: (t) => (
          <p>
            Give it to the edge <strong>{t.name}</strong> as{" "}
            <span className="mono">EDGE_TOKEN</span>. It may serve{" "}
            {t.environments === null
              ? "every environment, present and future"
              : t.environments.map((id) => catalog.label(id)).join(", ")}
            .
          </p>
        ),
      }}
      revoke={{
        confirmLabel: "Revoke token",
        url: (t) => `/api/edge-tokens/${seg(t.id)}`,
        body: (t) => (
          <p>
            Edges using <span className="mono">{t.prefix}</span> are disconnected within
            seconds, stop serving flags and delete their snapshot. SDKs that rely on them must
            fall back to another edge or the control plane. This cannot be undone.
          </p>
        ),
      }}
    />
  );
}

function CreateEdgeTokenDialog({
  catalog,
  onClose,
  onCreated,
}: {
  catalog: Catalog;
  onClose: () => void;
  onCreated: (t: EdgeTokenCreated) => void;
}) {
  const [all, setAll] = useState(true);
  const [picked, setPicked] = useState<Set<string>>(() => new Set());
  const toggle = (id: string, on: boolean) =>
    setPicked((p) => {
      const next = new Set(p);
      if (on) next.add(id);
      else next.delete(id);
      return next;
    });

  return (
    <CreateTokenDialog
      title="New edge token"
      nameLabel="Token name"
      namePlaceholder="eu-west edge"
      nameHint="Usually the edge's region or host."
      fields={["environments"] as const}
      ready={all || picked.size > 0}
      submitLabel="Create edge token"
      wide
      create={(name) =>
        api.post<EdgeTokenCreated>("/api/edge-tokens", { name, ...(all ? {} : { environments: [...picked] }) })
      }
      onCreated={onCreated}
      onClose={onClose}
    >
      {(errors) => (
        <>
          <fieldset className="plain choice-group">
            <legend>Environments it may serve</legend>
            <label className="choice">
              <input type="radio" name="edge-scope" checked={all} onChange={() => setAll(true)} />
              <span>
                <strong>All environments</strong>
                <span className="hint">Every environment of every project, including ones created later.</span>
              </span>
            </label>
            <label className="choice">
              <input type="radio" name="edge-scope" checked={!all} onChange={() => setAll(false)} />
              <span>
                <strong>Only these environments</strong>
              </span>
            </label>
          </fieldset>
          {!all && (
            <div className="env-picker">
              {catalog.projects.length === 0 && <p className="muted">No projects yet.</p>}
              {catalog.projects.map((p) => (
                <fieldset key={p.id} className="plain env-picker-project">
                  <legend>{p.name}</legend>
                  {catalog.envs
                    .filter((e) => e.project_id === p.id)
                    .map((e) => (
                      <label key={e.id} className="check">
                        <input type="checkbox" checked={picked.has(e.id)} onChange={(ev) => toggle(e.id, ev.target.checked)} />
                        <EnvName name={e.name} color={e.color} production={e.is_production} />
                        <span className="visually-hidden"> in {p.name}</span>
                      </label>
                    ))}
                </fieldset>
              ))}
              {errors.environments && (
                <p className="error-text" role="alert">
                  {errors.environments}
                </p>
              )}
            </div>
          )}
        </>
      )}
    </CreateTokenDialog>
  );
}
