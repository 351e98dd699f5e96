export function ProjectsPage() {
  return <section><h1>ProjectsPage</h1></section>;
}
