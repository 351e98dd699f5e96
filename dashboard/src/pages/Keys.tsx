// A project's credentials: SDK keys (per environment, server or client) and API tokens (for
// automation, with a project role). Each secret is shown once, when it is created.

import { useState, type FormEvent } from "react";
import { useParams } from "react-router-dom";
import { api, seg } from "../api";
import { rememberedEnv } from "../Layout";
import { can, useProjectRole } from "../session";
import type {
  ApiToken,
  ApiTokenCreated,
  Environment,
  ProjectRole,
  SdkKey,
  SdkKeyCreated,
} from "../types";
import {
  ConfirmDialog,
  Empty,
  EnvName,
  ErrorBanner,
  Field,
  formErrors,
  LoadError,
  Loading,
  Modal,
  PageHeader,
  RoleBadge,
  SecretDialog,
  SelectField,
  useLoad,
  useNow,
  When,
} from "../ui";
import { pickEnvironment } from "./Home";
import "./pages.css";

export function KeysPage() {
  const { projectId = "" } = useParams();
  const role = useProjectRole(projectId);
  const isAdmin = can(role, "admin");
  const envs = useLoad(
    () => api.get<Environment[]>(`/api/projects/${seg(projectId)}/environments`),
    [projectId],
  );
  return (
    <section className="page">
      <PageHeader
        title="SDK keys & API tokens"
        lead="SDK keys let your applications read flags; API tokens let scripts and CI change them through the REST API."
      />
      {role === undefined ? (
        <Loading />
      ) : (
        <>
          <SdkKeys projectId={projectId} envs={envs.data ?? []} isAdmin={isAdmin} />
          {isAdmin ? (
            <ApiTokens projectId={projectId} />
          ) : (
            <>
              <h2>API tokens</h2>
              <p className="muted">Only project admins can see and manage API tokens.</p>
            </>
          )}
        </>
      )}
    </section>
  );
}

