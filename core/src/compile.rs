//! Compilation: a flag or segment document becomes the immutable form the evaluator runs on.
//! Everything that can be decided once is decided here — values type-checked and serialized,
//! variant names resolved, conditions compiled, splits turned into bucket ranges — and every
//! problem is reported with its path, never as a panic.

use serde_json::Value;

use crate::automaton::{Automata, RegexBudget};
use crate::condition::Condition;
use crate::error::{CompileError, Path};
use crate::hash::{SPLIT_SCALE, Salt};
use crate::model::{ConditionDoc, FlagDoc, FlagType, RuleDoc, SegmentDoc, SplitDoc};

/// Longest flag or segment key.
pub const MAX_KEY_LEN: usize = 100;

/// A value a flag can serve, serialized once, with the variant name reported for it.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) value: Value,
    pub(crate) json: Box<str>,
    pub(crate) variant: Box<str>,
}

impl Outcome {
    fn new(value: Value, variant: Box<str>) -> Self {
        let json = value.to_string().into_boxed_str();
        Self {
            value,
            json,
            variant,
        }
    }
}

/// What a matching rule, or the fallthrough, serves.
#[derive(Debug, Clone)]
pub(crate) enum Serve {
    Outcome(Outcome),
    /// The enabled default (`default_value`, else `true` / `null`).
    On,
    Split(Split),
}

/// A split as cumulative upper bounds over `[0, 100,000)`, each with an index into the flag's
/// variants.
#[derive(Debug, Clone)]
pub(crate) struct Split {
    pub(crate) buckets: Box<[(u32, usize)]>,
}

impl Split {
    #[inline]
    pub(crate) fn pick(&self, bucket: u32) -> usize {
        let i = self.buckets.partition_point(|&(upper, _)| upper <= bucket);
        // Weights sum to SPLIT_SCALE and bucket < SPLIT_SCALE, so `i` is in range; the
        // fallback keeps a corrupted split from panicking.
        self.buckets
            .get(i)
            .or(self.buckets.last())
            .map_or(0, |&(_, v)| v)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) conditions: Box<[Condition]>,
    pub(crate) segment: Option<Box<str>>,
    pub(crate) serve: Serve,
}

#[derive(Debug, Clone)]
pub(crate) struct Prerequisite {
    pub(crate) key: Box<str>,
    pub(crate) variants: Box<[Box<str>]>,
}

/// What happens when no rule matches.
#[derive(Debug, Clone)]
pub(crate) enum Fallthrough {
    /// Serve the enabled default to everyone.
    On,
    /// Checkgate's rollout: `bucket % 100 < percentage` gets the enabled default, others the
    /// disabled value. Only for 0 < percentage < 100.
    Rollout(u32),
    /// Nobody: a 0 % rollout.
    Off,
    Split(Split),
}

/// A flag ready for evaluation. Immutable; replaced whole when the flag changes.
#[derive(Debug, Clone)]
pub struct CompiledFlag {
    pub(crate) key: Box<str>,
    pub(crate) flag_type: FlagType,
    pub(crate) enabled: bool,
    /// The disabled value (`disabled_value`, else `false`).
    pub(crate) off: Outcome,
    /// The enabled default (`default_value`, else `true` for boolean flags, `null` otherwise).
    pub(crate) on: Outcome,
    pub(crate) variants: Box<[Outcome]>,
    pub(crate) prerequisites: Box<[Prerequisite]>,
    pub(crate) rules: Box<[Rule]>,
    pub(crate) fallthrough: Fallthrough,
    /// The value is the same for every context.
    pub(crate) is_static: bool,
    pub(crate) bucket_by: Option<Box<str>>,
    /// The bucketing key's prefix `"{salt}:"` (the salt defaults to the flag key).
    pub(crate) salt: Salt,
    automata: Automata,
    doc: FlagDoc,
}

impl CompiledFlag {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn flag_type(&self) -> FlagType {
        self.flag_type
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The document this flag was compiled from.
    pub fn doc(&self) -> &FlagDoc {
        &self.doc
    }

    /// Bytes of the DFAs this flag's regexes compiled to: what it holds in memory besides its
    /// document, at most [`MAX_AUTOMATON_BYTES`](crate::MAX_AUTOMATON_BYTES).
    pub fn automaton_bytes(&self) -> usize {
        self.automata.bytes
    }

