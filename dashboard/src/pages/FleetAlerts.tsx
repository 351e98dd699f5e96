// Fleet alerts on the fleet page: the open ones first, then the history (GET /api/fleet/alerts),
// newest first, a page of 50 at a time. Refreshed with the fleet, every 5 seconds while shown.

import { useEffect, useState } from "react";
import { api, ApiError } from "../api";
import type { FleetAlert } from "../types";
import { useNow, When } from "../ui";

/** As the fleet table above: every 5 seconds. */
const REFRESH_MS = 5000;

const PAGE = 50;

const KIND_LABEL: Record<string, string> = {
  "edge.stale": "Edge stale or disconnected",
  "edge.lagging": "Edge lagging behind",
  "webhook.failing": "Webhook failing",
};

type Loaded = { status: "loading" } | { status: "unavailable" } | { status: "ready"; open: FleetAlert[]; history: FleetAlert[]; more: boolean };

/** Open alerts and the first `shown` of the history, now and every `REFRESH_MS`. */
function useAlerts(shown: number): { loaded: Loaded; error: unknown } {
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
        const [open, history] = await Promise.all([
          api.get<{ alerts: FleetAlert[]; more: boolean }>("/api/fleet/alerts?state=open&limit=200", { signal: controller.signal }),
          api.get<{ alerts: FleetAlert[]; more: boolean }>(`/api/fleet/alerts?state=resolved&limit=${shown}`, {
            signal: controller.signal,
          }),
        ]);
        if (cancelled) return;
        setLoaded({ status: "ready", open: open.alerts, history: history.alerts, more: history.more });
        setError(null);
      } catch (e) {
        if (cancelled) return;
        if (e instanceof ApiError && (e.status === 404 || e.status === 403)) {
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
  }, [shown]);
  return { loaded, error };
}

/** What an alert is about, for people. */
function about(alert: FleetAlert, label: (id: string) => string): string {
  const envs = alert.environments.map(label).join(", ");
  if (alert.edge_name) return envs ? `${alert.edge_name} · ${envs}` : alert.edge_name;
  return envs || alert.subject;
}

function AlertRow({ alert, now, label }: { alert: FleetAlert; now: number; label: (id: string) => string }) {
  const open = alert.resolved_at === null;
  return (
    <tr className={open ? "alert-open" : "alert-resolved"}>
      <td data-label="Alert">
        <span className={`badge ${open ? "warn" : "on"}`}>{open ? "open" : "resolved"}</span>{" "}
        <span className="strong">{KIND_LABEL[alert.kind] ?? alert.kind}</span>
        <div className="muted small-text mono">{alert.kind}</div>
      </td>
      <td data-label="About">{about(alert, label)}</td>
      <td data-label="Opened">
        <When iso={alert.opened_at} now={now} />
      </td>
      <td data-label="Resolved">
        <When iso={alert.resolved_at} now={now} empty="—" />
      </td>
    </tr>
  );
}

function AlertTable({ alerts, caption, now, label }: { alerts: FleetAlert[]; caption: string; now: number; label: (id: string) => string }) {
  return (
    <table className="responsive fleet-alerts" aria-label={caption}>
      <thead>
        <tr>
          <th scope="col">Alert</th>
          <th scope="col">About</th>
          <th scope="col">Opened</th>
          <th scope="col">Resolved</th>
        </tr>
      </thead>
      <tbody>
        {alerts.map((a) => (
          <AlertRow key={a.id} alert={a} now={now} label={label} />
        ))}
      </tbody>
    </table>
  );
}

/** The alerts section: open alerts, then their history. `label` names an environment id. */
export function FleetAlerts({ label }: { label: (id: string) => string }) {
  const [shown, setShown] = useState(PAGE);
  const { loaded, error } = useAlerts(shown);
  const now = useNow(1000);
  if (loaded.status === "unavailable") return null;
  return (
    <>
      <h2 id="alerts-heading">Alerts</h2>
      {error ? (
        <div className="banner banner-error" role="alert">
          Could not refresh the alerts: {error instanceof Error ? error.message : String(error)}
        </div>
      ) : null}
      {loaded.status === "loading" && <p className="muted">Loading alerts…</p>}
      {loaded.status === "ready" && (
        <>
          {loaded.open.length === 0 ? (
            <p className="fleet-summary">No open alerts.</p>
          ) : (
            <AlertTable alerts={loaded.open} caption="Open alerts" now={now} label={label} />
          )}
          {loaded.history.length > 0 && (
            <details className="alert-history">
              <summary>History ({loaded.history.length}{loaded.more ? "+" : ""} resolved)</summary>
              <AlertTable alerts={loaded.history} caption="Resolved alerts" now={now} label={label} />
              {loaded.more && shown < 200 && (
                <button type="button" className="small" onClick={() => setShown((s) => Math.min(200, s + PAGE))}>
                  Show more
                </button>
              )}
            </details>
          )}
        </>
      )}
    </>
  );
}
