//! Reading user-supplied YAML files (config, rule packs) into typed structs, with errors
//! that name the file, the line and column, and the field, as
//! `rules/union-byoc.yaml:12:5: rules.vpc.az_count.min_azs: invalid type: …`.
//!
//! It also owns [`ValidatedStr`], the serde visitor that checks a string inside its own
//! visit so that a bad value is reported at its own line. A leaf of the model: it imports
//! nothing of the crate.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A bad input file: where it is bad and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub file: PathBuf,
    /// 1-based line and column, when the parser knows them.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted path of the offending field, e.g. `scope.vpc_ids[2]`; empty at the top level.
    pub field: String,
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if !self.field.is_empty() && self.field != "." {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for InputError {}

impl InputError {
    /// An error about a whole file, with no position: unreadable, empty, and so on.
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        InputError {
            file: file.to_path_buf(),
            line: None,
            column: None,
            field: String::new(),
            message: message.into(),
        }
    }
}

/// Parses YAML `text` (read from `file`) into `T`, keeping the position and field path of
/// the first error. Unknown keys are errors wherever `T` says `deny_unknown_fields`.
pub fn parse_yaml<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, InputError> {
    // Editors on Windows save a byte order mark; YAML allows it, but the parser reads it
    // as the start of a second document.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(InputError::file(file, "the file is empty"));
    }
    if !has_content(text) {
        return Err(InputError::file(
            file,
            "the file is empty (it holds only comments)",
        ));
    }
    let deserializer = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let field = err.path().to_string();
        let inner = err.into_inner();
        let location = inner.location();
        let message = strip_location_suffix(&inner.to_string());
        let message = strip_path_prefix(&message, &field).to_string();
        InputError {
            file: file.to_path_buf(),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            field,
            message,
        }
    })
}

/// True when some line of YAML `text` is neither blank nor a comment.
fn has_content(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim();
        !line.is_empty() && !line.starts_with('#')
    })
}

impl InputError {
    /// Fills in the line and column of [`InputError::field`] in the YAML `text` the error is
    /// about, for errors found after parsing (a value out of range, a file it names that
    /// does not exist). Keeps a position the error already has.
    pub fn located_in(mut self, text: &str) -> Self {
        if self.line.is_none() && !self.field.is_empty() {
            if let Some((line, column)) = locate_yaml(text, &self.field) {
                self.line = Some(line);
                self.column = Some(column);
            }
        }
        self
    }

    /// Like [`InputError::located_in`], for a JSON `text` such as a policy document.
    pub fn located_in_json(mut self, text: &str) -> Self {
        if self.line.is_none() && !self.field.is_empty() {
            if let Some((line, column)) = locate_json(text, &self.field) {
                self.line = Some(line);
                self.column = Some(column);
            }
        }
        self
    }
}

/// The 1-based line and column where the value at `field` starts in YAML `text`, or, when
/// it is absent, where its deepest present parent starts. `field` is a path as
/// [`InputError::field`] spells it: `roles[0].policies[1]`, `vpc_rules.subnet.ip_capacity`
/// (keys may contain dots). `None` when the text does not parse or no part is present.
pub fn locate_yaml(text: &str, field: &str) -> Option<(usize, usize)> {
    locate_with(field, |path| {
        let deserializer = serde_yaml_ng::Deserializer::from_str(text);
        match serde::de::DeserializeSeed::deserialize(locate::Seek(path), deserializer) {
            Err(err) if err.to_string().contains(locate::FOUND) => {
                err.location().map(|l| (l.line(), l.column()))
            }
            _ => None,
        }
    })
}

/// Like [`locate_yaml`], for JSON `text` (a policy document, a snapshot); the column is
/// where the value's first token ends.
pub fn locate_json(text: &str, field: &str) -> Option<(usize, usize)> {
    locate_with(field, |path| {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        match serde::de::DeserializeSeed::deserialize(locate::Seek(path), &mut deserializer) {
            Err(err) if err.to_string().contains(locate::FOUND) => Some((err.line(), err.column())),
            _ => None,
        }
    })
}

/// Tries `field`, then each shorter prefix of it, until `find` finds one.
fn locate_with(
    field: &str,
    find: impl Fn(&str) -> Option<(usize, usize)>,
) -> Option<(usize, usize)> {
    let mut path = field.trim_start_matches('.');
    loop {
        if path.is_empty() {
            return None;
        }
        if let Some(found) = find(path) {
            return Some(found);
        }
        match path.rfind(['.', '[']) {
            Some(cut) => path = &path[..cut],
            None => return None,
        }
    }
}

