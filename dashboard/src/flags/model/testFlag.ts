// A Checkgate-shaped flag document shared by the model's tests.

import type { FlagDoc } from "./types";

export const checkgate: FlagDoc = {
  key: "checkout",
  is_enabled: true,
  rollout_percentage: 50,
  description: null,
  rules: [{ attribute: "plan", operator: "equals", values: ["pro"], variant: "v3" }],
  flag_type: "string",
  default_value: "v2",
  disabled_value: "v1",
};
