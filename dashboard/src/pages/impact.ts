// What a deletion takes with it, counted before the user confirms: a project's environments,
// flags, segments, SDK keys and API tokens; an environment's flags, segments and SDK keys.

import { api, seg } from "../api";
import type { ApiToken, Environment, SdkKey } from "../types";

export interface EnvironmentImpact {
  environment: Environment;
  flags: number;
  segments: number;
  sdkKeys: number;
}

export interface ProjectImpact {
  environments: EnvironmentImpact[];
  apiTokens: number;
}

const count = async (path: string): Promise<number> => {
  const list = await api.get<unknown[] | Record<string, unknown>>(path);
  return Array.isArray(list) ? list.length : Object.keys(list ?? {}).length;
};

/** Counts of what lives in each environment; keys are passed in when already loaded. */
export async function environmentImpact(env: Environment, keys?: SdkKey[]): Promise<EnvironmentImpact> {
  const [flags, segments, allKeys] = await Promise.all([
    count(`/api/environments/${seg(env.id)}/flags`),
    count(`/api/environments/${seg(env.id)}/segments`),
    keys
      ? Promise.resolve(keys)
      : api.get<SdkKey[]>(`/api/projects/${seg(env.project_id)}/keys`).catch(() => [] as SdkKey[]),
  ]);
  const sdkKeys = allKeys.filter((k) => k.environment_id === env.id && !k.revoked_at).length;
  return { environment: env, flags, segments, sdkKeys };
}

export async function projectImpact(projectId: string): Promise<ProjectImpact> {
  const [envs, keys, tokens] = await Promise.all([
    api.get<Environment[]>(`/api/projects/${seg(projectId)}/environments`),
    api.get<SdkKey[]>(`/api/projects/${seg(projectId)}/keys`).catch(() => [] as SdkKey[]),
    api.get<ApiToken[]>(`/api/projects/${seg(projectId)}/tokens`).catch(() => [] as ApiToken[]),
  ]);
  const environments = await Promise.all(envs.map((e) => environmentImpact(e, keys)));
  return { environments, apiTokens: tokens.filter((t) => !t.revoked_at).length };
}

/** "3 flags", "1 segment", "no SDK keys". */
export function plural(n: number, one: string, many = one + "s"): string {
  return n === 0 ? `no ${many}` : `${n} ${n === 1 ? one : many}`;
}
