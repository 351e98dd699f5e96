// What the page must confirm before the user leaves it (unsaved edits), for navigation that is
// not a link click — the project and environment switchers. An editor sets the question while
// it holds unsaved changes and clears it when it no longer does.

let question: string | null = null;

/** Sets (or, with null, clears) the question asked before leaving the current page. */
export function guardLeaving(q: string | null): void {
  question = q;
}

/** Whether the user may leave now: no question set, or they confirmed it. */
export function mayLeave(): boolean {
  return question === null || window.confirm(question);
}
