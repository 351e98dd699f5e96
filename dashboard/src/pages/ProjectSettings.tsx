export function ProjectSettingsPage() {
  return <section><h1>ProjectSettingsPage</h1></section>;
}
