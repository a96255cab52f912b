//! IAM wildcard patterns: matching, subsumption and overlap.
//!
//! IAM action names and resource ARNs may contain `*` (any run of characters,
//! including none) and `?` (exactly one character). There is no escape
//! character. This module owns the three questions the rest of `iam` asks of
//! such patterns:
//!
//! - [`matches`]: does a pattern match a concrete string?
//! - [`covers`]: does every string one pattern matches also match another?
//!   This is how "the role grants `ec2:Describe*`" answers "is
//!   `ec2:DescribeVpcs` granted?".
//! - [`overlaps`]: is there any string both patterns match? This is how an
//!   explicit Deny is found to touch a grant.
//!
//! Action names compare case-insensitively and ARNs case-sensitively; callers
//! say which with `case_insensitive`.
//!
//! Policy variables: patterns are read in the syntax of policy `Version`
//! `2012-10-17`, where `${aws:username}` is a variable and `${*}`, `${?}` and
//! `${$}` are a literal `*`, `?` and `$`. A variable is one token standing for
//! the request's value: it covers only the same variable (compared without
//! case), is covered by a `*` over it, and may overlap anything (it could be
//! any string). Documents of an older `Version` (or none), where IAM reads
//! `${...}` as plain text, are rewritten into this syntax first by
//! [`escape_variables`], so the two readings never compare as equal.
//!
//! Unknown values: a template placeholder for a value the caller could not
//! supply (see [`crate::iam::policy::unknown_value`]) is one token standing
//! for "some fixed string we do not know". [`covers`] treats it
//! existentially: `arn:aws:s3:::${unknown}/*` is covered by
//! `arn:aws:s3:::my-bucket/*` (the unknown may be `my-bucket`) and covers it
//! too. [`overlaps`] treats it like `*`. Two placeholders are not required to
//! stand for the same string.
//!
//! Plain text and `text*` patterns compare as text. Every other pair goes
//! through a greedy match or a dynamic programme over the two token strings,
//! so its cost is at most the product of the two lengths and it never
//! recurses: hostile input cannot blow the stack.

use std::sync::OnceLock;

use super::policy::UNKNOWN_VALUE_PREFIX;

/// One element of a tokenised pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`: exactly one character.
    One,
    /// `*`: any run of characters, including none.
    Any,
    /// A placeholder for one unknown, fixed, wildcard-free string.
    Unknown,
    /// An IAM policy variable such as `${aws:username}`, by a hash of its
    /// lower-cased name: the request's value, whatever it is.
    Variable(u64),
}