mod locate {
    //! A `DeserializeSeed` that walks a document along a field path and fails on purpose
    //! when it reaches the value, so that the parser's error carries the value's position.

    use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    /// The message of the deliberate error; a real parse error never starts so.
    pub(super) const FOUND: &str = "\u{1}located";

    /// Seeks the rest of a path (`a.b[2].c`) in the value it is given.
    pub(super) struct Seek<'p>(pub(super) &'p str);

    impl<'de> DeserializeSeed<'de> for Seek<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    fn not_found<E: de::Error>() -> E {
        E::custom("not found")
    }

    impl<'de> Visitor<'de> for Seek<'_> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any value")
        }

        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            self.scalar()
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            self.scalar()
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            self.scalar()
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            self.scalar()
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            self.scalar()
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            self.scalar()
        }
        fn visit_none<E: de::Error>(self) -> Result<(), E> {
            self.scalar()
        }
        fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<(), A::Error> {
            // A tagged YAML value (`!Sub ...`): the path ends here or is not followed.
            self.scalar()
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            if self.0.is_empty() {
                return Err(de::Error::custom(FOUND));
            }
            let Some((index, rest)) = index_step(self.0) else {
                return Err(not_found());
            };
            for _ in 0..index {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    return Err(not_found());
                }
            }
            match seq.next_element_seed(Seek(rest))? {
                Some(()) => Err(not_found()),
                None => Err(not_found()),
            }
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            if self.0.is_empty() {
                return Err(de::Error::custom(FOUND));
            }
            // `Statement[0]` of a policy whose Statement is one object: the object itself.
            if let Some((0, rest)) = index_step(self.0) {
                return Seek(rest).visit_map(map);
            }
            while let Some(key) = map.next_key::<Key>()? {
                match key.0.as_deref().and_then(|k| key_step(self.0, k)) {
                    Some(rest) => return map.next_value_seed(Seek(rest)),
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Err(not_found())
        }
    }

    impl Seek<'_> {
        fn scalar<E: de::Error>(&self) -> Result<(), E> {
            if self.0.is_empty() {
                Err(E::custom(FOUND))
            } else {
                Err(not_found())
            }
        }
    }

    /// `[3].rest` → (3, `rest`).
    fn index_step(path: &str) -> Option<(usize, &str)> {
        let inner = path.strip_prefix('[')?;
        let (number, rest) = inner.split_once(']')?;
        Some((number.parse().ok()?, rest.strip_prefix('.').unwrap_or(rest)))
    }

    /// The rest of `path` after the key `key`, if `path` starts with it.
    fn key_step<'p>(path: &'p str, key: &str) -> Option<&'p str> {
        let rest = path.strip_prefix(key)?;
        if rest.is_empty() {
            Some(rest)
        } else if let Some(after) = rest.strip_prefix('.') {
            Some(after)
        } else if rest.starts_with('[') {
            Some(rest)
        } else {
            None
        }
    }

    /// A mapping key as text; `None` for keys that are not scalars.
    struct Key(Option<String>);

    impl<'de> de::Deserialize<'de> for Key {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
            struct KeyVisitor;
            impl<'de> Visitor<'de> for KeyVisitor {
                type Value = Key;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a key")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                    Ok(Key(Some(v.to_string())))
                }
                fn visit_bool<E: de::Error>(self, v: bool) -> Result<Key, E> {
                    Ok(Key(Some(v.to_string())))
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
                    Ok(Key(Some(v.to_string())))
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
                    Ok(Key(Some(v.to_string())))
                }
                fn visit_f64<E: de::Error>(self, v: f64) -> Result<Key, E> {
                    Ok(Key(Some(v.to_string())))
                }
                fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
                    Ok(Key(None))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Key, A::Error> {
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    Ok(Key(None))
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
                    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                    Ok(Key(None))
                }
            }
            d.deserialize_any(KeyVisitor)
        }
    }
}

/// Reads and parses a YAML file.
pub fn read_yaml<T: DeserializeOwned>(file: &Path) -> Result<T, InputError> {
    let text = read_text(file)?;
    parse_yaml(file, &text)
}

