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
    #[error("attribute {0:?}: objects are not supported (use a string, number, bool or list of strings)")]
    NestedObject(String),
    #[error("attribute {0:?}: lists may hold only strings, numbers and bools")]
    BadListItem(String),
    #[error("attribute {0:?}: number is not finite")]
    NotFinite(String),
}

/// What a flag is evaluated for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context<'a> {
    targeting_key: Option<Cow<'a, str>>,
    /// Sorted by name, names unique.
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
            attributes: Vec::new(),
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
        match self
            .attributes
            .binary_search_by(|(n, _)| n.as_ref().cmp(name.as_ref()))
        {
            Ok(i) => self.attributes[i].1 = value,
            Err(i) => self.attributes.insert(i, (name, value)),
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
        match self
            .attributes
            .binary_search_by(|(n, _)| n.as_ref().cmp(name))
        {
            Ok(i) => Some(Attr::from(&self.attributes[i].1)),
            Err(_) if name == TARGETING_KEY => self.targeting_key.as_deref().map(Attr::Str),
            Err(_) => None,
        }
    }

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
                ctx.set(Cow::Borrowed(name.as_str()), v);
            }
        }
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
    #[inline]
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
            (serde_json::json!({"targetingKey": 5}), ContextError::TargetingKeyNotString),
            (serde_json::json!({"o": {"x": 1}}), ContextError::NestedObject("o".into())),
            (serde_json::json!({"l": [{"x": 1}]}), ContextError::BadListItem("l".into())),
        ];
        for (json, want) in bad {
            assert_eq!(Context::from_json_map(json.as_object().unwrap()), Err(want));
        }
    }

    #[test]
    fn set_replaces_and_keeps_order() {
        let ctx = Context::new()
            .attr("b", AttrValue::Bool(true))
            .attr("a", AttrValue::Number(1.0))
            .attr("b", AttrValue::Bool(false));
        let names: Vec<_> = ctx.attributes().map(|(n, _)| n).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(matches!(ctx.get("b"), Some(Attr::Bool(false))));
    }
}
