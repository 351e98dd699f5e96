//! Regexes compiled into dense DFAs, within limits that bound what one flag or segment costs to
//! compile and to hold — on the control plane that accepts it and on every edge that compiles
//! it again.
//!
//! A regex is parsed, translated, compiled into an NFA and determinized into a dense DFA. Each
//! step can cost far more than the pattern's length suggests, so each has a limit, and what the
//! regexes of one flag or segment use together is budgeted (one [`RegexBudget`] each):
//!
//! - how many regex values ([`MAX_REGEX_VALUES`]), how long each is ([`MAX_REGEX_LEN`]) and
//!   all of them together ([`MAX_REGEX_PATTERN_BYTES`]);
//! - case folding under `(?i)`, which regex-syntax does code point by code point
//!   ([`MAX_CASE_FOLD_CHARS`], counted before translating; see [`crate::casefold`]);
//! - the NFA of one regex ([`MAX_REGEX_NFA_BYTES`]);
//! - the DFA of one regex ([`MAX_REGEX_AUTOMATON_BYTES`]) and of all of them
//!   ([`MAX_AUTOMATON_BYTES`]): each regex is built with a size limit no larger than what
//!   remains;
//! - the determinization work ([`MAX_DETERMINIZE_WORK`]). The determinizer's working memory
//!   can grow much faster than the DFA (`[0-9]{500}` needs 0.25 MB of it for an 8 KB DFA), and
//!   the time it takes grows with that memory times the regex's input classes (each state is
//!   expanded over every class). regex-automata does not report what a build used, so a regex
//!   is built with a working-memory limit of 2 KiB first, then twice that, and so on, and is
//!   charged the limit it succeeded under times its classes plus 16: at most twice what it
//!   used, and the failed attempts together cost less than the last one.
//!
//! All of these count bytes and code points, never time, so every process decides alike and
//! a flag the control plane accepts compiles on every edge. What they allow takes at most about
//! 50 ms to compile in a release build (BENCHMARKS.md, `core/examples/regex_caps.rs`).

use regex_automata::dfa::{StartKind, dense};
use regex_automata::nfa::thompson;
use regex_syntax::hir::translate::Translator;
use regex_syntax::hir::{Capture, Hir, HirKind, Look, Repetition};

use crate::casefold::fold_cost;
use crate::error::Path;

/// Most regex values one flag or segment holds, across all its rules and conditions.
pub const MAX_REGEX_VALUES: usize = 64;
/// Longest regex pattern, in bytes.
pub const MAX_REGEX_LEN: usize = 1024;
/// Longest total of the regex patterns of one flag or segment, in bytes: parsing and
/// translating cost up to 0.4 µs per byte of pattern.
pub const MAX_REGEX_PATTERN_BYTES: usize = 16 << 10;
/// Largest DFA one regex compiles to, in bytes. `^\w+$` (Unicode) takes 161 KiB, `\w+` 321
/// KiB; an e-mail or domain pattern a few KiB.
pub const MAX_REGEX_AUTOMATON_BYTES: usize = 512 << 10;
/// Largest total of the DFAs of one flag's or segment's regexes, in bytes: what it holds in
/// memory on every edge.
pub const MAX_AUTOMATON_BYTES: usize = 1 << 20;
/// Largest NFA one regex compiles to, in bytes (`\w` takes 18 KiB of it).
pub const MAX_REGEX_NFA_BYTES: usize = 64 << 10;
/// Determinization work the regexes of one flag or segment may take: bytes of the
/// determinizer's working memory, each times the regex's input classes (plus 16), as charged by
/// the rule in the module documentation.
pub const MAX_DETERMINIZE_WORK: usize = 16 << 20;
/// Code points that case folding may walk for one flag's or segment's regexes. `(?i)\pL`
/// costs 141,028; `(?i)[a-z]`, 26; `(?i)\w`, nothing (it is closed under folding already);
/// `(?i)\p{Any}` more than the limit (about 5 ms of folding in a release build).
pub const MAX_CASE_FOLD_CHARS: usize = 1 << 20;

