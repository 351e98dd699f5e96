// The lists of credentials that are shown by prefix only: SDK keys, API tokens and edge tokens.
// `TokenTable` is the table (revoked ones hidden until asked); `TokenSection` is a whole section
// around it: heading and New button, loading and empty states, the create dialog the caller
// supplies, the secret shown once, and revoking after a confirmation.

import { useState, type ReactNode } from "react";
import { api } from "../api";
import { ConfirmDialog, Empty, LoadError, Loading, SecretDialog, useNow, When } from "../ui";
import "./pages.css";

/** What every credential in these lists has. */
export interface Token {
  id: string;
  name: string;
  prefix: string;
  created_at: string;
  revoked_at: string | null;
}

/** A column of the table between the prefix and the creation time. */
export interface TokenColumn<T> {
  header: string;
  cell: (token: T) => ReactNode;
}

const capitalized = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

export interface TokenTableProps<T extends Token> {
  tokens: T[];
  /** The id of the heading that names the table. */
  headingId: string;
  /** What one is called: "SDK key", "API token", "edge token". */
  noun: string;
  /** The short word for several: "keys" or "tokens". */
  short: string;
  /** The header of the prefix column: "Key" or "Token". */
  prefixHeader: string;
  columns: TokenColumn<T>[];
  /** The column of the last use ("Last used", "Last seen"), when the list has one. */
  lastUse?: { header: string; at: (token: T) => string | null | undefined };
  canRevoke: boolean;
  onRevoke: (token: T) => void;
}

/**
 * Credentials by name and prefix, with the caller's columns, when each was created (and last
 * used, where the list knows it), and a Revoke button or the time it was revoked. Revoked ones
 * are hidden behind a checkbox that counts them.
 */
export function TokenTable<T extends Token>({
  tokens,
  headingId,
  noun,
  short,
  prefixHeader,
  columns,
  lastUse,
  canRevoke,
  onRevoke,
}: TokenTableProps<T>) {
  const now = useNow();
  const [showRevoked, setShowRevoked] = useState(false);
  const revokedCount = tokens.filter((t) => t.revoked_at).length;
  const shown = tokens.filter((t) => showRevoked || !t.revoked_at);
  return (
    <>
      {shown.length === 0 && <p className="muted">No active ones: every one has been revoked.</p>}
      {shown.length > 0 && (
        <table className="responsive" aria-labelledby={headingId}>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">{prefixHeader}</th>
              {columns.map((c) => (
                <th key={c.header} scope="col">
                  {c.header}
                </th>
              ))}
              <th scope="col">Created</th>
              {lastUse && <th scope="col">{lastUse.header}</th>}
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
                <td data-label={prefixHeader} className="mono">
                  {t.prefix}
                </td>
                {columns.map((c) => (
                  <td key={c.header} data-label={c.header}>
                    {c.cell(t)}
                  </td>
                ))}
                <td data-label="Created">
                  <When iso={t.created_at} now={now} />
                </td>
                {lastUse && (
                  <td data-label={lastUse.header}>
                    <When iso={lastUse.at(t)} now={now} />
                  </td>
                )}
                <td className="row-actions">
                  {t.revoked_at ? (
                    <span className="badge danger">
                      revoked <When iso={t.revoked_at} now={now} />
                    </span>
                  ) : (
                    canRevoke && (
                      <button
                        type="button"
                        className="small danger-outline"
                        onClick={() => onRevoke(t)}
                        aria-label={`Revoke ${noun} ${t.name}`}
                      >
                        Revoke
                      </button>
                    )
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
          Show revoked {short} ({revokedCount})
        </label>
      )}
    </>
  );
}

/**
 * A section listing one kind of credential: its heading and New button, the table, and the
 * dialogs to create one (the caller's form), to show its secret once, and to revoke one.
 */
export function TokenSection<T extends Token, C extends T>({
  list,
  lead,
  loadingText,
  empty,
  canManage,
  newDisabled,
  renderCreate,
  secret,
  revoke,
  ...table
}: Omit<TokenTableProps<T>, "tokens" | "canRevoke" | "onRevoke"> & {
  list: { data: T[] | undefined; error: unknown; reload: () => void };
  /** What the credential is for, under the heading. */
  lead: ReactNode;
  loadingText: string;
  empty: { title: string; body: ReactNode };
  /** Whether the user may create and revoke them. */
  canManage: boolean;
  newDisabled?: boolean;
  /** The form that creates one; it calls `created` with the server's answer. */
  renderCreate: (close: () => void, created: (c: C) => void) => ReactNode;
  /** The secret of a new one, shown once. */
  secret: { value: (c: C) => string; body: (c: C) => ReactNode };
  revoke: { confirmLabel: string; url: (t: T) => string; body: (t: T) => ReactNode };
}) {
  const { headingId, noun } = table;
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<C | null>(null);
  const [revoking, setRevoking] = useState<T | null>(null);
  const all = list.data ?? [];
  return (
    <>
      <div className="section-header">
        <h2 id={headingId}>{capitalized(noun)}s</h2>
        {canManage && (
          <button type="button" className="primary" onClick={() => setCreating(true)} disabled={newDisabled}>
            New {noun}
          </button>
        )}
      </div>
      <p className="hint section-lead">{lead}</p>
      {list.error ? <LoadError error={list.error} /> : null}
      {!list.data && !list.error && <Loading what={loadingText} />}
      {list.data && all.length === 0 && <Empty title={empty.title}>{empty.body}</Empty>}
      {list.data && all.length > 0 && (
        <TokenTable {...table} tokens={all} canRevoke={canManage} onRevoke={setRevoking} />
      )}

      {creating &&
        renderCreate(
          () => setCreating(false),
          (c) => {
            setCreating(false);
            setCreated(c);
            list.reload();
          },
        )}
      {created && (
        <SecretDialog
          title={`${capitalized(noun)} created`}
          label={capitalized(noun)}
          secret={secret.value(created)}
          onClose={() => setCreated(null)}
        >
          {secret.body(created)}
        </SecretDialog>
      )}
      {revoking && (
        <ConfirmDialog
          title={`Revoke ${noun} “${revoking.name}”?`}
          danger
          confirmLabel={revoke.confirmLabel}
          onCancel={() => setRevoking(null)}
          onConfirm={async () => {
            await api.delete(revoke.url(revoking));
            setRevoking(null);
            list.reload();
          }}
          body={revoke.body(revoking)}
        />
      )}
    </>
  );
}
