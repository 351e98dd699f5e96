//! What case-insensitive matching costs to compile, computed from a regex's syntax tree before
//! it is translated.
//!
//! Under `(?i)`, regex-syntax closes a character class under case folding one code point at a
//! time, so `(?i)\p{Any}` walks all 1.1 million code points (about 7 ms in a release build) and
//! a 1 KiB pattern of such classes takes about 0.4 s — before any size limit of the automaton
//! applies. [`fold_cost`] counts, for every fold translation will perform, the code points of
//! the class it folds, following regex-syntax 0.8's rules of when a class needs folding: a
//! Unicode class (`\pL`) is folded alone, before any negation; a Perl class (`\w`) never is (it
//! is closed already); a bracketed class is folded as a whole when it holds a literal, range,
//! ASCII or Perl item, and both sides of a set operation (`--`, `&&`, `~~`) are folded. Sizes
//! that cannot be known without translating the whole class (a nested negated bracket) count
//! as every code point, so the figure never falls short of the work.

use regex_syntax::ast::{
    self, Ast, ClassSet, ClassSetItem, ClassUnicodeKind, ClassUnicodeOpKind, Flag, FlagsItemKind,
    GroupKind,
};
use regex_syntax::hir::{Class, HirKind, translate::Translator};

/// Unicode scalar values (code points less the surrogates).
const SCALARS: usize = 0x11_0000 - 0x800;

/// The code points case folding walks while `pattern` (parsed into `ast`) is translated.
pub(crate) fn fold_cost(pattern: &str, ast: &Ast) -> usize {
    let mut walk = Walk {
        pattern,
        flags: Flags {
            case_insensitive: false,
            unicode: true,
        },
        cost: 0,
    };
    walk.ast(ast);
    walk.cost
}

#[derive(Debug, Clone, Copy)]
struct Flags {
    case_insensitive: bool,
    unicode: bool,
}

impl Flags {
    /// Applies `(?flags)` as regex-syntax does: items after `-` turn their flag off.
    fn apply(&mut self, flags: &ast::Flags) {
        let mut off = false;
        for item in &flags.items {
            match item.kind {
                FlagsItemKind::Negation => off = true,
                FlagsItemKind::Flag(Flag::CaseInsensitive) => self.case_insensitive = !off,
                FlagsItemKind::Flag(Flag::Unicode) => self.unicode = !off,
                FlagsItemKind::Flag(_) => {}
            }
        }
    }
}

/// The fold work of one class-set node: what folding it costs inside, how many code points it
/// holds at most, and whether it leaves its enclosing class marked as not yet folded.
#[derive(Debug, Clone, Copy, Default)]
struct Set {
    cost: usize,
    size: usize,
    unfolded: bool,
}

struct Walk<'p> {
    pattern: &'p str,
    flags: Flags,
    cost: usize,
}

