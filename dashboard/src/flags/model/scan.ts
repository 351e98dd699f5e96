// Looking across an environment: which flags use each segment, the attributes in use, every flag
// (paged), and a flag without its answer-only fields.

import type { Flag, FlagDoc, RuleDoc } from "./types";

/** Flags whose rules refer to each segment (by `in_segment` or `segment_key`). */
export function segmentUsage(flags: FlagDoc[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of flags) {
    const keys = new Set<string>();
    for (const r of f.rules ?? []) {
      if (r.segment_key) keys.add(r.segment_key);
      if (r.operator === "in_segment" && r.segment_key === undefined) (r.values ?? []).forEach((v) => keys.add(v));
      for (const c of r.conditions ?? []) if (c.operator === "in_segment") c.values.forEach((v) => keys.add(v));
    }
    for (const k of keys) {
      const list = out.get(k) ?? [];
      list.push(f.key);
      out.set(k, list);
    }
  }
  return out;
}

/** Attributes used by the environment's flags and segments, for suggestions. */
export function knownAttributes(docs: { rules: RuleDoc[] }[]): string[] {
  const set = new Set<string>(["targetingKey"]);
  for (const d of docs)
    for (const r of d.rules ?? []) {
      if (r.attribute) set.add(r.attribute);
      for (const c of r.conditions ?? []) if (c.attribute) set.add(c.attribute);
    }
  return [...set].sort();
}

/** Every flag of an environment (the API pages by 1000). */
export async function loadAllFlags(
  get: <T>(path: string) => Promise<T>,
  envId: string,
): Promise<Flag[]> {
  const out: Flag[] = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await get<Flag[]>(`/api/environments/${encodeURIComponent(envId)}/flags?limit=1000&offset=${offset}`);
    out.push(...page);
    if (page.length < 1000) return out;
  }
}

/** A flag document without the answer-only fields, for diffs. */
export function docOnly(flag: Flag): Record<string, unknown> {
  const { version: _v, updated_at: _u, created_at: _c, ...rest } = flag;
  void _v;
  void _u;
  void _c;
  return rest;
}
