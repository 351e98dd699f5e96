// A project's credentials: SDK keys (per environment, server or client) and API tokens (for
// automation, with a project role). Each secret is shown once, when it is created.

import { useState } from "react";
import { useParams } from "react-router-dom";
import { api, seg } from "../api";
import { rememberedEnv } from "../Layout";
import { can, useProjectRole } from "../session";
import type { ApiToken, ApiTokenCreated, Environment, ProjectRole, SdkKey, SdkKeyCreated } from "../types";
import { EnvName, Loading, PageHeader, RoleBadge, SelectField, useLoad } from "../ui";
import { ConnectedSdks } from "./Connections";
import { CreateTokenDialog } from "./CreateTokenDialog";
import { pickEnvironment } from "./Home";
import { TokenSection } from "./TokenTable";
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
          <ConnectedSdks projectId={projectId} />
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
  const keys = useLoad(() => api.get<SdkKey[]>(`/api/projects/${seg(projectId)}/keys`), [projectId]);
  const envById = new Map(envs.map((e) => [e.id, e]));
  const hasLastUsed = (keys.data ?? []).some((k) => "last_used_at" in k);
  return (
    <TokenSection<SdkKey, SdkKeyCreated>
      list={keys}
      headingId="sdk-keys-heading"
      noun="SDK key"
      short="keys"
      prefixHeader="Key"
      columns={[
        { header: "Kind", cell: (k) => <span className={`badge kind-${k.kind}`}>{k.kind}</span> },
        {
          header: "Environment",
          cell: (k) => {
            const env = envById.get(k.environment_id);
            return <EnvName name={env?.name ?? k.environment_name} color={env?.color} production={env?.is_production} />;
          },
        },
      ]}
      lastUse={hasLastUsed ? { header: "Last used", at: (k) => k.last_used_at } : undefined}
      lead={
        <>
          <strong>Server</strong> keys are for back-end services and may read flag rules; keep them
          secret. <strong>Client</strong> keys are for browsers and mobile apps and receive only
          evaluated values.
        </>
      }
      loadingText="Loading SDK keys…"
      empty={{
        title: "No SDK keys yet",
        body: (
          <p>
            {isAdmin
              ? "Create a key for each application and environment; your SDK sends it to read flags."
              : "A project admin can create keys for your applications."}
          </p>
        ),
      }}
      canManage={isAdmin}
      newDisabled={envs.length === 0}
      renderCreate={(close, created) => (
        <CreateSdkKeyDialog projectId={projectId} envs={envs} onClose={close} onCreated={created} />
      )}
      secret={{
        value: (k) => k.key,
        body: (k) => (
          <p>
            <strong>{k.name}</strong>: a {k.kind} key for{" "}
            <strong>{k.environment_name}</strong>. Give it to your SDK as its SDK key (it is
            sent as <span className="mono">Authorization: Bearer …</span>).
          </p>
        ),
      }}
      revoke={{
        confirmLabel: "Revoke key",
        url: (k) => `/api/projects/${seg(projectId)}/keys/${seg(k.id)}`,
        body: (k) => (
          <p>
            Applications using <span className="mono">{k.prefix}</span> in{" "}
            <strong>{k.environment_name}</strong> are refused at once, and their open
            streams close within a second. This cannot be undone.
          </p>
        ),
      }}
    />
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
  const [envId, setEnvId] = useState(() => pickEnvironment(envs, rememberedEnv(projectId))?.id ?? "");
  const [kind, setKind] = useState<"server" | "client">("server");
  return (
    <CreateTokenDialog
      title="New SDK key"
      nameLabel="Key name"
      namePlaceholder="Checkout service"
      nameHint="What uses it, so you know what breaks if you revoke it."
      fields={["environment", "kind"] as const}
      ready={!!envId}
      submitLabel="Create key"
      create={(name) =>
        api.post<SdkKeyCreated>(`/api/projects/${seg(projectId)}/keys`, { name, environment_id: envId, kind })
      }
      onCreated={onCreated}
      onClose={onClose}
    >
      {(errors) => (
        <>
          <SelectField
            label="Environment"
            value={envId}
            onChange={(e) => setEnvId(e.target.value)}
            error={errors.environment}
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
          {errors.kind && (
            <p className="error-text" role="alert">
              {errors.kind}
            </p>
          )}
        </>
      )}
    </CreateTokenDialog>
  );
}

const TOKEN_ROLES: { role: ProjectRole; what: string }[] = [
  { role: "viewer", what: "reads flags, segments and the audit log" },
  { role: "editor", what: "also creates, changes and deletes flags and segments" },
  { role: "admin", what: "also manages environments, SDK keys and members" },
];

function ApiTokens({ projectId }: { projectId: string }) {
  const tokens = useLoad(() => api.get<ApiToken[]>(`/api/projects/${seg(projectId)}/tokens`), [projectId]);
  return (
    <TokenSection<ApiToken, ApiTokenCreated>
      list={tokens}
      headingId="api-tokens-heading"
      noun="API token"
      short="tokens"
      prefixHeader="Token"
      columns={[{ header: "Role", cell: (t) => <RoleBadge role={t.role} /> }]}
      lastUse={{ header: "Last used", at: (t) => t.last_used_at }}
      lead={
        <>
          A token acts in this project only, with the role you give it. Scripts send it as{" "}
          <span className="mono">Authorization: Bearer cgt_…</span>.
        </>
      }
      loadingText="Loading API tokens…"
      empty={{
        title: "No API tokens",
        body: <p>Create one for CI or a script that manages flags; give it the smallest role that works.</p>,
      }}
      canManage
      renderCreate={(close, created) => <CreateApiTokenDialog projectId={projectId} onClose={close} onCreated={created} />}
      secret={{
        value: (t) => t.token,
        body: (t) => (
          <p>
            <strong>{t.name}</strong> acts in this project as {t.role === "admin" ? "an" : "a"}{" "}
            <strong>{t.role}</strong>. Send it as{" "}
            <span className="mono">Authorization: Bearer {"<token>"}</span>.
          </p>
        ),
      }}
      revoke={{
        confirmLabel: "Revoke token",
        url: (t) => `/api/projects/${seg(projectId)}/tokens/${seg(t.id)}`,
        body: (t) => (
          <p>
            Anything using <span className="mono">{t.prefix}</span> is refused from now
            on. This cannot be undone.
          </p>
        ),
      }}
    />
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
  const [role, setRole] = useState<ProjectRole>("editor");
  return (
    <CreateTokenDialog
      title="New API token"
      nameLabel="Token name"
      namePlaceholder="GitHub Actions"
      fields={["role"] as const}
      submitLabel="Create token"
      create={(name) => api.post<ApiTokenCreated>(`/api/projects/${seg(projectId)}/tokens`, { name, role })}
      onCreated={onCreated}
      onClose={onClose}
    >
      {(errors) => (
        <>
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
          {errors.role && (
            <p className="error-text" role="alert">
              {errors.role}
            </p>
          )}
        </>
      )}
    </CreateTokenDialog>
  );
}
