// A project's settings: its name, and its environments (create, rename, colour, default,
// production marker, whether client keys may read rules, delete). Project admins change them;
// everyone else reads.

import { useEffect, useId, useState, type FormEvent } from "react";
import { useNavigate, useParams } from "react-router-dom";
import { api, ApiError, seg } from "../api";
import { can, useProjectRole, useSession } from "../session";
import type { Environment, Project } from "../types";
import {
  ConfirmDialog,
  EnvName,
  ErrorBanner,
  Field,
  formErrors,
  LoadError,
  Loading,
  Modal,
  PageHeader,
  Switch,
  useLoad,
} from "../ui";
import { environmentImpact, plural, type EnvironmentImpact } from "./impact";
import { DeleteProjectDialog } from "./Projects";
import "./pages.css";

export const ENV_COLOURS: { name: string; value: string }[] = [
  { name: "Green", value: "#22c55e" },
  { name: "Amber", value: "#f59e0b" },
  { name: "Red", value: "#ef4444" },
  { name: "Indigo", value: "#6366f1" },
  { name: "Sky", value: "#0ea5e9" },
  { name: "Purple", value: "#a855f7" },
  { name: "Pink", value: "#ec4899" },
  { name: "Slate", value: "#64748b" },
];

/** A slug from a name: lower-case ASCII letters, digits and dashes, as the API accepts. */
export function slugify(name: string): string {
  return name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 50)
    .replace(/-+$/g, "");
}

export function ProjectSettingsPage() {
  const { projectId = "" } = useParams();
  const { user } = useSession();
  const role = useProjectRole(projectId);
  const isProjectAdmin = can(role, "admin");
  const navigate = useNavigate();
  const project = useLoad(() => api.get<Project>(`/api/projects/${seg(projectId)}`), [projectId]);
  const envs = useLoad(
    () => api.get<Environment[]>(`/api/projects/${seg(projectId)}/environments`),
    [projectId],
  );
  const [name, setName] = useState("");
  const [nameBusy, setNameBusy] = useState(false);
  const [nameError, setNameError] = useState<unknown>(null);
  const [nameSaved, setNameSaved] = useState(false);
  const [creating, setCreating] = useState(false);
  const [deletingProject, setDeletingProject] = useState(false);

  useEffect(() => {
    if (project.data) setName(project.data.name);
  }, [project.data]);

  // Tells the layout (project and environment switchers) to read again.
  const refreshLayout = () => navigate(".", { replace: true });
  const changed = () => {
    envs.reload();
    project.reload();
    refreshLayout();
  };

  if (project.error) return <LoadError error={project.error} />;
  if (!project.data) return <Loading />;
  const p = project.data;
  // The production marker shows once the control plane returns it.
  const supportsProduction = (envs.data ?? []).some((e) => "is_production" in e);
  const nameErrs = formErrors(nameError, ["name", "project", "slug"] as const);

  const saveName = async (e: FormEvent) => {
    e.preventDefault();
    setNameBusy(true);
    setNameError(null);
    setNameSaved(false);
    try {
      await api.patch<Project>(`/api/projects/${seg(projectId)}`, { name: name.trim() });
      setNameSaved(true);
      project.reload();
      refreshLayout();
    } catch (err) {
      setNameError(err);
    } finally {
      setNameBusy(false);
    }
  };

  return (
    <section className="page">
      <PageHeader
        title={
          <>
            {p.name} <span className="muted title-sub">settings</span>
          </>
        }
        lead={
          <>
            Slug <span className="mono">{p.slug}</span>
            {role && <> · your role here: {role}</>}
          </>
        }
      />

      {isProjectAdmin && (
        <form className="card inline-form" onSubmit={saveName} aria-label="Project name">
          <Field
            label="Project name"
            value={name}
            onChange={(e) => {
              setName(e.target.value);
              setNameSaved(false);
            }}
            maxLength={100}
            required
            error={nameErrs.field.name ?? nameErrs.field.project ?? nameErrs.field.slug}
          />
          <button
            type="submit"
            className="primary"
            disabled={nameBusy || !name.trim() || name.trim() === p.name}
          >
            {nameBusy ? "Saving…" : "Save name"}
          </button>
          {nameSaved && (
            <span className="saved" role="status">
              Saved
            </span>
          )}
          <ErrorBanner error={nameErrs.rest} />
        </form>
      )}

      <div className="section-header">
        <h2 id="envs-heading">Environments</h2>
        {isProjectAdmin && (
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            New environment
          </button>
        )}
      </div>
      <p className="hint section-lead">
        Each environment has its own flag rules and SDK keys. The default environment opens
        first; production environments are marked so changes there get a second look.
        {role !== undefined && !isProjectAdmin && " Only project admins change them."}
      </p>
      {envs.error ? <LoadError error={envs.error} /> : null}
      {!envs.data && !envs.error && <Loading what="Loading environments…" />}
      {envs.data && (
        <ul className="env-list" aria-labelledby="envs-heading">
          {envs.data.map((env) => (
            <EnvironmentCard
              key={env.id}
              env={env}
              editable={isProjectAdmin}
              onlyOne={envs.data!.length <= 1}
              supportsProduction={supportsProduction}
              onChanged={changed}
            />
          ))}
        </ul>
      )}

      {user?.role === "admin" && (
        <>
          <h2>Danger zone</h2>
          <div className="card danger-zone">
            <div>
              <strong>Delete this project</strong>
              <p className="hint">
                Deletes its environments, flags, segments, SDK keys and API tokens for good.
              </p>
            </div>
            <button type="button" className="danger" onClick={() => setDeletingProject(true)}>
              Delete project
            </button>
          </div>
        </>
      )}

      {creating && (
        <EnvironmentDialog
          projectId={projectId}
          supportsProduction={supportsProduction}
          onClose={() => setCreating(false)}
          onSaved={() => {
            setCreating(false);
            changed();
          }}
        />
      )}
      {deletingProject && (
        <DeleteProjectDialog
          project={p}
          onCancel={() => setDeletingProject(false)}
          onDeleted={() => navigate("/projects", { replace: true })}
        />
      )}
    </section>
  );
}

