//! Compile time of flags at the regex caps (see `checkgate_core::MAX_REGEX_VALUES` and the
//! caps beside it), with the most expensive patterns we know. For each pattern, the flag holds
//! as many copies as the caps admit (one inline `regex` rule); its compile time is the median of
//! several runs, and so is that of the flag with one copy more, which is refused.
//!
//! ```sh
//! cargo run --release -p checkgate-core --example regex_caps
//! cargo run -p checkgate-core --example regex_caps -- --quick   # debug build
//! ```

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use checkgate_core::{CompileError, CompiledFlag, MAX_REGEX_VALUES, compile_flag_json};

fn flag(values: &[String]) -> String {
    serde_json::json!({
        "key": "caps", "is_enabled": true,
        "rules": [{"attribute": "email", "operator": "regex", "values": values, "variant": false}],
    })
    .to_string()
}

fn copies(pattern: &str, n: usize) -> Vec<String> {
    (0..n).map(|_| pattern.to_owned()).collect()
}

fn time(json: &str, runs: usize) -> (Duration, Result<CompiledFlag, CompileError>) {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let result = compile_flag_json(json);
        times.push(start.elapsed());
        last = Some(result);
    }
    times.sort();
    (times[runs / 2], last.expect("at least one run"))
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runs = if quick { 1 } else { 5 };
    let bytes: String = (1u8..0x80).map(|b| format!("\\x{b:02x}|")).collect();
    let words: Vec<String> = (0..120).map(|i| format!("w{i:03}x")).collect();
    let given: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--quick")
        .collect();
    let mut patterns: Vec<(&str, String)> = vec![
        ("^user-[0-9]+$", r"^user-[0-9]+$".into()),
        (
            "e-mail",
            r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$".into(),
        ),
        ("domain", r"^(.*\.)?example\.(com|org)$".into()),
        (r"^\w+$ (Unicode)", r"^\w+$".into()),
        (r"\w+ (Unicode)", r"\w+".into()),
        (r"\w{2}", r"\w{2}".into()),
        (r"\w{50}", r"\w{50}".into()),
        ("[ab]*a[ab]{10}", "[ab]*a[ab]{10}".into()),
        ("[ab]*a[ab]{11}", "[ab]*a[ab]{11}".into()),
        ("[ab]*a[ab]{13}", "[ab]*a[ab]{13}".into()),
        (".{30}", ".{30}".into()),
        (".{1000}", ".{1000}".into()),
        ("[0-9]{1000}", "[0-9]{1000}".into()),
        ("[0-9]{150}", "[0-9]{150}".into()),
        ("[0-9]{500}", "[0-9]{500}".into()),
        (".{100}", ".{100}".into()),
        (r"$\w{3} (large NFA, tiny DFA)", r"$\w{3}".into()),
        (r"$[0-9]{800} (large NFA, tiny DFA)", r"$[0-9]{800}".into()),
        (r"(?:\pL){0} x 100", r"(?:\pL){0}".repeat(100)),
        (
            "(a|b|…|p)*a.{8}",
            "(a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p)*a.{8}".into(),
        ),
        ("120-word alternation", words.join("|")),
        (
            "127 bytes then .{60}",
            format!("(?:{})(?:.{{60}})", bytes.trim_end_matches('|')),
        ),
        (r"(?i)\pL", r"(?i)\pL".into()),
        (r"(?i)[\w-]", r"(?i)[\w-]".into()),
        (r"(?i)\p{Any}", r"(?i)\p{Any}".into()),
    ];
    if !given.is_empty() {
        patterns = given.iter().map(|p| (p.as_str(), p.clone())).collect();
    }
    println!(
        "| pattern | copies accepted | compile (accepted) | automaton | compile (one more, refused) | refused because |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, pattern) in &patterns {
        // The most copies that compile, by bisection on 0..=MAX_REGEX_VALUES.
        let (mut lo, mut hi) = (0usize, MAX_REGEX_VALUES + 1);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if compile_flag_json(&flag(&copies(pattern, mid))).is_ok() {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let accepted = if lo > 0 {
            let (t, flag) = time(&flag(&copies(pattern, lo)), runs);
            let bytes = flag.map(|f| f.automaton_bytes()).unwrap_or_default();
            format!("{:.1} ms | {} KiB", t.as_secs_f64() * 1e3, bytes / 1024)
        } else {
            "– | –".into()
        };
        let (t, refused) = time(&flag(&copies(pattern, lo + 1)), runs);
        let why = refused.err().map(|e| e.to_string()).unwrap_or_default();
        println!(
            "| `{}` | {lo} | {accepted} | {:.1} ms | {} |",
            name.replace('|', "\\|"),
            t.as_secs_f64() * 1e3,
            why.replace('|', "\\|")
        );
    }
    // One flag drawing on every budget at once: case folding, large NFAs with tiny DFAs, and
    // determinization work.
    let mut mixed = vec![r"(?i)[\x{0}-\x{EFFFF}]".to_owned()];
    mixed.extend(copies(r"$[0-9]{800}", 35));
    mixed.extend(copies(".{30}", 28));
    let (t, result) = time(&flag(&mixed), runs);
    println!(
        "\nmixed flag (1 fold-heavy, 35 large-NFA, 28 `.{{30}}`): {:.1} ms, {}",
        t.as_secs_f64() * 1e3,
        result.map_or_else(
            |e| e.to_string(),
            |f| format!("accepted, {} KiB", f.automaton_bytes() / 1024)
        )
    );
    let issue: Vec<String> = (0..40)
        .map(|i| format!("[ab]*a[ab]{{13}}{}", "x".repeat(i)))
        .collect();
    let (t, result) = time(&flag(&issue), runs);
    println!(
        "\nthe issue's flag (40 values): {:.1} ms, {}",
        t.as_secs_f64() * 1e3,
        result
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "accepted".into())
    );
}
