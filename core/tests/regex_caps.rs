//! The limits on what a flag's or segment's regexes may cost to compile and to hold: each is
//! reached by a document that still compiles, passed by one that is refused with the path of
//! the value that passed it, and ordinary patterns stay far from all of them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use checkgate_core::{
    AttrValue, CompileError, CompiledFlag, Context, MAX_AUTOMATON_BYTES, MAX_REGEX_AUTOMATON_BYTES,
    MAX_REGEX_LEN, MAX_REGEX_PATTERN_BYTES, MAX_REGEX_VALUES, Standalone, compile_flag_json,
    compile_segment_json, evaluate,
};
use serde_json::{Value, json};

fn regex_rule(values: &[String]) -> Value {
    json!({"attribute": "email", "operator": "regex", "values": values, "variant": false})
}

fn flag(rules: Vec<Value>) -> Result<CompiledFlag, CompileError> {
    compile_flag_json(&json!({"key": "f", "is_enabled": true, "rules": rules}).to_string())
}

fn copies(pattern: &str, n: usize) -> Vec<String> {
    vec![pattern.to_owned(); n]
}

/// The flag of the report: 40 values `[ab]*a[ab]{13}` followed by 0–39 `x`, 1.6 KB of JSON,
/// which every edge took 1.3 s (release) and 46 MB to compile.
#[test]
fn the_reported_flag_is_refused_at_its_first_value() {
    let values: Vec<String> = (0..40)
        .map(|i| format!("[ab]*a[ab]{{13}}{}", "x".repeat(i)))
        .collect();
    let err = flag(vec![regex_rule(&values)]).unwrap_err();
    assert_eq!(err.path, "rules[0].values[0]", "{err}");
    assert!(
        err.message.contains("determinization work")
            && err.message.contains("this flag's limit of 16.8 million"),
        "{err}"
    );
}

#[test]
fn a_refused_value_in_an_extra_condition_is_named_by_its_path() {
    let rule = json!({
        "conditions": [
            {"attribute": "email", "operator": "regex", "values": ["@example\\.com$"]},
            {"attribute": "name", "operator": "regex", "values": ["^a", "^b", "^c", r"\w{50}"]},
        ],
        "variant": false,
    });
    let err = flag(vec![rule]).unwrap_err();
    assert_eq!(err.path, "rules[0].conditions[1].values[3]", "{err}");
    assert!(err.message.contains("NFA would exceed 64 KiB"), "{err}");
}

#[test]
fn a_flag_holds_exactly_the_capped_number_of_regex_values_across_its_rules() {
    let condition =
        |values: Vec<String>| json!({"attribute": "a", "operator": "regex", "values": values});
    let mut rules = vec![
        json!({"attribute": "a", "operator": "regex", "values": copies("^u-[0-9]+$", 20),
               "conditions": [condition(copies("x$", 20))], "variant": false}),
        json!({"conditions": [condition(copies("^y", MAX_REGEX_VALUES - 40))], "variant": false}),
    ];
    flag(rules.clone()).expect("64 regex values compile");
    rules[1]["conditions"]
        .as_array_mut()
        .unwrap()
        .push(condition(vec!["z".into()]));
    let err = flag(rules).unwrap_err();
    assert_eq!(err.path, "rules[1].conditions[1].values[0]", "{err}");
    assert!(err.message.contains("at most 64 regex values"), "{err}");
}

/// Compiles `MAX_REGEX_VALUES` copies of `pattern`: the copies that fit the budget compile, the
/// next one is refused with `message`. Returns how many fit.
fn fill(pattern: &str, message: &str) -> usize {
    let err = flag(vec![regex_rule(&copies(pattern, MAX_REGEX_VALUES))]).unwrap_err();
    assert!(err.message.contains(message), "{err}");
    let fit: usize = err
        .path
        .strip_prefix("rules[0].values[")
        .and_then(|p| p.strip_suffix(']'))
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    let full = flag(vec![regex_rule(&copies(pattern, fit))]).expect("the copies that fit");
    assert!(full.automaton_bytes() <= MAX_AUTOMATON_BYTES);
    fit
}

#[test]
fn a_flag_fills_its_automaton_budget_and_the_next_regex_is_refused() {
    // Unicode ^\w+$ takes 161 KiB of DFA: six fit in 1 MiB.
    let fit = fill(
        r"^\w+$",
        "of automaton left of this flag's limit of 1024 KiB",
    );
    assert_eq!(fit, 6);
}

#[test]
fn a_flag_fills_its_determinization_budget_and_the_next_regex_is_refused() {
    // A tiny DFA (2 KiB) that costs a lot of working memory to build.
    let fit = fill(
        "[0-9]{150}",
        "determinization work left of this flag's limit",
    );
    assert!((10..MAX_REGEX_VALUES).contains(&fit), "{fit}");
}

