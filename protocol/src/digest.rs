//! The anti-entropy digest of an environment. The control plane and each edge compute it from
//! what they hold, the same way, so equal digests at equal versions mean equal content: the
//! SHA-256 of every live item's `(kind, key, version)`, sorted, one line each.

use sha2::{Digest as _, Sha256};

/// What an item is, as it enters the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DigestItem {
    Flag,
    Segment,
    /// An SDK key, by id; its version does not count (the control plane keeps none per key).
    SdkKey,
}

impl DigestItem {
    fn tag(self) -> &'static str {
        match self {
            Self::Flag => "flag",
            Self::Segment => "segment",
            Self::SdkKey => "sdk_key",
        }
    }
}

/// The digest of an environment's live items: flags and segments with their versions, and the
/// ids of its unrevoked SDK keys. Order of the input does not matter.
pub fn environment_digest<'a>(
    items: impl IntoIterator<Item = (DigestItem, &'a str, u64)>,
) -> [u8; 32] {
    let mut items: Vec<(DigestItem, &str, u64)> = items
        .into_iter()
        .map(|(kind, key, version)| match kind {
            DigestItem::SdkKey => (kind, key, 0),
            _ => (kind, key, version),
        })
        .collect();
    items.sort_unstable();
    let mut hasher = Sha256::new();
    for (kind, key, version) in items {
        hasher.update(kind.tag().as_bytes());
        hasher.update(b"\t");
        hasher.update(key.as_bytes());
        hasher.update(b"\t");
        hasher.update(version.to_string().as_bytes());
        hasher.update(b"\n");
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_does_not_matter_but_content_does() {
        let a = [
            (DigestItem::Flag, "a", 3),
            (DigestItem::Segment, "s", 2),
            (DigestItem::SdkKey, "k", 7),
        ];
        let mut b = a;
        b.reverse();
        assert_eq!(environment_digest(a), environment_digest(b));
        let newer = [(DigestItem::Flag, "a", 4), a[1], a[2]];
        assert_ne!(environment_digest(a), environment_digest(newer));
        let key_version = [a[0], a[1], (DigestItem::SdkKey, "k", 9)];
        assert_eq!(environment_digest(a), environment_digest(key_version));
        // A flag and a segment of the same key and version are different items.
        assert_ne!(
            environment_digest([(DigestItem::Flag, "x", 1)]),
            environment_digest([(DigestItem::Segment, "x", 1)])
        );
        // Keys cannot run into each other.
        assert_ne!(
            environment_digest([(DigestItem::Flag, "a\tb", 1)]),
            environment_digest([(DigestItem::Flag, "a", 1), (DigestItem::Flag, "b", 1)])
        );
        assert_eq!(
            environment_digest([]),
            <[u8; 32]>::from(Sha256::digest(b"")),
            "the empty environment"
        );
    }
}
