//! The evaluation context: an optional targeting key and typed attributes (string, number,
//! bool, list of strings). Strings are `Cow`s, so a context parsed from a request body can
//! borrow from it. Attributes are kept sorted by name; lookups are a binary search and allocate
//! nothing.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// The name under which OpenFeature sends the targeting key. A rule on this attribute reads the
/// targeting key when no attribute of that name is present.
pub const TARGETING_KEY: &str = "targetingKey";

/// A typed attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue<'a> {
    String(Cow<'a, str>),
    Number(f64),
    Bool(bool),
    List(Vec<Cow<'a, str>>),
}

/// Why a JSON context was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    #[error("targetingKey must be a string")]
    TargetingKeyNotString,
    #[error(
        "attribute {0:?}: objects are not supported (use a string, number, bool or list of strings)"
    )]
    NestedObject(String),
    #[error("attribute {0:?}: lists may hold only strings, numbers and bools")]
    BadListItem(String),
    #[error("attribute {0:?}: number is not finite")]
    NotFinite(String),
}

/// A 64-bit fingerprint of an attribute name (FNV-1a). Contexts store it beside each name and
/// compiled conditions beside the name they read, so a lookup compares integers and touches the
/// name's bytes only to confirm a hit.
#[inline]
pub(crate) fn name_fingerprint(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Byte equality for the short strings that attribute names and values usually are: the length
/// first, then at most two overlapping word loads instead of a call to `memcmp`.
#[inline(always)]
pub(crate) fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word8 = |s: &[u8], at: usize| {
        s.get(at..at + 8)
            .map(|w| u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]))
    };
    let word4 = |s: &[u8], at: usize| {
        s.get(at..at + 4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
    };
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        _ => a == b,
    }
}

/// What a flag is evaluated for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context<'a> {
    targeting_key: Option<Cow<'a, str>>,
    /// The fingerprints of `attributes`' names, in the same order: searched first, and small
    /// enough that a lookup usually reads one cache line before it touches an attribute.
    fingerprints: Vec<u64>,
    /// Sorted by (fingerprint, name), names unique.
    attributes: Vec<(Cow<'a, str>, AttrValue<'a>)>,
}

impl<'a> Context<'a> {
    /// An empty context: no targeting key, no attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// A context with this targeting key.
    pub fn with_key(key: impl Into<Cow<'a, str>>) -> Self {
        Self {
            targeting_key: Some(key.into()),
            ..Self::default()
        }
    }

    pub fn targeting_key(&self) -> Option<&str> {
        self.targeting_key.as_deref()
    }

    pub fn set_targeting_key(&mut self, key: impl Into<Cow<'a, str>>) {
        self.targeting_key = Some(key.into());
    }

    /// Sets an attribute, replacing any earlier value of the same name.
    pub fn set(&mut self, name: impl Into<Cow<'a, str>>, value: AttrValue<'a>) {
        let name = name.into();
        let fingerprint = name_fingerprint(&name);
        let key = (fingerprint, name.as_ref());
        // Binary search over the two parallel vectors for the first entry not below `key`.
        let (mut lo, mut hi) = (0, self.fingerprints.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if (self.fingerprints[mid], self.attributes[mid].0.as_ref()) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo < self.fingerprints.len()
            && self.fingerprints[lo] == fingerprint
            && self.attributes[lo].0 == name
        {
            self.attributes[lo].1 = value;
        } else {
            self.fingerprints.insert(lo, fingerprint);
            self.attributes.insert(lo, (name, value));
        }
    }

    /// Builder form of [`Context::set`].
    pub fn attr(mut self, name: impl Into<Cow<'a, str>>, value: AttrValue<'a>) -> Self {
        self.set(name, value);
        self
    }

    /// The attribute of this name. `targetingKey` falls back to the targeting key.
    #[inline]
    pub fn get(&self, name: &str) -> Option<Attr<'_>> {
        self.get_by_fingerprint(name_fingerprint(name), name)
    }

