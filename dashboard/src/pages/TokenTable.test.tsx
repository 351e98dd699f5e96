import { fireEvent, render, screen, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { TokenTable, type Token } from "./TokenTable";

interface Row extends Token {
  scope: string;
  last_used_at: string | null;
}

const rows: Row[] = [
  { id: "a", name: "ci", prefix: "tok_a…", scope: "all", created_at: "2026-01-01T00:00:00Z", revoked_at: null, last_used_at: null },
  { id: "b", name: "old", prefix: "tok_b…", scope: "one", created_at: "2026-01-01T00:00:00Z", revoked_at: "2026-01-02T00:00:00Z", last_used_at: null },
];

function table(props: Partial<Parameters<typeof TokenTable<Row>>[0]> = {}) {
  const onRevoke = vi.fn();
  render(
    <>
      <h2 id="h">Things</h2>
      <TokenTable<Row>
        tokens={rows}
        headingId="h"
        noun="thing token"
        short="tokens"
        prefixHeader="Token"
        columns={[{ header: "Scope", cell: (t) => <em>{t.scope}</em> }]}
        canRevoke
        onRevoke={onRevoke}
        {...props}
      />
    </>,
  );
  return onRevoke;
}

describe("TokenTable", () => {
  it("lists name, prefix, the caller's columns and when each was created, named by its heading", () => {
    table({ lastUse: { header: "Last used", at: (t) => t.last_used_at } });
    const t = screen.getByRole("table", { name: "Things" });
    const headers = within(t)
      .getAllByRole("columnheader")
      .map((h) => h.textContent);
    expect(headers).toEqual(["Name", "Token", "Scope", "Created", "Last used", "Actions"]);
    const cells = within(t).getAllByRole("cell");
    expect(cells.map((c) => c.getAttribute("data-label"))).toEqual(["Name", "Token", "Scope", "Created", "Last used", null]);
    expect(cells[2].textContent).toBe("all");
    expect(cells[4].textContent).toBe("never");
  });

  it("hides revoked ones behind a counted checkbox and revokes by the row's named button", () => {
    const onRevoke = table();
    const t = screen.getByRole("table", { name: "Things" });
    expect(within(t).queryByText("old")).toBeNull();
    expect(within(t).queryByRole("columnheader", { name: "Last used" })).toBeNull();
    fireEvent.click(screen.getByRole("checkbox", { name: "Show revoked tokens (1)" }));
    expect(within(t).getByText("old").closest("tr")?.className).toBe("revoked");
    expect(within(t).getByText(/^revoked/)).toBeTruthy();
    expect(within(t).getAllByRole("button")).toHaveLength(1);
    fireEvent.click(within(t).getByRole("button", { name: "Revoke thing token ci" }));
    expect(onRevoke).toHaveBeenCalledWith(rows[0]);
  });

  it("says so when every one is revoked", () => {
    table({ tokens: [rows[1]] });
    expect(screen.getByText("No active ones: every one has been revoked.")).toBeTruthy();
    expect(screen.queryByRole("table")).toBeNull();
    fireEvent.click(screen.getByRole("checkbox", { name: "Show revoked tokens (1)" }));
    expect(screen.getByRole("table", { name: "Things" })).toBeTruthy();
  });

  it("offers no Revoke without the right to", () => {
    table({ canRevoke: false });
    expect(screen.getByText("ci")).toBeTruthy();
    expect(screen.queryByRole("button", { name: /Revoke/ })).toBeNull();
  });
});
