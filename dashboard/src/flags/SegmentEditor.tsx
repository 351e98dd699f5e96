export function SegmentEditorPage() {
  return <section><h1>SegmentEditorPage</h1></section>;
}