    /// [`Context::get`] with the name's fingerprint computed in advance.
    #[inline(always)]
    pub(crate) fn get_by_fingerprint(&self, fingerprint: u64, name: &str) -> Option<Attr<'_>> {
        // A linear scan of a few integers beats a binary search's branches on small contexts.
        let start = if self.fingerprints.len() <= 16 {
            0
        } else {
            self.fingerprints.partition_point(|&f| f < fingerprint)
        };
        for (i, &f) in self.fingerprints.iter().enumerate().skip(start) {
            if f == fingerprint {
                if let Some((n, v)) = self.attributes.get(i)
                    && str_eq(n, name)
                {
                    return Some(Attr::from(v));
                }
            } else if f > fingerprint {
                break;
            }
        }
        if str_eq(name, TARGETING_KEY) {
            return self.targeting_key.as_deref().map(Attr::Str);
        }
        None
    }

    /// The attributes, in no particular order.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &AttrValue<'a>)> {
        self.attributes.iter().map(|(n, v)| (n.as_ref(), v))
    }

    /// Parses the OpenFeature shape: `{"targetingKey": "...", "attr": value, ...}`. Strings are
    /// borrowed from `map`. `null` attributes count as absent.
    pub fn from_json_map(map: &'a Map<String, Value>) -> Result<Self, ContextError> {
        let mut ctx = Self::new();
        ctx.attributes.reserve(map.len());
        for (name, value) in map {
            if name == TARGETING_KEY {
                match value {
                    Value::String(s) => ctx.targeting_key = Some(Cow::Borrowed(s)),
                    Value::Null => {}
                    _ => return Err(ContextError::TargetingKeyNotString),
                }
                continue;
            }
            if let Some(v) = attr_from_json(name, value)? {
                ctx.attributes.push((Cow::Borrowed(name.as_str()), v));
            }
        }
        // A JSON object's names are unique, so one sort puts everything in place.
        ctx.attributes.sort_unstable_by(|(a, _), (b, _)| {
            (name_fingerprint(a), a.as_ref()).cmp(&(name_fingerprint(b), b.as_ref()))
        });
        ctx.fingerprints = ctx
            .attributes
            .iter()
            .map(|(n, _)| name_fingerprint(n))
            .collect();
        Ok(ctx)
    }

    /// Parses Checkgate's SDK shape: a user key and string attributes.
    pub fn from_checkgate<I, K, V>(key: impl Into<Cow<'a, str>>, attributes: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<Cow<'a, str>>,
        V: Into<Cow<'a, str>>,
    {
        let mut ctx = Self::with_key(key);
        for (k, v) in attributes {
            ctx.set(k, AttrValue::String(v.into()));
        }
        ctx
    }
}

fn attr_from_json<'a>(name: &str, value: &'a Value) -> Result<Option<AttrValue<'a>>, ContextError> {
    Ok(Some(match value {
        Value::Null => return Ok(None),
        Value::Bool(b) => AttrValue::Bool(*b),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.is_finite() => AttrValue::Number(f),
            _ => return Err(ContextError::NotFinite(name.to_owned())),
        },
        Value::String(s) => AttrValue::String(Cow::Borrowed(s)),
        Value::Array(items) => {
            let mut list = Vec::with_capacity(items.len());
            for item in items {
                list.push(match item {
                    Value::String(s) => Cow::Borrowed(s.as_str()),
                    Value::Number(n) => Cow::Owned(n.to_string()),
                    Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
                    _ => return Err(ContextError::BadListItem(name.to_owned())),
                });
            }
            AttrValue::List(list)
        }
        Value::Object(_) => return Err(ContextError::NestedObject(name.to_owned())),
    }))
}

/// A borrowed view of one attribute, as the evaluator reads it.
#[derive(Debug, Clone, Copy)]
pub enum Attr<'c> {
    Str(&'c str),
    Number(f64),
    Bool(bool),
    List(&'c [Cow<'c, str>]),
}