    /// The path of the regex condition's values that hold the most automaton
    /// (`rules[0].conditions[1].values`); `None` without regexes.
    pub fn largest_automaton_path(&self) -> Option<&str> {
        self.automata.largest.as_deref()
    }

    /// Keys of the flags this one requires.
    pub fn prerequisite_keys(&self) -> impl Iterator<Item = &str> {
        self.prerequisites.iter().map(|p| p.key.as_ref())
    }

    /// Keys of the segments this flag's rules refer to.
    pub fn segment_keys(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().flat_map(|r| {
            r.segment.as_deref().into_iter().chain(
                r.conditions
                    .iter()
                    .flat_map(|c| c.segment_keys().iter().map(AsRef::as_ref)),
            )
        })
    }
}

/// A segment ready for evaluation.
#[derive(Debug, Clone)]
pub struct CompiledSegment {
    pub(crate) key: Box<str>,
    pub(crate) included: Box<[Box<str>]>,
    pub(crate) excluded: Box<[Box<str>]>,
    pub(crate) rules: Box<[Box<[Condition]>]>,
    automata: Automata,
    doc: SegmentDoc,
}

impl CompiledSegment {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn doc(&self) -> &SegmentDoc {
        &self.doc
    }

    /// Bytes of the DFAs this segment's regexes compiled to, at most
    /// [`MAX_AUTOMATON_BYTES`](crate::MAX_AUTOMATON_BYTES).
    pub fn automaton_bytes(&self) -> usize {
        self.automata.bytes
    }

    /// The path of the regex condition's values that hold the most automaton; `None` without
    /// regexes.
    pub fn largest_automaton_path(&self) -> Option<&str> {
        self.automata.largest.as_deref()
    }
}

fn check_key(path: &Path, key: &str) -> Result<(), CompileError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(path.error(format!("must be 1 to {MAX_KEY_LEN} characters")));
    }
    if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(path.error(format!(
            "{c:?} is not allowed (use letters, digits, '-', '_' and '.')"
        )));
    }
    Ok(())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_type(path: &Path, flag_type: FlagType, v: &Value) -> Result<(), CompileError> {
    let ok = match flag_type {
        FlagType::Boolean => v.is_boolean(),
        FlagType::String => v.is_string(),
        FlagType::Integer => v.is_i64(),
        FlagType::Json => true,
    };
    if ok {
        Ok(())
    } else {
        let want = match flag_type {
            FlagType::Boolean => "a boolean",
            FlagType::String => "a string",
            FlagType::Integer => "an integer (64-bit signed)",
            FlagType::Json => "JSON",
        };
        Err(path.error(format!(
            "expected {want} for a {} flag, got {}",
            flag_type.as_str(),
            type_name(v)
        )))
    }
}

/// The variant name reported for a value: the key of a named variant with this value, else a
/// name derived from the value (the string itself, `true`/`false`, the number), else `role`.
fn variant_name(value: &Value, named: &[(String, Value)], role: &str) -> Box<str> {
    if let Some((key, _)) = named.iter().find(|(_, v)| v == value) {
        return key.as_str().into();
    }
    match value {
        Value::String(s) if !s.is_empty() && s.chars().count() <= 100 => s.as_str().into(),
        Value::Bool(b) => if *b { "true" } else { "false" }.into(),
        Value::Number(n) => n.to_string().into(),
        _ => role.into(),
    }
}

fn compile_conditions(
    path: &Path,
    rule: &RuleDoc,
    budget: &mut RegexBudget,
) -> Result<Box<[Condition]>, CompileError> {
    let mut out = Vec::with_capacity(rule.conditions.len() + 1);
    if rule.has_inline_condition() {
        let inline = ConditionDoc {
            attribute: rule.attribute.clone(),
            operator: rule.operator,
            values: rule.values.clone(),
        };
        out.push(Condition::compile(path, &inline, budget)?);
    }
    for (j, c) in rule.conditions.iter().enumerate() {
        out.push(Condition::compile(
            &path.field("conditions").index(j),
            c,
            budget,
        )?);
    }
    Ok(out.into_boxed_slice())
}

