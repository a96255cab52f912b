//! What can go wrong reading a template, with the field path and, where it
//! can be found, the line.

use std::fmt;

use serde::Serialize;

/// The kind of a template error, for callers that react differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TemplateErrorKind {
    /// The text is not YAML (or is too deeply nested or repetitive).
    Syntax,
    /// The template's shape is wrong, e.g. `Resources` is not a mapping.
    Structure,
    /// A `!Tag` or `Fn::` function CloudFormation does not have.
    UnknownTag,
    /// A CloudFormation function or attribute this reader does not resolve.
    Unsupported,
    /// A parameter without a value, default, or "unknown" mark.
    MissingParameter,
    /// `!Ref`, `!GetAtt` or `${...}` names nothing in the template.
    MissingReference,
    /// References that loop (or chain too deeply).
    CyclicReference,
    /// A resolved policy document is not a valid policy.
    Policy,
}

/// Why a template could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TemplateError {
    /// What kind of problem it is.
    pub kind: TemplateErrorKind,
    /// The dotted path of the field, e.g. `Resources.Role.Properties.RoleName`;
    /// empty for syntax errors.
    pub path: String,
    /// 1-based line, where it could be found.
    pub line: Option<usize>,
    /// 1-based column, where it could be found.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{line}:{column}: ")?,
            (Some(line), None) => write!(f, "{line}: ")?,
            _ => {}
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

pub(super) fn syntax_error(err: &serde_yaml_ng::Error) -> TemplateError {
    let location = err.location();
    let mut message = err.to_string();
    if location.is_some() {
        if let Some(cut) = message.rfind(" at line ") {
            message.truncate(cut);
        }
    }
    TemplateError {
        kind: TemplateErrorKind::Syntax,
        path: String::new(),
        line: location.as_ref().map(|l| l.line()),
        column: location.as_ref().map(|l| l.column()),
        message: format!("not valid YAML: {message}"),
    }
}

/// The 1-based line and column of the first occurrence of `needle` that is
/// not part of a longer name, used to point an error at the template text.
pub(super) fn locate(text: &str, needle: &str) -> Option<(usize, usize)> {
    if needle.is_empty() {
        return None;
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut search_from = 0;
    while let Some(found) = text.get(search_from..).and_then(|t| t.find(needle)) {
        let start = search_from + found;
        let end = start + needle.len();
        let before = &text[..start];
        let after = &text[end..];
        // `AWS::Region` is one name: `Region` alone must not match inside it.
        let before_ok = !before.ends_with(is_word) && !before.ends_with("::");
        let after_ok = !after.starts_with(is_word) && !after.starts_with("::");
        if before_ok && after_ok {
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let line = before.matches('\n').count() + 1;
            let column = before[line_start..].chars().count() + 1;
            return Some((line, column));
        }
        search_from = end;
    }
    None
}