impl<'c> From<&'c AttrValue<'_>> for Attr<'c> {
    #[inline(always)]
    fn from(value: &'c AttrValue<'_>) -> Self {
        match value {
            AttrValue::String(s) => Attr::Str(s),
            AttrValue::Number(n) => Attr::Number(*n),
            AttrValue::Bool(b) => Attr::Bool(*b),
            // A `&[Cow<'long, str>]` is a valid `&[Cow<'c, str>]`: Cow is covariant.
            AttrValue::List(l) => Attr::List(l.as_slice()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openfeature_shape_and_borrows() {
        let json: Value = serde_json::json!({
            "targetingKey": "user-1", "plan": "pro", "age": 42, "beta": true,
            "groups": ["a", "b", 3], "gone": null
        });
        let ctx = Context::from_json_map(json.as_object().unwrap()).unwrap();
        assert_eq!(ctx.targeting_key(), Some("user-1"));
        assert!(matches!(ctx.get("plan"), Some(Attr::Str("pro"))));
        assert!(matches!(ctx.get("age"), Some(Attr::Number(n)) if n == 42.0));
        assert!(matches!(ctx.get("beta"), Some(Attr::Bool(true))));
        assert!(matches!(ctx.get("groups"), Some(Attr::List(l)) if l.len() == 3 && l[2] == "3"));
        assert!(ctx.get("gone").is_none());
        assert!(matches!(ctx.get(TARGETING_KEY), Some(Attr::Str("user-1"))));
    }

    #[test]
    fn refuses_bad_shapes() {
        let bad = [
            (
                serde_json::json!({"targetingKey": 5}),
                ContextError::TargetingKeyNotString,
            ),
            (
                serde_json::json!({"o": {"x": 1}}),
                ContextError::NestedObject("o".into()),
            ),
            (
                serde_json::json!({"l": [{"x": 1}]}),
                ContextError::BadListItem("l".into()),
            ),
        ];
        for (json, want) in bad {
            assert_eq!(Context::from_json_map(json.as_object().unwrap()), Err(want));
        }
    }

    #[test]
    fn str_eq_agrees_with_eq_at_every_length() {
        let base = "abcdefghijklmnopqrstuvwxyz0123456789";
        for n in 0..=base.len() {
            let a = &base[..n];
            assert!(str_eq(a, a));
            for i in 0..n {
                let mut other = a.as_bytes().to_vec();
                other[i] ^= 1;
                let other = String::from_utf8(other).unwrap();
                assert!(!str_eq(a, &other), "{a:?} vs {other:?}");
            }
            assert!(!str_eq(a, &base[..(n + 1).min(base.len())]) || n == base.len());
        }
    }

    #[test]
    fn a_large_context_is_found_whole() {
        let map: Map<String, Value> = (0..5000)
            .map(|i| (format!("attr-{i}"), Value::from(i)))
            .collect();
        let ctx = Context::from_json_map(&map).unwrap();
        for i in (0..5000).step_by(97) {
            assert!(
                matches!(ctx.get(&format!("attr-{i}")), Some(Attr::Number(n)) if n == f64::from(i))
            );
        }
        let mut built = Context::new();
        for i in (0..500).rev() {
            built.set(format!("a{i}"), AttrValue::Number(f64::from(i)));
        }
        built.set("a7", AttrValue::Bool(true));
        assert_eq!(built.attributes().count(), 500);
        assert!(matches!(built.get("a7"), Some(Attr::Bool(true))));
        assert!(matches!(built.get("a499"), Some(Attr::Number(n)) if n == 499.0));
    }

    #[test]
    fn set_replaces_and_keeps_order() {
        let ctx = Context::new()
            .attr("b", AttrValue::Bool(true))
            .attr("a", AttrValue::Number(1.0))
            .attr("b", AttrValue::Bool(false));
        let mut names: Vec<_> = ctx.attributes().map(|(n, _)| n).collect();
        names.sort_unstable();
        assert_eq!(names, ["a", "b"]);
        assert!(matches!(ctx.get("b"), Some(Attr::Bool(false))));
    }
}