/// The first working-memory limit tried for a regex; ordinary patterns need 1–3 KiB.
const FIRST_DETERMINIZE_LIMIT: usize = 2 << 10;
/// Added to a regex's input classes in [`MAX_DETERMINIZE_WORK`]: what a state costs beside
/// expanding it over each class (hashing and storing it).
const CLASS_OVERHEAD: usize = 16;

/// What the regexes of one flag or segment have used so far.
#[derive(Debug)]
pub(crate) struct RegexBudget {
    /// `flag` or `segment`, for messages.
    owner: &'static str,
    values: usize,
    pattern_bytes: usize,
    case_fold: usize,
    automaton: usize,
    work: usize,
    /// The regex condition holding the most automaton bytes: the path of its values.
    largest: Option<(String, usize)>,
}

/// The automata a compiled flag or segment holds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Automata {
    pub(crate) bytes: usize,
    pub(crate) largest: Option<Box<str>>,
}

fn kib(bytes: usize) -> String {
    format!("{} KiB", bytes.div_ceil(1024))
}

fn millions(n: usize) -> String {
    format!("{:.1} million", n as f64 / 1e6)
}

impl RegexBudget {
    pub(crate) fn new(owner: &'static str) -> Self {
        Self {
            owner,
            values: 0,
            pattern_bytes: 0,
            case_fold: 0,
            automaton: 0,
            work: 0,
            largest: None,
        }
    }

    /// Records that the regex condition whose values are at `path` holds `bytes` of DFA.
    pub(crate) fn note_condition(&mut self, path: &Path, bytes: usize) {
        if self.largest.as_ref().is_none_or(|(_, most)| bytes > *most) {
            self.largest = Some((path.to_string(), bytes));
        }
    }

    pub(crate) fn finish(self) -> Automata {
        Automata {
            bytes: self.automaton,
            largest: self.largest.map(|(path, _)| path.into()),
        }
    }

    /// Compiles one regex value within what remains of the budget, or says which limit it
    /// would pass.
    pub(crate) fn build(&mut self, pattern: &str) -> Result<dense::DFA<Vec<u32>>, String> {
        self.values += 1;
        if self.values > MAX_REGEX_VALUES {
            return Err(format!(
                "a {} may hold at most {MAX_REGEX_VALUES} regex values across its rules and \
                 conditions; this is one more",
                self.owner
            ));
        }
        if pattern.len() > MAX_REGEX_LEN {
            return Err(format!("invalid regex: longer than {MAX_REGEX_LEN} bytes"));
        }
        self.pattern_bytes += pattern.len();
        if self.pattern_bytes > MAX_REGEX_PATTERN_BYTES {
            return Err(format!(
                "the regex values of a {} may total at most {MAX_REGEX_PATTERN_BYTES} bytes; \
                 this one takes them to {}",
                self.owner, self.pattern_bytes
            ));
        }
        let ast = regex_syntax::ast::parse::Parser::new()
            .parse(pattern)
            .map_err(|e| format!("invalid regex: {e}"))?;
        let fold = fold_cost(pattern, &ast);
        let fold_left = MAX_CASE_FOLD_CHARS - self.case_fold;
        if fold > fold_left {
            return Err(format!(
                "case-insensitive classes would fold {fold} code points, more than the \
                 {fold_left} left of this {}'s limit of {MAX_CASE_FOLD_CHARS}; narrow them or \
                 turn (?i) off around them",
                self.owner
            ));
        }
        self.case_fold += fold;
        let hir = Translator::new()
            .translate(pattern, &ast)
            .map_err(|e| format!("invalid regex: {e}"))?;
        let nfa = thompson::Compiler::new()
            .configure(
                thompson::Config::new()
                    .nfa_size_limit(Some(MAX_REGEX_NFA_BYTES))
                    .which_captures(thompson::WhichCaptures::None),
            )
            .build_from_hir(&ascii_word_boundaries(hir))
            .map_err(|e| match e.size_limit() {
                Some(_) => format!(
                    "regex is too large: its NFA would exceed {} (the limit per regex)",
                    kib(MAX_REGEX_NFA_BYTES)
                ),
                None => format!("invalid regex: {e}"),
            })?;
        self.determinize(&nfa)
    }

