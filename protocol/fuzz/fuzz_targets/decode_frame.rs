//! Fuzzes the feed decoder: any byte string must decode to a frame, "incomplete", or a typed
//! error, without panicking or allocating past what it was given (run with a low
//! `-malloc_limit_mb` to check that); a frame that decodes must say how many bytes it took,
//! and re-encode to bytes that decode to the same frame.

#![no_main]

use checkgate_protocol::{HEADER_LEN, decode, encode, peek_frame_len};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    match decode(data, MAX) {
        Ok(Some((frame, used))) => {
            assert!((HEADER_LEN..=data.len()).contains(&used));
            assert_eq!(peek_frame_len(data, MAX).ok().flatten(), Some(used));
            // The frame is all in `data[..used]`: what follows changes nothing.
            let (alone, _) = decode(&data[..used], MAX)
                .expect("the frame's own bytes decode")
                .expect("the frame's own bytes are complete");
            assert_eq!(alone, frame);
            let again = encode(&frame, MAX).expect("a decoded frame re-encodes under its cap");
            let (back, n) = decode(&again, MAX)
                .expect("a re-encoded frame decodes")
                .expect("a re-encoded frame is complete");
            assert_eq!(n, again.len());
            assert_eq!(back, frame);
        }
        Ok(None) => {
            // Incomplete only while the header, or the frame it announces, has not all arrived.
            match peek_frame_len(data, MAX) {
                Ok(None) => assert!(data.len() < HEADER_LEN),
                Ok(Some(total)) => assert!(data.len() < total),
                Err(e) => panic!("decode said incomplete, the header said: {e}"),
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
