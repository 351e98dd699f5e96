//! Rule conditions: compiled once from their document (values parsed, lists sorted, regexes
//! built into DFAs) and matched against a context without allocating.

use regex_automata::{
    Input,
    dfa::{Automaton, dense},
};

use crate::automaton::RegexBudget;
use crate::context::{Attr, Context, name_fingerprint, str_eq};
use crate::date;
use crate::error::{CompileError, Path};
use crate::model::{ConditionDoc, Operator};
use crate::semver::{self, OwnedVersion};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Lt,
    Lte,
    Gt,
    Gte,
    Eq,
}

impl Cmp {
    #[inline]
    fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Self::Lt => ord == Less,
            Self::Lte => ord != Greater,
            Self::Gt => ord == Greater,
            Self::Gte => ord != Less,
            Self::Eq => ord == Equal,
        }
    }
}

/// The values of a condition, in the form its operator needs.
#[derive(Debug, Clone)]
enum Test {
    /// equals / in (negated: not_equals / not_in). Strings sorted for binary search; the
    /// values that read as numbers, sorted, for number attributes.
    OneOf {
        strings: Box<[Box<str>]>,
        numbers: Box<[f64]>,
    },
    Contains(Box<[Box<str>]>),
    StartsWith(Box<[Box<str>]>),
    EndsWith(Box<[Box<str>]>),
    Regex(Box<[dense::DFA<Vec<u32>>]>),
    Number(Cmp, Box<[f64]>),
    Semver(Cmp, Box<[OwnedVersion]>),
    Date(Cmp, Box<[i64]>),
    InSegment(Box<[Box<str>]>),
}

/// A compiled condition.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    attribute: Box<str>,
    /// `name_fingerprint(attribute)`, computed once.
    fingerprint: u64,
    negated: bool,
    test: Test,
}

/// `-0.0` and `0.0` must compare equal under `total_cmp`.
#[inline]
fn norm(x: f64) -> f64 {
    x + 0.0
}

fn sorted_strings(values: &[String]) -> Box<[Box<str>]> {
    let mut v: Vec<Box<str>> = values.iter().map(|s| s.as_str().into()).collect();
    v.sort_unstable();
    v.dedup();
    v.into_boxed_slice()
}

fn parse_number(s: &str) -> Option<f64> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(norm)
}

/// Parses every value with `parse`, naming the first one that fails.
fn parse_all<T>(
    path: &Path,
    values: &[String],
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Box<[T]>, CompileError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            parse(v).ok_or_else(|| {
                path.field("values")
                    .index(i)
                    .error(format!("{v:?} is not {what}"))
            })
        })
        .collect()
}

