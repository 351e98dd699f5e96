// Advanced: the attribute that places a context in rollouts and splits, and the hash's salt.

import { describedBy, FieldBox } from "../controls";
import type { FlagSectionProps } from "./section";

export function BucketingSection({ draft: d, update, errors, ids }: FlagSectionProps) {
  return (
    <details className="card advanced" open={!!(d.bucketBy || d.salt || errors.bucket_by || errors.salt) || undefined}>
      <summary>Advanced: bucketing</summary>
      <FieldBox
        id={ids + "-bucket"}
        label="Bucket by attribute"
        field="bucket_by"
        error={errors.bucket_by}
        hint="The context attribute that places a context in rollouts and splits. Empty: the targeting key."
      >
        <input
          id={ids + "-bucket"}
          className="mono"
          value={d.bucketBy}
          placeholder="targetingKey"
          list={ids + "-attrs"}
          aria-describedby={describedBy(ids + "-bucket", "x", errors.bucket_by)}
          onChange={(e) => update((x) => ({ ...x, bucketBy: e.target.value }))}
        />
      </FieldBox>
      <FieldBox
        id={ids + "-salt"}
        label="Salt"
        field="salt"
        error={errors.salt}
        hint="Mixed into the bucket hash. Empty: the flag key. Changing it reshuffles who is in the rollout and in each share of a split."
      >
        <input
          id={ids + "-salt"}
          className="mono"
          value={d.salt}
          placeholder={d.key || "flag key"}
          aria-describedby={describedBy(ids + "-salt", "x", errors.salt)}
          onChange={(e) => update((x) => ({ ...x, salt: e.target.value }))}
        />
      </FieldBox>
    </details>
  );
}
