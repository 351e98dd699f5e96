//! The dashboard's files (`PUBLIC_DIR`, the built `dashboard/dist`), served at `/`.
//!
//! The directory is read once at start into memory (a built dashboard is a few hundred KB),
//! so a request never touches the disk and no path from a request is ever joined to a file
//! system path. Compressible files are gzipped once. Hashed files under `assets/` are cached
//! for a year; everything else is revalidated (`ETag`). Any other `GET` that is not an API
//! path and accepts HTML gets `index.html`, so the single-page app's own addresses load.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use checkgate_ops::gzip::{accepts_gzip, gzip};

/// Most files the directory may hold, and most bytes in all: a dashboard is far smaller, and
/// a mistaken `PUBLIC_DIR=/` must fail at start rather than fill the memory.
const MAX_FILES: usize = 2_000;
const MAX_BYTES: u64 = 64 << 20;

/// Smallest file worth compressing.
const GZIP_FROM: usize = 1024;

/// What every dashboard answer carries: the app loads only its own scripts and styles, and
/// may not be framed.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// One file, ready to send.
#[derive(Debug)]
struct Asset {
    content_type: &'static str,
    body: bytes::Bytes,
    gzip: Option<bytes::Bytes>,
    etag: HeaderValue,
    immutable: bool,
}

/// The dashboard's files by URL path (`/index.html`, `/assets/index-3f2a.js`).
#[derive(Debug, Clone, Default)]
pub struct Assets {
    files: Arc<HashMap<String, Asset>>,
}

/// Why the directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AssetsError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{0} has no index.html: build the dashboard first (cd dashboard && npm ci && npm run build)"
    )]
    NoIndex(String),
    #[error(
        "{dir} holds more than {MAX_FILES} files or {MAX_BYTES} bytes; is it the built dashboard?"
    )]
    TooBig { dir: String },
}

impl Assets {
    /// Reads `dir` and everything under it (symbolic links are not followed).
    pub fn load(dir: &Path) -> Result<Self, AssetsError> {
        let mut files = HashMap::new();
        let mut total = 0u64;
        let mut pending = vec![(dir.to_path_buf(), String::new())];
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| AssetsError::Io { path, source }
        };
        while let Some((at, prefix)) = pending.pop() {
            for entry in std::fs::read_dir(&at).map_err(io(&at))? {
                let entry = entry.map_err(io(&at))?;
                let kind = entry.file_type().map_err(io(&entry.path()))?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                let url = format!("{prefix}/{name}");
                if kind.is_dir() {
                    pending.push((entry.path(), url));
                } else if kind.is_file() {
                    // Sized before it is read: a mistaken directory fails fast, small.
                    let len = entry.metadata().map_err(io(&entry.path()))?.len();
                    total += len;
                    if files.len() >= MAX_FILES || total > MAX_BYTES {
                        return Err(AssetsError::TooBig {
                            dir: dir.display().to_string(),
                        });
                    }
                    let bytes = std::fs::read(entry.path()).map_err(io(&entry.path()))?;
                    let immutable = url.starts_with("/assets/");
                    files.insert(url.clone(), Asset::new(&url, bytes, immutable));
                }
            }
        }
        if !files.contains_key("/index.html") {
            return Err(AssetsError::NoIndex(dir.display().to_string()));
        }
        Ok(Self {
            files: Arc::new(files),
        })
    }

    /// Whether any dashboard is loaded.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Answers a request that no route matched: a dashboard file, `index.html` for an
    /// address of the app, or the API's JSON 404 (also for methods other than GET and HEAD).
    pub async fn serve(&self, request: Request) -> Response {
        let method = request.method();
        let path = request.uri().path();
        let api_path = [
            "/api/", "/ofrep/", "/stream", "/metrics", "/health", "/ready",
        ]
        .iter()
        .any(|p| path.starts_with(p))
            || path == "/api";
        if api_path || self.files.is_empty() {
            return checkgate_ops::health::not_found().await.into_response();
        }
        if method != Method::GET && method != Method::HEAD {
            return checkgate_ops::health::not_found().await.into_response();
        }
        let headers = request.headers();
        let fallback = !self.files.contains_key(path);
        let asset = match self.files.get(path) {
            Some(asset) => asset,
            None => {
                let accept = headers.get(ACCEPT).and_then(|v| v.to_str().ok());
                // A browser loading a page says it wants HTML: that is an address of the app,
                // even when its last segment has a dot (flag keys may have one). Anything else
                // asking for a file-like path is a missing script or image: a 404, not the
                // app's page in its place.
                let page = accept.is_some_and(|v| v.contains("text/html"));
                let anything = accept.is_none_or(|v| v.contains("*/*"));
                let looks_like_file = path
                    .rsplit('/')
                    .next()
                    .is_some_and(|last| last.contains('.'));
                if !(page || anything && !looks_like_file) {
                    return checkgate_ops::health::not_found().await.into_response();
                }
                match self.files.get("/index.html") {
                    Some(index) => index,
                    None => {
                        return checkgate_ops::health::not_found().await.into_response();
                    }
                }
            }
        };
        asset.answer(request.headers(), method == Method::HEAD, fallback)
    }
}

impl Asset {
    fn new(url: &str, bytes: Vec<u8>, immutable: bool) -> Self {
        let content_type = content_type(url);
        let digest = {
            // FNV-1a over the bytes: an ETag needs to change with the content, not to resist
            // an attacker (the files are the operator's own).
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in &bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            h
        };
        let etag = HeaderValue::from_str(&format!("\"{digest:016x}-{}\"", bytes.len()))
            .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        let gzip = (compressible(content_type) && bytes.len() >= GZIP_FROM)
            .then(|| gzip(&bytes, 9))
            .flatten()
            .filter(|z| z.len() < bytes.len())
            .map(bytes::Bytes::from);
        Self {
            content_type,
            body: bytes::Bytes::from(bytes),
            gzip,
            etag,
            immutable,
        }
    }

