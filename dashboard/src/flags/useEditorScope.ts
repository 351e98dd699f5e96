// What the flag and segment editors load around the document they edit: the user's role in the
// project, the environment (its name and production mark) and its flags and segments (for
// prerequisites, segment pickers, where a segment is used, and attribute suggestions).

import { useMemo } from "react";
import { useParams } from "react-router-dom";
import { api, seg } from "../api";
import { can, useProjectRole } from "../session";
import { useLoad } from "../ui";
import { knownAttributes, loadAllFlags, type Env, type Segment } from "./model";

export type EditorScope = ReturnType<typeof useEditorScope>;

export function useEditorScope() {
  const { projectId = "", envId = "" } = useParams();
  const role = useProjectRole(projectId);
  const canEdit = can(role, "editor");
  const envs = useLoad(() => api.get<Env[]>(`/api/projects/${seg(projectId)}/environments`), [projectId]);
  const env = envs.data?.find((e) => e.id === envId);
  const flags = useLoad(() => loadAllFlags(api.get, envId), [envId]);
  const segments = useLoad(() => api.get<Segment[]>(`/api/environments/${seg(envId)}/segments`), [envId]);
  const attributes = useMemo(
    () => knownAttributes([...(flags.data ?? []), ...(segments.data ?? [])]),
    [flags.data, segments.data],
  );
  return {
    envId,
    role,
    canEdit,
    readOnly: !canEdit,
    /** The project's environments. */
    envs,
    env,
    envName: env?.name ?? "this environment",
    /** Every flag of the environment. */
    flags,
    /** Every segment of the environment. */
    segments,
    /** The attributes its flags and segments use. */
    attributes,
    /** The environment's pages: `${listBase}/flags`, `${listBase}/segments`. */
    listBase: `/projects/${projectId}/envs/${envId}`,
  };
}
