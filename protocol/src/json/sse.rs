//! The `data` of Checkgate's SSE `update` events, byte for byte. Checkgate builds them as
//! `serde_json::Value`s, whose objects are sorted maps, so every object's keys come out in
//! alphabetical order at every level; SDKs and the people who compare streams see exactly that.
//! We sort explicitly instead of relying on `serde_json`'s map type, which a dependency turning
//! on its `preserve_order` feature would silently change.

use checkgate_core::FlagDoc;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// Serializes a JSON value with every object's keys in byte order.
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                let mut out = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    out.serialize_entry(key, &Sorted(value))?;
                }
                out.end()
            }
            Value::Array(items) => serializer.collect_seq(items.iter().map(Sorted)),
            scalar => scalar.serialize(serializer),
        }
    }
}

/// Writes `value` as compact JSON with every object's keys in byte order, whatever map type
/// `serde_json` was built with.
pub fn to_sorted_json(value: &Value) -> Result<String, serde_json::Error> {
    serde_json::to_string(&Sorted(value))
}

/// The `data` of Checkgate's `update` event for a created or changed flag:
/// `{"env_id":"…","flag":{…},"type":"UPSERT"}`. Fields the document leaves out (a rule's
/// `variant`) stay out; nulls it holds (`rollout_percentage`, `description`) stay explicit.
///
/// The flag must already be in the form SDKs evaluate: a flag whose rules point at segments is
/// expanded by the caller, as Checkgate does before it sends one.
pub fn sse_upsert(env_id: &str, flag: &FlagDoc) -> Result<String, serde_json::Error> {
    let mut event = serde_json::Map::new();
    event.insert("env_id".to_owned(), Value::String(env_id.to_owned()));
    event.insert("flag".to_owned(), serde_json::to_value(flag)?);
    event.insert("type".to_owned(), Value::String("UPSERT".to_owned()));
    to_sorted_json(&Value::Object(event))
}

/// The `data` of Checkgate's `update` event for a deleted flag:
/// `{"env_id":"…","key":"…","type":"DELETE"}`.
pub fn sse_delete(env_id: &str, key: &str) -> String {
    // Keys inserted in sorted order: whatever the map type, they come out sorted. A `Value`'s
    // `Display` is its compact JSON and cannot fail.
    let mut event = serde_json::Map::new();
    event.insert("env_id".to_owned(), Value::String(env_id.to_owned()));
    event.insert("key".to_owned(), Value::String(key.to_owned()));
    event.insert("type".to_owned(), Value::String("DELETE".to_owned()));
    Value::Object(event).to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn flag(json: &str) -> FlagDoc {
        serde_json::from_str(json).unwrap()
    }

    /// The bytes observed on Checkgate's stream (research: checkgate.md §4).
    #[test]
    fn upsert_payload_is_byte_identical_to_checkgate() {
        let doc = flag(
            r#"{"key":"checkout","is_enabled":true,"rollout_percentage":50,"description":"dev",
            "rules":[{"attribute":"plan","operator":"equals","values":["pro"],"variant":"v3"}],
            "flag_type":"string","default_value":"v2","disabled_value":"v1"}"#,
        );
        assert_eq!(
            sse_upsert("<uuid>", &doc).unwrap(),
            r#"{"env_id":"<uuid>","flag":{"default_value":"v2","description":"dev","disabled_value":"v1","flag_type":"string","is_enabled":true,"key":"checkout","rollout_percentage":50,"rules":[{"attribute":"plan","operator":"equals","values":["pro"],"variant":"v3"}]},"type":"UPSERT"}"#
        );
    }

    #[test]
    fn nulls_are_explicit_and_absent_variants_absent() {
        let doc = flag(
            r#"{"key":"k","is_enabled":false,"rollout_percentage":null,"description":null,
            "rules":[{"attribute":"a","operator":"not_equals","values":["x"]}]}"#,
        );
        assert_eq!(
            sse_upsert("e", &doc).unwrap(),
            r#"{"env_id":"e","flag":{"description":null,"flag_type":"boolean","is_enabled":false,"key":"k","rollout_percentage":null,"rules":[{"attribute":"a","operator":"not_equals","values":["x"]}]},"type":"UPSERT"}"#
        );
    }

    #[test]
    fn values_inside_the_flag_are_sorted_too() {
        let doc = flag(
            r#"{"key":"cfg","is_enabled":true,"flag_type":"json",
            "default_value":{"z":[{"b":1,"a":2}],"a":"\u00e9\"\n"}}"#,
        );
        let payload = sse_upsert("e", &doc).unwrap();
        assert!(
            payload.contains(r#""default_value":{"a":"é\"\n","z":[{"a":2,"b":1}]}"#),
            "{payload}"
        );
        // And it is JSON that reads back to the same document.
        let back: Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(
            serde_json::from_value::<FlagDoc>(back["flag"].clone()).unwrap(),
            doc
        );
    }

    #[test]
    fn delete_payload() {
        assert_eq!(
            sse_delete("e1", "my-flag"),
            r#"{"env_id":"e1","key":"my-flag","type":"DELETE"}"#
        );
        assert_eq!(
            sse_delete("e1", "quote\"d"),
            r#"{"env_id":"e1","key":"quote\"d","type":"DELETE"}"#
        );
    }

    #[test]
    fn sorted_json_escapes_keys_and_nests() {
        let v = json!({"b": [{"z": 1, "a": "\"q\""}], "a\n": null, "B": 1.5});
        assert_eq!(
            to_sorted_json(&v).unwrap(),
            r#"{"B":1.5,"a\n":null,"b":[{"a":"\"q\"","z":1}]}"#
        );
    }
}
