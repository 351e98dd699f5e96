//! A task the service needs that ends on its own is noticed: `run_service` stops serving and
//! returns an error naming it, rather than serving on with that part frozen.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::Router;
use checkgate_ops::{CommonArgs, Owned};
use clap::Parser;

#[derive(Parser)]
struct Settings {
    #[command(flatten)]
    common: CommonArgs,
}

fn common() -> CommonArgs {
    Settings::try_parse_from([
        "test",
        "--host",
        "127.0.0.1",
        "--shutdown-grace-seconds",
        "2",
    ])
    .unwrap()
    .common
}

#[tokio::test]
async fn a_task_that_panics_stops_the_service_with_its_name() {
    let mut tasks = Owned::default();
    let (wound_down, saw_deadline) = tokio::sync::oneshot::channel();
    tasks.spawn_with_stop("winds down", |mut stopping| async move {
        let deadline = stopping.begun().await;
        let _ = wound_down.send(deadline);
    });
    tasks.spawn("replica feeder", async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        panic!("lost the store");
    });
    let started = tokio::time::Instant::now();
    let common = common();
    let run = checkgate_ops::run_service(
        &common,
        0,
        None,
        |_| Router::new(),
        Router::new(),
        || {},
        tasks,
    );
    let result = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the service stopped");
    let error = result.expect_err("a fault is an error").to_string();
    assert!(error.contains("replica feeder"), "{error}");
    assert!(error.contains("lost the store"), "{error}");
    // The others were told to stop, with the one deadline: the grace period from then.
    let deadline = saw_deadline.await.unwrap();
    assert!(deadline > started + Duration::from_secs(2), "{deadline:?}");
}
