// Flags and segments: the API's shapes, the editors' working copies ("drafts") and the
// conversions between them, client-side checks that mirror the evaluation core
// (core/src/compile.rs, condition.rs, semver.rs, date.rs), and the mapping of the server's
// 422 paths to the editors' fields. One module a concern; import from here.

export * from "./types";
export * from "./operators";
export * from "./validation";
export * from "./values";
export * from "./drafts";
export * from "./serialize";
export * from "./serverErrors";
export * from "./scan";