/// Reads a UTF-8 text file, naming the file in any error.
pub fn read_text(file: &Path) -> Result<String, InputError> {
    let bytes = std::fs::read(file).map_err(|e| InputError::file(file, e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| {
        InputError::file(
            file,
            format!(
                "not valid UTF-8 (first bad byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// The YAML parser appends ` at line N column M`; the position is already in front.
fn strip_location_suffix(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// The YAML parser starts nested errors with its own, coarser path (`scope: unknown field`);
/// the field is already named in front, more precisely.
fn strip_path_prefix<'m>(message: &'m str, field: &str) -> &'m str {
    match message.split_once(": ") {
        Some((prefix, rest)) if !prefix.contains(' ') && field.starts_with(prefix) => rest,
        _ => message,
    }
}

/// Deserializes a string through `T::try_from` inside the string's own visit. The YAML
/// parser then marks an error with the value's own line and column; with
/// `#[serde(try_from = "String")]` the check runs after the value is read, and a scalar
/// field's error points at the start of its enclosing mapping instead.
pub struct ValidatedStr<T>(pub std::marker::PhantomData<T>);

impl<T: TryFrom<String, Error = String>> serde::de::Visitor<'_> for ValidatedStr<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<T, E> {
        T::try_from(value.to_string()).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[allow(dead_code)]
        name: String,
        #[serde(default)]
        #[allow(dead_code)]
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[allow(dead_code)]
        count: u32,
    }

    #[test]
    fn wrong_type_names_file_line_and_field() {
        let err = parse_yaml::<Sample>(Path::new("x.yaml"), "name: a\ninner:\n  count: three\n")
            .unwrap_err();
        assert_eq!(err.line, Some(3));
        assert_eq!(err.field, "inner.count");
        let shown = err.to_string();
        assert!(shown.starts_with("x.yaml:3:"), "{shown}");
        assert!(
            shown.contains("inner.count: invalid type: string \"three\""),
            "{shown}"
        );
    }

    #[test]
    fn unknown_key_is_an_error() {
        let err = parse_yaml::<Sample>(Path::new("x.yaml"), "name: a\nnmae: b\n").unwrap_err();
        assert!(err.message.contains("unknown field `nmae`"), "{err}");
        assert_eq!(err.line, Some(2));
    }

    #[test]
    fn a_byte_order_mark_is_not_a_second_document() {
        let err =
            parse_yaml::<Sample>(Path::new("x.yaml"), "\u{feff}name: a\nnmae: b\n").unwrap_err();
        assert!(err.message.contains("unknown field `nmae`"), "{err}");
        assert_eq!(err.line, Some(2));
    }

    #[test]
    fn a_file_of_only_comments_is_empty() {
        let err = parse_yaml::<Sample>(Path::new("x.yaml"), "# name: a\n\n  # more\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.yaml: the file is empty (it holds only comments)"
        );
    }

    #[test]
    fn locate_finds_nested_keys_list_items_and_dotted_keys() {
        let text = "name: a\nrules:\n  vpc.az_count:\n    min: 3\nroles:\n  - x: 1\n  - x: 2\n    policies: [a, b]\n";
        assert_eq!(locate_yaml(text, "rules.vpc.az_count.min"), Some((4, 10)));
        assert_eq!(locate_yaml(text, "roles[1].policies[1]"), Some((8, 19)));
        // Absent: the deepest present parent.
        assert_eq!(locate_yaml(text, "roles[1].template"), Some((7, 5)));
        assert_eq!(locate_yaml(text, "nothing.here"), None);
    }

    #[test]
    fn locate_json_finds_statement_fields_even_in_a_single_statement_object() {
        let text = "{\n \"Statement\": {\n  \"Effect\": \"Allow\",\n  \"Action\": 42\n }\n}";
        assert_eq!(
            locate_json(text, "Statement[0].Action").map(|p| p.0),
            Some(4)
        );
        let list = "{\"Statement\": [\n{},\n{\"Action\":\n 7}]}";
        assert_eq!(
            locate_json(list, "Statement[1].Action").map(|p| p.0),
            Some(4)
        );
    }

    #[test]
    fn located_in_keeps_an_existing_position_and_fills_a_missing_one() {
        let text = "name: a\ninner:\n  count: 0\n";
        let err = InputError {
            field: "inner.count".into(),
            ..InputError::file(Path::new("x.yaml"), "must be at least 1")
        }
        .located_in(text);
        assert_eq!(
            err.to_string(),
            "x.yaml:3:10: inner.count: must be at least 1"
        );
    }

    #[test]
    fn empty_file_is_an_error() {
        let err = parse_yaml::<Sample>(Path::new("x.yaml"), "  \n").unwrap_err();
        assert_eq!(err.to_string(), "x.yaml: the file is empty");
    }
}
