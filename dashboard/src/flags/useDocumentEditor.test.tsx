import { act, cleanup, renderHook, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  draftToSegment,
  newSegmentDraft,
  segmentToDraft,
  type Segment,
  type SegmentDoc,
  type SegmentDraft,
} from "./model";
import { documentRoutes, error, fakeServer, type Handler } from "./testServer";
import { useDocumentEditor, type DocumentEditorOptions } from "./useDocumentEditor";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const doc: Segment = { key: "beta", name: "Beta", version: 4, included: [], excluded: [], rules: [] };

function server(opts: { get?: () => Segment | null; patch?: Handler; post?: Handler }) {
  return fakeServer(documentRoutes("segments", opts.get ?? (() => doc), opts));
}

function editor(over: Partial<DocumentEditorOptions<Segment, SegmentDoc, SegmentDraft>> = {}) {
  const onCreated = vi.fn();
  const hook = renderHook(() =>
    useDocumentEditor<Segment, SegmentDoc, SegmentDraft>({
      noun: "segment",
      collection: "/api/environments/e1/segments",
      docKey: "beta",
      readOnly: false,
      envName: "Staging",
      newDraft: newSegmentDraft,
      toDraft: segmentToDraft,
      build: draftToSegment,
      takenKey: "conflict",
      reportsGone: false,
      savedText: (s) => `version ${s.version}`,
      onCreated,
      ...over,
    }),
  );
  return { ...hook, onCreated };
}

const rename = (name: string) => (d: SegmentDraft) => ({ ...d, name });

describe("useDocumentEditor", () => {
  it("loads the document, tracks unsaved changes and discards them", async () => {
    server({});
    const { result } = editor();
    await waitFor(() => expect(result.current.saved?.version).toBe(4));
    expect(result.current.draft?.name).toBe("Beta");
    expect(result.current.dirty).toBe(false);
    act(() => result.current.update(rename("Gamma")));
    expect(result.current.dirty).toBe(true);
    act(() => result.current.update(rename("Beta")));
    expect(result.current.dirty).toBe(false);
    act(() => result.current.update(rename("Gamma")));
    act(() => result.current.discard());
    expect(result.current.draft?.name).toBe("Beta");
    expect(result.current.dirty).toBe(false);
  });

  it("saves with If-Match of the opened version, without the key, and takes the answer as saved", async () => {
    const { requests } = server({ patch: (r) => ({ status: 200, body: { ...doc, ...(r.body as object), version: 5 } }) });
    const { result } = editor();
    await waitFor(() => expect(result.current.saved).toBeTruthy());
    act(() => result.current.update(rename("Gamma")));
    await act(() => result.current.save());
    const patch = requests.find((r) => r.method === "PATCH")!;
    expect(patch.headers["If-Match"]).toBe('"4"');
    expect(patch.body).toMatchObject({ name: "Gamma" });
    expect(patch.body).not.toHaveProperty("key");
    expect(result.current.banner).toEqual({ kind: "saved", text: "version 5" });
    expect(result.current.saved?.version).toBe(5);
    expect(result.current.dirty).toBe(false);
  });

  it("turns a 412 into a stale banner that edits keep, and reloads the current version", async () => {
    let current = doc;
    server({ get: () => current, patch: () => error(412, "precondition_failed", "stale") });
    const { result } = editor();
    await waitFor(() => expect(result.current.saved).toBeTruthy());
    act(() => result.current.update(rename("Gamma")));
    current = { ...doc, version: 6, name: "Theirs" };
    await act(() => result.current.save());
    expect(result.current.banner).toEqual({ kind: "stale" });
    act(() => result.current.update(rename("Delta")));
    expect(result.current.banner).toEqual({ kind: "stale" });
    await act(() => result.current.reload());
    expect(result.current.banner).toBeNull();
    expect(result.current.draft?.name).toBe("Theirs");
    expect(result.current.saved?.version).toBe(6);
    expect(result.current.dirty).toBe(false);
  });

  it("says a 404 on save is a deleted document only when asked to", async () => {
    server({ patch: () => error(404, "not_found", "segment not found") });
    const plain = editor();
    await waitFor(() => expect(plain.result.current.saved).toBeTruthy());
    act(() => plain.result.current.update(rename("Gamma")));
    await act(() => plain.result.current.save());
    expect(plain.result.current.banner).toEqual({ kind: "error", text: "Not saved: segment not found" });
    cleanup();

    const gone = editor({ reportsGone: true });
    await waitFor(() => expect(gone.result.current.saved).toBeTruthy());
    act(() => gone.result.current.update(rename("Gamma")));
    await act(() => gone.result.current.save());
    expect(gone.result.current.banner).toEqual({ kind: "gone" });
  });

  it("puts a 422 on the field its path names until the next edit", async () => {
    server({ patch: () => error(422, "invalid", "name: must not be empty") });
    const { result } = editor();
    await waitFor(() => expect(result.current.saved).toBeTruthy());
    act(() => result.current.update(rename(" ")));
    await act(() => result.current.save());
    expect(result.current.errors.name).toBe("Must not be empty");
    expect(result.current.banner).toEqual({ kind: "error", text: "Not saved: name: must not be empty" });
    act(() => result.current.update(rename("x")));
    expect(result.current.errors.name).toBeUndefined();
    expect(result.current.banner).toBeNull();
  });

  it("sends nothing while the draft has problems, and counts them", async () => {
    const { requests } = server({});
    const { result } = editor();
    await waitFor(() => expect(result.current.saved).toBeTruthy());
    act(() => result.current.update((d) => ({ ...d, key: "bad key" })));
    await act(() => result.current.save());
    expect(result.current.banner).toEqual({ kind: "invalid", count: 1 });
    expect(result.current.errors.key).toMatch(/not allowed/);
    expect(requests.some((r) => r.method === "PATCH")).toBe(false);
  });

  it("creates a new document, or says its key is taken: by a 409, or by asking first", async () => {
    let taken = true;
    const { requests } = server({
      get: () => (taken ? { ...doc, key: "new" } : null),
      post: () => (taken ? error(409, "conflict", "exists") : { status: 201, body: { ...doc, key: "new" } }),
    });
    const conflict = editor({ docKey: undefined });
    expect(conflict.result.current.isNew).toBe(true);
    expect(conflict.result.current.saved).toBeNull();
    act(() => conflict.result.current.update((d) => ({ ...d, key: "new", name: "New" })));
    await act(() => conflict.result.current.save());
    expect(conflict.result.current.errors.key).toBe("A segment named new already exists in Staging.");
    expect(requests.filter((r) => r.method === "POST")).toHaveLength(1);
    cleanup();

    const before = editor({ docKey: undefined, takenKey: "before" });
    act(() => before.result.current.update((d) => ({ ...d, key: "new", name: "New" })));
    await act(() => before.result.current.save());
    expect(before.result.current.errors.key).toBe("A segment named new already exists in Staging.");
    expect(requests.filter((r) => r.method === "POST")).toHaveLength(1);

    taken = false;
    await act(() => before.result.current.save());
    expect(before.onCreated).toHaveBeenCalledWith(expect.objectContaining({ key: "new", name: "New" }));
    expect(before.result.current.dirty).toBe(false);
    expect(requests.filter((r) => r.method === "POST")).toHaveLength(2);
  });

  it("does not save for a read-only user", async () => {
    const { requests } = server({});
    const { result } = editor({ readOnly: true });
    await waitFor(() => expect(result.current.saved).toBeTruthy());
    act(() => result.current.update(rename("Gamma")));
    await act(() => result.current.save());
    expect(requests.some((r) => r.method === "PATCH")).toBe(false);
  });
});
