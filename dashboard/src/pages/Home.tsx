export function HomeRedirect() {
  return null;
}
export function ProjectHome() {
  return null;
}