function EnvironmentCard({
  env,
  editable,
  onlyOne,
  supportsProduction,
  onChanged,
}: {
  env: Environment;
  editable: boolean;
  onlyOne: boolean;
  supportsProduction: boolean;
  onChanged: () => void;
}) {
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [editing, setEditing] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [confirmRules, setConfirmRules] = useState(false);
  const base = `/api/projects/${seg(env.project_id)}/environments/${seg(env.id)}`;

  const act = async (what: string, run: () => Promise<unknown>) => {
    setBusy(what);
    setError(null);
    try {
      await run();
      onChanged();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };
  const patch = (what: string, body: Partial<Environment>) => act(what, () => api.patch(base, body));

  return (
    <li className="card env-card" style={{ borderLeftColor: env.color }}>
      <div className="env-head">
        <div className="env-title">
          <h3>
            <EnvName name={env.name} color={env.color} />
          </h3>
          <span className="mono muted">{env.slug}</span>
          {env.is_default && <span className="badge on">default</span>}
          {env.is_production && <span className="badge prod">production</span>}
        </div>
        {editable && (
          <div className="row-actions">
            <button type="button" className="small" onClick={() => setEditing(true)} aria-label={`Edit ${env.name}`}>
              Edit
            </button>
            {!env.is_default && (
              <button
                type="button"
                className="small"
                disabled={busy !== null}
                onClick={() => act("default", () => api.post(`${base}/default`))}
                aria-label={`Make ${env.name} the default`}
              >
                {busy === "default" ? "Saving…" : "Make default"}
              </button>
            )}
            <button
              type="button"
              className="small danger-outline"
              disabled={env.is_default || onlyOne}
              title={
                env.is_default
                  ? "The default environment cannot be deleted; make another one the default first."
                  : onlyOne
                    ? "A project keeps at least one environment."
                    : undefined
              }
              onClick={() => setDeleting(true)}
              aria-label={`Delete ${env.name}`}
            >
              Delete
            </button>
          </div>
        )}
      </div>
      <div className="env-switches">
        {supportsProduction && (
          <Switch
            label="Production"
            context={` in ${env.name}`}
            checked={!!env.is_production}
            disabled={!editable || busy !== null}
            onChange={(next) => patch("production", { is_production: next })}
            hint="Marks it as production: changes here deserve a second look."
          />
        )}
        <Switch
          label="Client keys may read rules"
          context={` in ${env.name}`}
          checked={env.client_keys_read_rules}
          disabled={!editable || busy !== null}
          onChange={(next) =>
            next ? setConfirmRules(true) : patch("rules", { client_keys_read_rules: false })
          }
          hint={
            env.client_keys_read_rules
              ? "Browser and mobile keys receive flag rules (needed by SDKs that evaluate in the browser)."
              : "Browser and mobile keys receive evaluated values only; no targeting data."
          }
        />
      </div>
      {error ? (
        <ErrorBanner
          error={
            error instanceof ApiError && error.status === 400 && /is_production/.test(error.message)
              ? new Error("This control plane does not support the production marker yet.")
              : error
          }
        />
      ) : null}

      {editing && (
        <EnvironmentDialog
          projectId={env.project_id}
          env={env}
          supportsProduction={supportsProduction}
          onClose={() => setEditing(false)}
          onSaved={() => {
            setEditing(false);
            onChanged();
          }}
        />
      )}
      {confirmRules && (
        <ConfirmDialog
          title={`Let client keys read rules in ${env.name}?`}
          body={
            <>
              <p>
                Client keys live in browsers and mobile apps, where anyone can read them. With
                this on, those apps receive every flag&apos;s targeting rules and the segments
                they use — including any user ids, emails or other values in conditions.
              </p>
              <p>Only turn it on if you use an SDK that evaluates flags in the browser.</p>
            </>
          }
          confirmLabel="Allow client keys to read rules"
          onCancel={() => setConfirmRules(false)}
          onConfirm={async () => {
            await api.patch(base, { client_keys_read_rules: true });
            setConfirmRules(false);
            onChanged();
          }}
        />
      )}
      {deleting && (
        <DeleteEnvironmentDialog
          env={env}
          onCancel={() => setDeleting(false)}
          onDeleted={() => {
            setDeleting(false);
            onChanged();
          }}
        />
      )}
    </li>
  );
}

function DeleteEnvironmentDialog({
  env,
  onCancel,
  onDeleted,
}: {
  env: Environment;
  onCancel: () => void;
  onDeleted: () => void;
}) {
  const [impact, setImpact] = useState<EnvironmentImpact | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let live = true;
    environmentImpact(env)
      .then((i) => live && setImpact(i))
      .catch(() => live && setFailed(true));
    return () => {
      live = false;
    };
  }, [env]);
  return (
    <ConfirmDialog
      title={`Delete environment “${env.name}”?`}
      danger
      confirmLabel="Delete environment"
      onCancel={onCancel}
      onConfirm={async () => {
        await api.delete(`/api/projects/${seg(env.project_id)}/environments/${seg(env.id)}`);
        onDeleted();
      }}
      body={
        <>
          <p>This permanently deletes the environment and cannot be undone. It takes with it:</p>
          {impact ? (
            <ul className="loss-list">
              <li>
                <strong>{plural(impact.flags, "flag")}</strong> (their rules in this environment)
              </li>
              <li>
                <strong>{plural(impact.segments, "segment")}</strong>
              </li>
              <li>
                <strong>{plural(impact.sdkKeys, "SDK key")}</strong>
                {impact.sdkKeys > 0 && ": applications using them stop receiving flags"}
              </li>
            </ul>
          ) : failed ? (
            <p>Its flags, segments and SDK keys.</p>
          ) : (
            <p className="muted" role="status">
              Counting its flags and segments…
            </p>
          )}
          {env.is_production && (
            <p className="banner banner-warn">This is a production environment.</p>
          )}
        </>
      }
    />
  );
}