/// FNV-1a of the lower-cased variable name: two variables are the same token
/// exactly when their names are equal without case (a collision needs two
/// different variable names in one comparison hashing alike, 1 in 2^64).
fn variable_id(name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes().map(|b| b.to_ascii_lowercase()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Rewrites a pattern from a policy whose `Version` is not `2012-10-17`, where
/// `${...}` is plain text, into the `2012-10-17` syntax this module reads:
/// each `$` that opens `${` becomes `${$}`. The template placeholders for
/// unknown values (see [`crate::iam::policy::unknown_value`]) are not IAM's
/// and are kept.
pub fn escape_variables(pattern: &str) -> String {
    if !pattern.contains("${") {
        return pattern.to_string();
    }
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut rest = pattern;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(length) = placeholder_length(tail) {
            out.push_str(&tail[..length]);
            rest = &tail[length..];
        } else {
            out.push_str("${$}");
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The token for a `${...}` sequence at the start of `text` and its length in
/// bytes, when `text` starts with one: an unknown-value placeholder, an escape
/// (`${*}`, `${?}`, `${$}`) or a policy variable.
fn braced_token(text: &str) -> Option<(Token, usize)> {
    if let Some(length) = placeholder_length(text) {
        return Some((Token::Unknown, length));
    }
    let inner = text.strip_prefix("${")?;
    let end = inner.find('}')?;
    let name = &inner[..end];
    let token = match name {
        "*" => Token::Literal('*'),
        "?" => Token::Literal('?'),
        "$" => Token::Literal('$'),
        _ if !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '-' | '_' | '.')) =>
        {
            Token::Variable(variable_id(name))
        }
        _ => return None,
    };
    Some((token, 2 + end + 1))
}

/// Splits a pattern into tokens.
///
/// A run of wildcards is put into a canonical order, `?`s first and at most
/// one `*` after them, because `*?`, `?*` and `**?` all mean "at least one
/// character". Canonical runs let [`covers`] recognise more equal patterns.
fn tokenize(pattern: &str, case_insensitive: bool) -> Vec<Token> {
    let mut tokens = Vec::with_capacity(pattern.len());
    let mut ones = 0usize;
    let mut any = false;
    let flush = |tokens: &mut Vec<Token>, ones: &mut usize, any: &mut bool| {
        tokens.extend(std::iter::repeat_n(Token::One, *ones));
        if *any {
            tokens.push(Token::Any);
        }
        *ones = 0;
        *any = false;
    };
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        if c == '$' {
            if let Some((token, length)) = braced_token(rest) {
                flush(&mut tokens, &mut ones, &mut any);
                tokens.push(token);
                rest = &rest[length..];
                continue;
            }
        }
        rest = &rest[c.len_utf8()..];
        match c {
            '*' => any = true,
            '?' => ones += 1,
            _ => {
                flush(&mut tokens, &mut ones, &mut any);
                if case_insensitive && c.is_ascii() {
                    // Most actions are ASCII: skip the general case mapping.
                    tokens.push(Token::Literal(c.to_ascii_lowercase()));
                } else if case_insensitive {
                    tokens.extend(c.to_lowercase().map(Token::Literal));
                } else {
                    tokens.push(Token::Literal(c));
                }
            }
        }
    }
    flush(&mut tokens, &mut ones, &mut any);
    tokens
}

/// The length in bytes of the placeholder `text` starts with, if it does.
fn placeholder_length(text: &str) -> Option<usize> {
    let after = text.strip_prefix(UNKNOWN_VALUE_PREFIX)?;
    let end = after.find('}')?;
    Some(UNKNOWN_VALUE_PREFIX.len() + end + 1)
}

/// Tokenises a concrete string: every character is a literal, wildcards too.
fn literal_tokens(text: &str, case_insensitive: bool) -> Vec<Token> {
    if case_insensitive {
        text.chars()
            .flat_map(char::to_lowercase)
            .map(Token::Literal)
            .collect()
    } else {
        text.chars().map(Token::Literal).collect()
    }
}

/// A pattern compiled once, for callers that compare the same pattern many times (grant
/// sets compare every pair).
///
/// The two shapes nearly every action and ARN has, plain text and plain text followed by
/// one `*`, are kept as text and compare as text; only other patterns are split into
/// tokens up front. Text is split too, once, the first time it meets such a pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    repr: Repr,
    /// The tokens of a [`Repr::Literal`] or [`Repr::Prefix`], once asked for.
    tokens: OnceLock<Vec<Token>>,
}

/// Equal patterns are those of equal text, whether or not their tokens were asked for.
impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.repr == other.repr
    }
}

impl Eq for Pattern {}

/// How a [`Pattern`] is held. A pattern of literals (with `*` last or not) is always a
/// [`Repr::Literal`] or [`Repr::Prefix`], never [`Repr::General`], so equal patterns have
/// equal representations.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Repr {
    /// Only literals: their text (lower-cased when compiled without case).
    Literal(Box<str>),
    /// Literals, then one `*` at the end: the literals.
    Prefix(Box<str>),
    /// Anything else, as tokens.
    General(Vec<Token>),
}

impl Pattern {
    /// Compiles `pattern`; with `case_insensitive`, literals are lower-cased,
    /// so only compare patterns compiled with the same setting.
    pub fn new(pattern: &str, case_insensitive: bool) -> Pattern {
        // ASCII text without `?`, `$` or a `*` before its last character(s) is plain text
        // or a prefix: no tokens are needed to know it.
        let stem = pattern.trim_end_matches('*');
        if pattern.is_ascii() && !stem.contains(['*', '?', '$']) {
            let text: Box<str> = if case_insensitive {
                stem.to_ascii_lowercase().into()
            } else {
                stem.into()
            };
            let repr = if stem.len() == pattern.len() {
                Repr::Literal(text)
            } else {
                Repr::Prefix(text)
            };
            return Pattern {
                repr,
                tokens: OnceLock::new(),
            };
        }
        let tokens = tokenize(pattern, case_insensitive);
        let text = |literals: &[Token]| -> Option<Box<str>> {
            literals
                .iter()
                .map(|t| match t {
                    Token::Literal(c) => Some(*c),
                    _ => None,
                })
                .collect::<Option<String>>()
                .map(String::into_boxed_str)
        };
        let repr = match tokens.split_last() {
            Some((Token::Any, rest)) => text(rest).map(Repr::Prefix),
            _ => text(&tokens).map(Repr::Literal),
        }
        .unwrap_or(Repr::General(tokens));
        Pattern {
            repr,
            tokens: OnceLock::new(),
        }
    }

