// The frame around every signed-in screen: the workspace, a project and environment switcher,
// navigation, and the account menu. Collapses to a menu button on narrow windows.

import { useEffect, useState } from "react";
import { Link, NavLink, Outlet, matchPath, useLocation, useNavigate } from "react-router-dom";
import { api } from "./api";
import { mayLeave } from "./leave";
import { can, useProjectRole, useSession } from "./session";
import type { Environment, Project } from "./types";

/** The project and environment the current address is about, if any. */
export function useScope(): { projectId?: string; envId?: string } {
  const { pathname } = useLocation();
  const inEnv = matchPath("/projects/:projectId/envs/:envId/*", pathname);
  if (inEnv) return { projectId: inEnv.params.projectId, envId: inEnv.params.envId };
  const inProject =
    matchPath("/projects/:projectId/*", pathname) ?? matchPath("/projects/:projectId", pathname);
  return { projectId: inProject?.params.projectId };
}

/** The environment last opened in a project, remembered for this browser tab only. */
const lastEnvKey = (projectId: string) => `checkgate.env.${projectId}`;
export function rememberEnv(projectId: string, envId: string) {
  sessionStorage.setItem(lastEnvKey(projectId), envId);
}
export function rememberedEnv(projectId: string): string | null {
  return sessionStorage.getItem(lastEnvKey(projectId));
}

export function Layout() {
  const { user, signOut } = useSession();
  const { projectId, envId } = useScope();
  const navigate = useNavigate();
  const location = useLocation();
  const [projects, setProjects] = useState<Project[]>([]);
  const [envs, setEnvs] = useState<Environment[]>([]);
  const [menuOpen, setMenuOpen] = useState(false);
  const role = useProjectRole(projectId);

  useEffect(() => {
    api.get<Project[]>("/api/projects").then(setProjects).catch(() => setProjects([]));
  }, [location.key]);
  useEffect(() => {
    if (!projectId) {
      setEnvs([]);
      return;
    }
    api
      .get<Environment[]>(`/api/projects/${encodeURIComponent(projectId)}/environments`)
      .then(setEnvs)
      .catch(() => setEnvs([]));
  }, [projectId, location.key]);
  useEffect(() => {
    if (projectId && envId) rememberEnv(projectId, envId);
  }, [projectId, envId]);
  useEffect(() => setMenuOpen(false), [location.pathname]);

  const env = envs.find((e) => e.id === envId);
  const currentEnv = env ?? envs.find((e) => e.is_default) ?? envs[0];
  const envBase = projectId && currentEnv ? `/projects/${projectId}/envs/${currentEnv.id}` : null;

  return (
    <div className="app">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link to="/" className="brand">
          Checkgate <span className="workspace">{user?.workspace_name}</span>
        </Link>
        <button
          type="button"
          className="menu-button"
          aria-expanded={menuOpen}
          aria-controls="sidebar"
          onClick={() => setMenuOpen((o) => !o)}
        >
          Menu
        </button>
        <div className="scope">
          <label>
            <span className="visually-hidden">Project</span>
            <select
              aria-label="Project"
              value={projectId ?? ""}
              onChange={(e) => e.target.value && mayLeave() && navigate(`/projects/${e.target.value}/envs`)}
            >
              {!projectId && <option value="">Choose a project…</option>}
              {projects.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.name}
                </option>
              ))}
            </select>
          </label>
          {projectId && envs.length > 0 && (
            <label>
              <span className="visually-hidden">Environment</span>
              <select
                aria-label="Environment"
                value={currentEnv?.id ?? ""}
                style={{ borderColor: currentEnv?.color }}
                onChange={(e) => {
                  if (!mayLeave()) return;
                  const rest = envId
                    ? location.pathname.split(`/envs/${envId}/`)[1]?.split("/")[0] ?? "flags"
                    : "flags";
                  navigate(`/projects/${projectId}/envs/${e.target.value}/${rest}`);
                }}
              >
                {envs.map((e) => (
                  <option key={e.id} value={e.id}>
                    {e.name}
                  </option>
                ))}
              </select>
            </label>
          )}
        </div>
        <nav className="account" aria-label="Account">
          <NavLink to="/account">{user?.name}</NavLink>
          <button type="button" className="link" onClick={() => signOut().then(() => navigate("/login"))}>
            Sign out
          </button>
        </nav>
      </header>
      <div className="body">
        <nav id="sidebar" className={"sidebar" + (menuOpen ? " open" : "")} aria-label="Main">
          {projectId && (
            <>
              <h2 className="nav-heading">Project</h2>
              <ul>
                {envBase && (
                  <>
                    <li>
                      <NavLink to={`${envBase}/flags`}>Flags</NavLink>
                    </li>
                    <li>
                      <NavLink to={`${envBase}/segments`}>Segments</NavLink>
                    </li>
                    <li>
                      <NavLink to={`${envBase}/schedules`}>Scheduled changes</NavLink>
                    </li>
                    <li>
                      <NavLink to={`${envBase}/webhooks`}>Webhooks</NavLink>
                    </li>
                  </>
                )}
                {can(role, "admin") && (
                  <li>
                    <NavLink to={`/projects/${projectId}/keys`}>SDK keys &amp; tokens</NavLink>
                  </li>
                )}
                <li>
                  <NavLink to={`/projects/${projectId}/members`}>Members</NavLink>
                </li>
                <li>
                  <NavLink end to={`/projects/${projectId}`}>
                    Environments &amp; settings
                  </NavLink>
                </li>
              </ul>
            </>
          )}
          <h2 className="nav-heading">Workspace</h2>
          <ul>
            <li>
              <NavLink end to="/projects">
                Projects
              </NavLink>
            </li>
            <li>
              <NavLink to="/audit">Audit log</NavLink>
            </li>
            {user?.role === "admin" && (
              <>
                <li>
                  <NavLink to="/users">Users</NavLink>
                </li>
                <li>
                  <NavLink to="/edges">Edge fleet</NavLink>
                </li>
              </>
            )}
          </ul>
        </nav>
        <main id="main" tabIndex={-1}>
          <Outlet />
        </main>
      </div>
    </div>
  );
}