function SdkKeys({ projectId, envs, isAdmin }: { projectId: string; envs: Environment[]; isAdmin: boolean }) {
  const now = useNow();
  const keys = useLoad(() => api.get<SdkKey[]>(`/api/projects/${seg(projectId)}/keys`), [projectId]);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<SdkKeyCreated | null>(null);
  const [revoking, setRevoking] = useState<SdkKey | null>(null);
  const [showRevoked, setShowRevoked] = useState(false);
  const envById = new Map(envs.map((e) => [e.id, e]));
  const all = keys.data ?? [];
  const revokedCount = all.filter((k) => k.revoked_at).length;
  const shown = all.filter((k) => showRevoked || !k.revoked_at);
  const hasLastUsed = all.some((k) => "last_used_at" in k);

  return (
    <>
      <div className="section-header">
        <h2 id="sdk-keys-heading">SDK keys</h2>
        {isAdmin && (
          <button type="button" className="primary" onClick={() => setCreating(true)} disabled={envs.length === 0}>
            New SDK key
          </button>
        )}
      </div>
      <p className="hint section-lead">
        <strong>Server</strong> keys are for back-end services and may read flag rules; keep them
        secret. <strong>Client</strong> keys are for browsers and mobile apps and receive only
        evaluated values.
      </p>
      {keys.error ? <LoadError error={keys.error} /> : null}
      {!keys.data && !keys.error && <Loading what="Loading SDK keys…" />}
      {keys.data && all.length === 0 && (
        <Empty title="No SDK keys yet">
          <p>
            {isAdmin
              ? "Create a key for each application and environment; your SDK sends it to read flags."
              : "A project admin can create keys for your applications."}
          </p>
        </Empty>
      )}
      {keys.data && all.length > 0 && (
        <>
          {shown.length === 0 && <p className="muted">No active ones: every one has been revoked.</p>}
          {shown.length > 0 && (
          <table className="responsive" aria-labelledby="sdk-keys-heading">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Key</th>
                <th scope="col">Kind</th>
                <th scope="col">Environment</th>
                <th scope="col">Created</th>
                {hasLastUsed && <th scope="col">Last used</th>}
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {shown.map((k) => {
                const env = envById.get(k.environment_id);
                return (
                  <tr key={k.id} className={k.revoked_at ? "revoked" : undefined}>
                    <td data-label="Name" className="strong">
                      {k.name}
                    </td>
                    <td data-label="Key" className="mono">
                      {k.prefix}
                    </td>
                    <td data-label="Kind">
                      <span className={`badge kind-${k.kind}`}>{k.kind}</span>
                    </td>
                    <td data-label="Environment">
                      <EnvName name={env?.name ?? k.environment_name} color={env?.color} production={env?.is_production} />
                    </td>
                    <td data-label="Created">
                      <When iso={k.created_at} now={now} />
                    </td>
                    {hasLastUsed && (
                      <td data-label="Last used">
                        <When iso={k.last_used_at} now={now} />
                      </td>
                    )}
                    <td className="row-actions">
                      {k.revoked_at ? (
                        <span className="badge danger">
                          revoked <When iso={k.revoked_at} now={now} />
                        </span>
                      ) : (
                        isAdmin && (
                          <button
                            type="button"
                            className="small danger-outline"
                            onClick={() => setRevoking(k)}
                            aria-label={`Revoke SDK key ${k.name}`}
                          >
                            Revoke
                          </button>
                        )
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          )}
          {revokedCount > 0 && (
            <label className="check table-foot">
              <input type="checkbox" checked={showRevoked} onChange={(e) => setShowRevoked(e.target.checked)} />
              Show revoked keys ({revokedCount})
            </label>
          )}
        </>
      )}

      {creating && (
        <CreateSdkKeyDialog
          projectId={projectId}
          envs={envs}
          onClose={() => setCreating(false)}
          onCreated={(k) => {
            setCreating(false);
            setCreated(k);
            keys.reload();
          }}
        />
      )}
      {created && (
        <SecretDialog title="SDK key created" label="SDK key" secret={created.key} onClose={() => setCreated(null)}>
          <p>
            <strong>{created.name}</strong>: a {created.kind} key for{" "}
            <strong>{created.environment_name}</strong>. Give it to your SDK as its SDK key (it is
            sent as <span className="mono">Authorization: Bearer …</span>).
          </p>
        </SecretDialog>
      )}
      {revoking && (
        <ConfirmDialog
          title={`Revoke SDK key “${revoking.name}”?`}
          danger
          confirmLabel="Revoke key"
          onCancel={() => setRevoking(null)}
          onConfirm={async () => {
            await api.delete(`/api/projects/${seg(projectId)}/keys/${seg(revoking.id)}`);
            setRevoking(null);
            keys.reload();
          }}
          body={
            <p>
              Applications using <span className="mono">{revoking.prefix}</span> in{" "}
              <strong>{revoking.environment_name}</strong> are refused at once, and their open
              streams close within a second. This cannot be undone.
            </p>
          }
        />
      )}
    </>
  );
}

function CreateSdkKeyDialog({
  projectId,
  envs,
  onClose,
  onCreated,
}: {
  projectId: string;
  envs: Environment[];
  onClose: () => void;
  onCreated: (k: SdkKeyCreated) => void;
}) {
  const [name, setName] = useState("");
  const [envId, setEnvId] = useState(() => pickEnvironment(envs, rememberedEnv(projectId))?.id ?? "");
  const [kind, setKind] = useState<"server" | "client">("server");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const errs = formErrors(error, ["name", "environment", "kind"] as const);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onCreated(
        await api.post<SdkKeyCreated>(`/api/projects/${seg(projectId)}/keys`, {
          name: name.trim(),
          environment_id: envId,
          kind,
        }),
      );
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <Modal title="New SDK key" onClose={onClose}>
      <form onSubmit={submit}>
        <Field
          label="Key name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          maxLength={100}
          required
          autoFocus
          placeholder="Checkout service"
          hint="What uses it, so you know what breaks if you revoke it."
          error={errs.field.name}
        />
        <SelectField
          label="Environment"
          value={envId}
          onChange={(e) => setEnvId(e.target.value)}
          error={errs.field.environment}
        >
          {envs.map((e) => (
            <option key={e.id} value={e.id}>
              {e.name}
              {e.is_production ? " (production)" : ""}
            </option>
          ))}
        </SelectField>
        <fieldset className="plain choice-group">
          <legend>Kind</legend>
          <label className="choice">
            <input type="radio" name="sdk-kind" value="server" checked={kind === "server"} onChange={() => setKind("server")} />
            <span>
              <strong>Server</strong>
              <span className="hint">For back-end services. May read flag rules. Keep it secret.</span>
            </span>
          </label>
          <label className="choice">
            <input type="radio" name="sdk-kind" value="client" checked={kind === "client"} onChange={() => setKind("client")} />
            <span>
              <strong>Client</strong>
              <span className="hint">For browsers and mobile apps. Receives evaluated values only.</span>
            </span>
          </label>
        </fieldset>
        {errs.field.kind && (
          <p className="error-text" role="alert">
            {errs.field.kind}
          </p>
        )}
        <ErrorBanner error={errs.rest} />
        <div className="actions">
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy || !name.trim() || !envId}>
            {busy ? "Creating…" : "Create key"}
          </button>
        </div>
      </form>
    </Modal>
  );
}

const TOKEN_ROLES: { role: ProjectRole; what: string }[] = [
  { role: "viewer", what: "reads flags, segments and the audit log" },
  { role: "editor", what: "also creates, changes and deletes flags and segments" },
  { role: "admin", what: "also manages environments, SDK keys and members" },
];

function ApiTokens({ projectId }: { projectId: string }) {
  const now = useNow();
  const tokens = useLoad(() => api.get<ApiToken[]>(`/api/projects/${seg(projectId)}/tokens`), [projectId]);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<ApiTokenCreated | null>(null);
  const [revoking, setRevoking] = useState<ApiToken | null>(null);
  const [showRevoked, setShowRevoked] = useState(false);
  const all = tokens.data ?? [];
  const revokedCount = all.filter((t) => t.revoked_at).length;
  const shown = all.filter((t) => showRevoked || !t.revoked_at);

  return (
    <>
      <div className="section-header">
        <h2 id="api-tokens-heading">API tokens</h2>
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          New API token
        </button>
      </div>
      <p className="hint section-lead">
        A token acts in this project only, with the role you give it. Scripts send it as{" "}
        <span className="mono">Authorization: Bearer cgt_…</span>.
      </p>
      {tokens.error ? <LoadError error={tokens.error} /> : null}
      {!tokens.data && !tokens.error && <Loading what="Loading API tokens…" />}
      {tokens.data && all.length === 0 && (
        <Empty title="No API tokens">
          <p>Create one for CI or a script that manages flags; give it the smallest role that works.</p>
        </Empty>
      )}
      {tokens.data && all.length > 0 && (
        <>
          {shown.length === 0 && <p className="muted">No active ones: every one has been revoked.</p>}
          {shown.length > 0 && (
          <table className="responsive" aria-labelledby="api-tokens-heading">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Token</th>
                <th scope="col">Role</th>
                <th scope="col">Created</th>
                <th scope="col">Last used</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {shown.map((t) => (
                <tr key={t.id} className={t.revoked_at ? "revoked" : undefined}>
                  <td data-label="Name" className="strong">
                    {t.name}
                  </td>
                  <td data-label="Token" className="mono">
                    {t.prefix}
                  </td>
                  <td data-label="Role">
                    <RoleBadge role={t.role} />
                  </td>
                  <td data-label="Created">
                    <When iso={t.created_at} now={now} />
                  </td>
                  <td data-label="Last used">
                    <When iso={t.last_used_at} now={now} />
                  </td>
                  <td className="row-actions">
                    {t.revoked_at ? (
                      <span className="badge danger">
                        revoked <When iso={t.revoked_at} now={now} />
                      </span>
                    ) : (
                      <button
                        type="button"
                        className="small danger-outline"
                        onClick={() => setRevoking(t)}
                        aria-label={`Revoke API token ${t.name}`}
                      >
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          )}
          {revokedCount > 0 && (
            <label className="check table-foot">
              <input type="checkbox" checked={showRevoked} onChange={(e) => setShowRevoked(e.target.checked)} />
              Show revoked tokens ({revokedCount})
            </label>
          )}
        </>
      )}

      {creating && (
        <CreateApiTokenDialog
          projectId={projectId}
          onClose={() => setCreating(false)}
          onCreated={(t) => {
            setCreating(false);
            setCreated(t);
            tokens.reload();
          }}
        />
      )}
      {created && (
        <SecretDialog title="API token created" label="API token" secret={created.token} onClose={() => setCreated(null)}>
          <p>
            <strong>{created.name}</strong> acts in this project as {created.role === "admin" ? "an" : "a"}{" "}
            <strong>{created.role}</strong>. Send it as{" "}
            <span className="mono">Authorization: Bearer {"<token>"}</span>.
          </p>
        </SecretDialog>
      )}
      {revoking && (
        <ConfirmDialog
          title={`Revoke API token “${revoking.name}”?`}
          danger
          confirmLabel="Revoke token"
          onCancel={() => setRevoking(null)}
          onConfirm={async () => {
            await api.delete(`/api/projects/${seg(projectId)}/tokens/${seg(revoking.id)}`);
            setRevoking(null);
            tokens.reload();
          }}
          body={
            <p>
              Anything using <span className="mono">{revoking.prefix}</span> is refused from now
              on. This cannot be undone.
            </p>
          }
        />
      )}
    </>
  );
}

function CreateApiTokenDialog({
  projectId,
  onClose,
  onCreated,
}: {
  projectId: string;
  onClose: () => void;
  onCreated: (t: ApiTokenCreated) => void;
}) {
  const [name, setName] = useState("");
  const [role, setRole] = useState<ProjectRole>("editor");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const errs = formErrors(error, ["name", "role"] as const);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onCreated(
        await api.post<ApiTokenCreated>(`/api/projects/${seg(projectId)}/tokens`, { name: name.trim(), role }),
      );
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <Modal title="New API token" onClose={onClose}>
      <form onSubmit={submit}>
        <Field
          label="Token name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          maxLength={100}
          required
          autoFocus
          placeholder="GitHub Actions"
          error={errs.field.name}
        />
        <fieldset className="plain choice-group">
          <legend>Token role</legend>
          {TOKEN_ROLES.map((r) => (
            <label key={r.role} className="choice">
              <input
                type="radio"
                name="token-role"
                value={r.role}
                checked={role === r.role}
                onChange={() => setRole(r.role)}
              />
              <span>
                <strong className="cap">{r.role}</strong>
                <span className="hint">{r.what}</span>
              </span>
            </label>
          ))}
        </fieldset>
        {errs.field.role && (
          <p className="error-text" role="alert">
            {errs.field.role}
          </p>
        )}
        <ErrorBanner error={errs.rest} />
        <div className="actions">
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy || !name.trim()}>
            {busy ? "Creating…" : "Create token"}
          </button>
        </div>
      </form>
    </Modal>
  );
}
