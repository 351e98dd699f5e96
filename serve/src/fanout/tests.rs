//! The fan-out's pieces, without sockets where possible.

use super::super::stream::KEEP_ALIVE;
use super::*;
use std::sync::atomic::AtomicUsize;

#[test]
fn chunks_are_framed_as_http1_chunks() {
    assert_eq!(&chunk(b"hello")[..], b"5\r\nhello\r\n");
    assert_eq!(chunk(&[b'x'; 300]).len(), 3 + 2 + 300 + 2);
    let mut pending = VecDeque::new();
    push_chunk(&mut pending, [Bytes::from_static(b"0123456789abcdef")]);
    push_chunk(&mut pending, [Bytes::new()]);
    push_chunk(&mut pending, []);
    push_chunk(
        &mut pending,
        [
            Bytes::from_static(b"ab"),
            Bytes::new(),
            Bytes::from_static(b"c"),
        ],
    );
    let framed: Vec<u8> = pending.iter().flat_map(|b| b.iter().copied()).collect();
    assert_eq!(framed, b"10\r\n0123456789abcdef\r\n3\r\nabc\r\n");
    assert!(head().starts_with(b"HTTP/1.1 200 OK\r\ndate: "));
    assert!(head().ends_with(b"\r\n\r\n"));
    assert_eq!(&chunk(KEEP_ALIVE)[..], KEEP_ALIVE_CHUNK);
}

#[test]
fn a_split_sweep_visits_every_member_once() {
    for (len, piece, threads) in [
        (0, 4, 2),
        (5, 16, 2),
        (1000, 7, 2),
        (1000, 256, 3),
        (9, 1, 4),
    ] {
        let mut members = vec![0u32; len];
        let visited = AtomicUsize::new(0);
        // A state (the sweep's chunk cache) belongs to one thread: it is never handed on.
        in_pieces(
            &mut members,
            piece,
            threads,
            |owner: &mut Option<std::thread::ThreadId>, part: &mut [u32]| {
                let me = std::thread::current().id();
                assert_eq!(*owner.get_or_insert(me), me);
                assert!(!part.is_empty() && part.len() <= piece);
                for m in part.iter_mut() {
                    *m += 1;
                }
                visited.fetch_add(part.len(), Ordering::Relaxed);
            },
        );
        assert!(members.iter().all(|&m| m == 1), "{len}/{piece}/{threads}");
        assert_eq!(visited.into_inner(), len);
    }
}
