export function UsersPage() {
  return <section><h1>UsersPage</h1></section>;
}