fn compile_split(
    path: &Path,
    split: &SplitDoc,
    variants: &[(String, Value)],
) -> Result<Split, CompileError> {
    let weights = path.field("weights");
    if split.weights.is_empty() {
        return Err(weights.error("must not be empty"));
    }
    let mut upper = 0u64;
    let mut buckets = Vec::with_capacity(split.weights.len());
    for (i, w) in split.weights.iter().enumerate() {
        let Some(index) = variants.iter().position(|(k, _)| *k == w.variant) else {
            return Err(weights
                .index(i)
                .field("variant")
                .error(format!("no variant named {:?}", w.variant)));
        };
        upper += u64::from(w.weight);
        if upper > u64::from(SPLIT_SCALE) {
            return Err(weights.error(format!("weights must sum to {SPLIT_SCALE}, got more")));
        }
        if w.weight > 0 {
            buckets.push((upper as u32, index));
        }
    }
    if upper != u64::from(SPLIT_SCALE) {
        return Err(weights.error(format!(
            "weights must sum to {SPLIT_SCALE} (100 %), got {upper}"
        )));
    }
    Ok(Split {
        buckets: buckets.into_boxed_slice(),
    })
}

/// Parses and compiles a flag from JSON, reporting parse errors with their path too.
pub fn compile_flag_json(json: &str) -> Result<CompiledFlag, CompileError> {
    let de = &mut serde_json::Deserializer::from_str(json);
    let doc: FlagDoc = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        CompileError::new(
            if path == "." { String::new() } else { path },
            e.into_inner(),
        )
    })?;
    compile_flag(doc)
}

/// Compiles a flag document.
pub fn compile_flag(doc: FlagDoc) -> Result<CompiledFlag, CompileError> {
    let root = Path::root();
    check_key(&root.field("key"), &doc.key)?;
    let ty = doc.flag_type;

    let mut named: Vec<(String, Value)> = Vec::with_capacity(doc.variants.len());
    for (i, v) in doc.variants.iter().enumerate() {
        let p = root.field("variants").index(i);
        if v.key.is_empty() || v.key.len() > MAX_KEY_LEN {
            return Err(p
                .field("key")
                .error(format!("must be 1 to {MAX_KEY_LEN} characters")));
        }
        if named.iter().any(|(k, _)| *k == v.key) {
            return Err(p
                .field("key")
                .error(format!("duplicate variant {:?}", v.key)));
        }
        check_type(&p.field("value"), ty, &v.value)?;
        named.push((v.key.clone(), v.value.clone()));
    }
    let variants: Box<[Outcome]> = named
        .iter()
        .map(|(k, v)| Outcome::new(v.clone(), k.as_str().into()))
        .collect();

    if let Some(v) = &doc.default_value {
        check_type(&root.field("default_value"), ty, v)?;
    }
    if let Some(v) = &doc.disabled_value {
        check_type(&root.field("disabled_value"), ty, v)?;
    }
    // Checkgate's fallbacks, kept exactly: off is `false` whatever the type; on is `true` for
    // boolean flags and `null` for the others.
    let off_value = doc.disabled_value.clone().unwrap_or(Value::Bool(false));
    let on_value = doc.default_value.clone().unwrap_or(match ty {
        FlagType::Boolean => Value::Bool(true),
        _ => Value::Null,
    });
    let off = Outcome::new(
        off_value.clone(),
        variant_name(&off_value, &named, "disabled"),
    );
    let on = Outcome::new(on_value.clone(), variant_name(&on_value, &named, "default"));

    let mut budget = RegexBudget::new("flag");
    let mut rules = Vec::with_capacity(doc.rules.len());
    for (i, rule) in doc.rules.iter().enumerate() {
        let p = root.field("rules").index(i);
        if rule.segment_key.as_deref() == Some("") {
            return Err(p.field("segment_key").error("must not be empty"));
        }
        let conditions = compile_conditions(&p, rule, &mut budget)?;
        if conditions.is_empty() && rule.segment_key.is_none() {
            return Err(p.error("has no condition"));
        }
        let serve = match (&rule.variant, &rule.split) {
            (Some(_), Some(_)) => return Err(p.error("give either a variant or a split, not both")),
            (Some(v), None) => {
                check_type(&p.field("variant"), ty, v)?;
                Serve::Outcome(Outcome::new(
                    v.clone(),
                    variant_name(v, &named, &format!("rules[{i}]")),
                ))
            }
            (None, Some(split)) => Serve::Split(compile_split(&p.field("split"), split, &named)?),
            (None, None) => Serve::On,
        };
        rules.push(Rule {
            conditions,
            segment: rule.segment_key.as_deref().map(Into::into),
            serve,
        });
    }

    let fallthrough = match (&doc.split, doc.rollout_percentage) {
        (Some(_), Some(_)) => {
            return Err(root.field("rollout_percentage").error(
                "cannot be combined with a split; give the split's variants the shares instead",
            ));
        }
        (Some(split), None) => {
            Fallthrough::Split(compile_split(&root.field("split"), split, &named)?)
        }
        (None, Some(p)) if p > 100 => {
            return Err(root
                .field("rollout_percentage")
                .error(format!("must be between 0 and 100, got {p}")));
        }
        (None, Some(0)) => Fallthrough::Off,
        (None, Some(p)) if p < 100 => Fallthrough::Rollout(p),
        (None, _) => Fallthrough::On,
    };

    let mut prerequisites = Vec::with_capacity(doc.prerequisites.len());
    for (i, pre) in doc.prerequisites.iter().enumerate() {
        let p = root.field("prerequisites").index(i);
        check_key(&p.field("key"), &pre.key)?;
        if pre.key == doc.key {
            return Err(p.field("key").error("a flag cannot require itself"));
        }
        prerequisites.push(Prerequisite {
            key: pre.key.as_str().into(),
            variants: pre.variants.iter().map(|v| v.as_str().into()).collect(),
        });
    }

    if doc.bucket_by.as_deref() == Some("") {
        return Err(root
            .field("bucket_by")
            .error("must not be empty (leave it out to use the targeting key)"));
    }
    if doc.salt.as_deref() == Some("") {
        return Err(root
            .field("salt")
            .error("must not be empty (leave it out to use the flag key)"));
    }

    let is_static = doc.is_enabled
        && rules.is_empty()
        && prerequisites.is_empty()
        && matches!(fallthrough, Fallthrough::On);
    Ok(CompiledFlag {
        key: doc.key.as_str().into(),
        flag_type: ty,
        enabled: doc.is_enabled,
        off,
        on,
        variants,
        prerequisites: prerequisites.into_boxed_slice(),
        rules: rules.into_boxed_slice(),
        fallthrough,
        is_static,
        bucket_by: doc.bucket_by.as_deref().map(Into::into),
        salt: Salt::new(doc.salt.as_deref().unwrap_or(&doc.key)),
        automata: budget.finish(),
        doc,
    })
}

