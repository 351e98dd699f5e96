// Where "/" and "/projects/:id/envs" lead: a project's flags in the environment last opened in
// this tab, else its default environment, else its first.

import { useEffect, useState } from "react";
import { Navigate, useLocation, useParams } from "react-router-dom";
import { api, seg } from "../api";
import { rememberedEnv } from "../Layout";
import type { Environment, Project } from "../types";
import { LoadError, Loading } from "../ui";

/** The environment to open in a project: the remembered one if it still exists, else the default, else the first. */
export function pickEnvironment(envs: Environment[], remembered: string | null): Environment | undefined {
  return envs.find((e) => e.id === remembered) ?? envs.find((e) => e.is_default) ?? envs[0];
}

/** Resolves the address of a project's flags; null when the project has no environment. */
async function projectTarget(projectId: string): Promise<string | null> {
  const envs = await api.get<Environment[]>(`/api/projects/${seg(projectId)}/environments`);
  const env = pickEnvironment(envs, rememberedEnv(projectId));
  return env ? `/projects/${projectId}/envs/${env.id}/flags` : null;
}

function useTarget(resolve: () => Promise<string>, key: string | undefined) {
  const [to, setTo] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let live = true;
    setTo(null);
    setError(null);
    resolve()
      .then((t) => live && setTo(t))
      .catch((e) => live && setError(e));
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  return { to, error };
}

/** "/": the first project's flags; the project list when there is no project. */
export function HomeRedirect() {
  // Keyed on the location too: navigating to "/" while already there (the brand link) looks
  // again rather than keeping a redirect that has already fired.
  const { key } = useLocation();
  const { to, error } = useTarget(async () => {
    const projects = await api.get<Project[]>("/api/projects");
    if (projects.length === 0) return "/projects";
    return (await projectTarget(projects[0].id)) ?? `/projects/${projects[0].id}`;
  }, `home:${key}`);
  if (error) return <LoadError error={error} />;
  if (to) return <Navigate to={to} replace />;
  return <Loading />;
}

/** "/projects/:projectId/envs": that project's flags. */
export function ProjectHome() {
  const { projectId = "" } = useParams();
  const { to, error } = useTarget(
    async () => (await projectTarget(projectId)) ?? `/projects/${projectId}`,
    projectId,
  );
  if (error) return <LoadError error={error} />;
  if (to) return <Navigate to={to} replace />;
  return <Loading />;
}
