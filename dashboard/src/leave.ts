// Leaving a page with unsaved edits: an editor calls `useLeaveGuard`, which asks before a link
// click leads away or the tab closes, and sets the question that navigation other than a link
// (the project and environment switchers) asks through `mayLeave`.

import { useEffect } from "react";

let question: string | null = null;

/** Sets (or, with null, clears) the question asked before leaving the current page. */
function guardLeaving(q: string | null): void {
  question = q;
}

/** Whether the user may leave now: no question set, or they confirmed it. */
export function mayLeave(): boolean {
  return question === null || window.confirm(question);
}

/** While `dirty`, asks `question` before a link leads away, the tab closes or a switcher moves. */
export function useLeaveGuard(dirty: boolean, question: string): void {
  useEffect(() => {
    if (!dirty) return;
    guardLeaving(question);
    const onBeforeUnload = (e: BeforeUnloadEvent) => {
      e.preventDefault();
      e.returnValue = "";
    };
    const onClick = (e: MouseEvent) => {
      if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      const a = (e.target as Element | null)?.closest?.("a[href]") as HTMLAnchorElement | null;
      if (!a || a.target === "_blank" || a.origin !== window.location.origin) return;
      if (a.pathname === window.location.pathname) return;
      if (!window.confirm(question)) {
        e.preventDefault();
        e.stopPropagation();
      }
    };
    window.addEventListener("beforeunload", onBeforeUnload);
    document.addEventListener("click", onClick, true);
    return () => {
      guardLeaving(null);
      window.removeEventListener("beforeunload", onBeforeUnload);
      document.removeEventListener("click", onClick, true);
    };
  }, [dirty, question]);
}