/// Parses and compiles a segment from JSON.
pub fn compile_segment_json(json: &str) -> Result<CompiledSegment, CompileError> {
    let de = &mut serde_json::Deserializer::from_str(json);
    let doc: SegmentDoc = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        CompileError::new(
            if path == "." { String::new() } else { path },
            e.into_inner(),
        )
    })?;
    compile_segment(doc)
}

/// Compiles a segment document. Segment rules may not refer to segments, so segment
/// membership never recurses.
pub fn compile_segment(doc: SegmentDoc) -> Result<CompiledSegment, CompileError> {
    let root = Path::root();
    check_key(&root.field("key"), &doc.key)?;
    let mut budget = RegexBudget::new("segment");
    let mut rules = Vec::with_capacity(doc.rules.len());
    for (i, rule) in doc.rules.iter().enumerate() {
        let p = root.field("rules").index(i);
        if rule.segment_key.is_some() {
            return Err(p
                .field("segment_key")
                .error("segments cannot refer to segments"));
        }
        let conditions = compile_conditions(&p, rule, &mut budget)?;
        if let Some(j) = conditions.iter().position(|c| !c.segment_keys().is_empty()) {
            return Err(p.error(format!("condition {j}: segments cannot refer to segments")));
        }
        if conditions.is_empty() {
            return Err(p.error("has no condition"));
        }
        rules.push(conditions);
    }
    let sorted = |v: &[String]| {
        let mut v: Vec<Box<str>> = v.iter().map(|s| s.as_str().into()).collect();
        v.sort_unstable();
        v.dedup();
        v.into_boxed_slice()
    };
    Ok(CompiledSegment {
        key: doc.key.as_str().into(),
        included: sorted(&doc.included),
        excluded: sorted(&doc.excluded),
        rules: rules.into_boxed_slice(),
        automata: budget.finish(),
        doc,
    })
}
