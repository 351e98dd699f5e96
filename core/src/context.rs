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

// ---- Reading a context straight from request JSON ---------------------------------------------
//
// The same OpenFeature shape as `from_json_map`, with the same refusals, but read in one pass
// from the request bytes: names and strings without escapes are borrowed from them, and no
// `serde_json::Map` (its tree, its keys and values) is built and dropped per request.

impl<'de: 'a, 'a> serde::Deserialize<'de> for Context<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ContextVisitor(std::marker::PhantomData))
    }
}

struct ContextVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> serde::de::Visitor<'de> for ContextVisitor<'a> {
    type Value = Context<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a context object: targetingKey and attributes")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Context<'a>, M::Error> {
        use serde::de::Error as _;
        let mut ctx = Context::new();
        // (fingerprint, name, value or `None` for null), in the order given.
        let mut read: Vec<(u64, Cow<'a, str>, Option<AttrValue<'a>>)> =
            Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(JsonStr(name)) = map.next_key::<JsonStr<'de>>()? {
            let value = map.next_value_seed(AttrSeed { name: &name })?;
            if name == TARGETING_KEY {
                ctx.targeting_key = match value {
                    Some(AttrValue::String(key)) => Some(key),
                    None => None,
                    Some(_) => return Err(M::Error::custom(ContextError::TargetingKeyNotString)),
                };
            } else {
                read.push((name_fingerprint(&name), name, value));
            }
        }
        // Sorted by (fingerprint, name). Of duplicate names, which JSON allows, the last wins,
        // as in a parsed object: the sort is stable, so it is the last of its run. `null` is
        // absent, also when it overrides an earlier value.
        read.sort_by(|a, b| (a.0, a.1.as_ref()).cmp(&(b.0, b.1.as_ref())));
        read.reverse();
        read.dedup_by(|later, earlier| later.0 == earlier.0 && later.1 == earlier.1);
        read.reverse();
        ctx.fingerprints.reserve(read.len());
        ctx.attributes.reserve(read.len());
        for (fingerprint, name, value) in read {
            if let Some(value) = value {
                ctx.fingerprints.push(fingerprint);
                ctx.attributes.push((name, value));
            }
        }
        Ok(ctx)
    }
}

/// A JSON string, borrowed from the input when it has no escapes.
struct JsonStr<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for JsonStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JsonStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<JsonStr<'de>, E> {
                Ok(JsonStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<JsonStr<'de>, E> {
                Ok(JsonStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<JsonStr<'de>, E> {
                Ok(JsonStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// One attribute's value (`None` for `null`), refused with `from_json_map`'s errors.
struct AttrSeed<'n> {
    name: &'n str,
}

impl<'de, 'n> serde::de::DeserializeSeed<'de> for AttrSeed<'n> {
    type Value = Option<AttrValue<'de>>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, 'n> serde::de::Visitor<'de> for AttrSeed<'n> {
    type Value = Option<AttrValue<'de>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "attribute {:?} as a string, number, bool or list of strings",
            self.name
        )
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(AttrValue::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(AttrValue::Number(v as f64)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(AttrValue::Number(v as f64)))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if v.is_finite() {
            Ok(Some(AttrValue::Number(v)))
        } else {
            Err(E::custom(ContextError::NotFinite(self.name.to_owned())))
        }
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(AttrValue::String(Cow::Borrowed(v))))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(AttrValue::String(Cow::Owned(v.to_owned()))))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(AttrValue::String(Cow::Owned(v))))
    }
    fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        use serde::de::Error as _;
        let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element::<ListItem<'de>>()? {
            list.push(match item {
                ListItem::Str(s) => s,
                ListItem::Number(n) => Cow::Owned(n.to_string()),
                ListItem::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
                ListItem::Other => {
                    return Err(S::Error::custom(ContextError::BadListItem(
                        self.name.to_owned(),
                    )));
                }
            });
        }
        Ok(Some(AttrValue::List(list)))
    }
    fn visit_map<M: serde::de::MapAccess<'de>>(self, _: M) -> Result<Self::Value, M::Error> {
        use serde::de::Error as _;
        Err(M::Error::custom(ContextError::NestedObject(
            self.name.to_owned(),
        )))
    }
}

/// An item of a list attribute. Numbers are kept as JSON numbers, so they read as text exactly
/// as `from_json_map` reads them.
enum ListItem<'de> {
    Str(Cow<'de, str>),
    Number(serde_json::Number),
    Bool(bool),
    /// `null`, a list or an object: refused by the caller, with the attribute's name.
    Other,
}

impl<'de> serde::Deserialize<'de> for ListItem<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ListItem<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, number or bool")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<ListItem<'de>, E> {
                Ok(ListItem::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<ListItem<'de>, E> {
                Ok(ListItem::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<ListItem<'de>, E> {
                Ok(ListItem::Str(Cow::Owned(v)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<ListItem<'de>, E> {
                Ok(ListItem::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<ListItem<'de>, E> {
                Ok(ListItem::Number(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<ListItem<'de>, E> {
                Ok(ListItem::Number(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<ListItem<'de>, E> {
                Ok(serde_json::Number::from_f64(v).map_or(ListItem::Other, ListItem::Number))
            }
            fn visit_unit<E>(self) -> Result<ListItem<'de>, E> {
                Ok(ListItem::Other)
            }
            fn visit_seq<S: serde::de::SeqAccess<'de>>(
                self,
                mut seq: S,
            ) -> Result<ListItem<'de>, S::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(ListItem::Other)
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<ListItem<'de>, M::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(ListItem::Other)
            }
        }
        d.deserialize_any(V)
    }
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

    /// Reading a context from the request bytes gives exactly what parsing them into a map and
    /// reading that gives, for contexts good and bad.
    #[test]
    fn reading_from_bytes_agrees_with_reading_a_parsed_map() {
        let cases = [
            r#"{"targetingKey":"user-1","plan":"pro","age":42,"beta":true,"groups":["a","b",3,1.5,true],"gone":null}"#,
            r#"{}"#,
            r#"{"targetingKey":null,"x":"esc\"aped","n":-0.25,"big":18446744073709551615}"#,
            r#"{"a":1,"a":2,"b":"x","b":null}"#,
            r#"{"targetingKey":"k1","targetingKey":"k2","z":[]}"#,
            r#"{"targetingKey":5}"#,
            r#"{"targetingKey":["k"]}"#,
            r#"{"o":{"x":1}}"#,
            r#"{"l":[{"x":1}]}"#,
            r#"{"l":["a",null]}"#,
            r#"{"l":[["a"]]}"#,
        ];
        for json in cases {
            let map: Map<String, Value> = serde_json::from_str(json).unwrap();
            let want = Context::from_json_map(&map);
            let got: Result<Context<'_>, _> = serde_json::from_str(json);
            match (want, got) {
                (Ok(want), Ok(got)) => assert_eq!(got, want, "{json}"),
                (Err(want), Err(got)) => assert!(
                    got.to_string().starts_with(&want.to_string()),
                    "{json}: {got} / {want}"
                ),
                (want, got) => panic!("{json}: {want:?} / {got:?}"),
            }
        }
        // Strings without escapes are borrowed from the input.
        let json = r#"{"targetingKey":"u","plan":"pro"}"#;
        let ctx: Context<'_> = serde_json::from_str(json).unwrap();
        assert!(matches!(ctx.targeting_key, Some(Cow::Borrowed(_))));
        assert!(matches!(
            ctx.attributes[0].1,
            AttrValue::String(Cow::Borrowed(_))
        ));
        assert!(serde_json::from_str::<Context<'_>>("[1]").is_err());
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
