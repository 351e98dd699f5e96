export function SetupPage() {
  return <section><h1>SetupPage</h1></section>;
}
