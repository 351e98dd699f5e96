export function FlagListPage() {
  return <section><h1>FlagListPage</h1></section>;
}