/** Creates an environment, or edits one's name, colour and production marker. */
function EnvironmentDialog({
  projectId,
  env,
  supportsProduction,
  onClose,
  onSaved,
}: {
  projectId: string;
  env?: Environment;
  supportsProduction: boolean;
  onClose: () => void;
  onSaved: () => void;
}) {
  const [name, setName] = useState(env?.name ?? "");
  const [slug, setSlug] = useState(env?.slug ?? "");
  const [slugTouched, setSlugTouched] = useState(!!env);
  const [color, setColor] = useState(env?.color ?? ENV_COLOURS[3].value);
  const [production, setProduction] = useState(!!env?.is_production);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const errs = formErrors(error, ["name", "slug", "color", "is_production", "environment"] as const);

  const slugOk = /^[a-z0-9][a-z0-9-]{0,49}$/.test(slug);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (env) {
        const body: Record<string, unknown> = {};
        if (name.trim() !== env.name) body.name = name.trim();
        if (color.toLowerCase() !== env.color.toLowerCase()) body.color = color;
        if (production !== !!env.is_production) body.is_production = production;
        if (Object.keys(body).length > 0) {
          await api.patch(`/api/projects/${seg(projectId)}/environments/${seg(env.id)}`, body);
        }
      } else {
        const body: Record<string, unknown> = { name: name.trim(), slug, color };
        // Sent only when set, so a control plane without the field still creates the rest.
        if (production) body.is_production = true;
        await api.post(`/api/projects/${seg(projectId)}/environments`, body);
      }
      onSaved();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <Modal title={env ? `Edit “${env.name}”` : "New environment"} onClose={onClose}>
      <form onSubmit={submit}>
        <Field
          label="Environment name"
          value={name}
          onChange={(e) => {
            setName(e.target.value);
            if (!slugTouched) setSlug(slugify(e.target.value));
          }}
          maxLength={100}
          required
          autoFocus
          placeholder="QA"
          error={errs.field.name ?? errs.field.environment}
        />
        {env ? (
          <p className="hint field">
            Slug <span className="mono">{env.slug}</span> (a slug cannot change)
          </p>
        ) : (
          <Field
            label="Slug"
            value={slug}
            className="mono"
            onChange={(e) => {
              setSlug(e.target.value);
              setSlugTouched(true);
            }}
            maxLength={50}
            required
            pattern="[a-z0-9][a-z0-9\-]{0,49}"
            hint="Lower-case letters, digits and dashes; unique in the project; cannot change later."
            error={
              errs.field.slug ?? (slug && !slugOk ? "Use a-z, 0-9 and '-', starting with a letter or digit." : undefined)
            }
          />
        )}
        <ColourPicker value={color} onChange={setColor} error={errs.field.color} />
        {supportsProduction && (
          <label className="check">
            <input type="checkbox" checked={production} onChange={(e) => setProduction(e.target.checked)} />
            Production environment
          </label>
        )}
        {errs.field.is_production && (
          <p className="error-text" role="alert">
            This control plane does not support the production marker yet ({errs.field.is_production}).
          </p>
        )}
        <ErrorBanner error={errs.rest} />
        <div className="actions">
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy || !name.trim() || (!env && !slugOk)}>
            {busy ? "Saving…" : env ? "Save environment" : "Create environment"}
          </button>
        </div>
      </form>
    </Modal>
  );
}

/** Preset swatches (radio buttons named by colour) and a free colour input. */
function ColourPicker({
  value,
  onChange,
  error,
}: {
  value: string;
  onChange: (c: string) => void;
  error?: string;
}) {
  const id = useId();
  return (
    <fieldset className="plain colour-picker">
      <legend>Colour</legend>
      <div className="swatches">
        {ENV_COLOURS.map((c) => (
          <label key={c.value} className="swatch" title={c.name}>
            <input
              type="radio"
              name={id}
              value={c.value}
              checked={value.toLowerCase() === c.value}
              onChange={() => onChange(c.value)}
            />
            <span className="swatch-dot" style={{ background: c.value }} aria-hidden="true" />
            <span className="visually-hidden">{c.name}</span>
          </label>
        ))}
        <label className="swatch-custom">
          <span>Custom colour</span>
          <input type="color" value={value} onChange={(e) => onChange(e.target.value)} />
        </label>
      </div>
      {error && (
        <p className="error-text" role="alert">
          {error}
        </p>
      )}
    </fieldset>
  );
}
