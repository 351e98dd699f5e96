// The parts of a screen around its content: the title row, a loading line, empty states, and
// errors said plainly.

import type { ReactNode } from "react";
import { ApiError, describe } from "../api";

/** The title row of a screen, with its main actions on the right. */
export function PageHeader({
  title,
  children,
  lead,
}: {
  title: ReactNode;
  children?: ReactNode;
  lead?: ReactNode;
}) {
  return (
    <header className="page-header">
      <div className="page-title">
        <h1>{title}</h1>
        {lead && <p className="lead">{lead}</p>}
      </div>
      {children && <div className="page-actions">{children}</div>}
    </header>
  );
}

/** A loading line that screen readers announce. */
export function Loading({ what = "Loading…" }: { what?: string }) {
  return (
    <p className="loading" role="status">
      {what}
    </p>
  );
}

/** An empty state: what is missing and the next step. */
export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <p className="empty-title">{title}</p>
      {children && <div className="empty-body">{children}</div>}
    </div>
  );
}

/** A visible, announced error message; renders nothing without an error. */
export function ErrorBanner({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <div className="banner banner-error" role="alert">
      {describe(error)}
    </div>
  );
}

/** For a 403 or 404 when loading a screen: a plain statement instead of a raw error. */
export function LoadError({ error }: { error: unknown }) {
  if (error instanceof ApiError && error.status === 403) {
    return (
      <div className="banner banner-info" role="alert">
        You do not have access to this. {describe(error)}
      </div>
    );
  }
  if (error instanceof ApiError && error.status === 404) {
    return (
      <div className="banner banner-info" role="alert">
        This does not exist, or you are not a member of its project.
      </div>
    );
  }
  return <ErrorBanner error={error} />;
}
