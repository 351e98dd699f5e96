export function EdgesPage() {
  return <section><h1>EdgesPage</h1></section>;
}