impl Walk<'_> {
    /// Visits `ast` in translation order. Flags set by `(?i)` last until the end of the
    /// enclosing group, across later alternatives too; a group restores them when it ends.
    fn ast(&mut self, ast: &Ast) {
        match ast {
            Ast::Flags(set) => self.flags.apply(&set.flags),
            Ast::Group(group) => {
                let saved = self.flags;
                if let GroupKind::NonCapturing(flags) = &group.kind {
                    self.flags.apply(flags);
                }
                self.ast(&group.ast);
                self.flags = saved;
            }
            Ast::Repetition(rep) => self.ast(&rep.ast),
            Ast::Alternation(alt) => alt.asts.iter().for_each(|a| self.ast(a)),
            Ast::Concat(concat) => concat.asts.iter().for_each(|a| self.ast(a)),
            Ast::ClassUnicode(class) if self.folding() => {
                self.cost = self.cost.saturating_add(self.unicode_size(class));
            }
            Ast::ClassBracketed(class) if self.folding() => {
                let cost = self.bracketed(class).cost;
                self.cost = self.cost.saturating_add(cost);
            }
            _ => {}
        }
    }

    /// Whether classes are folded here: case-insensitive Unicode classes (byte classes fold
    /// at most 256 values).
    fn folding(&self) -> bool {
        self.flags.case_insensitive && self.flags.unicode
    }

    /// A bracketed class: folded as a whole if an item left it unfolded, then negated.
    fn bracketed(&self, class: &ast::ClassBracketed) -> Set {
        let inner = self.set(&class.kind);
        let size = inner.size.min(SCALARS);
        Set {
            cost: inner
                .cost
                .saturating_add(if inner.unfolded { size } else { 0 }),
            // The union's exact size is unknown, so its complement's is too.
            size: if class.negated { SCALARS } else { size },
            unfolded: false,
        }
    }

    fn set(&self, set: &ClassSet) -> Set {
        match set {
            ClassSet::Item(item) => self.item(item),
            ClassSet::BinaryOp(op) => {
                let (lhs, rhs) = (self.set(&op.lhs), self.set(&op.rhs));
                let folded = |s: Set| if s.unfolded { s.size } else { 0 };
                Set {
                    cost: lhs
                        .cost
                        .saturating_add(rhs.cost)
                        .saturating_add(folded(lhs))
                        .saturating_add(folded(rhs)),
                    size: lhs.size.saturating_add(rhs.size),
                    unfolded: false,
                }
            }
        }
    }

    fn item(&self, item: &ClassSetItem) -> Set {
        let unfolded = |size: usize| Set {
            cost: 0,
            size,
            unfolded: true,
        };
        match item {
            ClassSetItem::Empty(_) => Set::default(),
            ClassSetItem::Literal(_) => unfolded(1),
            ClassSetItem::Range(range) => {
                unfolded((range.end.c as usize).saturating_sub(range.start.c as usize) + 1)
            }
            ClassSetItem::Ascii(_) => unfolded(128),
            ClassSetItem::Perl(class) => {
                let positive = self.class_size(Ast::class_perl(ast::ClassPerl {
                    negated: false,
                    ..class.clone()
                }));
                unfolded(if class.negated {
                    SCALARS.saturating_sub(positive)
                } else {
                    positive
                })
            }
            ClassSetItem::Unicode(class) => {
                let positive = self.unicode_size(class);
                Set {
                    cost: positive,
                    size: if class.is_negated() {
                        SCALARS.saturating_sub(positive)
                    } else {
                        positive
                    },
                    unfolded: false,
                }
            }
            ClassSetItem::Bracketed(class) => self.bracketed(class),
            ClassSetItem::Union(union) => union.items.iter().fold(Set::default(), |acc, i| {
                let s = self.item(i);
                Set {
                    cost: acc.cost.saturating_add(s.cost),
                    size: acc.size.saturating_add(s.size),
                    unfolded: acc.unfolded || s.unfolded,
                }
            }),
        }
    }

    /// Code points of a Unicode class before its negation: what folding it walks.
    fn unicode_size(&self, class: &ast::ClassUnicode) -> usize {
        let kind = match &class.kind {
            ClassUnicodeKind::NamedValue { name, value, .. } => ClassUnicodeKind::NamedValue {
                op: ClassUnicodeOpKind::Equal,
                name: name.clone(),
                value: value.clone(),
            },
            other => other.clone(),
        };
        self.class_size(Ast::class_unicode(ast::ClassUnicode {
            span: class.span,
            negated: false,
            kind,
        }))
    }

    /// Code points of a class on its own, translated case-sensitively (cheap). A class that
    /// does not translate costs nothing here: translating the pattern reports it.
    fn class_size(&self, class: Ast) -> usize {
        let Ok(hir) = Translator::new().translate(self.pattern, &class) else {
            return 0;
        };
        match hir.kind() {
            HirKind::Class(Class::Unicode(class)) => class
                .ranges()
                .iter()
                .map(|r| r.end() as usize - r.start() as usize + 1)
                .sum(),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn cost(pattern: &str) -> usize {
        let ast = ast::parse::Parser::new().parse(pattern).unwrap();
        fold_cost(pattern, &ast)
    }

    #[test]
    fn case_sensitive_patterns_fold_nothing() {
        assert_eq!(cost(r"\p{Any}[\w\S]+\pL{3}"), 0);
        assert_eq!(cost(r"(?i:a)\p{Any}"), 0);
        assert_eq!(cost(r"(?i-u)[^a]\xff"), 0);
    }

    #[test]
    fn the_classes_regex_syntax_folds_are_counted() {
        // A Unicode class is folded before negation.
        assert!(cost(r"(?i)\p{Any}") >= SCALARS);
        assert!(cost(r"(?i)\P{Any}") >= SCALARS);
        assert_eq!(cost(r"(?i)\p{Any}\p{Any}"), 2 * cost(r"(?i)\p{Any}"));
        // Perl classes are closed under folding; a negated bracket folds its positive part.
        assert_eq!(cost(r"(?i)\w+\S\D"), 0);
        assert_eq!(cost(r"(?i)[^@]+@[a-z]"), 1 + 26);
        // A literal in a bracket makes regex-syntax fold everything beside it.
        assert!(cost(r"(?i)[\W_]") > 900_000);
        assert!(cost(r"(?i)[\x{0}-\x{10FFFF}]") > 1_000_000);
        // Perl classes are not marked folded, so a bracket holding one is folded whole.
        assert!(cost(r"(?i)[\s\S]") > 1_000_000);
        // Unicode items are folded one by one, and then the union needs nothing more.
        assert_eq!(cost(r"(?i)[\pL\pN]"), cost(r"(?i)\pL\pN"));
        // Set operations fold both sides.
        assert!(cost(r"(?i)[\x{0}-\x{10FFFF}--a]") > 1_000_000);
    }

    #[test]
    fn flags_follow_groups_and_alternatives() {
        let any = cost(r"(?i)\p{Any}");
        assert_eq!(cost(r"(?i:x)\p{Any}"), 0);
        assert_eq!(cost(r"(?:(?i)x)\p{Any}"), 0);
        assert_eq!(cost(r"x(?i)|\p{Any}"), any);
        assert_eq!(cost(r"(?i)(?-i:\p{Any})"), 0);
        assert_eq!(cost(r"(?i)(\p{Any})"), any);
        assert_eq!(cost(r"(?i-u)[a-z]|(?u)\p{Any}"), any);
    }
}
