export function LoginPage() {
  return <section><h1>LoginPage</h1></section>;
}
