// The signed-in user's account: who they are, and a password change that ends their other
// sessions.

import { useState, type FormEvent } from "react";
import { ApiError } from "../api";
import { useSession } from "../session";
import { ErrorBanner, Field, PageHeader, RoleBadge } from "../ui";
import { duration, retryAfterSeconds } from "./Login";
import "./pages.css";

/**
 * POST /api/auth/password. Not through `api`: a wrong current password is a 401
 * (`invalid_credentials`), which `api` would take for an ended session and sign the user out.
 */
async function changePassword(current_password: string, new_password: string): Promise<void> {
  let response: Response;
  try {
    response = await fetch("/api/auth/password", {
      method: "POST",
      headers: {
        Accept: "application/json",
        "Content-Type": "application/json",
        "X-Checkgate-Request": "1",
      },
      credentials: "same-origin",
      body: JSON.stringify({ current_password, new_password }),
    });
  } catch {
    throw new ApiError(0, "network", "The control plane could not be reached.");
  }
  if (response.ok) return;
  let body: { error?: { code?: string; message?: string } } | undefined;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  throw new ApiError(
    response.status,
    body?.error?.code ?? "http_" + response.status,
    body?.error?.message ?? `The server answered ${response.status}.`,
  );
}

export function AccountPage() {
  const { user } = useSession();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [confirm, setConfirm] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [tried, setTried] = useState(false);
  const [done, setDone] = useState(false);

  if (!user) return null;

  const tooShort = next.length < 8 ? "Use at least 8 characters." : undefined;
  const mismatch = confirm !== next ? "The two new passwords differ." : undefined;
  const wrongCurrent =
    error instanceof ApiError && error.status === 401 ? "That is not your current password." : undefined;
  const wait = retryAfterSeconds(error);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setTried(true);
    setDone(false);
    if (tooShort || mismatch || !current) return;
    setBusy(true);
    setError(null);
    try {
      await changePassword(current, next);
      setDone(true);
      setCurrent("");
      setNext("");
      setConfirm("");
      setTried(false);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="page narrow">
      <PageHeader title="Your account" />
      <div className="card">
        <dl className="facts">
          <dt>Name</dt>
          <dd>{user.name}</dd>
          <dt>Email</dt>
          <dd>{user.email}</dd>
          <dt>Workspace</dt>
          <dd>
            {user.workspace_name} <RoleBadge role={user.role === "admin" ? "workspace admin" : "member"} />
          </dd>
        </dl>
      </div>

      <h2 id="password-heading">Change password</h2>
      <form className="card" onSubmit={submit} aria-labelledby="password-heading" noValidate>
        <p className="hint form-lead">
          Changing your password signs you out of every other browser and device where you are
          signed in. This session stays signed in.
        </p>
        <Field
          label="Current password"
          type="password"
          autoComplete="current-password"
          value={current}
          onChange={(e) => setCurrent(e.target.value)}
          error={wrongCurrent ?? (tried && !current ? "Enter your current password." : undefined)}
        />
        <Field
          label="New password"
          type="password"
          autoComplete="new-password"
          value={next}
          onChange={(e) => setNext(e.target.value)}
          hint="At least 8 characters."
          error={tried ? tooShort : undefined}
        />
        <Field
          label="Confirm new password"
          type="password"
          autoComplete="new-password"
          value={confirm}
          onChange={(e) => setConfirm(e.target.value)}
          error={tried ? mismatch : undefined}
        />
        {wait !== undefined ? (
          <div className="banner banner-warn" role="alert">
            Too many wrong passwords. Try again in {duration(wait)}.
          </div>
        ) : (
          !wrongCurrent && <ErrorBanner error={error} />
        )}
        {done && (
          <div className="banner banner-ok" role="status">
            Password changed. Your other sessions have been signed out.
          </div>
        )}
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Changing…" : "Change password"}
          </button>
        </div>
      </form>
    </section>
  );
}
