// The Stream tab's live tail: the newest impressions of one flag, then every 3 s only those newer
// than the newest seen (`since_id`, which the server answers without counting the whole table).
// One poll at a time: the next is scheduled when the previous answer (or error) is in, never on
// a fixed interval, so a slow server cannot pile polls up. Nothing polls while the tail is
// paused, the browser tab is hidden or the component is gone (the poll in flight is aborted and
// its answer dropped, so no state is set after navigation). At most `MAX_ROWS` rows are kept.

import { useEffect, useRef, useState } from "react";
import { api, ApiError, seg } from "../../api";
import type { Impression, ImpressionPage } from "./types";

export const POLL_MS = 3_000;
/** Rows kept in memory; older ones fall off the end. */
export const MAX_ROWS = 500;
/** The first page: the newest impressions. */
export const FIRST_PAGE = 50;
/** Most impressions one poll brings (the server's largest page). */
export const POLL_LIMIT = 200;

export interface TailFilters {
  envId: string;
  flagKey: string;
  /** Only this user's impressions (the stored form of the id). */
  userId: string;
  /** Only impressions that served this value. */
  value: string;
}

export type TailState = "loading" | "live" | "paused" | "hidden" | "stopped";

export interface Tail {
  /** Newest first, at most `MAX_ROWS`. */
  rows: Impression[];
  state: TailState;
  /** The last poll's error, cleared by the next good answer. */
  error: unknown;
  /** Impressions that arrived faster than one poll carries and are not shown. */
  skipped: number;
  /** When the last answer came (ms since the epoch). */
  updatedAt: number | null;
}

/** Where one page of the tail is fetched from. */
export function tailUrl(f: TailFilters, sinceId: number | undefined): string {
  const q = new URLSearchParams({ flag_key: f.flagKey });
  if (f.userId) q.set("user_id", f.userId);
  if (f.value) q.set("value", f.value);
  if (sinceId === undefined) q.set("limit", String(FIRST_PAGE));
  else {
    q.set("since_id", String(sinceId));
    q.set("limit", String(POLL_LIMIT));
  }
  return `/api/environments/${seg(f.envId)}/impressions?${q}`;
}

/** Errors after which polling again cannot help: no access, no such environment, signed out. */
const isFinal = (e: unknown) => e instanceof ApiError && [401, 403, 404].includes(e.status);

/** Follows the impressions `filters` select while `paused` is false and the page is visible. */
export function useImpressionTail(filters: TailFilters, paused: boolean): Tail {
  const { envId, flagKey, userId, value } = filters;
  const [tail, setTail] = useState<Tail>({ rows: [], state: "loading", error: null, skipped: 0, updatedAt: null });
  const control = useRef<{ setPaused: (p: boolean) => void } | null>(null);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;

  useEffect(() => {
    const f = { envId, flagKey, userId, value };
    let timer: ReturnType<typeof setTimeout> | null = null;
    let inFlight: AbortController | null = null;
    let stopped = false;
    let paused = pausedRef.current;
    let hidden = document.visibilityState === "hidden";
    let sinceId: number | undefined = undefined;

    setTail({ rows: [], state: "loading", error: null, skipped: 0, updatedAt: null });
    const idle = (): TailState => (paused ? "paused" : hidden ? "hidden" : "live");
    const settle = () => setTail((t) => (t.state === "stopped" || (t.state === "loading" && sinceId === undefined) ? t : { ...t, state: idle() }));

    const schedule = () => {
      if (stopped || paused || hidden || timer !== null || inFlight !== null) return;
      timer = setTimeout(() => void poll(), POLL_MS);
    };

    /** One poll; `first` loads the first page even while paused or hidden. */
    async function poll(first = false) {
      timer = null;
      if (stopped || inFlight !== null || (!first && (paused || hidden))) return;
      const ctl = new AbortController();
      inFlight = ctl;
      try {
        const page = await api.get<ImpressionPage>(tailUrl(f, sinceId), { signal: ctl.signal });
        if (ctl.signal.aborted) return;
        const firstPage = sinceId === undefined;
        const newest = page.items.reduce((m, i) => Math.max(m, i.id), sinceId ?? 0);
        sinceId = newest;
        const skipped = firstPage ? 0 : Math.max(0, page.total - page.items.length);
        setTail((t) => {
          const seen = new Set(page.items.map((i) => i.id));
          const rows = [...page.items, ...t.rows.filter((r) => !seen.has(r.id))].slice(0, MAX_ROWS);
          return { rows, state: idle(), error: null, skipped: t.skipped + skipped, updatedAt: Date.now() };
        });
      } catch (e) {
        if (ctl.signal.aborted) return;
        if (isFinal(e)) stopped = true;
        setTail((t) => ({ ...t, state: stopped ? "stopped" : t.state === "loading" ? "loading" : idle(), error: e }));
      } finally {
        if (inFlight === ctl) inFlight = null;
        schedule();
      }
    }

    /** Polls at once (catching up after a pause), unless a poll is already on its way. */
    const resume = () => {
      if (timer !== null) {
        clearTimeout(timer);
        timer = null;
      }
      void poll();
    };
    const stopTimer = () => {
      if (timer !== null) clearTimeout(timer);
      timer = null;
    };

    const onVisibility = () => {
      const nowHidden = document.visibilityState === "hidden";
      if (nowHidden === hidden) return;
      hidden = nowHidden;
      if (hidden) stopTimer();
      else resume();
      settle();
    };
    document.addEventListener("visibilitychange", onVisibility);
    control.current = {
      setPaused: (p) => {
        if (p === paused) return;
        paused = p;
        if (paused) stopTimer();
        else resume();
        settle();
      },
    };
    // The first page loads even when paused or hidden: the tab shows what there is.
    void poll(true);

    return () => {
      stopped = true;
      stopTimer();
      inFlight?.abort();
      inFlight = null;
      control.current = null;
      document.removeEventListener("visibilitychange", onVisibility);
    };
  }, [envId, flagKey, userId, value]);

  useEffect(() => control.current?.setPaused(paused), [paused]);

  return tail;
}
