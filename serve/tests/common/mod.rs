//! What the SDK route tests share: a synced edge holding one environment, built here, and
//! ways to call its router.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use checkgate_protocol::frame::{
    ChangeRecord, Changes, EnvironmentInfo, Item, Record, SdkKeyKind, SdkKeyRecord, Snapshot,
};
use checkgate_serve::replica::Source;
use checkgate_serve::served::{Authority, Served};
use checkgate_serve::{self as sdk, SdkState, ServeArgs};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tower::ServiceExt;

pub(crate) const ENV: &str = "11111111-1111-4111-8111-111111111111";
pub(crate) const EPOCH: u64 = 9;
pub(crate) const SERVER_KEY: &str = "cg_srv_server-key-for-tests";
pub(crate) const CLIENT_KEY: &str = "cg_cli_client-key-for-tests";

pub(crate) fn info() -> EnvironmentInfo {
    EnvironmentInfo {
        env_id: ENV.into(),
        project_id: "p".into(),
        slug: "production".into(),
        name: "Production".into(),
    }
}

pub(crate) fn key(id: &str, kind: SdkKeyKind, secret: &str) -> SdkKeyRecord {
    SdkKeyRecord {
        id: id.into(),
        version: 3,
        kind,
        hash: Sha256::digest(secret.as_bytes()).into(),
        prefix: secret[..10].into(),
    }
}

pub(crate) fn flag(key: &str, version: u64, json: Value) -> Record {
    Record {
        key: key.into(),
        version,
        json: json.to_string(),
    }
}

/// An authority that vouches for the replica (or not), as the test says.
#[derive(Debug)]
pub(crate) struct Vouch(pub(crate) bool);

impl Authority for Vouch {
    fn knows_every_key(&self) -> bool {
        self.0
    }
}

/// What an edge serves from a replica that is (`true`) or is not caught up.
pub(crate) fn served(caught_up: bool) -> Arc<Served> {
    Served::new(
        checkgate_serve::replica::Replica::new(),
        Arc::new(Vouch(caught_up)),
    )
}

pub(crate) struct World {
    pub(crate) served: Arc<Served>,
    pub(crate) state: SdkState,
    pub(crate) router: Router,
    _events: tokio::task::JoinHandle<()>,
}

/// A synced edge holding one environment: `checkout` (a string flag with a rule and a 50 %
/// rollout), `beta` (boolean, by segment), `dark` (disabled), a segment, and a server and a
/// client key.
pub(crate) fn world_with(settings: &str) -> World {
    world_serving(settings, &ServeArgs::default())
}

/// [`world_with`], served with `args`.
pub(crate) fn world_serving(settings: &str, args: &ServeArgs) -> World {
    let served = served(true);
    let snapshot = Snapshot {
        env_id: ENV.into(),
        epoch: EPOCH,
        version: 3,
        flags: vec![
            flag(
                "checkout",
                1,
                json!({"key": "checkout", "is_enabled": true, "rollout_percentage": 50,
                       "flag_type": "string", "default_value": "v2", "disabled_value": "v1",
                       "rules": [{"attribute": "plan", "operator": "equals", "values": ["pro"], "variant": "v3"}]}),
            ),
            flag(
                "beta",
                2,
                json!({"key": "beta", "is_enabled": true, "rollout_percentage": 0,
                       "rules": [{"segment_key": "testers", "variant": true}]}),
            ),
            flag("dark", 3, json!({"key": "dark", "is_enabled": false})),
        ],
        segments: vec![flag(
            "testers",
            2,
            json!({"key": "testers", "name": "Testers",
                   "rules": [{"attribute": "email", "operator": "ends_with", "values": ["@example.com"]}]}),
        )],
        sdk_keys: vec![
            key("k-server", SdkKeyKind::Server, SERVER_KEY),
            key("k-client", SdkKeyKind::Client, CLIENT_KEY),
        ],
        settings_json: settings.into(),
    };
    served.replica.install(&snapshot, info(), Source::Upstream);
    let (state, events) = SdkState::new(Arc::clone(&served), args);
    World {
        served,
        router: sdk::routes(state.clone()),
        state,
        _events: tokio::spawn(events),
    }
}

pub(crate) fn world() -> World {
    world_with("{}")
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: axum::http::HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

impl World {
    pub(crate) async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn post(&self, path: &str, key: &str, body: Value) -> Reply {
        self.send(
            Request::post(path)
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    pub(crate) fn apply(&self, version: u64, item: Item) {
        self.served.replica.apply(&Changes {
            env_id: ENV.into(),
            epoch: EPOCH,
            changes: vec![ChangeRecord { version, item }],
        });
    }
}

/// The next chunk of a streamed body, as text; `None` at its end or after `limit`.
pub(crate) async fn next_chunk(body: &mut Body, limit: Duration) -> Option<String> {
    let frame = tokio::time::timeout(limit, body.frame())
        .await
        .ok()??
        .ok()?;
    frame
        .into_data()
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// A stream's bootstrap: chunks read until its `ready` event is complete (it arrives in several
/// chunks: `connected`, the environment's shared events, `ready`).
pub(crate) async fn bootstrap_of(body: &mut Body, limit: Duration) -> Option<String> {
    let mut text = String::new();
    loop {
        text.push_str(&next_chunk(body, limit).await?);
        if let Some(at) = text.find("event: ready\n")
            && text[at..].contains("\n\n")
        {
            return Some(text);
        }
    }
}
