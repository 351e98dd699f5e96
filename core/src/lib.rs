//! The evaluation core of Checkgate: the flag model, its compiler, the zero-allocation
//! evaluator, the bucketing hash and the versioned [`FlagStore`].
//!
//! This crate does no I/O, reads no clock and draws no random numbers: the same flag and
//! context give the same answer in the control plane, every edge and any SDK built on it.
//!
//! ```
//! use checkgate_core::{compile_flag_json, evaluate, AttrValue, Context, Reason, Standalone};
//!
//! let flag = compile_flag_json(r#"{"key":"checkout","is_enabled":true,"rollout_percentage":null,
//!     "rules":[{"attribute":"plan","operator":"equals","values":["pro"],"variant":"v3"}],
//!     "flag_type":"string","default_value":"v2","disabled_value":"v1"}"#).unwrap();
//! let ctx = Context::with_key("user-1").attr("plan", AttrValue::String("pro".into()));
//! let result = evaluate(&flag, &ctx, &Standalone);
//! assert_eq!(result.value, "v3");
//! assert_eq!(result.reason, Reason::TargetingMatch);
//! ```

mod automaton;
mod casefold;
mod compile;
mod condition;
mod context;
pub mod date;
mod error;
mod eval;
pub mod hash;
pub mod model;
pub mod semver;
mod store;

pub use automaton::{
    MAX_AUTOMATON_BYTES, MAX_CASE_FOLD_CHARS, MAX_DETERMINIZE_WORK, MAX_REGEX_AUTOMATON_BYTES,
    MAX_REGEX_LEN, MAX_REGEX_NFA_BYTES, MAX_REGEX_PATTERN_BYTES, MAX_REGEX_VALUES,
};
pub use compile::{
    CompiledFlag, CompiledSegment, MAX_KEY_LEN, compile_flag, compile_flag_json, compile_segment,
    compile_segment_json,
};
pub use context::{Attr, AttrValue, Context, ContextError, TARGETING_KEY};
pub use error::CompileError;
pub use eval::{
    ErrorCode, Evaluation, Lookup, MAX_PREREQUISITE_DEPTH, Reason, Standalone, evaluate,
};
pub use model::{FlagDoc, FlagType, Operator, SegmentDoc};
pub use store::{Applied, Change, Entry, EntryState, Environment, FlagStore, ItemKind};
