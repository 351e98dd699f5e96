// The workspace's projects: open, create (workspace admins), rename, delete (workspace admins,
// after typing the project's name).

import { useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { api, seg } from "../api";
import { useSession } from "../session";
import type { Project, ProjectCreated } from "../types";
import {
  Empty,
  ErrorBanner,
  Field,
  formErrors,
  LoadError,
  Loading,
  Modal,
  PageHeader,
  TypeToConfirmDialog,
  useLoad,
  useNow,
  When,
} from "../ui";
import { plural, projectImpact, type ProjectImpact } from "./impact";
import "./pages.css";

export function ProjectsPage() {
  const { user } = useSession();
  const isAdmin = user?.role === "admin";
  const navigate = useNavigate();
  const now = useNow();
  const { data: projects, error, loading, reload } = useLoad(
    () => api.get<Project[]>("/api/projects"),
    [],
  );
  const [creating, setCreating] = useState(false);
  const [renaming, setRenaming] = useState<Project | null>(null);
  const [deleting, setDeleting] = useState<Project | null>(null);
  const [notice, setNotice] = useState<{ text: string; link?: string } | null>(null);

  return (
    <section className="page">
      <PageHeader
        title="Projects"
        lead="A project holds the flags of one product or app, in each of its environments."
      >
        {isAdmin && (
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            New project
          </button>
        )}
      </PageHeader>
      {notice && (
        <div className="banner banner-ok" role="status">
          {notice.text} {notice.link && <Link to={notice.link}>Open its flags</Link>}
        </div>
      )}
      {error ? <LoadError error={error} /> : null}
      {loading && !projects && <Loading what="Loading projects…" />}
      {projects && projects.length === 0 && (
        <Empty title="No projects yet">
          {isAdmin ? (
            <p>
              Create a project for each product or app whose features you want to control.{" "}
              <button type="button" className="link" onClick={() => setCreating(true)}>
                Create your first project
              </button>
            </p>
          ) : (
            <p>You are not a member of any project. Ask a workspace admin to add you to one.</p>
          )}
        </Empty>
      )}
      {projects && projects.length > 0 && (
        <table className="responsive">
          <caption className="visually-hidden">Projects</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Slug</th>
              <th scope="col">Environments</th>
              <th scope="col">Created</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {projects.map((p) => (
              <tr key={p.id}>
                <td data-label="Name">
                  <Link to={`/projects/${p.id}/envs`} className="strong">
                    {p.name}
                  </Link>
                </td>
                <td data-label="Slug" className="mono">
                  {p.slug}
                </td>
                <td data-label="Environments">{p.environment_count}</td>
                <td data-label="Created">
                  <When iso={p.created_at} now={now} />
                </td>
                <td className="row-actions">
                  <Link to={`/projects/${p.id}`} className="button small" aria-label={`Settings of ${p.name}`}>
                    Settings
                  </Link>
                  {isAdmin && (
                    <>
                      <button type="button" className="small" onClick={() => setRenaming(p)} aria-label={`Rename ${p.name}`}>
                        Rename
                      </button>
                      <button
                        type="button"
                        className="small danger-outline"
                        onClick={() => setDeleting(p)}
                        aria-label={`Delete ${p.name}`}
                      >
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

      {creating && (
        <CreateProjectDialog
          onClose={() => setCreating(false)}
          onCreated={(p) => {
            setCreating(false);
            setNotice({ text: `Project “${p.name}” created with ${p.environments.map((e) => e.name).join(", ")}.`, link: `/projects/${p.id}/envs` });
            reload();
            navigate(".", { replace: true }); // refreshes the project switcher
          }}
        />
      )}
      {renaming && (
        <RenameProjectDialog
          project={renaming}
          onClose={() => setRenaming(null)}
          onRenamed={(p) => {
            setRenaming(null);
            setNotice({ text: `Project renamed to “${p.name}”.` });
            reload();
            navigate(".", { replace: true });
          }}
        />
      )}
      {deleting && (
        <DeleteProjectDialog
          project={deleting}
          onCancel={() => setDeleting(null)}
          onDeleted={() => {
            setNotice({ text: `Project “${deleting.name}” deleted.` });
            setDeleting(null);
            reload();
            navigate(".", { replace: true });
          }}
        />
      )}
    </section>
  );
}

function CreateProjectDialog({
  onClose,
  onCreated,
}: {
  onClose: () => void;
  onCreated: (p: ProjectCreated) => void;
}) {
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const errs = formErrors(error, ["name", "project", "slug"] as const);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onCreated(await api.post<ProjectCreated>("/api/projects", { name: name.trim() }));
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <Modal title="New project" onClose={onClose}>
      <form onSubmit={submit}>
        <Field
          label="Project name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          maxLength={100}
          required
          autoFocus
          placeholder="Mobile app"
          hint="It starts with development, staging and production environments. Its slug is made from the name."
          error={errs.field.name ?? errs.field.project ?? errs.field.slug}
        />
        <ErrorBanner error={errs.rest} />
        <div className="actions">
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy || !name.trim()}>
            {busy ? "Creating…" : "Create project"}
          </button>
        </div>
      </form>
    </Modal>
  );
}

export function RenameProjectDialog({
  project,
  onClose,
  onRenamed,
}: {
  project: Project;
  onClose: () => void;
  onRenamed: (p: Project) => void;
}) {
  const [name, setName] = useState(project.name);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const errs = formErrors(error, ["name", "project", "slug"] as const);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onRenamed(await api.patch<Project>(`/api/projects/${seg(project.id)}`, { name: name.trim() }));
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <Modal title={`Rename “${project.name}”`} onClose={onClose}>
      <form onSubmit={submit}>
        <Field
          label="Project name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          maxLength={100}
          required
          autoFocus
          hint={`The slug stays “${project.slug}”, so nothing that refers to it breaks.`}
          error={errs.field.name ?? errs.field.project ?? errs.field.slug}
        />
        <ErrorBanner error={errs.rest} />
        <div className="actions">
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy || !name.trim() || name.trim() === project.name}>
            {busy ? "Saving…" : "Save name"}
          </button>
        </div>
      </form>
    </Modal>
  );
}

/** Names everything the project takes with it and asks for its name before deleting it. */
export function DeleteProjectDialog({
  project,
  onCancel,
  onDeleted,
}: {
  project: Project;
  onCancel: () => void;
  onDeleted: () => void;
}) {
  const [impact, setImpact] = useState<ProjectImpact | null>(null);
  const [impactError, setImpactError] = useState<unknown>(null);
  useEffect(() => {
    let live = true;
    projectImpact(project.id)
      .then((i) => live && setImpact(i))
      .catch((e) => live && setImpactError(e));
    return () => {
      live = false;
    };
  }, [project.id]);
  const totals = impact?.environments.reduce(
    (t, e) => ({ flags: t.flags + e.flags, segments: t.segments + e.segments, keys: t.keys + e.sdkKeys }),
    { flags: 0, segments: 0, keys: 0 },
  );
  return (
    <TypeToConfirmDialog
      title={`Delete project “${project.name}”?`}
      expected={project.name}
      inputLabel="Type the project name to confirm"
      confirmLabel="Delete project"
      onCancel={onCancel}
      onConfirm={async () => {
        await api.delete(`/api/projects/${seg(project.id)}`);
        onDeleted();
      }}
      body={
        <>
          <p>
            This permanently deletes the project and everything in it. It cannot be undone.
          </p>
          {impactError ? (
            <p className="muted">
              Its environments, flags, segments, SDK keys and API tokens are all deleted.
            </p>
          ) : !impact || !totals ? (
            <p className="muted" role="status">
              Counting what the project holds…
            </p>
          ) : (
            <ul className="loss-list">
              <li>
                <strong>{plural(impact.environments.length, "environment")}</strong>
                {impact.environments.length > 0 && (
                  <>: {impact.environments.map((e) => e.environment.name).join(", ")}</>
                )}
              </li>
              <li>
                <strong>{plural(totals.flags, "flag")}</strong> and{" "}
                <strong>{plural(totals.segments, "segment")}</strong> across them
              </li>
              <li>
                <strong>{plural(totals.keys, "SDK key")}</strong>
                {totals.keys > 0 && ": applications using them stop receiving flags"}
              </li>
              <li>
                <strong>{plural(impact.apiTokens, "API token")}</strong>
                {impact.apiTokens > 0 && ": automation using them stops working"}
              </li>
              <li>its member list</li>
            </ul>
          )}
          <p className="hint dialog-note">The audit log keeps the record of past changes.</p>
        </>
      }
    />
  );
}
