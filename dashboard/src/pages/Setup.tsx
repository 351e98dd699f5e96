// First run: names the workspace, its first project and its first admin, then signs them in.

import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router-dom";
import { api, ApiError } from "../api";
import { useSession } from "../session";
import type { UserInfo } from "../types";
import { ErrorBanner, Field, formErrors } from "../ui";
import "./pages.css";

export function SetupPage() {
  const { setUser, refresh } = useSession();
  const navigate = useNavigate();
  const [form, setForm] = useState({
    workspace_name: "",
    project_name: "",
    name: "",
    email: "",
    password: "",
  });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [tried, setTried] = useState(false);
  const set = (k: keyof typeof form) => (e: { target: { value: string } }) =>
    setForm((f) => ({ ...f, [k]: e.target.value }));

  const problems = {
    workspace_name: form.workspace_name.trim() ? undefined : "Name your workspace (your company or team).",
    name: form.name.trim() ? undefined : "Enter your name.",
    email: /^\S+@\S+\.\S+$/.test(form.email.trim()) ? undefined : "Enter a valid email address.",
    password: form.password.length >= 8 ? undefined : "Use at least 8 characters.",
  };
  const server = formErrors(error, ["workspace_name", "project_name", "name", "email", "password"] as const);
  const serverProblem = (f: keyof typeof server.field) => server.field[f];

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setTried(true);
    if (Object.values(problems).some(Boolean)) return;
    setBusy(true);
    setError(null);
    try {
      const user = await api.post<UserInfo>("/api/setup/complete", {
        workspace_name: form.workspace_name.trim(),
        project_name: form.project_name.trim() || null,
        name: form.name.trim(),
        email: form.email.trim(),
        password: form.password,
      });
      // Go home first, while this page still answers every address; then sign in once. The
      // home page then finds the first project's flags and goes there, and nothing navigates
      // after it (a late navigation to "/" could land on an empty page).
      navigate("/", { replace: true });
      await refresh().catch(() => setUser(user));
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <div className="auth-page auth-wide">
      <h1>Welcome to Checkgate</h1>
      <p className="lead">
        Set up your workspace. You will be its first administrator; you can invite others
        afterwards.
      </p>
      <form className="card" onSubmit={submit} noValidate aria-label="Set up Checkgate">
        <fieldset className="plain">
          <legend>Workspace</legend>
          <Field
            label="Workspace name"
            value={form.workspace_name}
            onChange={set("workspace_name")}
            maxLength={100}
            autoFocus
            placeholder="Acme Inc."
            error={(tried ? problems.workspace_name : undefined) ?? serverProblem("workspace_name")}
          />
          <Field
            label="First project name"
            value={form.project_name}
            onChange={set("project_name")}
            maxLength={100}
            placeholder="Default Project"
            hint="A project holds flags for one product or app, with development, staging and production environments. Leave empty for “Default Project”."
            error={serverProblem("project_name")}
          />
        </fieldset>
        <fieldset className="plain">
          <legend>Your admin account</legend>
          <Field
            label="Your name"
            value={form.name}
            onChange={set("name")}
            maxLength={100}
            autoComplete="name"
            error={(tried ? problems.name : undefined) ?? serverProblem("name")}
          />
          <Field
            label="Email"
            type="email"
            value={form.email}
            onChange={set("email")}
            autoComplete="email"
            maxLength={254}
            error={(tried ? problems.email : undefined) ?? serverProblem("email")}
          />
          <Field
            label="Password"
            type="password"
            value={form.password}
            onChange={set("password")}
            autoComplete="new-password"
            hint="At least 8 characters."
            error={(tried ? problems.password : undefined) ?? serverProblem("password")}
          />
        </fieldset>
        {error instanceof ApiError && error.status === 404 ? (
          <div className="banner banner-info" role="alert">
            This workspace is already set up.{" "}
            <button type="button" className="link" onClick={() => refresh().then(() => navigate("/login"))}>
              Go to sign in
            </button>
          </div>
        ) : (
          <ErrorBanner error={server.rest} />
        )}
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Setting up…" : "Create workspace"}
          </button>
        </div>
      </form>
    </div>
  );
}
