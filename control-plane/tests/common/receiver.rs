//! A webhook receiver on 127.0.0.1 for the webhook tests: it records what it gets and answers
//! scripted statuses; and the checks a receiver makes of the signatures.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, Uri};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The token in the receiver's path.
pub const RECEIVER_TOKEN: &str = "receiver-path-token";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
    /// The status it was answered.
    pub answered: u16,
}

/// A webhook receiver on 127.0.0.1: answers the scripted statuses in turn, then `then`.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<(VecDeque<u16>, u16)>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    pub async fn start(script: &[u16], then: u16) -> Self {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let queue: VecDeque<u16> = script.iter().copied().collect();
        let script = Arc::new(Mutex::new((queue, then)));
        let (g, s) = (got.clone(), script.clone());
        let app =
            axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: String| {
                let (got, script) = (g.clone(), s.clone());
                async move {
                    let status = {
                        let mut script = script.lock().unwrap();
                        let then = script.1;
                        script.0.pop_front().unwrap_or(then)
                    };
                    got.lock().unwrap().push(Received {
                        headers,
                        body,
                        answered: status,
                    });
                    // Like many servers' error pages, the answer names the path it was sent to.
                    let answer = format!("POST {uri} answered\n{}", "x".repeat(5000));
                    (StatusCode::from_u16(status).unwrap(), answer)
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            got,
            script,
            task: Arc::new(task),
        }
    }

    /// Its URL, whose path holds a token (as a chat service's incoming-webhook URL does).
    pub fn url(&self) -> String {
        format!("http://{}/hook/{RECEIVER_TOKEN}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    pub fn answer_from_now(&self, status: u16) {
        let mut script = self.script.lock().unwrap();
        script.0.clear();
        script.1 = status;
    }

    /// Waits (at most 60 s) until `check` holds for what was received.
    pub async fn until(&self, what: &str, check: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.received();
            if check(&got) {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting for {what}; got {got:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac_hex(secret: &str, data: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(data);
    hex(&mac.finalize().into_bytes())
}

/// Verifies both signatures of a received request as a receiver would.
pub fn assert_signed(r: &Received, secret: &str) {
    let header = |name: &str| r.headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(
        header("x-checkgate-signature"),
        format!("sha256={}", hmac_hex(secret, r.body.as_bytes()))
    );
    let ts = header("x-checkgate-timestamp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now - ts.parse::<i64>().unwrap()).abs() < 300,
        "fresh timestamp"
    );
    assert_eq!(
        header("x-checkgate-signature-256"),
        format!(
            "v1={}",
            hmac_hex(secret, format!("{ts}.{}", r.body).as_bytes())
        )
    );
    // Another secret does not verify.
    assert_ne!(
        header("x-checkgate-signature"),
        format!("sha256={}", hmac_hex("other", r.body.as_bytes()))
    );
}

pub fn body_of(r: &Received) -> Value {
    serde_json::from_str(&r.body).unwrap()
}
