//! The flag and segment documents as they cross process boundaries: Checkgate's JSON shape plus
//! our extensions. These types are only parsed and re-serialized; `compile` turns them into the
//! form the evaluator runs on.
//!
//! Compatibility rule: every document Checkgate stores deserializes into these types unchanged,
//! and serializing a Checkgate-shaped document gives back the same JSON keys, so Checkgate's SDKs
//! keep understanding what we send them. Extensions are optional fields that are skipped when
//! empty.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The type of value a flag serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FlagType {
    #[default]
    Boolean,
    String,
    Integer,
    Json,
}

impl FlagType {
    /// The name used in documents and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Boolean => "boolean",
            Self::String => "string",
            Self::Integer => "integer",
            Self::Json => "json",
        }
    }
}

/// A comparison in a rule condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    #[default]
    Equals,
    NotEquals,
    Contains,
    StartsWith,
    EndsWith,
    In,
    NotIn,
    Regex,
    Lt,
    Lte,
    Gt,
    Gte,
    SemverLt,
    SemverEq,
    SemverGt,
    DateBefore,
    DateAfter,
    InSegment,
}

impl Operator {
    /// Operators whose result is the negation of a positive match. A missing attribute
    /// satisfies them (Checkgate: "the user is definitely not X").
    pub fn is_negated(self) -> bool {
        matches!(self, Self::NotEquals | Self::NotIn)
    }
}

/// One condition: `attribute operator values`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Condition))]
pub struct ConditionDoc {
    #[serde(default)]
    pub attribute: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub operator: Operator,
    #[serde(default)]
    pub values: Vec<String>,
}

/// A targeting rule. Checkgate's rules are a single condition written inline
/// (`attribute`, `operator`, `values`), or a reference to a segment (`segment_key`); ours may
/// also carry several `conditions`, all of which must hold.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Rule))]
pub struct RuleDoc {
    /// Checkgate's inline condition. Ignored when `segment_key` is set (Checkgate replaces
    /// such a rule by the segment's rules) or when both it and `values` are empty while
    /// `conditions` is not.
    #[serde(default)]
    pub attribute: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub operator: Operator,
    #[serde(default)]
    pub values: Vec<String>,
    /// The rule matches only contexts in this segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_key: Option<String>,
    /// Further conditions, ANDed with the inline one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ConditionDoc>,
    /// The value served when this rule matches (Checkgate's name for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<Value>,
    /// A weighted split served when this rule matches, instead of `variant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitDoc>,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl RuleDoc {
    /// Whether the inline Checkgate condition takes part in matching.
    pub fn has_inline_condition(&self) -> bool {
        self.segment_key.is_none()
            && !(self.attribute.is_empty() && self.values.is_empty() && !self.conditions.is_empty())
    }
}

/// A named value a flag can serve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Variant))]
pub struct VariantDoc {
    pub key: String,
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One share of a split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WeightDoc {
    /// Key of an entry of the flag's `variants`.
    pub variant: String,
    /// Share in units of 1/100,000.
    #[cfg_attr(feature = "openapi", schema(format = Int64, maximum = 4_294_967_295_u32))]
    pub weight: u32,
}

/// A weighted split over named variants. Weights sum to 100,000.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Split))]
pub struct SplitDoc {
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub weights: Vec<WeightDoc>,
}

/// A flag that must hold before this one is evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Prerequisite))]
pub struct PrerequisiteDoc {
    /// Key of the prerequisite flag, in the same environment.
    pub key: String,
    /// The prerequisite holds when that flag is on for the context and, if this list is not
    /// empty, serves one of these variants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<String>,
}

/// A flag document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(
        as = FlagInput,
        description = "A flag document (see docs/evaluation.md). Unknown fields are ignored; a \
            document that does not compile is 422."
    )
)]
pub struct FlagDoc {
    /// 1–100 of ASCII letters, digits, `-`, `_`, `.`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9._-]{1,100}$"))]
    pub key: String,
    pub is_enabled: bool,
    /// 0–100; `null` or absent means 100.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100))]
    pub rollout_percentage: Option<u32>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub rules: Vec<RuleDoc>,
    /// `boolean` when absent.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = "boolean"))]
    pub flag_type: FlagType,
    /// Served when no rule matches; any JSON value of the flag's `flag_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<Value>,
    /// Served when the flag is off; any JSON value of the flag's `flag_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_value: Option<Value>,
    /// Named variants, referenced by splits and prerequisites and reported in results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantDoc>,
    /// The split served when no rule matches (instead of `default_value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitDoc>,
    /// The context attribute that buckets rollouts and splits; the targeting key if unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_by: Option<String>,
    /// Hash salt for rollouts and splits; the flag key if unset (Checkgate's bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prerequisites: Vec<PrerequisiteDoc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// A segment: a reusable set of contexts, by explicit keys or by rules (ORed). Unknown fields
/// are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SegmentInput))]
pub struct SegmentDoc {
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9._-]{1,100}$"))]
    pub key: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Targeting keys that are always in the segment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included: Vec<String>,
    /// Targeting keys that are never in the segment (wins over everything else).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<String>,
    /// A context is in the segment when any rule matches; rules cannot refer to segments.
    #[serde(default)]
    pub rules: Vec<RuleDoc>,
}