    /// The pattern's tokens: those of a general pattern, or, built on first use, those of
    /// plain text and prefixes (which only need them when compared with a general one).
    fn tokens(&self) -> &[Token] {
        match &self.repr {
            Repr::General(tokens) => tokens,
            // The text is already lower-cased where the pattern ignores case.
            Repr::Literal(text) => self.tokens.get_or_init(|| literal_tokens(text, false)),
            Repr::Prefix(stem) => self.tokens.get_or_init(|| {
                let mut tokens = literal_tokens(stem, false);
                tokens.push(Token::Any);
                tokens
            }),
        }
    }

    /// True when every string matched by `specific` is also matched by
    /// `self` (see [`covers`]).
    pub fn covers(&self, specific: &Pattern) -> bool {
        match (&self.repr, &specific.repr) {
            (Repr::Literal(a), Repr::Literal(b)) => a == b,
            // A `*` only covers a `*`, so plain text covers no prefix pattern.
            (Repr::Literal(_), Repr::Prefix(_)) => false,
            // Text is a prefix of text exactly when its characters are a prefix of the
            // other's: UTF-8 encodes no character as the start of another.
            (Repr::Prefix(stem), Repr::Literal(text) | Repr::Prefix(text)) => {
                text.starts_with(&**stem)
            }
            _ => {
                let (general, specific) = (self.tokens(), specific.tokens());
                literal_prefix_compatible(general, specific)
                    && literal_suffix_compatible(general, specific)
                    && covers_tokens(general, specific)
            }
        }
    }

    /// True when some string is matched by both patterns (see [`overlaps`]).
    pub fn overlaps(&self, other: &Pattern) -> bool {
        match (&self.repr, &other.repr) {
            (Repr::Literal(a), Repr::Literal(b)) => a == b,
            (Repr::Prefix(stem), Repr::Literal(text))
            | (Repr::Literal(text), Repr::Prefix(stem)) => text.starts_with(&**stem),
            (Repr::Prefix(a), Repr::Prefix(b)) => a.starts_with(&**b) || b.starts_with(&**a),
            _ => {
                let (a, b) = (self.tokens(), other.tokens());
                literal_suffix_compatible(a, b) && overlaps_tokens(a, b)
            }
        }
    }

    /// True when the pattern matches every string, i.e. it is `*` (or `**`).
    pub fn matches_everything(&self) -> bool {
        matches!(&self.repr, Repr::Prefix(stem) if stem.is_empty())
    }

    /// True when the pattern holds an unknown value or a policy variable: a token that
    /// may stand for (or be covered by) a string the text does not show.
    pub fn has_placeholders(&self) -> bool {
        match &self.repr {
            Repr::General(tokens) => tokens
                .iter()
                .any(|t| matches!(t, Token::Unknown | Token::Variable(_))),
            Repr::Literal(_) | Repr::Prefix(_) => false,
        }
    }
}

/// True when `pattern` matches the concrete string `text`.
///
/// `*` and `?` in `text` are ordinary characters here; to ask whether one
/// pattern includes another, use [`covers`].
pub fn matches(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    covers_tokens(
        &tokenize(pattern, case_insensitive),
        &literal_tokens(text, case_insensitive),
    )
}

/// True when every string matched by `specific` is also matched by `general`.
///
/// The answer is sound: `true` is only ever returned when the inclusion
/// holds. A `*` in `general` absorbs any run of `specific`'s tokens,
/// wildcards included; a `?` in `general` absorbs one token of `specific`
/// that is not a `*`; literals must equal literals. Wildcard runs are
/// canonicalised first, so `?*` covers `*?`. A pathological pair can still be
/// answered `false` when inclusion technically holds; every such case is a
/// pattern no person writes, and `false` errs towards reporting a difference.
#[cfg(test)]
pub fn covers(general: &str, specific: &str, case_insensitive: bool) -> bool {
    Pattern::new(general, case_insensitive).covers(&Pattern::new(specific, case_insensitive))
}

