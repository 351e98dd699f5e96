// The workspace's people (workspace admins): create with an initial password and a workspace
// role, change the role, delete.

import { useState, type FormEvent } from "react";
import { Link } from "react-router-dom";
import { api, seg } from "../api";
import { useSession } from "../session";
import type { User, WorkspaceRole } from "../types";
import {
  ConfirmDialog,
  Empty,
  ErrorBanner,
  Field,
  formErrors,
  LoadError,
  Loading,
  Modal,
  PageHeader,
  SelectField,
  useLoad,
  useNow,
  When,
} from "../ui";
import "./pages.css";

/** A random password of 20 characters from an unambiguous alphabet (crypto-strong). */
export function generatePassword(length = 20): string {
  const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  const bytes = new Uint32Array(length);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

export function UsersPage() {
  const { user: me, refresh } = useSession();
  const now = useNow();
  const users = useLoad(() => api.get<User[]>("/api/users"), []);
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState<User | null>(null);
  const [demotingSelf, setDemotingSelf] = useState<User | null>(null);
  const [rowBusy, setRowBusy] = useState<string | null>(null);
  const [rowError, setRowError] = useState<{ id: string; error: unknown } | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  if (me && me.role !== "admin") {
    return (
      <section className="page">
        <PageHeader title="Users" />
        <div className="banner banner-info" role="alert">
          Only workspace admins manage users.
        </div>
      </section>
    );
  }

  const setRole = async (u: User, role: WorkspaceRole) => {
    setRowBusy(u.id);
    setRowError(null);
    try {
      await api.patch(`/api/users/${seg(u.id)}`, { role });
      users.reload();
      if (u.id === me?.id) await refresh();
    } catch (error) {
      setRowError({ id: u.id, error });
    } finally {
      setRowBusy(null);
    }
  };

  const list = users.data ?? [];
  const adminCount = list.filter((u) => u.role === "admin").length;

  return (
    <section className="page">
      <PageHeader
        title="Users"
        lead="Everyone who can sign in to this workspace. Members see only the projects they are added to; admins manage everything."
      >
        <button type="button" className="primary" onClick={() => setCreating(true)}>
          New user
        </button>
      </PageHeader>
      {notice && (
        <div className="banner banner-ok" role="status">
          {notice} Add them to projects from each project&apos;s <strong>Members</strong> page, or
          see <Link to="/projects">Projects</Link>.
        </div>
      )}
      {users.error ? <LoadError error={users.error} /> : null}
      {!users.data && !users.error && <Loading what="Loading users…" />}
      {users.data && list.length === 0 && <Empty title="No users" />}
      {users.data && list.length > 0 && (
        <table className="responsive">
          <caption className="visually-hidden">Users</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Email</th>
              <th scope="col">Workspace role</th>
              <th scope="col">Created</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.map((u) => {
              const self = u.id === me?.id;
              const lastAdmin = u.role === "admin" && adminCount <= 1;
              return (
                <tr key={u.id}>
                  <td data-label="Name" className="strong">
                    {u.name}
                    {self && <span className="badge you">you</span>}
                  </td>
                  <td data-label="Email">{u.email}</td>
                  <td data-label="Workspace role">
                    <select
                      aria-label={`Workspace role of ${u.name}`}
                      value={u.role}
                      disabled={rowBusy === u.id || lastAdmin}
                      title={lastAdmin ? "The workspace needs at least one admin." : undefined}
                      onChange={(e) => {
                        const next = e.target.value as WorkspaceRole;
                        if (self && next !== "admin") setDemotingSelf(u);
                        else void setRole(u, next);
                      }}
                    >
                      <option value="member">Member</option>
                      <option value="admin">Admin</option>
                    </select>
                    {rowBusy === u.id && (
                      <span className="saved" role="status">
                        Saving…
                      </span>
                    )}
                    {rowError?.id === u.id && <ErrorBanner error={rowError.error} />}
                  </td>
                  <td data-label="Created">
                    <When iso={u.created_at} now={now} />
                  </td>
                  <td className="row-actions">
                    <button
                      type="button"
                      className="small danger-outline"
                      disabled={self}
                      title={self ? "You cannot delete yourself." : undefined}
                      onClick={() => setDeleting(u)}
                      aria-label={`Delete ${u.name}`}
                    >
                      Delete
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}

      {creating && (
        <CreateUserDialog
          onClose={() => setCreating(false)}
          onCreated={(u) => {
            setCreating(false);
            setNotice(`${u.name} (${u.email}) can now sign in with the password you set.`);
            users.reload();
          }}
        />
      )}
      {deleting && (
        <ConfirmDialog
          title={`Delete ${deleting.name}?`}
          danger
          confirmLabel="Delete user"
          onCancel={() => setDeleting(null)}
          onConfirm={async () => {
            await api.delete(`/api/users/${seg(deleting.id)}`);
            setDeleting(null);
            setNotice(null);
            users.reload();
          }}
          body={
            <p>
              {deleting.name} ({deleting.email}) is signed out everywhere at once and loses
              access to every project. Their past changes stay in the audit log. This cannot be
              undone.
            </p>
          }
        />
      )}
      {demotingSelf && (
        <ConfirmDialog
          title="Give up workspace admin?"
          confirmLabel="Become a member"
          onCancel={() => setDemotingSelf(null)}
          onConfirm={async () => {
            await api.patch(`/api/users/${seg(demotingSelf.id)}`, { role: "member" });
            setDemotingSelf(null);
            await refresh();
          }}
          body={
            <p>
              You will see only the projects you are a member of, and can no longer manage users,
              projects or edges. Another admin would have to make you an admin again.
            </p>
          }
        />
      )}
    </section>
  );
}

function CreateUserDialog({ onClose, onCreated }: { onClose: () => void; onCreated: (u: User) => void }) {
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [reveal, setReveal] = useState(false);
  const [role, setRole] = useState<WorkspaceRole>("member");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const errs = formErrors(error, ["name", "email", "password", "role"] as const);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const created = await api.post<User>("/api/users", {
        name: name.trim(),
        email: email.trim(),
        password,
        role,
      });
      onCreated(created);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <Modal title="New user" onClose={onClose}>
      <form onSubmit={submit} noValidate>
        <Field
          label="Name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          maxLength={100}
          required
          autoFocus
          autoComplete="off"
          error={errs.field.name}
        />
        <Field
          label="Email"
          type="email"
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          maxLength={254}
          required
          autoComplete="off"
          error={errs.field.email}
        />
        <div className="field-with-action">
          <Field
            label="Initial password"
            type={reveal ? "text" : "password"}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            minLength={8}
            required
            autoComplete="new-password"
            hint="At least 8 characters. Give it to them securely; they can change it on their Account page."
            error={errs.field.password ?? (password && password.length < 8 ? "Use at least 8 characters." : undefined)}
          />
          <div className="field-actions">
            <button
              type="button"
              className="small"
              onClick={() => {
                setPassword(generatePassword());
                setReveal(true);
              }}
            >
              Generate
            </button>
            <button type="button" className="small" aria-pressed={reveal} onClick={() => setReveal((r) => !r)}>
              {reveal ? "Hide" : "Show"}
            </button>
          </div>
        </div>
        <SelectField
          label="Workspace role"
          value={role}
          onChange={(e) => setRole(e.target.value as WorkspaceRole)}
          hint={
            role === "admin"
              ? "Admins see and manage every project, user and edge."
              : "Members see only the projects they are added to."
          }
          error={errs.field.role}
        >
          <option value="member">Member</option>
          <option value="admin">Admin</option>
        </SelectField>
        <ErrorBanner error={errs.rest} />
        <div className="actions">
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy || !name.trim() || !email.trim() || password.length < 8}>
            {busy ? "Creating…" : "Create user"}
          </button>
        </div>
      </form>
    </Modal>
  );
}
