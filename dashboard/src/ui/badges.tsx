// Small labels: a role, and an environment with its colour.

/** A role badge with a word, not only a colour. */
export function RoleBadge({ role }: { role: string }) {
  return <span className={`badge role role-${role}`}>{role}</span>;
}

/** An environment's colour dot and name. */
export function EnvName({ name, color, production }: { name: string; color?: string; production?: boolean }) {
  return (
    <span className="env-name">
      <span className="env-dot" style={{ background: color ?? "#6366f1" }} aria-hidden="true" />
      {name}
      {production && <span className="badge prod">production</span>}
    </span>
  );
}
