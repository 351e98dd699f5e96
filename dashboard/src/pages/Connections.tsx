// Connected SDKs on the fleet page: per environment, how many SDK streams are open at which
// edge and at the control plane itself (GET /api/health/connections, from each server's latest
// report), by SDK key. Refreshed every 5 seconds while shown.

import { useEffect, useMemo, useState } from "react";
import { api, ApiError } from "../api";
import type { ConnectionEntry } from "../types";
import { useNow, When } from "../ui";

/** As the fleet table above: every 5 seconds. */
const REFRESH_MS = 5000;

type Loaded = { status: "loading" } | { status: "unavailable" } | { status: "ready"; total: number; entries: ConnectionEntry[] };

function useConnections(): { loaded: Loaded; error: unknown } {
  const [loaded, setLoaded] = useState<Loaded>({ status: "loading" });
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let cancelled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const controller = new AbortController();
    const load = async () => {
      if (typeof document !== "undefined" && document.hidden) {
        timer = setTimeout(load, REFRESH_MS);
        return;
      }
      try {
        const answer = await api.get<{ total: number; connections: ConnectionEntry[] }>("/api/health/connections", {
          signal: controller.signal,
        });
        if (cancelled) return;
        setLoaded({ status: "ready", total: answer.total, entries: answer.connections });
        setError(null);
      } catch (e) {
        if (cancelled) return;
        if (e instanceof ApiError && e.status === 404) {
          setLoaded({ status: "unavailable" });
          return;
        }
        if (e instanceof DOMException && e.name === "AbortError") return;
        setError(e);
      }
      if (!cancelled) timer = setTimeout(load, REFRESH_MS);
    };
    void load();
    return () => {
      cancelled = true;
      controller.abort();
      if (timer) clearTimeout(timer);
    };
  }, []);
  return { loaded, error };
}

interface EnvGroup {
  id: string;
  total: number;
  entries: ConnectionEntry[];
}

/** The entries by environment, most streams first. */
export function byEnvironment(entries: ConnectionEntry[]): EnvGroup[] {
  const groups = new Map<string, EnvGroup>();
  for (const e of entries) {
    const g = groups.get(e.environment_id) ?? { id: e.environment_id, total: 0, entries: [] };
    g.total += e.count;
    g.entries.push(e);
    groups.set(e.environment_id, g);
  }
  return [...groups.values()].sort((a, b) => b.total - a.total || a.id.localeCompare(b.id));
}

function serverName(e: ConnectionEntry): string {
  return e.server.kind === "edge" ? e.server.name : `Control plane (${e.server.name})`;
}

/**
 * The connected-SDK section: every environment the caller may see, or only `projectId`'s.
 * `label` names an environment id (by default, its name as the answer gives it).
 */
export function ConnectedSdks({ label, projectId }: { label?: (id: string) => string; projectId?: string }) {
  const { loaded, error } = useConnections();
  const now = useNow(1000);
  const groups = useMemo(
    () =>
      loaded.status === "ready"
        ? byEnvironment(loaded.entries.filter((e) => projectId === undefined || e.project_id === projectId))
        : [],
    [loaded, projectId],
  );
  const name = (g: EnvGroup) => (label ? label(g.id) : (g.entries[0]?.environment_name ?? g.id));
  if (loaded.status === "unavailable") return null;
  return (
    <>
      <h2 id="connections-heading">Connected SDKs</h2>
      {error ? (
        <div className="banner banner-error" role="alert">
          Could not refresh the connected SDKs: {error instanceof Error ? error.message : String(error)}
        </div>
      ) : null}
      {loaded.status === "loading" && <p className="muted">Loading connected SDKs…</p>}
      {loaded.status === "ready" && groups.length === 0 && <p className="fleet-summary">No SDK streams are open.</p>}
      {groups.map((g) => (
        <section key={g.id} className="connections-env" aria-label={`Connected SDKs in ${name(g)}`}>
          <h3>
            {name(g)} <span className="muted">· {g.total} {g.total === 1 ? "stream" : "streams"}</span>
          </h3>
          <table className="responsive connections">
            <thead>
              <tr>
                <th scope="col">Server</th>
                <th scope="col">SDK key</th>
                <th scope="col">Streams</th>
                <th scope="col">Reported</th>
              </tr>
            </thead>
            <tbody>
              {g.entries.map((e) => (
                <tr key={`${e.server.kind}|${e.server.session_id ?? e.server.name}|${e.key_id}`}>
                  <td data-label="Server">
                    {serverName(e)}
                    {e.server.region && <div className="muted small-text">{e.server.region}</div>}
                  </td>
                  <td data-label="SDK key">{e.key_name ?? <span className="muted">deleted key</span>}</td>
                  <td data-label="Streams">
                    {e.count}
                    {e.clients.length > 0 && (
                      <div className="muted small-text mono">{e.clients.map((c) => c.ip).join(", ")}</div>
                    )}
                  </td>
                  <td data-label="Reported">
                    <When iso={e.server.reported_at} now={now} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ))}
    </>
  );
}
