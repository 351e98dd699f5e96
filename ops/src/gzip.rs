//! gzip for answers both binaries precompress (the rule payload, the dashboard's files): whether
//! a request accepts it, and compressing once.

use std::io::Write as _;

use axum::http::HeaderMap;
use axum::http::header::ACCEPT_ENCODING;

/// Whether `Accept-Encoding` names gzip without refusing it (`q=0`, in any spelling).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

/// `bytes` gzipped at `level` (0–9); `None` only if the encoder fails.
pub fn gzip(bytes: &[u8], level: u32) -> Option<Vec<u8>> {
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level.min(9)));
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn gzip_is_accepted_unless_refused() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        for (value, accepted) in [
            ("br, gzip;q=0.8", true),
            ("GZIP", true),
            ("gzip; q=0, identity", false),
            ("gzip;q=0.000", false),
            ("deflate", false),
        ] {
            h.insert(ACCEPT_ENCODING, HeaderValue::from_static(value));
            assert_eq!(accepts_gzip(&h), accepted, "{value}");
        }
    }

    #[test]
    fn compresses_and_round_trips() {
        use std::io::Read as _;
        let text = "checkgate ".repeat(200);
        let packed = gzip(text.as_bytes(), 6).unwrap();
        assert!(packed.len() < text.len());
        let mut back = String::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, text);
    }
}
