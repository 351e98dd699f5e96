//! The driver for the language-neutral evaluation spec in `tests/spec/*.json`: loads every
//! file, builds its environment through the real `FlagStore` path, and prepares each case.
//! Shared by the spec test and the zero-allocation test.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use checkgate_core::{Change, Context, Environment, ErrorCode, Evaluation, evaluate};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub flags: Vec<Value>,
    #[serde(default)]
    pub segments: Vec<Value>,
    #[serde(default)]
    pub cases: Vec<Case>,
    #[serde(default)]
    pub compile_errors: Vec<CompileErrorCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub flag: String,
    #[serde(default)]
    pub context: Map<String, Value>,
    pub expected: Expected,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub value: Value,
    pub variant: String,
    pub reason: String,
    #[serde(default, rename = "errorCode")]
    pub error_code: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompileErrorCase {
    pub name: String,
    #[serde(default)]
    pub kind: Option<String>,
    pub document: Value,
    /// The error must start with this text (path and problem).
    pub error: String,
}

pub fn spec_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/spec")
}

pub fn load_all() -> Vec<(String, SpecFile)> {
    let mut files: Vec<_> = std::fs::read_dir(spec_dir())
        .expect("tests/spec exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable spec file");
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let spec: SpecFile =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, spec)
        })
        .collect()
}

/// Builds the file's environment the way an edge does: each document becomes a versioned change.
pub fn environment(spec: &SpecFile) -> Environment {
    let env = Environment::new();
    let mut version = 0;
    for doc in &spec.segments {
        version += 1;
        let key = doc["key"].as_str().expect("segment key");
        env.apply(Change::segment_json(key, version, &doc.to_string()));
    }
    for doc in &spec.flags {
        version += 1;
        let key = doc["key"].as_str().expect("flag key");
        env.apply(Change::flag_json(key, version, &doc.to_string()));
    }
    env
}

/// Evaluates a flag by key as a server does: a missing or broken flag is an error result.
pub fn eval_key<'f>(
    env: &Environment,
    holder: &'f mut Option<std::sync::Arc<checkgate_core::CompiledFlag>>,
    key: &str,
    ctx: &Context<'_>,
) -> Evaluation<'f> {
    match env.flag_for_eval(key) {
        Ok(flag) => evaluate(holder.insert(flag), ctx, env),
        Err(code @ (ErrorCode::FlagNotFound | ErrorCode::ParseError)) => Evaluation::error(code),
        Err(code) => Evaluation::error(code),
    }
}