/// True when at least one string is matched by both patterns.
///
/// This is exact for `*`/`?` patterns. It is what decides whether an explicit
/// Deny touches a grant: `ec2:Delete*` and `ec2:*Vpc` overlap (both match
/// `ec2:DeleteVpc`), although neither covers the other.
#[cfg(test)]
pub fn overlaps(first: &str, second: &str, case_insensitive: bool) -> bool {
    Pattern::new(first, case_insensitive).overlaps(&Pattern::new(second, case_insensitive))
}

/// True when `pattern` contains a wildcard.
#[cfg(test)]
pub fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// Cheap necessary condition for coverage: `general`'s leading literals must
/// be a prefix of `specific`'s leading literals. Most pairs of unrelated ARNs
/// or actions fail here, so the quadratic table is rarely built.
fn literal_prefix_compatible(general: &[Token], specific: &[Token]) -> bool {
    for (index, token) in general.iter().enumerate() {
        match token {
            Token::Literal(c) => {
                match specific.get(index) {
                    Some(Token::Literal(d)) if d == c => {}
                    // The unknown may start with the general's literals.
                    Some(Token::Unknown) => return true,
                    _ => return false,
                }
            }
            Token::One | Token::Any | Token::Unknown | Token::Variable(_) => return true,
        }
    }
    true
}

/// Cheap necessary condition for coverage and for overlap: where both
/// patterns end in literals, those endings agree. Every string either matches
/// ends with its pattern's trailing literals, so two different endings share
/// no string. Most pairs of numbered ARNs (`.../a-1`, `.../*-2`) fail here.
fn literal_suffix_compatible(a: &[Token], b: &[Token]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        match (x, y) {
            (Token::Literal(c), Token::Literal(d)) if c == d => {}
            (Token::Literal(_), Token::Literal(_)) => return false,
            _ => return true,
        }
    }
    true
}

/// True when every string matched by `specific` is also matched by `general`: the greedy
/// wildcard match when neither holds an unknown value or a variable (nearly every pair),
/// else the table of [`covers_table`].
fn covers_tokens(general: &[Token], specific: &[Token]) -> bool {
    let plain = |t: &Token| matches!(t, Token::Literal(_) | Token::One | Token::Any);
    if general.iter().all(plain) && specific.iter().all(plain) {
        covers_greedy(general, specific)
    } else {
        covers_table(general, specific)
    }
}

/// [`covers_table`] for tokens that are only literals, `?` and `*`, in linear time for
/// the patterns people write and without allocating.
///
/// Read `specific` as a string of symbols (its characters, `?` and `*`) that `general`
/// must match: a general `*` takes any run of symbols, a general `?` one symbol that is
/// not `*`, a literal the same literal. `general` is `S0 * S1 * ... * Sk`, each `Si` of
/// fixed width; the classic greedy match places each `Si` at its leftmost fit and, on a
/// mismatch, moves the segment after the last `*` one symbol on. Placing a segment
/// leftmost never loses a match (the next `*` takes up the rest), so the answer is the
/// table's; `pattern::tests` checks the two agree on every short pair.
fn covers_greedy(general: &[Token], specific: &[Token]) -> bool {
    let fits = |g: Token, s: Token| match (g, s) {
        (Token::Literal(c), Token::Literal(d)) => c == d,
        (Token::One, Token::Literal(_) | Token::One) => true,
        _ => false,
    };
    let (mut g, mut s) = (0, 0);
    // After the last general `*` seen: where its segment starts in `general`, and the
    // position in `specific` the `*` has absorbed up to.
    let mut star: Option<(usize, usize)> = None;
    while s < specific.len() {
        match general.get(g) {
            Some(Token::Any) => {
                g += 1;
                star = Some((g, s));
            }
            Some(&token) if fits(token, specific[s]) => {
                g += 1;
                s += 1;
            }
            _ => match star {
                Some((segment, absorbed)) => {
                    g = segment;
                    s = absorbed + 1;
                    star = Some((segment, s));
                }
                None => return false,
            },
        }
    }
    general[g..].iter().all(|t| *t == Token::Any)
}

