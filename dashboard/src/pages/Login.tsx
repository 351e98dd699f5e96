// Sign in. Wrong credentials and throttling (429, with the time until another attempt) are
// said plainly; the button waits out the throttle.

import { startTransition, useEffect, useState, type FormEvent, type ReactNode } from "react";
import { useLocation, useNavigate } from "react-router-dom";
import { api, ApiError } from "../api";
import { useSession } from "../session";
import type { UserInfo } from "../types";
import { ErrorBanner, Field } from "../ui";
import "./pages.css";

/** Seconds to wait from a 429's message ("… try again in 42 seconds"); undefined otherwise. */
export function retryAfterSeconds(e: unknown): number | undefined {
  if (!(e instanceof ApiError) || e.status !== 429) return undefined;
  const m = /(\d+)\s*second/.exec(e.message);
  return m ? Number(m[1]) : 60;
}

/** "4 minutes 12 seconds", "1 minute", "30 seconds". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  const m = Math.floor(s / 60);
  const r = s % 60;
  const part = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`;
  if (m === 0) return part(r, "second");
  return r === 0 ? part(m, "minute") : `${part(m, "minute")} ${part(r, "second")}`;
}

export function LoginPage() {
  const { setUser, refresh, workspace } = useSession();
  const navigate = useNavigate();
  const location = useLocation();
  const from = (location.state as { from?: string } | null)?.from;
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [retryUntil, setRetryUntil] = useState<number | null>(null);
  const [now, setNow] = useState(() => Date.now());

  useEffect(() => {
    if (retryUntil === null) return;
    const t = setInterval(() => {
      const n = Date.now();
      setNow(n);
      if (n >= retryUntil) {
        setRetryUntil(null);
        setError(null);
      }
    }, 1000);
    return () => clearInterval(t);
  }, [retryUntil]);

  const waiting = retryUntil !== null && now < retryUntil;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy || waiting) return;
    setBusy(true);
    setError(null);
    try {
      const user = await api.post<UserInfo>("/api/auth/login", { email: email.trim(), password });
      // One render for both: the router's navigation is a transition, and the signed-in
      // routes must not first see "/login" (which sends to "/").
      startTransition(() => {
        setUser(user);
        navigate(from && from !== "/login" ? from : "/", { replace: true });
      });
      refresh().catch(() => undefined);
    } catch (err) {
      const wait = retryAfterSeconds(err);
      if (wait !== undefined) {
        const n = Date.now();
        setNow(n);
        setRetryUntil(n + wait * 1000);
      }
      setError(err);
      setBusy(false);
    }
  };

  let message: ReactNode = null;
  if (error instanceof ApiError && error.status === 401) {
    message = (
      <div className="banner banner-error" role="alert">
        <strong>That email and password do not match.</strong> Check both and try again; after 5
        failed attempts sign-in pauses for a while.
      </div>
    );
  } else if (error instanceof ApiError && error.status === 429) {
    const left = retryUntil ? (retryUntil - now) / 1000 : 0;
    message = (
      <div className="banner banner-warn" role="alert">
        <strong>Too many failed sign-in attempts.</strong>{" "}
        {left > 0 ? (
          <>
            You can try again in <span className="nowrap">{duration(left)}</span>
            {retryUntil && <> (at {new Date(retryUntil).toLocaleTimeString()})</>}.
          </>
        ) : (
          "You can try again now."
        )}
      </div>
    );
  } else if (error) {
    message = <ErrorBanner error={error} />;
  }

  return (
    <div className="auth-page">
      <h1>Sign in{workspace?.workspace_name ? ` to ${workspace.workspace_name}` : ""}</h1>
      <form className="card" onSubmit={submit} aria-label="Sign in">
        <Field
          label="Email"
          type="email"
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          autoComplete="username"
          autoFocus
          required
        />
        <Field
          label="Password"
          type="password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          autoComplete="current-password"
          required
        />
        {message}
        <div className="actions">
          <button type="submit" className="primary wide" disabled={busy || waiting}>
            {busy ? "Signing in…" : "Sign in"}
          </button>
        </div>
        <p className="hint">Forgot your password? Ask a workspace admin for help.</p>
      </form>
    </div>
  );
}
