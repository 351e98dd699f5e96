export function AuditPage() {
  return <section><h1>AuditPage</h1></section>;
}
