import { cleanup, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Segment } from "./model";
import { SegmentEditorPage } from "./SegmentEditor";
import { renderEditorAt } from "./testRender";
import { documentRoutes, ENV, environments, error, fakeServer, PROJECT, sessionRoutes, type Handler } from "./testServer";

vi.setConfig({ testTimeout: 20_000 });

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const renderEditor = (path: string) => renderEditorAt(path, "segments", <SegmentEditorPage />);

const base: Segment = {
  key: "beta",
  name: "Beta testers",
  version: 1,
  description: "old text",
  included: ["u1"],
  excluded: [],
  rules: [{ attribute: "email", operator: "ends_with", values: ["@example.com"] }],
};

function server(opts: {
  segment: () => Segment | null;
  patch?: Handler;
  post?: Handler;
  role?: ["admin" | "member", string];
}) {
  return fakeServer([
    ...sessionRoutes(...(opts.role ?? ["admin", "editor"])),
    ["GET", /^\/api\/projects\/p1\/environments$/, () => ({ status: 200, body: environments() })],
    ["GET", /^\/api\/environments\/e1\/flags$/, () => ({ status: 200, body: [] })],
    ["GET", /^\/api\/environments\/e1\/segments$/, () => ({ status: 200, body: opts.segment() ? [opts.segment()] : [] })],
    ...documentRoutes("segments", opts.segment, opts),
  ]);
}

const url = (key: string) => `/projects/${PROJECT}/envs/${ENV}/segments/${key}`;

describe("SegmentEditor", () => {
  it("saves with If-Match, says which version is live, and discards edits on request", async () => {
    const { requests } = server({
      segment: () => base,
      patch: (r) => ({ status: 200, body: { ...base, ...(r.body as object), version: 2 } }),
    });
    const user = userEvent.setup();
    renderEditor(url("beta"));
    await screen.findByRole("button", { name: "Save" });
    const name = screen.getByLabelText("Name") as HTMLInputElement;
    expect(name.value).toBe("Beta testers");
    expect(screen.getByText("No unsaved changes")).toBeTruthy();

    await user.type(name, " (old)");
    expect(screen.getByText("Unsaved changes")).toBeTruthy();
    await user.click(screen.getByRole("button", { name: "Discard changes" }));
    expect((screen.getByLabelText("Name") as HTMLInputElement).value).toBe("Beta testers");
    expect(screen.getByText("No unsaved changes")).toBeTruthy();

    await user.clear(screen.getByLabelText("Name"));
    await user.type(screen.getByLabelText("Name"), "Early adopters");
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByText("Saved: version 2 of beta is live in Staging.")).toBeTruthy();
    const patch = requests.find((r) => r.method === "PATCH")!;
    expect(patch.headers["If-Match"]).toBe('"1"');
    expect(patch.body).toMatchObject({ name: "Early adopters", included: ["u1"] });
    expect(patch.body).not.toHaveProperty("key");
    expect(screen.getByText("No unsaved changes")).toBeTruthy();
    expect(screen.getByText("version 2")).toBeTruthy();
  });

  it("turns a 412 into a banner whose Reload loads the current segment", async () => {
    let current: Segment = base;
    server({
      segment: () => current,
      patch: () => error(412, "precondition_failed", 'segment "beta" is at version 2, not 1'),
    });
    const user = userEvent.setup();
    renderEditor(url("beta"));
    await screen.findByRole("button", { name: "Save" });
    await user.type(screen.getByLabelText("Description"), " and more");
    current = { ...base, version: 2, description: "their text" };
    await user.click(screen.getByRole("button", { name: "Save" }));
    const banner = await screen.findByText("This segment was changed by someone else since you opened it.");
    await user.click(within(banner.closest("[role=alert]") as HTMLElement).getByRole("button", { name: "Reload" }));
    await waitFor(() => expect((screen.getByLabelText("Description") as HTMLTextAreaElement).value).toBe("their text"));
    await waitFor(() => expect(screen.queryByText(/changed by someone else/)).toBeNull());
    expect(screen.getByText("No unsaved changes")).toBeTruthy();
  });

  it("marks fields the browser can check before sending anything", async () => {
    const { requests } = server({ segment: () => base, patch: () => ({ status: 200, body: base }) });
    const user = userEvent.setup();
    renderEditor(url("beta"));
    await screen.findByRole("button", { name: "Save" });
    await user.click(screen.getByRole("button", { name: /Add rule/ }));
    await user.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByText("Not saved: 2 fields need attention (marked below).")).toBeTruthy();
    expect(requests.some((r) => r.method === "PATCH")).toBe(false);
  });

  it("creates a segment with POST and opens it; a taken key is shown on the key field", async () => {
    let created: Segment | null = null;
    let taken = true;
    const { requests } = server({
      segment: () => created,
      post: (r) => {
        if (taken) return error(409, "conflict", 'segment "beta" already exists');
        created = { ...(r.body as Segment), version: 1 };
        return { status: 201, body: created };
      },
    });
    const user = userEvent.setup();
    renderEditor(`/projects/${PROJECT}/envs/${ENV}/segments/new`);
    await screen.findByRole("button", { name: "Create segment" });
    expect(screen.getByText("New segment", { selector: "[role=status]" })).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Discard changes" })).toBeNull();
    await user.type(screen.getByLabelText("Key"), "beta");
    await user.type(screen.getByLabelText("Name"), "Beta");
    expect(screen.queryByRole("button", { name: "Discard changes" })).toBeNull();
    await user.click(screen.getByRole("button", { name: "Create segment" }));
    expect(await screen.findByText("A segment named beta already exists in Staging.")).toBeTruthy();
    expect(screen.getByLabelText("Key").getAttribute("aria-invalid")).toBe("true");

    taken = false;
    await user.click(screen.getByRole("button", { name: "Create segment" }));
    await waitFor(() => expect(screen.getByTestId("where").textContent).toBe(url("beta")));
    expect(requests.filter((r) => r.method === "POST")).toHaveLength(2);
    expect(requests.find((r) => r.method === "POST")!.body).toMatchObject({ key: "beta", name: "Beta", rules: [] });
    expect(await screen.findByRole("button", { name: "Delete segment" })).toBeTruthy();
  });

  it("says when the segment does not exist", async () => {
    server({ segment: () => null });
    renderEditor(url("nope"));
    expect(await screen.findByText(/There is no segment/)).toBeTruthy();
    expect(screen.getByRole("link", { name: "Back to the segments" }).getAttribute("href")).toBe(
      `/projects/${PROJECT}/envs/${ENV}/segments`,
    );
  });

  it("is read-only for viewers", async () => {
    server({ segment: () => base, role: ["member", "viewer"] });
    renderEditor(url("beta"));
    const name = await screen.findByLabelText("Name");
    await screen.findByText(/You can view this segment/);
    expect(name.closest("fieldset")?.disabled).toBe(true);
    expect(screen.queryByRole("button", { name: "Save" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Delete segment" })).toBeNull();
    expect(screen.queryByRole("button", { name: /Add rule/ })).toBeNull();
  });
});