/// The subsumption table, computed bottom-up with two rows.
///
/// `row[j]` for general position `i` holds "general[i..] covers
/// specific[j..]".
fn covers_table(general: &[Token], specific: &[Token]) -> bool {
    let n = specific.len();
    // Row for i == general.len(): only an empty suffix is covered (a
    // specific unknown may be the empty string).
    let mut next = vec![false; n + 1];
    next[n] = true;
    for j in (0..n).rev() {
        next[j] = specific[j] == Token::Unknown && next[j + 1];
    }
    let mut current = vec![false; n + 1];
    for token in general.iter().rev() {
        for j in (0..=n).rev() {
            let here = specific.get(j).copied();
            current[j] = match (token, here) {
                // `*` matches nothing more, or absorbs the specific token.
                (Token::Any, _) => next[j] || (j < n && current[j + 1]),
                // The general unknown may be the run of literals ahead
                // (including none), or the specific unknown itself.
                (Token::Unknown, Some(Token::Literal(_))) => next[j] || current[j + 1],
                (Token::Unknown, Some(Token::Unknown)) => next[j] || current[j + 1] || next[j + 1],
                (Token::Unknown, _) => next[j],
                // A specific unknown may end here, or go on with a character
                // the general `?` or literal matches.
                (Token::One | Token::Literal(_), Some(Token::Unknown)) => current[j + 1] || next[j],
                (Token::One, Some(Token::Literal(_) | Token::One)) => next[j + 1],
                (Token::Literal(c), Some(Token::Literal(d))) => *c == d && next[j + 1],
                (Token::Variable(a), Some(Token::Variable(b))) => *a == b && next[j + 1],
                _ => false,
            };
        }
        std::mem::swap(&mut next, &mut current);
    }
    next[0]
}

