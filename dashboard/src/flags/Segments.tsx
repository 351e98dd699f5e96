export function SegmentsPage() {
  return <section><h1>SegmentsPage</h1></section>;
}
