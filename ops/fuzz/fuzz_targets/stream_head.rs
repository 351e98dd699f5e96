//! Fuzzes the front door's HTTP/1 head parser (`checkgate_ops::listener::parse`), which reads
//! the start of every public connection before hyper does: any byte string must parse to
//! "partial", "leave to the router" or a taken request without panicking; a taken request is
//! a `GET` of the path, whole (the bytes end with the blank line) and plain (no body, no
//! upgrade); and every proper prefix of a taken head is still partial, so a head split across
//! reads is never taken or left early.

#![no_main]

use checkgate_ops::listener::{Head, parse};
use libfuzzer_sys::fuzz_target;

const PATH: &str = "/stream";

fuzz_target!(|data: &[u8]| {
    if let Head::Take(request) = parse(data, PATH) {
        assert!(data.starts_with(b"GET /stream"));
        assert!(data.ends_with(b"\n\n") || data.ends_with(b"\r\n\r\n"));
        for name in ["content-length", "transfer-encoding", "upgrade", "expect"] {
            let value = request.headers.get(name).map(|v| v.as_bytes());
            assert!(value.is_none() || value == Some(b"0".as_slice()), "{name}");
        }
        for end in 0..data.len() {
            assert!(matches!(parse(&data[..end], PATH), Head::Partial), "prefix {end}");
        }
    }
});
