export function KeysPage() {
  return <section><h1>KeysPage</h1></section>;
}
