//! MurmurHash3 x86_32, streamed: the key parts (`salt`, `:`, `value`) are fed one after another
//! instead of being joined into a new string, so bucketing allocates nothing. The `murmur3`
//! crate is the reference; tests compare the two at every split point.

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

#[inline(always)]
fn scramble(k: u32) -> u32 {
    k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

#[inline(always)]
fn mix(h: u32, k: u32) -> u32 {
    (h ^ scramble(k))
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

#[inline(always)]
fn finalize(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Up to three bytes as a little-endian integer.
#[inline(always)]
fn little_endian(bytes: &[u8]) -> u32 {
    match *bytes {
        [] => 0,
        [a] => u32::from(a),
        [a, b] => u32::from(a) | u32::from(b) << 8,
        [a, b, c, ..] => u32::from(a) | u32::from(b) << 8 | u32::from(c) << 16,
    }
}

/// Incremental MurmurHash3 x86_32. Writing `a` then `b` gives the hash of `a ++ b`.
#[derive(Debug, Clone)]
pub struct Murmur3 {
    h: u32,
    /// Bytes of an incomplete 4-byte block, little-endian.
    tail: u32,
    /// How many bytes `tail` holds (0–3).
    tail_len: u32,
    /// Total length, modulo 2^32 as the algorithm specifies.
    len: u32,
}

impl Murmur3 {
    pub fn new(seed: u32) -> Self {
        Self {
            h: seed,
            tail: 0,
            tail_len: 0,
            len: 0,
        }
    }

    #[inline(always)]
    pub fn write(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u32);
        if self.tail_len != 0 {
            // Complete the block left over from the previous write, in one step.
            let need = (4 - self.tail_len) as usize;
            let take = need.min(data.len());
            self.tail |= little_endian(&data[..take]) << (8 * self.tail_len);
            self.tail_len += take as u32;
            data = &data[take..];
            if self.tail_len < 4 {
                return;
            }
            self.h = mix(self.h, self.tail);
            self.tail = 0;
            self.tail_len = 0;
        }
        let mut blocks = data.chunks_exact(4);
        for block in &mut blocks {
            self.h = mix(
                self.h,
                u32::from_le_bytes([block[0], block[1], block[2], block[3]]),
            );
        }
        let rest = blocks.remainder();
        self.tail = little_endian(rest);
        self.tail_len = rest.len() as u32;
    }

    #[inline(always)]
    pub fn finish(&self) -> u32 {
        let mut h = self.h;
        if self.tail_len != 0 {
            h ^= scramble(self.tail);
        }
        finalize(h ^ self.len)
    }
}

/// MurmurHash3 x86_32 of one byte string.
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    let mut hasher = Murmur3::new(seed);
    hasher.write(data);
    hasher.finish()
}

/// The hash that places a context in a bucket: `murmur3_x86_32("{salt}:{value}", 0)`.
/// With the default salt (the flag key) and the targeting key as value, this is exactly
/// Checkgate's `"{flag_key}:{user_key}"`.
#[inline]
pub fn bucket_hash(salt: &str, value: &str) -> u32 {
    let mut hasher = Murmur3::new(0);
    hasher.write(salt.as_bytes());
    hasher.write(b":");
    hasher.write(value.as_bytes());
    hasher.finish()
}

/// The hasher state after `"{salt}:"`, prepared once per flag so that bucketing a context
/// hashes only its value.
#[derive(Debug, Clone)]
pub struct Salt {
    state: Murmur3,
}

impl Salt {
    pub fn new(salt: &str) -> Self {
        let mut state = Murmur3::new(0);
        state.write(salt.as_bytes());
        state.write(b":");
        Self { state }
    }

    /// `bucket_hash(salt, value)`, without allocating.
    #[inline(always)]
    pub fn hash(&self, value: &str) -> u32 {
        let mut hasher = self.state.clone();
        hasher.write(value.as_bytes());
        hasher.finish()
    }
}

/// Checkgate's rollout bucket, 0–99.
#[inline]
pub fn percent_bucket(hash: u32) -> u32 {
    hash % 100
}

/// The number of split buckets: weights are in units of 1/100,000.
pub const SPLIT_SCALE: u32 = 100_000;

/// The split bucket, 0–99,999: `(hash × 100,000) >> 32`, which uses the high bits of the hash
/// (the rollout bucket uses the low ones) and has no modulo bias.
#[inline]
pub fn split_bucket(hash: u32) -> u32 {
    ((u64::from(hash) * u64::from(SPLIT_SCALE)) >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn reference(data: &[u8], seed: u32) -> u32 {
        murmur3::murmur3_32(&mut Cursor::new(data), seed).unwrap()
    }

    /// Published MurmurHash3 x86_32 vectors, as computed by the reference C++ implementation
    /// and by PyPI's `mmh3`.
    const VECTORS: &[(&str, u32, u32)] = &[
        ("", 0, 0x0000_0000),
        ("hello", 0, 0x248B_FA47),
        ("hello, world", 0, 0x149B_BB7F),
        ("19 Jan 2038 at 3:14:07 AM", 0, 0xE31E_8A70),
        (
            "The quick brown fox jumps over the lazy dog.",
            0,
            0xD5C4_8BFC,
        ),
        ("", 1, 0x514E_28B7),
        ("", 0xFFFF_FFFF, 0x81F1_6F39),
        ("\0\0\0\0", 0, 0x2362_F9DE),
        ("a", 0, 0x3C25_69B2),
        ("ab", 0, 0x9BBF_D75F),
        ("abc", 0, 0xB3DD_93FA),
        ("abcd", 0, 0x43ED_676A),
        ("abcde", 0, 0xE89B_9AF6),
        ("test", 0, 0xBA6B_D213),
        ("aaaa", 0x9747_B28C, 0x5A97_808A),
        ("Hello, world!", 0x9747_B28C, 0x2488_4CBA),
        (
            "The quick brown fox jumps over the lazy dog",
            0,
            0x2E4F_F723,
        ),
        (
            "The quick brown fox jumps over the lazy dog",
            0x9747_B28C,
            0x2FA8_26CD,
        ),
        ("new-checkout:user-1", 0, 0x84F0_4C17),
        ("new-checkout:user-2", 0, 0x3B25_7605),
        ("new-checkout:alice@example.com", 0, 0xBDC6_187A),
        ("dark-mode:42", 0, 0xE465_D29F),
        ("café:naïve", 0, 0x7B52_3002),
        ("日本語:ユーザー", 0, 0x3260_FD83),
        ("my-feature:user-123", 86_028_157, 0xA9DB_0149),
    ];

    #[test]
    fn published_vectors() {
        for &(input, seed, want) in VECTORS {
            assert_eq!(
                murmur3_32(input.as_bytes(), seed),
                want,
                "{input:?} seed {seed}"
            );
            assert_eq!(
                reference(input.as_bytes(), seed),
                want,
                "crate on {input:?}"
            );
        }
    }

    #[test]
    fn published_rollout_buckets() {
        assert_eq!(percent_bucket(bucket_hash("new-checkout", "user-1")), 31);
        assert_eq!(percent_bucket(bucket_hash("new-checkout", "user-2")), 89);
        assert_eq!(
            percent_bucket(bucket_hash("new-checkout", "alice@example.com")),
            18
        );
        assert_eq!(percent_bucket(bucket_hash("dark-mode", "42")), 3);
        assert_eq!(percent_bucket(bucket_hash("café", "naïve")), 10);
        assert_eq!(percent_bucket(bucket_hash("日本語", "ユーザー")), 55);
        // Unleash client-specification 10-flexible-rollout-strategy, same formula.
        assert_eq!(
            bucket_hash("Feature.flexibleRollout.10", "174"),
            0xB6DD_EE0D
        );
        assert_eq!(
            percent_bucket(bucket_hash("Feature.flexibleRollout.10", "174")),
            9
        );
        assert_eq!(
            percent_bucket(bucket_hash("Feature.flexibleRollout.10", "499")),
            31
        );
        assert_eq!(
            percent_bucket(bucket_hash("Feature.flexibleRollout.userId.55", "25")),
            54
        );
    }

    /// SMHasher's verification value for MurmurHash3_x86_32 (`0xB0F57EE3`).
    #[test]
    fn smhasher_verification_value() {
        let mut key = [0u8; 256];
        let mut hashes = [0u8; 1024];
        for i in 0..256 {
            key[i] = i as u8;
            let h = murmur3_32(&key[..i], 256 - i as u32);
            hashes[4 * i..4 * i + 4].copy_from_slice(&h.to_le_bytes());
        }
        assert_eq!(murmur3_32(&hashes, 0), 0xB0F5_7EE3);
    }

    #[test]
    fn streaming_matches_crate_at_every_split_point() {
        let inputs: &[&[u8]] = &[
            b"",
            b"a",
            b"flag_key_042:user_012345",
            b"The quick brown fox jumps over the lazy dog",
            "日本語:ユーザー".as_bytes(),
        ];
        for input in inputs {
            let want = reference(input, 0);
            for i in 0..=input.len() {
                for j in i..=input.len() {
                    let mut h = Murmur3::new(0);
                    h.write(&input[..i]);
                    h.write(&input[i..j]);
                    h.write(&input[j..]);
                    assert_eq!(h.finish(), want, "{input:?} split at {i},{j}");
                }
            }
        }
    }

    #[test]
    fn prepared_salt_equals_full_hash_inline_and_streamed() {
        let long = "x".repeat(300);
        for (salt, value) in [
            ("", ""),
            ("a", "b"),
            ("new-checkout", "user-1"),
            ("abc", "defgh"),
            ("日本語", "ユーザー"),
            ("s", long.as_str()),
            (long.as_str(), "v"),
        ] {
            assert_eq!(
                Salt::new(salt).hash(value),
                bucket_hash(salt, value),
                "{salt:?} {value:?}"
            );
        }
    }

    #[test]
    fn split_bucket_covers_the_range() {
        assert_eq!(split_bucket(0), 0);
        assert_eq!(split_bucket(u32::MAX), SPLIT_SCALE - 1);
        assert_eq!(split_bucket(1 << 31), SPLIT_SCALE / 2);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn streaming_equals_crate(data in proptest::collection::vec(any::<u8>(), 0..64),
                                      seed in any::<u32>(),
                                      cut in any::<proptest::sample::Index>()) {
                let at = cut.index(data.len() + 1);
                let mut h = Murmur3::new(seed);
                h.write(&data[..at]);
                h.write(&data[at..]);
                prop_assert_eq!(h.finish(), reference(&data, seed));
            }
        }
    }
}
