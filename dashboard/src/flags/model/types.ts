// The API's shapes of flags and segments (as the control plane reads and answers them), the
// evaluation answer, and the limits the core enforces on them.

import type { Environment } from "../../types";

export type FlagType = "boolean" | "string" | "integer" | "json";
export const FLAG_TYPES: FlagType[] = ["boolean", "string", "integer", "json"];

export type Operator =
  | "equals"
  | "not_equals"
  | "contains"
  | "starts_with"
  | "ends_with"
  | "in"
  | "not_in"
  | "regex"
  | "lt"
  | "lte"
  | "gt"
  | "gte"
  | "semver_lt"
  | "semver_eq"
  | "semver_gt"
  | "date_before"
  | "date_after"
  | "in_segment";

export interface ConditionDoc {
  attribute: string;
  operator: Operator;
  values: string[];
}

export interface WeightDoc {
  variant: string;
  /** Share in 1/100,000. */
  weight: number;
}

export interface SplitDoc {
  weights: WeightDoc[];
}

export interface RuleDoc {
  attribute?: string;
  operator?: Operator;
  values?: string[];
  segment_key?: string;
  conditions?: ConditionDoc[];
  /** The value served when the rule matches (Checkgate's name). */
  variant?: unknown;
  split?: SplitDoc;
  description?: string;
}

export interface VariantDoc {
  key: string;
  value: unknown;
  description?: string;
}

export interface PrerequisiteDoc {
  key: string;
  variants?: string[];
}

export interface FlagDoc {
  key: string;
  is_enabled: boolean;
  rollout_percentage: number | null;
  description: string | null;
  rules: RuleDoc[];
  flag_type: FlagType;
  default_value?: unknown;
  disabled_value?: unknown;
  variants?: VariantDoc[];
  split?: SplitDoc | null;
  bucket_by?: string | null;
  salt?: string | null;
  prerequisites?: PrerequisiteDoc[];
  tags?: string[];
}

/** A flag as the API answers it. */
export interface Flag extends FlagDoc {
  version: number;
  /** RFC 3339; being added to the API, so optional. */
  updated_at?: string;
  created_at?: string;
}

export interface SegmentDoc {
  key: string;
  name: string;
  description?: string | null;
  included?: string[];
  excluded?: string[];
  rules: RuleDoc[];
}

export interface Segment extends SegmentDoc {
  version: number;
  updated_at?: string;
}

export type EvalReason = "STATIC" | "TARGETING_MATCH" | "SPLIT" | "DISABLED" | "DEFAULT" | "ERROR";

export interface EvalResult {
  key: string;
  value: unknown;
  variant: string | null;
  reason: EvalReason;
  error_code?: string;
  /** Checkgate's `enabled`: false when off, outside the rollout, blocked by a prerequisite, or in error. */
  enabled?: boolean;
  version: number;
}

/** An environment, with the production mark the API is gaining. */
export interface Env extends Environment {
  is_production?: boolean;
}

export const SPLIT_SCALE = 100_000;
export const MAX_KEY_LEN = 100;
