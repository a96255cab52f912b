//! Reading user-supplied YAML files (config, rule packs) into typed structs, with errors
//! that name the file, the line and column, and the field, as
//! `rules/union-byoc.yaml:12:5: rules.vpc.az_count.min_azs: invalid type: …`.

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
    if text.trim().is_empty() {
        return Err(InputError::file(file, "the file is empty"));
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
    fn empty_file_is_an_error() {
        let err = parse_yaml::<Sample>(Path::new("x.yaml"), "  \n").unwrap_err();
        assert_eq!(err.to_string(), "x.yaml: the file is empty");
    }
}
