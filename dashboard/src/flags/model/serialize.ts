// Drafts back into documents: the flag or segment the API is sent, and every problem found on the
// way, keyed by the editor's field paths (empty when the draft can be saved).

import {
  percentToUnits,
  splitProblem,
  type ConditionDraft,
  type FieldErrors,
  type FlagDraft,
  type SegmentDraft,
  type WeightDraft,
} from "./drafts";
import { operatorInfo } from "./operators";
import {
  MAX_KEY_LEN,
  type FlagDoc,
  type PrerequisiteDoc,
  type RuleDoc,
  type SegmentDoc,
  type SplitDoc,
  type VariantDoc,
} from "./types";
import { keyProblem, valueProblem } from "./validation";
import { parseRaw } from "./values";

function conditionProblems(path: string, c: ConditionDraft, errors: FieldErrors, allowSegments: boolean) {
  const info = operatorInfo(c.operator);
  if (c.operator === "in_segment" && !allowSegments) errors[`${path}.operator`] = "Segments cannot refer to segments.";
  if (c.operator !== "in_segment" && !c.attribute.trim()) errors[`${path}.attribute`] = "Enter an attribute.";
  if (c.values.length === 0 || c.values.every((v) => v === "")) {
    errors[`${path}.values`] = info.kind === "segment" ? "Choose a segment." : info.multi ? "Add at least one value." : "Enter a value.";
    return;
  }
  for (const v of c.values) {
    const p = valueProblem(info.kind, v);
    if (p) {
      errors[`${path}.values`] = p;
      return;
    }
  }
}

/** A rule's conditions as a document: the first inline (Checkgate's shape), the others in `conditions`. */
function conditionsToRule(conditions: ConditionDraft[]): RuleDoc {
  const [first, ...rest] = conditions;
  const rule: RuleDoc = { attribute: "", operator: "equals", values: [] };
  if (first) {
    if (first.operator === "in_segment" && first.values.length === 1) {
      rule.segment_key = first.values[0];
    } else {
      rule.attribute = first.operator === "in_segment" ? "" : first.attribute.trim();
      rule.operator = first.operator;
      rule.values = [...first.values];
    }
  }
  if (rest.length > 0)
    rule.conditions = rest.map((c) => ({
      attribute: c.operator === "in_segment" ? "" : c.attribute.trim(),
      operator: c.operator,
      values: [...c.values],
    }));
  return rule;
}

function splitToDoc(weights: WeightDraft[]): SplitDoc {
  return { weights: weights.map((w) => ({ variant: w.variant, weight: percentToUnits(w.percent) ?? 0 })) };
}

export interface Built<T> {
  doc: T;
  errors: FieldErrors;
}

/** The flag document for a draft, and every problem found on the way (empty when it can be saved). */
export function draftToFlag(d: FlagDraft): Built<FlagDoc> {
  const errors: FieldErrors = {};
  const keyErr = keyProblem(d.key);
  if (keyErr) errors.key = keyErr;
  const value = (raw: string, path: string): unknown => {
    const p = parseRaw(d.type, raw);
    if (!p.ok) {
      errors[path] = p.error;
      return undefined;
    }
    return p.value;
  };
  const variantKeys: string[] = [];
  const variants: VariantDoc[] = d.variants.map((v, i) => {
    const key = v.key.trim();
    if (!key) errors[`variants[${i}].key`] = "Enter a name.";
    else if (key.length > MAX_KEY_LEN) errors[`variants[${i}].key`] = `At most ${MAX_KEY_LEN} characters.`;
    else if (variantKeys.includes(key)) errors[`variants[${i}].key`] = `There is already a variant named ${JSON.stringify(key)}.`;
    variantKeys.push(key);
    const out: VariantDoc = { key, value: value(v.raw, `variants[${i}].value`) };
    if (v.description.trim()) out.description = v.description.trim();
    return out;
  });
  const doc: FlagDoc = {
    key: d.key,
    is_enabled: d.isEnabled,
    rollout_percentage: null,
    description: d.description.trim() ? d.description : null,
    rules: [],
    flag_type: d.type,
    default_value: d.defaultRaw === null ? null : value(d.defaultRaw, "default_value"),
    disabled_value: d.disabledRaw === null ? null : value(d.disabledRaw, "disabled_value"),
    variants,
    split: null,
    bucket_by: d.bucketBy.trim() ? d.bucketBy.trim() : null,
    salt: d.salt !== "" ? d.salt : null,
    prerequisites: [],
    tags: d.tags,
  };
  if (d.disabledRaw !== null && doc.disabled_value === null && !errors.disabled_value)
    errors.disabled_value = "null cannot be stored: it means “not set”, which serves false.";
  doc.rules = d.rules.map((r, i) => {
    const path = `rules[${i}]`;
    if (r.conditions.length === 0) errors[path] = "Add at least one condition.";
    r.conditions.forEach((c, j) => conditionProblems(`${path}.conditions[${j}]`, c, errors, true));
    const rule = conditionsToRule(r.conditions);
    if (r.serve.kind === "value") {
      const v = value(r.serve.raw, `${path}.value`);
      if (v === null) errors[`${path}.value`] = "null means “not set”: choose “Default value” instead.";
      rule.variant = v;
    } else if (r.serve.kind === "split") {
      const p = splitProblem(r.serve.weights, variantKeys);
      if (p) errors[`${path}.split`] = p;
      rule.split = splitToDoc(r.serve.weights);
    }
    if (r.description.trim()) rule.description = r.description.trim();
    return rule;
  });
  if (d.fallthrough.kind === "rollout") {
    const p = d.fallthrough.percent;
    if (!Number.isInteger(p) || p < 0 || p > 100) errors.rollout_percentage = "A whole percentage from 0 to 100.";
    doc.rollout_percentage = p;
  } else if (d.fallthrough.kind === "split") {
    const p = splitProblem(d.fallthrough.weights, variantKeys);
    if (p) errors.split = p;
    doc.split = splitToDoc(d.fallthrough.weights);
  }
  doc.prerequisites = d.prerequisites.map((p, i) => {
    if (!p.key) errors[`prerequisites[${i}].key`] = "Choose a flag.";
    else if (p.key === d.key) errors[`prerequisites[${i}].key`] = "A flag cannot require itself.";
    const out: PrerequisiteDoc = { key: p.key };
    if (p.variants.length > 0) out.variants = [...p.variants];
    return out;
  });
  return { doc, errors };
}

export function draftToSegment(d: SegmentDraft): Built<SegmentDoc> {
  const errors: FieldErrors = {};
  const keyErr = keyProblem(d.key);
  if (keyErr) errors.key = keyErr;
  const rules = d.rules.map((r, i) => {
    const path = `rules[${i}]`;
    if (r.conditions.length === 0) errors[path] = "Add at least one condition.";
    r.conditions.forEach((c, j) => conditionProblems(`${path}.conditions[${j}]`, c, errors, false));
    const rule = conditionsToRule(r.conditions);
    if (r.description.trim()) rule.description = r.description.trim();
    return rule;
  });
  return {
    doc: {
      key: d.key,
      name: d.name,
      description: d.description.trim() ? d.description : null,
      included: d.included,
      excluded: d.excluded,
      rules,
    },
    errors,
  };
}