    /// Determinizes `nfa` under the DFA and determinization limits left, trying working-memory
    /// limits from [`FIRST_DETERMINIZE_LIMIT`] up, doubling.
    fn determinize(&mut self, nfa: &thompson::NFA) -> Result<dense::DFA<Vec<u32>>, String> {
        let automaton_left = MAX_AUTOMATON_BYTES - self.automaton;
        let dfa_limit = MAX_REGEX_AUTOMATON_BYTES.min(automaton_left);
        let work_left = MAX_DETERMINIZE_WORK - self.work;
        let classes = nfa.byte_classes().alphabet_len();
        let work = |limit: usize| limit.saturating_mul(classes + CLASS_OVERHEAD);
        let too_costly = || {
            format!(
                "regex is too costly to compile: it needs more than the {} units of \
                 determinization work left of this {}'s limit of {} (bytes of working memory \
                 times {} for its {classes} input classes)",
                millions(work_left),
                self.owner,
                millions(MAX_DETERMINIZE_WORK),
                classes + CLASS_OVERHEAD,
            )
        };
        let mut limit = FIRST_DETERMINIZE_LIMIT;
        if work(limit) > work_left {
            return Err(too_costly());
        }
        loop {
            let built = dense::Builder::new()
                .configure(
                    dense::DFA::config()
                        // Searches are never anchored: no anchored start states.
                        .start_kind(StartKind::Unanchored)
                        .dfa_size_limit(Some(dfa_limit))
                        .determinize_size_limit(Some(limit)),
                )
                .build_from_nfa(nfa);
            let e = match built {
                Ok(dfa) => {
                    self.work += work(limit);
                    self.automaton += dfa.memory_usage();
                    return Ok(dfa);
                }
                Err(e) => e,
            };
            if !e.is_size_limit_exceeded() {
                return Err(format!("invalid regex: {e}"));
            }
            // regex-automata says which limit was passed only in its message.
            if e.to_string().starts_with("determinization exceeded") {
                if work(limit * 2) <= work_left {
                    limit *= 2;
                    continue;
                }
                return Err(too_costly());
            }
            return Err(if dfa_limit == MAX_REGEX_AUTOMATON_BYTES {
                format!(
                    "regex needs more than {} of automaton (the limit per regex)",
                    kib(MAX_REGEX_AUTOMATON_BYTES)
                )
            } else {
                format!(
                    "regex needs more than the {} of automaton left of this {}'s limit of {}",
                    kib(automaton_left),
                    self.owner,
                    kib(MAX_AUTOMATON_BYTES)
                )
            });
        }
    }
}

/// Rewrites Unicode word-boundary assertions (`\b`, `\B`, `\<`, `\>`, …) into their ASCII
/// forms. A DFA cannot decide a Unicode word boundary next to non-ASCII text (it would give up
/// mid-search); ASCII boundaries it decides exactly, so every search completes without
/// allocating.
fn ascii_word_boundaries(hir: Hir) -> Hir {
    match hir.into_kind() {
        HirKind::Look(look) => Hir::look(match look {
            Look::WordUnicode => Look::WordAscii,
            Look::WordUnicodeNegate => Look::WordAsciiNegate,
            Look::WordStartUnicode => Look::WordStartAscii,
            Look::WordEndUnicode => Look::WordEndAscii,
            Look::WordStartHalfUnicode => Look::WordStartHalfAscii,
            Look::WordEndHalfUnicode => Look::WordEndHalfAscii,
            other => other,
        }),
        HirKind::Repetition(rep) => Hir::repetition(Repetition {
            sub: Box::new(ascii_word_boundaries(*rep.sub)),
            ..rep
        }),
        HirKind::Capture(cap) => Hir::capture(Capture {
            sub: Box::new(ascii_word_boundaries(*cap.sub)),
            ..cap
        }),
        HirKind::Concat(subs) => Hir::concat(subs.into_iter().map(ascii_word_boundaries).collect()),
        HirKind::Alternation(subs) => {
            Hir::alternation(subs.into_iter().map(ascii_word_boundaries).collect())
        }
        HirKind::Empty => Hir::empty(),
        HirKind::Literal(lit) => Hir::literal(lit.0),
        HirKind::Class(class) => Hir::class(class),
    }
}
