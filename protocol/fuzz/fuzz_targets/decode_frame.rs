//! Fuzzes the feed decoder: any byte string must decode to a frame, "incomplete", or a typed
//! error, never panic or allocate past the cap; a frame that decodes must re-encode to bytes
//! that decode to the same frame.

#![no_main]

use checkgate_protocol::{decode, encode};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((frame, used))) = decode(data, MAX) {
        assert!(used <= data.len());
        let again = encode(&frame, MAX).expect("a decoded frame re-encodes");
        let (back, _) = decode(&again, MAX).expect("re-encoded frame decodes").expect("complete");
        assert_eq!(back, frame);
    }
});
