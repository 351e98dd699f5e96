// Server errors → fields: the editor field that a path of the server's 422 names.

import type { RuleDraft } from "./drafts";

/** The message of a 422 without its leading path. */
export function stripPath(message: string, path: string | undefined): string {
  if (!path) return message;
  const rest = message.slice(path.length).replace(/^\s*:\s*/, "");
  return rest ? rest.charAt(0).toUpperCase() + rest.slice(1) : message;
}

/**
 * The editor field a path of the server's 422 (as in `rules[0].conditions[1].values[0]`) is
 * about, for a document built by `draftToFlag`/`draftToSegment` from `rules`. Undefined when no
 * field fits (show the message as a banner).
 */
export function fieldForServerPath(
  path: string,
  message: string,
  rules: RuleDraft[],
): string | undefined {
  const top = /^(key|description|tags|flag_type|default_value|disabled_value|rollout_percentage|bucket_by|salt|name|included|excluded)$/.exec(path);
  if (top) return top[1];
  if (/^split(\.|$)/.test(path)) return "split";
  const variant = /^variants\[(\d+)\]\.(key|value)/.exec(path);
  if (variant) return `variants[${variant[1]}].${variant[2]}`;
  const pre = /^prerequisites\[(\d+)\]/.exec(path);
  if (pre) return `prerequisites[${pre[1]}].key`;
  if (path === "rules") {
    // "rules: segment "x" does not exist in this environment"
    const seg = /segment "([^"]+)"/.exec(message);
    if (seg) {
      for (let i = 0; i < rules.length; i++) {
        const j = rules[i].conditions.findIndex((c) => c.operator === "in_segment" && c.values.includes(seg[1]));
        if (j >= 0) return `rules[${i}].conditions[${j}].values`;
      }
    }
    return undefined;
  }
  const rule = /^rules\[(\d+)\](.*)$/.exec(path);
  if (!rule) return undefined;
  const i = Number(rule[1]);
  const rest = rule[2];
  const base = `rules[${i}]`;
  const conditionField = (j: number, field: string) => {
    const f = /^\.?(attribute|operator|values)/.exec(field)?.[1] ?? "values";
    return `${base}.conditions[${j}].${f}`;
  };
  if (rest === "") {
    const cond = /^condition (\d+)/.exec(message);
    if (cond) return `${base}.conditions[${cond[1]}].operator`;
    return base;
  }
  if (/^\.(attribute|operator|values)/.test(rest)) return conditionField(0, rest.slice(1));
  if (/^\.segment_key/.test(rest)) return `${base}.conditions[0].values`;
  const c = /^\.conditions\[(\d+)\](.*)$/.exec(rest);
  if (c) {
    // The first condition is written inline, so `conditions[j]` is the editor's j + 1.
    const offset = rules[i] && rules[i].conditions.length > 0 ? 1 : 0;
    return conditionField(Number(c[1]) + offset, c[2]);
  }
  if (/^\.variant/.test(rest)) return `${base}.value`;
  if (/^\.split/.test(rest)) return `${base}.split`;
  return base;
}
