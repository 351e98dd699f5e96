// An environment's webhooks: the list (enabled, signed, failing), a form to add one with its
// secret (sent once, never shown again: the server keeps it encrypted and answers only
// `has_secret`), enable/disable, a test event, delete, and each webhook's delivery log.
// Project viewers read; admins change.

import { useState, type FormEvent } from "react";
import { useParams } from "react-router-dom";
import { api, seg } from "../api";
import { can, useProjectRole } from "../session";
import { ConfirmDialog, Empty, ErrorBanner, Field, LoadError, Loading, PageHeader, SelectField, useLoad, When } from "../ui";
import "./pages.css";

/** A webhook as the API lists it. */
export interface Webhook {
  id: string;
  environment_id: string;
  name: string;
  url: string;
  format: "checkgate" | "slack" | string;
  enabled: boolean;
  has_secret: boolean;
  consecutive_failures: number;
  failing: boolean;
  created_at: string;
  updated_at: string;
}

/** One delivery and its last attempt. */
export interface WebhookDelivery {
  id: string;
  event: string;
  state: "pending" | "delivered" | "failed" | string;
  attempts: number;
  status_code: number | null;
  latency_ms: number | null;
  error: string | null;
  created_at: string;
  next_attempt_at: string | null;
}

export function WebhooksPage() {
  const { projectId = "", envId = "" } = useParams();
  const role = useProjectRole(projectId);
  const isAdmin = can(role, "admin");
  const base = `/api/environments/${seg(envId)}/webhooks`;
  const hooks = useLoad(() => api.get<Webhook[]>(base), [base]);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<Webhook | null>(null);
  const [showing, setShowing] = useState<string | null>(null);

  const act = async (what: () => Promise<unknown>, done?: string) => {
    setError(null);
    setNotice(null);
    try {
      await what();
      if (done) setNotice(done);
      hooks.reload();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <section className="page">
      <PageHeader
        title="Webhooks"
        lead="Every change in this environment is sent to these URLs, signed with the webhook's secret and retried for up to 24 hours."
      />
      <ErrorBanner error={error} />
      {notice && (
        <p className="banner" role="status">
          {notice}
        </p>
      )}
      {hooks.error ? (
        <LoadError error={hooks.error} />
      ) : hooks.data === undefined ? (
        <Loading what="Loading webhooks…" />
      ) : hooks.data.length === 0 ? (
        <Empty title="No webhooks yet">
          <p>{isAdmin ? "Add one below to be told of every change here." : "A project admin can add webhooks."}</p>
        </Empty>
      ) : (
        <table className="responsive" aria-label="Webhooks">
          <thead>
            <tr>
              <th>Name</th>
              <th>URL</th>
              <th>Status</th>
              <th>Signed</th>
              <th>
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {hooks.data.map((h) => (
              <tr key={h.id}>
                <td>
                  {h.name}
                  {h.format === "slack" && <span className="badge">slack</span>}
                </td>
                <td className="mono">{h.url}</td>
                <td>
                  <span className={"badge " + (h.enabled ? "on" : "off")}>{h.enabled ? "enabled" : "disabled"}</span>
                  {h.failing && (
                    <span className="badge danger" title={`${h.consecutive_failures} failed attempts in a row`}>
                      failing
                    </span>
                  )}
                </td>
                <td>{h.has_secret ? "yes" : "no"}</td>
                <td className="actions">
                  <button type="button" onClick={() => setShowing(showing === h.id ? null : h.id)}>
                    {showing === h.id ? "Hide deliveries" : "Deliveries"}
                  </button>
                  {isAdmin && (
                    <>
                      <button
                        type="button"
                        onClick={() => void act(() => api.post(`${base}/${seg(h.id)}/test`), `Test event queued for ${h.name}.`)}
                      >
                        Send test event
                      </button>
                      <button
                        type="button"
                        onClick={() => void act(() => api.patch(`${base}/${seg(h.id)}`, { enabled: !h.enabled }))}
                      >
                        {h.enabled ? "Disable" : "Enable"}
                      </button>
                      <button type="button" className="danger" onClick={() => setDeleting(h)}>
                        Delete
                      </button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {showing && <Deliveries url={`${base}/${seg(showing)}/deliveries`} />}
      {isAdmin && <NewWebhook base={base} onCreated={(h) => void act(async () => h, `Webhook ${h.name} added.`)} />}
      {deleting && (
        <ConfirmDialog
          title="Delete webhook"
          danger
          confirmLabel="Delete webhook"
          body={
            <p>
              <strong>{deleting.name}</strong> is no longer sent events, and its delivery log is deleted.
            </p>
          }
          onCancel={() => setDeleting(null)}
          onConfirm={async () => {
            await api.delete(`${base}/${seg(deleting.id)}`);
            setDeleting(null);
            hooks.reload();
          }}
        />
      )}
    </section>
  );
}

function NewWebhook({ base, onCreated }: { base: string; onCreated: (h: Webhook) => void }) {
  const [name, setName] = useState("");
  const [url, setUrl] = useState("");
  const [secret, setSecret] = useState("");
  const [format, setFormat] = useState("checkgate");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const created = await api.post<Webhook>(base, {
        name,
        url,
        format,
        ...(secret ? { secret } : {}),
      });
      setName("");
      setUrl("");
      setSecret("");
      onCreated(created);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={(e) => void submit(e)} aria-label="New webhook">
      <h2>New webhook</h2>
      <ErrorBanner error={error} />
      <Field label="Name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} />
      <Field
        label="URL"
        value={url}
        onChange={(e) => setUrl(e.target.value)}
        required
        placeholder="https://hooks.example.com/checkgate"
        hint="http:// or https://; internal addresses are refused unless allowed by WEBHOOK_ALLOW_HOSTS."
      />
      <Field
        label="Secret"
        type="password"
        autoComplete="off"
        value={secret}
        onChange={(e) => setSecret(e.target.value)}
        maxLength={512}
        hint="Optional. Signs every request; stored encrypted and never shown again."
      />
      <SelectField label="Body" value={format} onChange={(e) => setFormat(e.target.value)}>
        <option value="checkgate">Checkgate event (JSON)</option>
        <option value="slack">Slack-compatible message</option>
      </SelectField>
      <div className="actions">
        <button type="submit" className="primary" disabled={busy || !name || !url}>
          Add webhook
        </button>
      </div>
    </form>
  );
}

function Deliveries({ url }: { url: string }) {
  const log = useLoad(() => api.get<WebhookDelivery[]>(url), [url]);
  if (log.error) return <ErrorBanner error={log.error} />;
  if (log.data === undefined) return <Loading what="Loading deliveries…" />;
  if (log.data.length === 0) return <Empty title="No deliveries yet" />;
  return (
    <table className="responsive" aria-label="Deliveries">
      <thead>
        <tr>
          <th>Event</th>
          <th>State</th>
          <th>Attempts</th>
          <th>Answer</th>
          <th>When</th>
        </tr>
      </thead>
      <tbody>
        {log.data.map((d) => (
          <tr key={d.id}>
            <td className="mono">{d.event}</td>
            <td>
              <span className={"badge " + (d.state === "delivered" ? "on" : d.state === "failed" ? "danger" : "warn")}>
                {d.state}
              </span>
            </td>
            <td>{d.attempts}</td>
            <td>
              {d.status_code ?? "—"}
              {d.latency_ms !== null && <span className="muted"> in {d.latency_ms} ms</span>}
              {d.error && <div className="muted">{d.error}</div>}
            </td>
            <td>
              <When iso={d.created_at} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