#[test]
fn each_regex_has_its_own_limits() {
    let refused = |pattern: &str, message: &str| {
        let err = flag(vec![regex_rule(&["^ok$".into(), pattern.into()])]).unwrap_err();
        assert_eq!(err.path, "rules[0].values[1]", "{err}");
        assert!(err.message.contains(message), "{pattern}: {err}");
    };
    refused(
        "(a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p)*a.{8}",
        "needs more than 512 KiB of automaton (the limit per regex)",
    );
    refused(
        r"\w{50}",
        "its NFA would exceed 64 KiB (the limit per regex)",
    );
    refused(
        r"(?i)\p{Any}",
        "case-insensitive classes would fold 1114112 code points",
    );
    refused(&"a".repeat(MAX_REGEX_LEN + 1), "longer than 1024 bytes");
    // Unicode \w+ (321 KiB) fits the limit per regex.
    let one = flag(vec![regex_rule(&[r"\w+".into()])]).unwrap();
    assert!(one.automaton_bytes() < MAX_REGEX_AUTOMATON_BYTES * 2 / 3);
}

#[test]
fn the_patterns_of_a_flag_total_at_most_the_cap() {
    // Each 1,024 bytes long and compiling to almost nothing (`y{0}` matches the empty string).
    let long = format!("{}{}", "(?:y){0}".repeat(127), "zzzzzzzz");
    assert_eq!(long.len(), MAX_REGEX_LEN);
    let mut values = copies(&long, MAX_REGEX_PATTERN_BYTES / MAX_REGEX_LEN);
    flag(vec![regex_rule(&values)]).expect("16 KiB of patterns compile");
    values.push("a".into());
    let err = flag(vec![regex_rule(&values)]).unwrap_err();
    assert_eq!(err.path, "rules[0].values[16]", "{err}");
    assert!(err.message.contains("total at most 16384 bytes"), "{err}");
}

#[test]
fn ordinary_regexes_compile_small_and_match() {
    let patterns = [
        r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$",
        r"(?i)@example\.(com|org)$",
        r"^(.*\.)?example\.com$",
        r"^user-[0-9]+$",
        r"^\w+$",
    ];
    for pattern in patterns {
        let one = flag(vec![regex_rule(&[pattern.into()])]).unwrap();
        let limit = if pattern.contains(r"\w") {
            MAX_REGEX_AUTOMATON_BYTES / 3
        } else {
            16 << 10
        };
        assert!(
            one.automaton_bytes() < limit,
            "{pattern}: {}",
            one.automaton_bytes()
        );
    }
    // All of them in one flag, each in its own rule, many times over.
    let rules: Vec<Value> = patterns
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let n = if p.contains(r"\w") { 2 } else { 12 };
            json!({"attribute": "s", "operator": "regex", "values": copies(p, n), "variant": i})
        })
        .collect();
    let flag = compile_flag_json(
        &json!({"key": "f", "is_enabled": true, "flag_type": "integer", "default_value": -1,
                "disabled_value": -2, "rules": rules})
        .to_string(),
    )
    .unwrap();
    let served = |s: &str| {
        let ctx = Context::with_key("k").attr("s", AttrValue::String(s.into()));
        evaluate(&flag, &ctx, &Standalone).value.as_i64().unwrap()
    };
    assert_eq!(served("jane.doe@mail.co"), 0);
    assert_eq!(served("Bob <bob@EXAMPLE.org"), 1);
    assert_eq!(served("www.example.com"), 2);
    assert_eq!(served("user-42"), 3);
    assert_eq!(served("Grüße"), 4);
    assert_eq!(served("two words!"), -1);
}

#[test]
fn the_automaton_held_is_reported_with_the_largest_condition() {
    let flag = flag(vec![
        regex_rule(&["^a$".into()]),
        json!({"conditions": [
            {"attribute": "n", "operator": "equals", "values": ["x"]},
            {"attribute": "n", "operator": "regex", "values": [r"^\w+$", "b"]},
        ], "variant": true}),
    ])
    .unwrap();
    assert!(flag.automaton_bytes() > 150 << 10);
    assert_eq!(
        flag.largest_automaton_path(),
        Some("rules[1].conditions[1].values")
    );
    let plain = compile_flag_json(r#"{"key":"p","is_enabled":true}"#).unwrap();
    assert_eq!(
        (plain.automaton_bytes(), plain.largest_automaton_path()),
        (0, None)
    );
}

#[test]
fn segments_have_the_same_limits() {
    let segment = |values: Vec<String>| {
        compile_segment_json(
            &json!({"key": "s", "rules": [
                {"attribute": "a", "operator": "equals", "values": ["x"]},
                {"attribute": "a", "operator": "regex", "values": values},
            ]})
            .to_string(),
        )
    };
    let ok = segment(vec![r"^\w+$".into()]).unwrap();
    assert!(ok.automaton_bytes() > 150 << 10);
    assert_eq!(ok.largest_automaton_path(), Some("rules[1].values"));
    let err = segment(copies("^x", MAX_REGEX_VALUES + 1)).unwrap_err();
    assert_eq!(err.path, "rules[1].values[64]", "{err}");
    assert!(
        err.message.contains("a segment may hold at most 64"),
        "{err}"
    );
    let err = segment(copies(r"^\w+$", 7)).unwrap_err();
    assert!(
        err.message.contains("this segment's limit of 1024 KiB"),
        "{err}"
    );
}
