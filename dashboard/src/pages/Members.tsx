export function MembersPage() {
  return <section><h1>MembersPage</h1></section>;
}