    fn answer(&self, headers: &axum::http::HeaderMap, head: bool, fallback: bool) -> Response {
        let not_modified = headers
            .get(IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim().trim_start_matches("W/") == self.etag)
            });
        let gzip = self.gzip.as_ref().filter(|_| accepts_gzip(headers));
        let mut response = if not_modified {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let body = gzip.unwrap_or(&self.body).clone();
            let len = body.len();
            let mut r = if head {
                Response::new(Body::empty())
            } else {
                Response::new(Body::from(body))
            };
            r.headers_mut().insert(
                axum::http::header::CONTENT_LENGTH,
                HeaderValue::from(len as u64),
            );
            r
        };
        let h = response.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        h.insert(ETAG, self.etag.clone());
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static(if self.immutable {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            }),
        );
        if self.gzip.is_some() {
            h.insert(VARY, HeaderValue::from_static("accept-encoding"));
        }
        if fallback {
            // The same address answers differently by Accept (the app, or a JSON 404).
            h.append(VARY, HeaderValue::from_static("accept"));
        }
        if gzip.is_some() && !not_modified {
            h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        h.insert(
            axum::http::header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(
            axum::http::header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            axum::http::header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        );
        h.insert(
            axum::http::header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        response
    }
}

fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type.starts_with("application/javascript")
        || content_type.starts_with("application/json")
        || content_type.starts_with("image/svg")
}

fn content_type(url: &str) -> &'static str {
    let ext = url.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    match ext.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "application/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request as HttpRequest;

    /// A fresh directory under the system's temporary directory, removed when dropped.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new() -> Self {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("checkgate-dashboard-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir() -> TempDir {
        let d = TempDir::new();
        std::fs::write(d.path().join("index.html"), "<!doctype html><p>app</p>").unwrap();
        std::fs::create_dir(d.path().join("assets")).unwrap();
        std::fs::write(
            d.path().join("assets/app-1a2b.js"),
            "console.log('checkgate');".repeat(100),
        )
        .unwrap();
        std::fs::write(d.path().join(".hidden"), "secret").unwrap();
        d
    }

    async fn get(assets: &Assets, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut r = HttpRequest::get(path);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        assets.serve(r.body(Body::empty()).unwrap()).await
    }

    async fn text(r: Response) -> String {
        let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        String::from_utf8_lossy(&b).into_owned()
    }

    #[tokio::test]
    async fn files_the_app_and_json_404s() {
        let d = dir();
        let assets = Assets::load(d.path()).unwrap();

        let r = get(&assets, "/assets/app-1a2b.js", &[]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers()[CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        assert!(
            r.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/javascript")
        );
        assert!(r.headers().get(CONTENT_ENCODING).is_none());
        assert!(text(r).await.starts_with("console.log"));

        // The app's own addresses load index.html, revalidated.
        for path in [
            "/",
            "/projects/p1/envs/e1/flags",
            "/projects/p1/envs/e1/flags/checkout.v2",
            "/index.html",
        ] {
            let r = get(&assets, path, &[("accept", "text/html,*/*")]).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(r.headers()[CACHE_CONTROL], "no-cache");
            assert!(
                r.headers()[axum::http::header::CONTENT_SECURITY_POLICY]
                    .to_str()
                    .unwrap()
                    .contains("frame-ancestors 'none'")
            );
            assert!(text(r).await.contains("<p>app</p>"), "{path}");
        }

        // API paths, missing files, hidden files and non-HTML clients get the JSON 404 (a hidden
        // file is never served: a page load of its address gets the app).
        for (path, accept) in [
            ("/api/nope", "text/html"),
            ("/assets/missing.js", "*/*"),
            ("/.hidden", "*/*"),
            ("/flags", "application/json"),
            ("/../etc/passwd", "text/html,*/*"),
        ] {
            let r = get(&assets, path, &[("accept", accept)]).await;
            if path == "/../etc/passwd" {
                // Not a file: answered with the app (the path is never used on the disk).
                assert!(!text(r).await.contains("root:"));
                continue;
            }
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
            assert!(text(r).await.contains("\"error\""), "{path}");
        }
    }

    #[tokio::test]
    async fn gzip_when_accepted_and_304_on_a_matching_etag() {
        let d = dir();
        let assets = Assets::load(d.path()).unwrap();
        let r = get(
            &assets,
            "/assets/app-1a2b.js",
            &[("accept-encoding", "br, gzip")],
        )
        .await;
        assert_eq!(r.headers()[CONTENT_ENCODING], "gzip");
        let etag = r.headers()[ETAG].to_str().unwrap().to_owned();
        let r = get(
            &assets,
            "/assets/app-1a2b.js",
            &[("accept-encoding", "gzip;q=0")],
        )
        .await;
        assert!(r.headers().get(CONTENT_ENCODING).is_none());
        let r = get(&assets, "/assets/app-1a2b.js", &[("if-none-match", &etag)]).await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert!(text(r).await.is_empty());
    }

    #[test]
    fn refuses_a_directory_without_index_or_too_big() {
        let d = TempDir::new();
        std::fs::write(d.path().join("a.txt"), "x").unwrap();
        assert!(matches!(
            Assets::load(d.path()),
            Err(AssetsError::NoIndex(_))
        ));
        assert!(matches!(
            Assets::load(&d.path().join("missing")),
            Err(AssetsError::Io { .. })
        ));
    }

    #[tokio::test]
    async fn without_a_dashboard_everything_is_the_json_404() {
        let r = get(&Assets::default(), "/", &[("accept", "text/html")]).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
