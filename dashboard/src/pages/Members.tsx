// A project's members and their roles. Project admins add workspace users, change roles and
// remove members; everyone else sees the list.

import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { api, ApiError, seg } from "../api";
import { can, useProjectRole, useSession } from "../session";
import type { Member, Project, ProjectRole, User } from "../types";
import {
  ConfirmDialog,
  Empty,
  ErrorBanner,
  Field,
  LoadError,
  Loading,
  PageHeader,
  RoleBadge,
  SelectField,
  useLoad,
} from "../ui";
import "./pages.css";

export const PROJECT_ROLES: { role: ProjectRole; label: string; what: string }[] = [
  { role: "viewer", label: "Viewer", what: "reads flags, segments and the audit log" },
  { role: "editor", label: "Editor", what: "also changes flags and segments" },
  { role: "admin", label: "Admin", what: "also manages environments, keys and members" },
];

export function MembersPage() {
  const { projectId = "" } = useParams();
  const { user } = useSession();
  const role = useProjectRole(projectId);
  const isAdmin = can(role, "admin");
  const navigate = useNavigate();
  const project = useLoad(() => api.get<Project>(`/api/projects/${seg(projectId)}`), [projectId]);
  const members = useLoad(() => api.get<Member[]>(`/api/projects/${seg(projectId)}/members`), [projectId]);
  const [removing, setRemoving] = useState<Member | null>(null);
  const [demoting, setDemoting] = useState<{ member: Member; role: ProjectRole } | null>(null);
  const [rowBusy, setRowBusy] = useState<string | null>(null);
  const [rowError, setRowError] = useState<{ id: string; error: unknown } | null>(null);

  const setRole = async (m: Member, next: ProjectRole) => {
    setRowBusy(m.user_id);
    setRowError(null);
    try {
      await api.patch(`/api/projects/${seg(projectId)}/members/${seg(m.user_id)}`, { role: next });
      members.reload();
    } catch (error) {
      setRowError({ id: m.user_id, error });
    } finally {
      setRowBusy(null);
    }
  };

  const list = members.data ?? [];
  const projectName = project.data?.name ?? "this project";
  const isMe = (m: Member) => m.user_id === user?.id;
  // Workspace admins are admins everywhere; losing the project role does not lock them out.
  const selfLockout = (m: Member) => isMe(m) && user?.role !== "admin";

  return (
    <section className="page">
      <PageHeader
        title="Members"
        lead={
          <>
            Who can work in <strong>{projectName}</strong>, and what they may do. Workspace admins
            are admins of every project, listed or not.
          </>
        }
      />
      {members.error ? <LoadError error={members.error} /> : null}
      {!members.data && !members.error && <Loading what="Loading members…" />}
      {members.data && list.length === 0 && (
        <Empty title="No members yet">
          <p>{isAdmin ? "Add people from your workspace below." : "Only workspace admins have access so far."}</p>
        </Empty>
      )}
      {members.data && list.length > 0 && (
        <table className="responsive">
          <caption className="visually-hidden">Members of {projectName}</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Email</th>
              <th scope="col">Role</th>
              {isAdmin && (
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {list.map((m) => (
              <tr key={m.user_id}>
                <td data-label="Name" className="strong">
                  {m.name}
                  {isMe(m) && <span className="badge you">you</span>}
                </td>
                <td data-label="Email">{m.email}</td>
                <td data-label="Role">
                  {isAdmin ? (
                    <>
                      <select
                        aria-label={`Role of ${m.name}`}
                        value={m.role}
                        disabled={rowBusy === m.user_id}
                        onChange={(e) => {
                          const next = e.target.value as ProjectRole;
                          if (selfLockout(m) && next !== "admin") setDemoting({ member: m, role: next });
                          else void setRole(m, next);
                        }}
                      >
                        {PROJECT_ROLES.map((r) => (
                          <option key={r.role} value={r.role}>
                            {r.label}
                          </option>
                        ))}
                      </select>
                      {rowBusy === m.user_id && (
                        <span className="saved" role="status">
                          Saving…
                        </span>
                      )}
                      {rowError?.id === m.user_id && <ErrorBanner error={rowError.error} />}
                    </>
                  ) : (
                    <RoleBadge role={m.role} />
                  )}
                </td>
                {isAdmin && (
                  <td className="row-actions">
                    <button
                      type="button"
                      className="small danger-outline"
                      onClick={() => setRemoving(m)}
                      aria-label={`Remove ${m.name}`}
                    >
                      Remove
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <details className="roles-help">
        <summary>What the roles may do</summary>
        <ul>
          {PROJECT_ROLES.map((r) => (
            <li key={r.role}>
              <strong>{r.label}</strong>: {r.what}.
            </li>
          ))}
        </ul>
      </details>

      {isAdmin && members.data && (
        <AddMember projectId={projectId} members={list} onAdded={members.reload} />
      )}

      {removing && (
        <ConfirmDialog
          title={`Remove ${removing.name} from ${projectName}?`}
          danger
          confirmLabel="Remove member"
          onCancel={() => setRemoving(null)}
          onConfirm={async () => {
            await api.delete(`/api/projects/${seg(projectId)}/members/${seg(removing.user_id)}`);
            const wasMe = selfLockout(removing);
            setRemoving(null);
            if (wasMe) navigate("/projects", { replace: true });
            else members.reload();
          }}
          body={
            <>
              <p>
                {removing.name} ({removing.email}) loses access to this project&apos;s flags,
                segments and settings. Their workspace account stays, and so do their past
                changes in the audit log.
              </p>
              {selfLockout(removing) && (
                <p className="banner banner-warn">This is you: you will no longer see this project.</p>
              )}
            </>
          }
        />
      )}
      {demoting && (
        <ConfirmDialog
          title="Give up your admin role?"
          confirmLabel={`Become ${demoting.role}`}
          onCancel={() => setDemoting(null)}
          onConfirm={async () => {
            await api.patch(`/api/projects/${seg(projectId)}/members/${seg(demoting.member.user_id)}`, {
              role: demoting.role,
            });
            setDemoting(null);
            window.location.reload();
          }}
          body={
            <p>
              As {demoting.role === "editor" ? "an editor" : "a viewer"} you can no longer manage
              this project&apos;s members, environments or keys; another admin would have to give
              the role back.
            </p>
          }
        />
      )}
    </section>
  );
}

function AddMember({
  projectId,
  members,
  onAdded,
}: {
  projectId: string;
  members: Member[];
  onAdded: () => void;
}) {
  const { user } = useSession();
  const workspaceAdmin = user?.role === "admin";
  const users = useLoad(
    () => (workspaceAdmin ? api.get<User[]>("/api/users") : Promise.resolve(null)),
    [workspaceAdmin],
  );
  const [userId, setUserId] = useState("");
  const [role, setRole] = useState<ProjectRole>("editor");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [added, setAdded] = useState<string | null>(null);

  const memberIds = new Set(members.map((m) => m.user_id));
  const candidates = (users.data ?? []).filter((u) => !memberIds.has(u.id));
  const canList = workspaceAdmin && !users.error;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const id = userId.trim();
    if (!id) return;
    setBusy(true);
    setError(null);
    setAdded(null);
    try {
      await api.post(`/api/projects/${seg(projectId)}/members`, { user_id: id, role });
      const who = users.data?.find((u) => u.id === id)?.name ?? "The user";
      setAdded(`${who} was added as ${role}.`);
      setUserId("");
      onAdded();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const notFound = error instanceof ApiError && error.status === 404;
  const badId = error instanceof ApiError && error.status === 400 && /user id/.test(error.message);

  return (
    <>
      <h2 id="add-member-heading">Add a member</h2>
      <form className="card inline-form add-member" onSubmit={submit} aria-labelledby="add-member-heading">
        {canList ? (
          users.data && candidates.length === 0 ? (
            <p className="muted">
              Everyone in the workspace is already a member. Create more people on the{" "}
              <Link to="/users">Users</Link> page.
            </p>
          ) : (
            <SelectField label="Person" value={userId} onChange={(e) => setUserId(e.target.value)} required>
              <option value="">Choose a workspace user…</option>
              {candidates.map((u) => (
                <option key={u.id} value={u.id}>
                  {u.name} ({u.email})
                </option>
              ))}
            </SelectField>
          )
        ) : (
          <Field
            label="User ID"
            value={userId}
            onChange={(e) => setUserId(e.target.value)}
            className="mono"
            required
            hint="Only workspace admins can browse users: ask one for the person's user ID, or to add them."
            error={notFound ? "There is no user with that ID." : badId ? "That is not a user ID." : undefined}
          />
        )}
        <SelectField label="Role" value={role} onChange={(e) => setRole(e.target.value as ProjectRole)}>
          {PROJECT_ROLES.map((r) => (
            <option key={r.role} value={r.role}>
              {r.label} — {r.what}
            </option>
          ))}
        </SelectField>
        <button type="submit" className="primary" disabled={busy || !userId.trim()}>
          {busy ? "Adding…" : "Add member"}
        </button>
        {!notFound && !badId && <ErrorBanner error={error} />}
        {added && (
          <p className="saved" role="status">
            {added}
          </p>
        )}
      </form>
    </>
  );
}