/// The intersection table: `row[j]` for position `i` of `a` holds "some
/// string is matched by both `a[i..]` and `b[j..]`".
fn overlaps_tokens(a: &[Token], b: &[Token]) -> bool {
    let m = b.len();
    // Row for i == a.len(): a is exhausted, so b's rest must all be `*`.
    let mut next = vec![false; m + 1];
    next[m] = true;
    for j in (0..m).rev() {
        next[j] = matches!(b[j], Token::Any | Token::Unknown | Token::Variable(_)) && next[j + 1];
    }
    let mut current = vec![false; m + 1];
    for token in a.iter().rev() {
        // Column j == m: b is exhausted, so a's rest must all be `*`.
        current[m] = matches!(token, Token::Any | Token::Unknown | Token::Variable(_)) && next[m];
        for j in (0..m).rev() {
            let other = b[j];
            current[j] = if matches!(token, Token::Any | Token::Unknown | Token::Variable(_)) {
                // a's `*` matches nothing, or eats whatever b[j] produces
                // (for b's `*`, that also covers "b's `*` matches nothing").
                next[j] || current[j + 1]
            } else if matches!(other, Token::Any | Token::Unknown | Token::Variable(_)) {
                current[j + 1] || next[j]
            } else {
                let compatible = match (token, other) {
                    (Token::Literal(x), Token::Literal(y)) => *x == y,
                    _ => true,
                };
                compatible && next[j + 1]
            };
        }
        std::mem::swap(&mut next, &mut current);
    }
    next[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_matches_any_run_including_empty() {
        assert!(matches("ec2:Describe*", "ec2:DescribeVpcs", false));
        assert!(matches("ec2:Describe*", "ec2:Describe", false));
        assert!(matches("*", "", false));
        assert!(!matches("ec2:Describe*", "ec2:CreateVpc", false));
    }

    #[test]
    fn question_mark_matches_exactly_one_character() {
        assert!(matches("s3:Get?bject", "s3:GetObject", false));
        assert!(!matches("s3:Get?bject", "s3:Getbject", false));
        assert!(!matches("a?", "a", false));
    }

    #[test]
    fn case_insensitive_matching_folds_both_sides() {
        assert!(matches("EC2:describe*", "ec2:DescribeVpcs", true));
        assert!(!matches("EC2:describe*", "ec2:DescribeVpcs", false));
    }

    #[test]
    fn wildcards_in_text_are_literal_for_matches() {
        assert!(matches("a*", "a*", false));
        assert!(!matches("a?", "a*b", false));
        assert!(matches("a\\*", "a\\*", false));
    }

    #[test]
    fn broader_pattern_covers_narrower_pattern() {
        assert!(covers("ec2:*", "ec2:Describe*", true));
        assert!(covers("ec2:Describe*", "ec2:DescribeVpcs", true));
        assert!(covers("*", "anything*?", false));
        assert!(covers(
            "arn:aws:ec2:*:*:vpc/*",
            "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-*",
            false
        ));
    }

    #[test]
    fn narrower_pattern_does_not_cover_broader_pattern() {
        assert!(!covers("ec2:Describe*", "ec2:*", true));
        assert!(!covers("ec2:DescribeVpcs", "ec2:Describe*", true));
        assert!(!covers("arn:aws:s3:::opta-*", "arn:aws:s3:::*", false));
    }

    #[test]
    fn question_mark_does_not_cover_star() {
        assert!(!covers("a?", "a*", false));
        assert!(covers("a?", "a?", false));
        assert!(covers("a*", "a?", false));
        assert!(covers("a?*", "a*?", false));
    }

    #[test]
    fn a_pattern_covers_itself() {
        for p in ["*", "a*b?c", "arn:aws:iam::1:role/*", "", "??*x*"] {
            assert!(covers(p, p, false), "{p}");
        }
    }

    #[test]
    fn resource_coverage_is_case_sensitive() {
        assert!(!covers("arn:aws:s3:::Opta-*", "arn:aws:s3:::opta-x", false));
        assert!(covers("EC2:*", "ec2:describevpcs", true));
    }

    #[test]
    fn overlap_finds_a_common_string() {
        assert!(overlaps("ec2:Delete*", "ec2:*Vpc", false));
        assert!(overlaps("*", "x", false));
        assert!(overlaps("a?c", "*c", false));
        assert!(!overlaps("ec2:Delete*", "ec2:Create*", false));
        assert!(!overlaps("a?", "a", false));
        assert!(overlaps("a*", "a", false));
        assert!(!overlaps("ab", "a", false));
        assert!(overlaps("", "*", false));
        assert!(!overlaps("", "?", false));
    }

    #[test]
    fn compiled_patterns_answer_like_the_functions() {
        let star = Pattern::new("**", false);
        assert!(star.matches_everything());
        assert!(!Pattern::new("*?", false).matches_everything());
        let general = Pattern::new("EC2:*", true);
        assert!(general.covers(&Pattern::new("ec2:DescribeVpcs", true)));
        assert!(general.overlaps(&Pattern::new("*:Describe*", true)));
        assert!(has_wildcard("a?") && !has_wildcard("abc"));
    }

    #[test]
    fn unknown_placeholder_is_some_fixed_string() {
        let unknown = crate::iam::policy::unknown_value("Bucket");
        let expected = format!("arn:aws:s3:::{unknown}/*");
        // The role names a bucket: it may be the unknown one, both ways.
        assert!(covers("arn:aws:s3:::my-bucket/*", &expected, false));
        assert!(covers(&expected, "arn:aws:s3:::my-bucket/*", false));
        // No choice of the unknown turns "bucket/*" into one object.
        assert!(!covers("arn:aws:s3:::my-bucket/key", &expected, false));
        // The unknown is wildcard-free: it does not cover a wildcard.
        assert!(!covers(&expected, "arn:aws:s3:::*/*", false));
        assert!(covers("arn:aws:s3:::*/*", &expected, false));
        assert!(covers(&expected, &expected, false));
        assert!(!covers(&expected, "arn:aws:sqs:::x/*", false));
        assert!(overlaps(&expected, "arn:aws:s3:::b/k", false));
        assert!(matches(&expected, "arn:aws:s3:::any/key", false));
        assert!(!Pattern::new(&unknown, false).matches_everything());
    }

    #[test]
    fn policy_variables_and_escapes_read_as_in_version_2012() {
        let own = "arn:aws:s3:::data/${aws:username}/*";
        assert!(covers(own, own, false));
        assert!(covers(own, "arn:aws:s3:::data/${AWS:UserName}/*", false));
        assert!(covers("arn:aws:s3:::data/*", own, false));
        // A variable is not some particular user, nor one character.
        assert!(!covers(own, "arn:aws:s3:::data/alice/*", false));
        assert!(!covers("arn:aws:s3:::data/?/*", own, false));
        // ...but a Deny on a variable may touch any value.
        assert!(overlaps(own, "arn:aws:s3:::data/alice/x", false));
        // Escapes are literal characters.
        assert!(matches("a${*}b", "a*b", false));
        assert!(!matches("a${*}b", "axb", false));
        assert!(matches("${$}{x}", "${x}", false));
    }

    #[test]
    fn version_2008_text_is_escaped_to_stay_literal() {
        let literal = escape_variables("arn:aws:s3:::data/${aws:username}/*");
        assert_eq!(literal, "arn:aws:s3:::data/${$}{aws:username}/*");
        assert!(matches(
            &literal,
            "arn:aws:s3:::data/${aws:username}/x",
            false
        ));
        assert!(!covers(
            &literal,
            "arn:aws:s3:::data/${aws:username}/*",
            false
        ));
        assert!(!covers(
            "arn:aws:s3:::data/${aws:username}/*",
            &literal,
            false
        ));
        let unknown = format!(
            "arn:aws:s3:::{}/*",
            crate::iam::policy::unknown_value("Bucket")
        );
        assert_eq!(escape_variables(&unknown), unknown);
    }

    #[test]
    fn fast_shapes_answer_like_the_tables() {
        let texts = [
            "ec2:describevpcs",
            "ec2:describe*",
            "ec2:*",
            "*",
            "ec2:describevpc",
            "ec2:describevpcs*",
            "ec2:describe?pcs",
            "s3:*",
            "",
            "arn:aws:s3:::b/*",
            "arn:aws:s3:::b/x",
            "arn:aws:s3:::b/*-1",
            "arn:aws:s3:::b/*-2",
            "arn:aws:s3:::*/x-1",
            "arn:aws:s3:::b/x-1",
            "a*b*c",
            "a*c",
        ];
        for a in texts {
            for b in texts {
                let (pa, pb) = (Pattern::new(a, true), Pattern::new(b, true));
                let covers_slow = covers_table(pa.tokens(), pb.tokens());
                let overlaps_slow = overlaps_tokens(pa.tokens(), pb.tokens());
                assert_eq!(pa.covers(&pb), covers_slow, "{a} covers {b}");
                assert_eq!(pa.overlaps(&pb), overlaps_slow, "{a} overlaps {b}");
            }
        }
    }

    /// Every pair of patterns of up to four symbols over `a`, `b`, `?` and `*`: the greedy
    /// match, and compiled patterns, answer exactly as the tables do.
    #[test]
    fn greedy_coverage_answers_like_the_table_on_every_short_pair() {
        let mut texts = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..4 {
            frontier = frontier
                .iter()
                .flat_map(|t| ["a", "b", "?", "*"].map(|c| format!("{t}{c}")))
                .collect();
            texts.extend(frontier.iter().cloned());
        }
        let patterns: Vec<Vec<Token>> = texts.iter().map(|t| tokenize(t, false)).collect();
        let compiled: std::collections::HashMap<&String, Pattern> =
            texts.iter().map(|t| (t, Pattern::new(t, false))).collect();
        let mut covered = 0;
        for (a, ta) in texts.iter().zip(&patterns) {
            for (b, tb) in texts.iter().zip(&patterns) {
                let table = covers_table(ta, tb);
                assert_eq!(covers_greedy(ta, tb), table, "{a:?} covers {b:?}");
                covered += usize::from(table);
                // Compiled patterns (plain text and prefixes held as text) agree too.
                let (pa, pb) = (&compiled[a], &compiled[b]);
                assert_eq!(pa.covers(pb), table, "compiled {a:?} covers {b:?}");
                assert_eq!(
                    pa.overlaps(pb),
                    overlaps_tokens(ta, tb),
                    "compiled {a:?} overlaps {b:?}"
                );
            }
        }
        // Both answers occur, so the comparison is not between two constants.
        assert!(covered > 1000 && covered < texts.len() * texts.len() / 2);
    }

    #[test]
    fn long_hostile_patterns_finish_without_recursion() {
        let general = "*a".repeat(2000);
        let specific = "a".repeat(3999) + "b";
        assert!(!covers(&general, &specific, false));
        assert!(!matches(&general, &specific, false));
        assert!(overlaps(&general, &"*".repeat(10), false));
    }
}