impl Condition {
    /// Compiles one condition found at `path`; its regexes draw on `budget`, shared by every
    /// condition of the flag or segment.
    pub(crate) fn compile(
        path: &Path,
        doc: &ConditionDoc,
        budget: &mut RegexBudget,
    ) -> Result<Self, CompileError> {
        let values = &doc.values;
        if doc.operator != Operator::InSegment && doc.attribute.is_empty() {
            return Err(path.field("attribute").error("must not be empty"));
        }
        if values.is_empty() {
            return Err(path.field("values").error("must not be empty"));
        }
        let test = match doc.operator {
            Operator::Equals | Operator::NotEquals | Operator::In | Operator::NotIn => {
                let mut numbers: Vec<f64> = values.iter().filter_map(|v| parse_number(v)).collect();
                numbers.sort_unstable_by(f64::total_cmp);
                numbers.dedup();
                Test::OneOf {
                    strings: sorted_strings(values),
                    numbers: numbers.into_boxed_slice(),
                }
            }
            Operator::Contains => Test::Contains(sorted_strings(values)),
            Operator::StartsWith => Test::StartsWith(sorted_strings(values)),
            Operator::EndsWith => Test::EndsWith(sorted_strings(values)),
            Operator::Regex => {
                let at = path.field("values");
                let dfas: Box<[_]> = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| budget.build(v).map_err(|e| at.index(i).error(e)))
                    .collect::<Result<_, _>>()?;
                budget.note_condition(&at, dfas.iter().map(dense::DFA::memory_usage).sum());
                Test::Regex(dfas)
            }
            Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte => {
                let cmp = match doc.operator {
                    Operator::Lt => Cmp::Lt,
                    Operator::Lte => Cmp::Lte,
                    Operator::Gt => Cmp::Gt,
                    _ => Cmp::Gte,
                };
                Test::Number(
                    cmp,
                    parse_all(path, values, "a finite number", parse_number)?,
                )
            }
            Operator::SemverLt | Operator::SemverEq | Operator::SemverGt => {
                let cmp = match doc.operator {
                    Operator::SemverLt => Cmp::Lt,
                    Operator::SemverEq => Cmp::Eq,
                    _ => Cmp::Gt,
                };
                Test::Semver(
                    cmp,
                    parse_all(path, values, "a semantic version", OwnedVersion::parse)?,
                )
            }
            Operator::DateBefore | Operator::DateAfter => {
                let cmp = if doc.operator == Operator::DateBefore {
                    Cmp::Lt
                } else {
                    Cmp::Gt
                };
                Test::Date(
                    cmp,
                    parse_all(
                        path,
                        values,
                        "an RFC 3339 timestamp or Unix milliseconds",
                        date::parse_instant,
                    )?,
                )
            }
            Operator::InSegment => {
                if let Some(i) = values.iter().position(String::is_empty) {
                    return Err(path
                        .field("values")
                        .index(i)
                        .error("segment key must not be empty"));
                }
                Test::InSegment(sorted_strings(values))
            }
        };
        Ok(Self {
            fingerprint: name_fingerprint(&doc.attribute),
            attribute: doc.attribute.as_str().into(),
            negated: doc.operator.is_negated(),
            test,
        })
    }

    /// Segment keys this condition refers to: empty unless it is an `in_segment` condition.
    pub(crate) fn segment_keys(&self) -> &[Box<str>] {
        match &self.test {
            Test::InSegment(keys) => keys,
            _ => &[],
        }
    }

    /// Whether the condition holds for the context's attributes. An `in_segment` condition
    /// needs the environment: the evaluator checks [`Condition::segment_keys`] first.
    #[inline]
    pub(crate) fn matches(&self, ctx: &Context<'_>) -> bool {
        match ctx.get_by_fingerprint(self.fingerprint, &self.attribute) {
            // A missing attribute satisfies only the negated operators (Checkgate semantics).
            None => self.negated,
            Some(attr) => self.test_attr(attr) != self.negated,
        }
    }

    #[inline]
    fn test_attr(&self, attr: Attr<'_>) -> bool {
        match attr {
            Attr::Str(s) => self.test_str(s),
            Attr::Number(n) => self.test_number(n),
            Attr::Bool(b) => self.test_str(if b { "true" } else { "false" }),
            Attr::List(items) => items.iter().any(|item| self.test_str(item)),
        }
    }

    #[inline(always)]
    fn test_str(&self, s: &str) -> bool {
        match &self.test {
            Test::OneOf { strings, .. } if strings.len() <= 8 => {
                strings.iter().any(|v| str_eq(v, s))
            }
            Test::OneOf { strings, .. } => strings.binary_search_by(|v| v.as_ref().cmp(s)).is_ok(),
            Test::Contains(vs) => vs.iter().any(|v| s.contains(v.as_ref())),
            Test::StartsWith(vs) => vs.iter().any(|v| s.starts_with(v.as_ref())),
            Test::EndsWith(vs) => vs.iter().any(|v| s.ends_with(v.as_ref())),
            Test::Regex(dfas) => dfas.iter().any(|dfa| {
                // A DFA search fails only on a Unicode word boundary next to non-ASCII text;
                // such a haystack does not match.
                matches!(
                    dfa.try_search_fwd(&Input::new(s).earliest(true)),
                    Ok(Some(_))
                )
            }),
            Test::Number(..) => parse_number(s).is_some_and(|n| self.test_number(n)),
            Test::Semver(cmp, vs) => semver::parse(s)
                .is_some_and(|have| vs.iter().any(|v| cmp.holds(have.cmp(&v.as_version())))),
            Test::Date(cmp, vs) => {
                date::parse_instant(s).is_some_and(|t| vs.iter().any(|v| cmp.holds(t.cmp(v))))
            }
            Test::InSegment(_) => false,
        }
    }

    #[inline]
    fn test_number(&self, n: f64) -> bool {
        let n = norm(n);
        match &self.test {
            Test::OneOf { numbers, .. } => numbers.binary_search_by(|v| v.total_cmp(&n)).is_ok(),
            Test::Number(cmp, vs) => vs.iter().any(|v| cmp.holds(n.total_cmp(v))),
            // Numbers in date conditions are Unix milliseconds.
            Test::Date(cmp, vs) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
                vs.iter().any(|v| cmp.holds((n as i64).cmp(v)))
            }
            _ => false,
        }
    }
}
