//! Semantic-version parsing and precedence without allocation: the context's value is parsed
//! on every evaluation, so it borrows its pre-release part instead of building identifier
//! lists. Accepts an optional leading `v`, and `1` / `1.2` as `1.0.0` / `1.2.0`; build metadata
//! is ignored, as semver 2.0 precedence requires.

use std::cmp::Ordering;

/// A parsed version borrowing its pre-release identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version<'a> {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    /// Dot-separated pre-release identifiers, empty for a release.
    pub pre: &'a str,
}

/// A numeric part: digits, without leading zeros (semver 2.0 forbids them).
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

fn valid_identifiers(s: &str) -> bool {
    s.split('.')
        .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// Parses a version; `None` when it is not one.
pub fn parse(s: &str) -> Option<Version<'_>> {
    let s = s.trim();
    let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
    let (s, build) = match s.split_once('+') {
        Some((v, b)) => (v, Some(b)),
        None => (s, None),
    };
    if build.is_some_and(|b| !valid_identifiers(b)) {
        return None;
    }
    let (core, pre) = match s.split_once('-') {
        Some((c, p)) => {
            if !valid_identifiers(p) {
                return None;
            }
            (c, p)
        }
        None => (s, ""),
    };
    let mut parts = core.split('.');
    let major = number(parts.next()?)?;
    let minor = parts.next().map_or(Some(0), number)?;
    let patch = parts.next().map_or(Some(0), number)?;
    if parts.next().is_some() {
        return None;
    }
    Some(Version {
        major,
        minor,
        patch,
        pre,
    })
}

fn compare_identifier(a: &str, b: &str) -> Ordering {
    let na = a.bytes().all(|c| c.is_ascii_digit());
    let nb = b.bytes().all(|c| c.is_ascii_digit());
    match (na, nb) {
        // Numeric identifiers compare by value; long ones by length first, then digits.
        (true, true) => {
            let a = a.trim_start_matches('0');
            let b = b.trim_start_matches('0');
            a.len().cmp(&b.len()).then_with(|| a.cmp(b))
        }
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

impl Ord for Version<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    let mut a = self.pre.split('.');
                    let mut b = other.pre.split('.');
                    loop {
                        match (a.next(), b.next()) {
                            (None, None) => return Ordering::Equal,
                            (None, Some(_)) => return Ordering::Less,
                            (Some(_), None) => return Ordering::Greater,
                            (Some(x), Some(y)) => match compare_identifier(x, y) {
                                Ordering::Equal => {}
                                other => return other,
                            },
                        }
                    }
                }
            })
    }
}

impl PartialOrd for Version<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A version owned by a compiled rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedVersion {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Box<str>,
}

impl OwnedVersion {
    pub fn parse(s: &str) -> Option<Self> {
        parse(s).map(|v| Self {
            major: v.major,
            minor: v.minor,
            patch: v.patch,
            pre: v.pre.into(),
        })
    }

    pub fn as_version(&self) -> Version<'_> {
        Version {
            major: self.major,
            minor: self.minor,
            patch: self.patch,
            pre: &self.pre,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_lenient_forms() {
        assert_eq!(
            parse("v1.2.3"),
            Some(Version {
                major: 1,
                minor: 2,
                patch: 3,
                pre: ""
            })
        );
        assert_eq!(
            parse("1.2"),
            Some(Version {
                major: 1,
                minor: 2,
                patch: 0,
                pre: ""
            })
        );
        assert_eq!(
            parse("2"),
            Some(Version {
                major: 2,
                minor: 0,
                patch: 0,
                pre: ""
            })
        );
        assert_eq!(parse("1.0.0-rc.1+build.5").map(|v| v.pre), Some("rc.1"));
        for bad in [
            "",
            "x",
            "1..2",
            "1.2.3.4",
            "1.2.3-",
            "1.2.3-a..b",
            "1.a.3",
            "-1.0.0",
            "1.0.0+",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn semver_spec_precedence_chain() {
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "2.0.0",
            "2.1.0",
            "2.1.1",
        ];
        for pair in chain.windows(2) {
            assert!(
                parse(pair[0]).unwrap() < parse(pair[1]).unwrap(),
                "{} < {}",
                pair[0],
                pair[1]
            );
        }
    }

    fn version_strategy() -> impl Strategy<Value = String> {
        let ident = prop_oneof!["[0-9]{1,3}", "[a-z][a-z0-9-]{0,4}"];
        (
            0u64..5,
            0u64..5,
            0u64..5,
            proptest::collection::vec(ident, 0..3),
        )
            .prop_map(|(a, b, c, pre)| {
                let pre: Vec<String> = pre
                    .into_iter()
                    .map(|p| {
                        if p.bytes().all(|x| x.is_ascii_digit()) {
                            p.trim_start_matches('0').to_owned()
                        } else {
                            p
                        }
                    })
                    .map(|p| if p.is_empty() { "0".to_owned() } else { p })
                    .collect();
                if pre.is_empty() {
                    format!("{a}.{b}.{c}")
                } else {
                    format!("{a}.{b}.{c}-{}", pre.join("."))
                }
            })
    }

    proptest! {
        /// The `semver` crate is the reference for precedence.
        #[test]
        fn ordering_matches_semver_crate(a in version_strategy(), b in version_strategy()) {
            let want = semver::Version::parse(&a).unwrap().cmp_precedence(&semver::Version::parse(&b).unwrap());
            prop_assert_eq!(parse(&a).unwrap().cmp(&parse(&b).unwrap()), want);
        }
    }
}
