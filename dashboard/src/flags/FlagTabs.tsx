// The tabs of an existing flag's page: Targeting (the editor), Analytics and Stream. The chosen
// tab is in the address (`?tab=analytics`), so it can be linked and survives a reload; the
// WAI-ARIA tabs pattern (arrow keys, Home, End) makes them usable by keyboard.

import type { KeyboardEvent } from "react";

export const FLAG_TABS = [
  { id: "targeting", label: "Targeting" },
  { id: "analytics", label: "Analytics" },
  { id: "stream", label: "Stream" },
] as const;
export type FlagTab = (typeof FLAG_TABS)[number]["id"];

export function isFlagTab(s: string | null): s is FlagTab {
  return FLAG_TABS.some((t) => t.id === s);
}

/** The id of tab `tab`'s panel (`aria-controls`), under the prefix `ids`. */
export const panelId = (ids: string, tab: FlagTab) => `${ids}-panel-${tab}`;
export const tabId = (ids: string, tab: FlagTab) => `${ids}-tab-${tab}`;

export function FlagTabList({ ids, current, onSelect }: { ids: string; current: FlagTab; onSelect: (t: FlagTab) => void }) {
  const onKeyDown = (e: KeyboardEvent) => {
    const i = FLAG_TABS.findIndex((t) => t.id === current);
    const n = FLAG_TABS.length;
    const next =
      e.key === "ArrowRight" ? (i + 1) % n : e.key === "ArrowLeft" ? (i - 1 + n) % n : e.key === "Home" ? 0 : e.key === "End" ? n - 1 : -1;
    if (next < 0) return;
    e.preventDefault();
    onSelect(FLAG_TABS[next].id);
    document.getElementById(tabId(ids, FLAG_TABS[next].id))?.focus();
  };
  return (
    <div className="tabs" role="tablist" aria-label="Flag views" onKeyDown={onKeyDown}>
      {FLAG_TABS.map((t) => (
        <button
          key={t.id}
          type="button"
          role="tab"
          id={tabId(ids, t.id)}
          aria-selected={t.id === current}
          aria-controls={panelId(ids, t.id)}
          tabIndex={t.id === current ? 0 : -1}
          className={"tab" + (t.id === current ? " is-current" : "")}
          onClick={() => onSelect(t.id)}
        >
          {t.label}
        </button>
      ))}
    </div>
  );
}
