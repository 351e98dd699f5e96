// Scheduled changes as the API gives them, and the one rule the editor needs to schedule an
// edit: the patch is the top-level fields the working copy changes, as the flag's PATCH takes
// them.

import { api, seg } from "../../api";
import type { Flag, FlagDoc } from "../model";

export type ScheduleStatus = "pending" | "applied" | "failed" | "cancelled";

export interface ScheduledChange {
  id: string;
  environment_id: string;
  flag_key: string;
  /** RFC 3339. */
  scheduled_at: string;
  patch: Record<string, unknown>;
  executed_at: string | null;
  created_at: string;
  status: ScheduleStatus;
  applied_at: string | null;
  applied_version: number | null;
  failure_reason: string | null;
  cancelled_at: string | null;
  if_version: number | null;
  created_by: { kind: string; id: string | null; name: string };
}

/** Absent, null and an empty list say the same of a field (the server leaves empty lists out). */
const empty = (v: unknown) => v === undefined || v === null || (Array.isArray(v) && v.length === 0);

/** The fields of `doc` that differ from `saved` (the key never), as a PATCH body. */
export function changedFields(saved: Flag, doc: FlagDoc): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(doc)) {
    if (field === "key") continue;
    const before = (saved as unknown as Record<string, unknown>)[field];
    if (empty(before) && empty(value)) continue;
    if (JSON.stringify(before ?? null) !== JSON.stringify(value ?? null)) patch[field] = value;
  }
  return patch;
}

/** A `datetime-local` value (the browser's local time) as RFC 3339 UTC; undefined if invalid. */
export function localToRfc3339(local: string): string | undefined {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(local)) return undefined;
  const at = new Date(local);
  return Number.isNaN(at.getTime()) ? undefined : at.toISOString();
}

/** A `datetime-local` value for `ms` (local time, to the minute). */
export function toLocalInput(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export const schedulesUrl = (envId: string) => `/api/environments/${seg(envId)}/scheduled-changes`;
export const flagSchedulesUrl = (envId: string, key: string) =>
  `/api/environments/${seg(envId)}/flags/${seg(key)}/scheduled-changes`;

export function schedule(envId: string, key: string, body: { scheduled_at: string; patch: Record<string, unknown>; if_version?: number }) {
  return api.post<ScheduledChange>(flagSchedulesUrl(envId, key), body);
}

export function cancelSchedule(envId: string, id: string) {
  return api.delete(`${schedulesUrl(envId)}/${seg(id)}`);
}
