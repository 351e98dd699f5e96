//! Compile stall: flags at the regex caps are written through the control plane while `/health`
//! and single-flag evaluation on the edge are polled back to back; reports the latency of each
//! poll while the edge compiled them. An edge compiles on its apply thread, so neither should
//! wait for a compile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use checkgate_testkit::http_request;
use serde::Serialize;
use serde_json::json;

use crate::driver::{histogram, micros};
use crate::report::Latency;
use crate::stack::Stack;

/// Candidate regexes for one flag: one pattern heavy in case folding, 35 with large NFAs, then
/// patterns with costly determinization (the mix `core/examples/regex_caps.rs` found worst).
/// The control plane accepts a prefix of them; [`at_the_cap`] finds the longest.
fn candidates() -> Vec<String> {
    let mut values = vec![r"(?i)[\x{0}-\x{EFFFF}]".to_owned()];
    values.extend((0..35).map(|i| format!(r"{i}$[0-9]{{800}}")));
    values.extend((0..64).map(|i| format!(".{{30}}{i}")));
    values
}

fn rules(values: &[String]) -> serde_json::Value {
    json!([{"attribute": "name", "operator": "regex", "values": values, "variant": true}])
}

/// The rules of a flag at the caps: the longest prefix of [`candidates`] the control plane
/// accepts (one value more is refused with 422), found by bisection on flag `key`. Returns
/// the rules and the version of `key` once it holds them.
fn at_the_cap(
    control: &crate::control::Control,
    key: &str,
) -> anyhow::Result<(serde_json::Value, u64)> {
    let values = candidates();
    let (mut accepted, mut refused) = (0, values.len() + 1);
    let mut version = 0;
    while refused - accepted > 1 {
        let mid = (accepted + refused) / 2;
        match control.patch_flag(key, &json!({"rules": rules(&values[..mid])})) {
            Ok(v) => {
                accepted = mid;
                version = v;
            }
            Err(e) if e.to_string().contains(" 422 ") => refused = mid,
            Err(e) => return Err(e),
        }
    }
    anyhow::ensure!(accepted > 0, "the control plane refuses every capped regex");
    let capped = rules(&values[..accepted]);
    version = control
        .patch_flag(key, &json!({"rules": capped}))?
        .max(version);
    Ok((capped, version))
}

#[derive(Debug, Serialize)]
pub(crate) struct StallReport {
    scenario: &'static str,
    flags_written: usize,
    /// First write sent → the edge served the last one.
    apply_seconds: f64,
    health_polls: u64,
    health: Latency,
    eval_polls: u64,
    eval: Latency,
    errors: u64,
}

/// Polls `path` until `stop`; every answer's latency in µs, and the failures.
fn poll(
    addr: std::net::SocketAddr,
    method: &'static str,
    path: String,
    key: String,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(hdrhistogram::Histogram<u64>, u64)> {
    let mut h = histogram()?;
    let mut errors = 0;
    let auth = format!("Bearer {key}");
    let body = json!({"context": {"targetingKey": "u-1", "name": "alice"}}).to_string();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let started = Instant::now();
        let answer = http_request(
            addr,
            method,
            &path,
            &[("Authorization", &auth)],
            (method == "POST").then_some(body.as_str()),
        );
        h.record(micros(started.elapsed()).max(1))?;
        if !matches!(answer, Ok((200, _, _))) {
            errors += 1;
        }
    }
    Ok((h, errors))
}

pub(crate) async fn run(stack: &Stack, flags: usize) -> anyhow::Result<StallReport> {
    let control = stack.control().ok_or_else(|| {
        anyhow::anyhow!("compile-stall writes through the control plane it starts")
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    let pollers: Vec<_> = [
        ("GET", "/health".to_owned()),
        ("POST", "/api/v1/evaluate/load-0".to_owned()),
    ]
    .into_iter()
    .map(|(method, path)| {
        let (addr, key, stop) = (stack.addr, stack.server_key.clone(), stop.clone());
        std::thread::spawn(move || poll(addr, method, path, key, stop))
    })
    .collect();
    let started = Instant::now();
    let (capped, mut last) = at_the_cap(control, "load-0")?;
    for i in 1..flags {
        last = control.patch_flag(&format!("load-{i}"), &json!({"rules": capped}))?;
    }
    // Until the edge serves the last write (bounded).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, _, body) = http_request(stack.addr, "GET", "/status", &[], None)?;
        let status: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let held = status["environments"][0]["version"].as_u64().unwrap_or(0);
        if held >= last {
            break;
        }
        if Instant::now() > deadline {
            anyhow::bail!("the edge did not apply the capped flags within two minutes");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let apply_seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut results = Vec::new();
    for poller in pollers {
        results.push(
            poller
                .join()
                .map_err(|_| anyhow::anyhow!("a poller panicked"))??,
        );
    }
    let (health, health_errors) = &results[0];
    let (eval, eval_errors) = &results[1];
    Ok(StallReport {
        scenario: "compile-stall",
        flags_written: flags,
        apply_seconds,
        health_polls: health.len(),
        health: Latency::of(health),
        eval_polls: eval.len(),
        eval: Latency::of(eval),
        errors: health_errors + eval_errors,
    })
}
