export function FlagEditorPage() {
  return <section><h1>FlagEditorPage</h1></section>;
}
