import { cleanup, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { FlagEditorPage } from "./FlagEditor";
import type { Flag } from "./model";
import { renderEditorAt } from "./testRender";
import { documentRoutes, ENV, environments, error, fakeServer, PROJECT, sessionRoutes, type Handler } from "./testServer";

vi.setConfig({ testTimeout: 20_000 });

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const renderEditor = (path: string) => renderEditorAt(path, "flags", <FlagEditorPage />);

const base: Flag = {
  key: "checkout-v2",
  version: 1,
  is_enabled: true,
  rollout_percentage: null,
  description: "old text",
  rules: [{ attribute: "seats", operator: "gt", values: ["5"], variant: true }],
  flag_type: "boolean",
  default_value: true,
  disabled_value: false,
};

function server(opts: { flag: () => Flag | null; patch?: Handler; post?: Handler; role?: ["admin" | "member", string] }) {
  return fakeServer([
    ...sessionRoutes(...(opts.role ?? ["admin", "editor"])),
    ["GET", /^\/api\/projects\/p1\/environments$/, () => ({ status: 200, body: environments() })],
    ["GET", /^\/api\/environments\/e1\/flags$/, () => ({ status: 200, body: opts.flag() ? [opts.flag()] : [] })],
    ["GET", /^\/api\/environments\/e1\/segments$/, () => ({ status: 200, body: [] })],
    ...documentRoutes("flags", opts.flag, opts),
  ]);
}

const url = (key: string) => `/projects/${PROJECT}/envs/${ENV}/flags/${key}`;

describe("FlagEditor", () => {
  it("turns a 412 into a banner whose Reload discards the edits and loads the current flag", async () => {
    let current: Flag = base;
    const { requests } = server({
      flag: () => current,
      patch: () => error(412, "precondition_failed", 'flag "checkout-v2" is at version 2, not 1; reload it and try again'),
    });
    const user = userEvent.setup();
    renderEditor(url("checkout-v2"));
    await screen.findByRole("button", { name: "Save" });
    const description = screen.getByLabelText("Description") as HTMLTextAreaElement;
    expect(description.value).toBe("old text");
    expect(screen.getByText("No unsaved changes")).toBeTruthy();

    await user.clear(description);
    await user.type(description, "my edit");
    expect(screen.getByText("Unsaved changes")).toBeTruthy();

    // Someone else saves version 2 meanwhile.
    current = { ...base, version: 2, description: "their text", is_enabled: false };
    await user.click(screen.getByRole("button", { name: "Save" }));
    const banner = await screen.findByText("This flag was changed by someone else since you opened it.");
    const patch = requests.find((r) => r.method === "PATCH")!;
    expect(patch.headers["If-Match"]).toBe('"1"');
    expect(patch.body).toMatchObject({ description: "my edit", is_enabled: true });
    expect(patch.body).not.toHaveProperty("key");

    await user.click(within(banner.closest("[role=alert]") as HTMLElement).getByRole("button", { name: "Reload" }));
    await waitFor(() => expect((screen.getByLabelText("Description") as HTMLTextAreaElement).value).toBe("their text"));
    expect(screen.queryByText(/changed by someone else/)).toBeNull();
    expect(screen.getByText("No unsaved changes")).toBeTruthy();
    expect(screen.getByRole("switch", { name: "Enabled in Staging" }).getAttribute("aria-checked")).toBe("false");
    expect(screen.getByText("version 2")).toBeTruthy();
  });

  it("shows a 422 on the field its path names", async () => {
    const regexFlag: Flag = { ...base, rules: [{ attribute: "name", operator: "regex", values: ["^\\pL"], variant: true }] };
    const { requests } = server({
      flag: () => regexFlag,
      patch: () =>
        error(422, "invalid", "rules[0].values[0]: invalid regex: regex parse error:\n    ^\\pQ\n     ^^^\nerror: Unicode property not found"),
    });
    const user = userEvent.setup();
    renderEditor(url("checkout-v2"));
    await screen.findByRole("button", { name: "Save" });
    const rule = screen.getByRole("region", { name: "Rule 1" });
    const value = within(rule).getByLabelText("Value") as HTMLInputElement;
    expect(value.value).toBe("^\\pL");
    await user.clear(value);
    // The browser cannot tell this one (JavaScript and RE2 differ on \p); the server can.
    await user.type(value, "^\\pQ");
    expect(value.getAttribute("aria-invalid")).toBeNull();
    await user.click(screen.getByRole("button", { name: "Save" }));
    await within(rule).findByText(/Unicode property not found/);
    expect(requests.filter((r) => r.method === "PATCH")).toHaveLength(1);
    expect(value.getAttribute("aria-invalid")).toBe("true");
    expect(screen.getByText(/^Not saved: rules\[0\]\.values\[0\]/)).toBeTruthy();
    await waitFor(() => expect(document.activeElement).toBe(value));
    // Editing clears the server's complaint.
    await user.type(value, "x");
    expect(within(rule).queryByText(/Unicode property not found/)).toBeNull();
  });

  it("refuses to save a split that does not add up to 100 %", async () => {
    const withSplit: Flag = {
      ...base,
      flag_type: "string",
      default_value: "a",
      disabled_value: "b",
      rules: [],
      variants: [
        { key: "a", value: "a" },
        { key: "b", value: "b" },
      ],
      split: { weights: [{ variant: "a", weight: 50000 }, { variant: "b", weight: 50000 }] },
    };
    const { requests } = server({ flag: () => withSplit, patch: () => ({ status: 200, body: withSplit }) });
    const user = userEvent.setup();
    renderEditor(url("checkout-v2"));
    await screen.findByRole("button", { name: "Save" });
    const share = screen.getByLabelText("Share of a (%)");
    await user.clear(share);
    await user.type(share, "30");
    expect(screen.getByText("Total: 80 % — must be 100 %")).toBeTruthy();
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByText(/Not saved: one field needs attention/)).toBeTruthy();
    expect(requests.some((r) => r.method === "PATCH")).toBe(false);
  });

  it("creates a flag with POST and opens it", async () => {
    let created: Flag | null = null;
    const { requests } = server({
      flag: () => created,
      post: (r) => {
        created = { ...(r.body as Flag), version: 1 };
        return { status: 201, body: created };
      },
    });
    const user = userEvent.setup();
    renderEditor(`/projects/${PROJECT}/envs/${ENV}/flags/new`);
    await screen.findByRole("button", { name: "Create flag" });
    const key = screen.getByLabelText("Key");
    await user.type(key, "new flag");
    expect(screen.getByText(/" " is not allowed/)).toBeTruthy();
    await user.clear(key);
    await user.type(key, "new-flag");
    await user.selectOptions(screen.getByLabelText("Type"), "integer");
    await user.click(screen.getByRole("button", { name: /Add rule/ }));
    const rule = screen.getByRole("region", { name: "Rule 1" });
    await user.type(within(rule).getByLabelText("Attribute"), "country");
    await user.selectOptions(within(rule).getByLabelText("Operator"), "in");
    await user.type(within(rule).getByLabelText("Values"), "FR{Enter}DE{Enter}");
    await user.click(within(rule).getByRole("radio", { name: "A value" }));
    const served = within(rule).getByLabelText("Served value");
    await user.clear(served);
    await user.type(served, "4.");
    expect((served as HTMLInputElement).value).toBe("4");
    expect(within(rule).getByText(/whole numbers only/)).toBeTruthy();
    await user.type(served, "5");
    expect((served as HTMLInputElement).value).toBe("45");

    await user.click(screen.getByRole("button", { name: "Create flag" }));
    await waitFor(() => expect(screen.getByTestId("where").textContent).toBe(url("new-flag")));
    const post = requests.find((r) => r.method === "POST")!;
    expect(post.body).toMatchObject({
      key: "new-flag",
      flag_type: "integer",
      is_enabled: false,
      default_value: 1,
      disabled_value: 0,
      rules: [{ attribute: "country", operator: "in", values: ["FR", "DE"], variant: 45 }],
    });
    expect(await screen.findByText("Flag created.")).toBeTruthy();
  });

  it("refuses to create over an existing key", async () => {
    const { requests } = server({ flag: () => ({ ...base, key: "taken" }) });
    const user = userEvent.setup();
    renderEditor(`/projects/${PROJECT}/envs/${ENV}/flags/new`);
    await screen.findByRole("button", { name: "Create flag" });
    await user.type(screen.getByLabelText("Key"), "taken");
    await user.click(screen.getByRole("button", { name: "Create flag" }));
    expect(await screen.findByText("A flag named taken already exists in Staging.")).toBeTruthy();
    expect(requests.some((r) => r.method === "POST")).toBe(false);
  });

  it("is read-only for viewers", async () => {
    server({ flag: () => base, role: ["member", "viewer"] });
    renderEditor(url("checkout-v2"));
    const description = await screen.findByLabelText("Description");
    await screen.findByText(/You can view this flag/);
    expect(description.hasAttribute("disabled") || description.closest("fieldset")?.disabled).toBe(true);
    expect(screen.queryByRole("button", { name: "Save" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Delete flag" })).toBeNull();
    expect(screen.queryByRole("button", { name: /Add rule/ })).toBeNull();
    expect(screen.queryByRole("button", { name: "Delete rule 1" })).toBeNull();
    // Trying a context stays possible.
    expect(screen.getByRole("button", { name: "Evaluate" })).toBeTruthy();
  });

  it("has Targeting, Analytics and Stream tabs (the editor stays mounted, hidden), by mouse and keyboard, for viewers too", async () => {
    const srv = fakeServer([
      ...sessionRoutes("member", "viewer"),
      ["GET", /^\/api\/projects\/p1\/environments$/, () => ({ status: 200, body: environments() })],
      ["GET", /^\/api\/environments\/e1\/flags$/, () => ({ status: 200, body: [base] })],
      ["GET", /^\/api\/environments\/e1\/segments$/, () => ({ status: 200, body: [] })],
      ...documentRoutes("flags", () => base),
      [
        "GET",
        /^\/api\/environments\/e1\/flags\/checkout-v2\/insights$/,
        (r) => ({
          status: 200,
          body: {
            flag_key: "checkout-v2", range: r.query.get("range"), from: "2026-11-23T00:00:00.000Z", to: "2026-11-24T00:00:00.000Z",
            bucket_minutes: 60, series: [{ at: "2026-11-23T00:00:00.000Z", evaluations: 4, impressions: 1 }],
            values: [{ value: "true", evaluations: 4, impressions: 1 }], evaluations: 4, impressions: 1, unique_users: 1,
            last_evaluated: "2026-11-23T00:10:00.000Z", stale: false, stale_reason: null,
          },
        }),
      ],
      ["GET", /^\/api\/environments\/e1\/impressions$/, () => ({ status: 200, body: { items: [], total: 0 } })],
    ]);
    const user = userEvent.setup();
    renderEditor(url("checkout-v2"));
    const targeting = await screen.findByRole("tab", { name: "Targeting" });
    expect(targeting.getAttribute("aria-selected")).toBe("true");
    expect(screen.getByRole("tabpanel", { name: "Targeting" })).toBeTruthy();

    await user.click(screen.getByRole("tab", { name: "Analytics" }));
    const analytics = await screen.findByRole("tabpanel", { name: "Analytics" });
    await within(analytics).findByText("Unique users");
    expect(srv.requests.some((r) => r.path.endsWith("/insights") && r.query.get("range") === "24h")).toBe(true);
    // The editor is hidden, not gone.
    expect((screen.getByLabelText("Description") as HTMLTextAreaElement).closest("[hidden]")).toBeTruthy();

    screen.getByRole("tab", { name: "Analytics" }).focus();
    await user.keyboard("{ArrowRight}");
    expect(document.activeElement?.textContent).toBe("Stream");
    const stream = await screen.findByRole("tabpanel", { name: "Stream" });
    await within(stream).findByText("No impressions of checkout-v2 yet.");
    expect(srv.requests.some((r) => r.path === "/api/environments/e1/impressions" && r.query.get("flag_key") === "checkout-v2")).toBe(true);
    expect(screen.queryByRole("tabpanel", { name: "Analytics" })).toBeNull();

    await user.keyboard("{Home}");
    expect(screen.getByRole("tab", { name: "Targeting" }).getAttribute("aria-selected")).toBe("true");
    expect(screen.queryByRole("tabpanel", { name: "Stream" })).toBeNull();
  });
  it("schedules the unsaved edit with Apply at… instead of saving it", async () => {
    const { requests } = fakeServer([
      ...sessionRoutes("admin", "editor"),
      ["GET", /^\/api\/projects\/p1\/environments$/, () => ({ status: 200, body: environments() })],
      ["GET", /^\/api\/environments\/e1\/flags$/, () => ({ status: 200, body: [base] })],
      ["GET", /^\/api\/environments\/e1\/segments$/, () => ({ status: 200, body: [] })],
      [
        "POST",
        /^\/api\/environments\/e1\/flags\/checkout-v2\/scheduled-changes$/,
        () => ({ status: 201, body: { id: "s1", scheduled_at: "2099-01-01T09:00:00.000Z", status: "pending" } }),
      ],
      ...documentRoutes("flags", () => base, {}),
    ]);
    const user = userEvent.setup();
    renderEditor(url("checkout-v2"));
    await screen.findByRole("button", { name: "Save" });
    expect(screen.queryByRole("button", { name: "Apply at…" })).toBeNull();
    const description = screen.getByLabelText("Description") as HTMLTextAreaElement;
    await user.clear(description);
    await user.type(description, "launch copy");
    await user.click(screen.getByRole("button", { name: "Apply at…" }));
    const at = screen.getByLabelText("Apply at") as HTMLInputElement;
    await user.clear(at);
    await user.type(at, "2099-01-01T10:00");
    await user.click(screen.getByRole("button", { name: "Schedule change" }));
    await screen.findByText(/Scheduled: this edit applies at/);
    const post = requests.find((r) => r.method === "POST")!;
    expect(post.body).toMatchObject({ patch: { description: "launch copy" }, if_version: 1 });
    expect(requests.some((r) => r.method === "PATCH")).toBe(false);
    expect(screen.getByText("No unsaved changes")).toBeTruthy();
  });
});
