// A server error in a form: on the field it names, or in the form's banner.

import { ApiError } from "../api";

/**
 * Splits a server error between a form's fields and its banner: a 400, 409 or 422 whose message
 * starts with one of `fields` ("slug must be …", "email is not …"), or a 409 naming one ("a user
 * with email … already exists"), belongs to that field;
 * anything else goes to the banner (`rest`).
 */
export function formErrors<F extends string>(
  error: unknown,
  fields: readonly F[],
): { field: Partial<Record<F, string>>; rest: unknown } {
  if (error instanceof ApiError && [400, 409, 422].includes(error.status)) {
    const first = /^([a-z_]+)\b/.exec(error.message)?.[1];
    // A conflict names the clashing field: "a user with email … already exists".
    const clash = error.status === 409 ? /\bwith ([a-z_]+)\b/.exec(error.message)?.[1] : undefined;
    const hit = fields.find((f) => f === first) ?? fields.find((f) => f === clash);
    if (hit) return { field: { [hit]: error.message } as Partial<Record<F, string>>, rest: null };
  }
  return { field: {}, rest: error };
}
