// Shapes of the insights and impressions routes (README "Impressions and insights"), and the
// ranges the Analytics tab offers.

/** Why a flag is stale: not evaluated for `STALE_AFTER_DAYS`, or one value served to everyone that long. */
export type StaleReason = "not_evaluated" | "single_value";

/** One flag's last evaluation and stale signal (GET /api/environments/{env}/insights). */
export interface FlagActivity {
  flag_key: string;
  last_evaluated: string | null;
  stale: boolean;
  stale_reason: StaleReason | null;
}

export const RANGES = ["1h", "24h", "7d", "30d"] as const;
export type Range = (typeof RANGES)[number];

export const RANGE_LABELS: Record<Range, string> = { "1h": "1 h", "24h": "24 h", "7d": "7 d", "30d": "30 d" };
export const RANGE_WORDS: Record<Range, string> = {
  "1h": "the last hour",
  "24h": "the last 24 hours",
  "7d": "the last 7 days",
  "30d": "the last 30 days",
};

export function isRange(s: string | null | undefined): s is Range {
  return !!s && (RANGES as readonly string[]).includes(s);
}

/** One flag over a range (GET /api/environments/{env}/flags/{key}/insights?range=…). */
export interface FlagInsights {
  flag_key: string;
  range: Range;
  from: string;
  to: string;
  /** 1, 60 or 1440. */
  bucket_minutes: number;
  /** Every bucket of the range, oldest first, zeros included. */
  series: { at: string; evaluations: number; impressions: number }[];
  /** Every value served in the range, most served first. */
  values: { value: string; evaluations: number; impressions: number }[];
  evaluations: number;
  impressions: number;
  unique_users: number;
  last_evaluated: string | null;
  stale: boolean;
  stale_reason: StaleReason | null;
}

/** A stored impression (GET /api/environments/{env}/impressions). */
export interface Impression {
  id: number;
  flag_key: string;
  user_id: string | null;
  value: string;
  context: unknown;
  evaluated_at: string;
}

export interface ImpressionPage {
  items: Impression[];
  /** How many match (bounded at 10,000); with `since_id`, how many are newer. */
  total: number;
}

/** What the stale badge says, as a sentence. */
export function staleText(reason: StaleReason | null): string {
  return reason === "single_value"
    ? "Served one value to everyone for the stale period: the flag may be ready to remove."
    : "Not evaluated for the stale period: the flag may no longer be used.";
}
