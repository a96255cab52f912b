//! The IAM policy document model: parsing and validating policy JSON.
//!
//! This module owns the shape of a policy: its `Version`, its statements and,
//! in each statement, `Sid`, `Effect`, `Principal`/`NotPrincipal`,
//! `Action`/`NotAction`, `Resource`/`NotResource` and `Condition`, with every
//! alternative spelling IAM accepts (a string or a list, one statement or a
//! list of them) reduced to one representation. It also owns the decoding of
//! the URL-encoded documents IAM's API returns.
//!
//! It does not decide what a policy grants; that is [`crate::iam::grants`]
//! and [`crate::iam::trust`]. Parsing is strict where IAM is strict, so a
//! mistyped expected policy fails loudly instead of silently granting
//! nothing, and every error names the statement and the field.
//!
//! Condition handling, kept simple on purpose:
//! - operator names (`StringEquals`, `ForAnyValue:StringLike`, ...) keep their
//!   case and compare exactly;
//! - condition keys (`sts:ExternalId`) compare case-insensitively, as IAM
//!   does, while keeping their spelling for messages;
//! - values keep their case and compare exactly; booleans and numbers are
//!   turned into their JSON text (`true`, `42`), so `true` and `"true"` are
//!   the same value.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// The text that stands for a value the caller could not supply, such as an
/// ExternalId that is a secret kept out of the configuration.
///
/// [`crate::iam::template`] writes [`unknown_value`] where such a parameter is
/// used; [`crate::iam::trust`] treats a condition value containing it as
/// "any value, but the condition must exist", and [`crate::iam::pattern`]
/// treats it inside an ARN as "some fixed string".
pub const UNKNOWN_VALUE_PREFIX: &str = "${vpc-auditor:unknown:";

/// The placeholder for the unknown value of the parameter called `name`.
pub fn unknown_value(name: &str) -> String {
    format!("{UNKNOWN_VALUE_PREFIX}{name}}}")
}

/// True when `value` contains a placeholder made by [`unknown_value`].
pub fn contains_unknown(value: &str) -> bool {
    value.contains(UNKNOWN_VALUE_PREFIX)
}

/// Replaces every placeholder made by [`unknown_value`] with `*`, so that the
/// unknown part matches anything.
pub fn unknown_as_wildcard(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find(UNKNOWN_VALUE_PREFIX) {
        out.push_str(&rest[..start]);
        let after = &rest[start + UNKNOWN_VALUE_PREFIX.len()..];
        match after.find('}') {
            Some(end) => {
                out.push('*');
                rest = &after[end + 1..];
            }
            None => {
                // Not a placeholder we made; keep the text as it is.
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Why a policy document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The text is not JSON (or nests too deeply to be read safely).
    #[error("policy is not valid JSON: {message}")]
    Syntax {
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// serde_json's description, which includes the position.
        message: String,
    },
    /// A problem with the document itself, outside any statement.
    #[error("{field}: {problem}")]
    Document {
        /// The top-level field, e.g. `Version`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A problem inside one statement.
    #[error("{}: {field}: {problem}", statement_label(*index, sid.as_deref()))]
    Statement {
        /// 0-based position of the statement in the `Statement` list.
        index: usize,
        /// The statement's `Sid`, when it has a readable one.
        sid: Option<String>,
        /// The field inside the statement, e.g. `Action` or `Action[2]`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The URL-encoded form IAM returns could not be decoded.
    #[error("URL-encoded policy document: {problem}")]
    Encoding {
        /// What is wrong with the encoding.
        problem: String,
    },
}

impl PolicyError {
    /// The path of the offending field inside the document, such as
    /// `Statement[2].Resource`, for callers that embed a policy in a larger
    /// file and want to print the full path.
    pub fn field_path(&self) -> String {
        match self {
            PolicyError::Syntax { .. } | PolicyError::Encoding { .. } => String::new(),
            PolicyError::Document { field, .. } => field.clone(),
            PolicyError::Statement { index, field, .. } => format!("Statement[{index}].{field}"),
        }
    }

    /// The problem without its location, for callers that print their own.
    pub fn problem(&self) -> String {
        match self {
            PolicyError::Syntax { message, .. } => message.clone(),
            PolicyError::Document { problem, .. } | PolicyError::Encoding { problem } => {
                problem.clone()
            }
            PolicyError::Statement { sid, problem, .. } => match sid {
                Some(sid) => format!("{problem} (Sid {sid:?})"),
                None => problem.clone(),
            },
        }
    }
}

fn statement_label(index: usize, sid: Option<&str>) -> String {
    match sid {
        Some(sid) => format!("Statement[{index}] (Sid {sid:?})"),
        None => format!("Statement[{index}]"),
    }
}

/// Decodes a policy document as IAM's API returns it (RFC 3986
/// percent-encoding), before it is given to [`PolicyDocument::parse`].
///
/// `+` is left as `+`: IAM encodes a space as `%20`. A `%` not followed by two
/// hex digits, or bytes that are not UTF-8, are errors rather than being
/// passed through, because a half-decoded policy would be compared wrongly.
pub fn decode_url_encoded(text: &str) -> Result<String, PolicyError> {
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex_pair = bytes.get(index + 1..index + 3);
            let valid = hex_pair.is_some_and(|pair| pair.iter().all(u8::is_ascii_hexdigit));
            if !valid {
                return Err(PolicyError::Encoding {
                    problem: format!(
                        "\"%\" at byte {index} is not followed by two hexadecimal digits"
                    ),
                });
            }
            index += 3;
        } else {
            index += 1;
        }
    }
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|err| PolicyError::Encoding {
            problem: format!("the decoded bytes are not UTF-8 ({err})"),
        })
}

/// A parsed, validated IAM policy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyDocument {
    /// The `Version` element (`2012-10-17` or `2008-10-17`), if present.
    pub version: Option<String>,
    /// The optional `Id` element.
    pub id: Option<String>,
    /// The statements, in document order.
    pub statements: Vec<Statement>,
}

/// Whether a statement allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Effect {
    /// `"Effect": "Allow"`.
    Allow,
    /// `"Effect": "Deny"`; overrides any Allow it matches.
    Deny,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        })
    }
}

/// The patterns a statement applies to: `Action` or `NotAction`, `Resource`
/// or `NotResource`. A single string is stored as a one-element list, since
/// IAM gives both spellings the same meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum PatternSet {
    /// `Action`/`Resource`: exactly the strings matching one of the patterns.
    Only(Vec<String>),
    /// `NotAction`/`NotResource`: every string matching none of the patterns.
    AllExcept(Vec<String>),
}

impl PatternSet {
    /// The patterns as written, whichever way they apply.
    #[cfg(test)]
    pub fn patterns(&self) -> &[String] {
        match self {
            PatternSet::Only(patterns) | PatternSet::AllExcept(patterns) => patterns,
        }
    }
}

/// The kind of a principal, i.e. the key of the `Principal` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum PrincipalKind {
    /// `"AWS"`: accounts, roles, users.
    Aws,
    /// `"Federated"`: OIDC and SAML providers.
    Federated,
    /// `"Service"`: AWS service principals such as `ec2.amazonaws.com`.
    Service,
    /// `"CanonicalUser"`: S3 canonical user ids.
    CanonicalUser,
}

impl PrincipalKind {
    /// The key as IAM spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Aws => "AWS",
            PrincipalKind::Federated => "Federated",
            PrincipalKind::Service => "Service",
            PrincipalKind::CanonicalUser => "CanonicalUser",
        }
    }

    fn from_key(key: &str) -> Option<Self> {
        match key {
            "AWS" => Some(PrincipalKind::Aws),
            "Federated" => Some(PrincipalKind::Federated),
            "Service" => Some(PrincipalKind::Service),
            "CanonicalUser" => Some(PrincipalKind::CanonicalUser),
            _ => None,
        }
    }
}

impl fmt::Display for PrincipalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One principal as written, e.g. `AWS` `arn:aws:iam::479331373192:root`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Principal {
    /// Which key of the `Principal` object it was under.
    pub kind: PrincipalKind,
    /// The value as written (an ARN, an account id, a service name, `*`).
    pub id: String,
}

/// The principals a statement names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Principals {
    /// `"Principal": "*"`: everyone, including anonymous callers.
    Everyone,
    /// `"Principal": {"AWS": ..., "Service": ...}`.
    Listed(BTreeSet<Principal>),
}

/// A statement's `Principal` or `NotPrincipal` element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum PrincipalScope {
    /// `Principal`: the statement applies to these principals.
    Only(Principals),
    /// `NotPrincipal`: the statement applies to everyone but these.
    AllExcept(Principals),
}

/// A condition key such as `sts:ExternalId`, which IAM compares
/// case-insensitively. The spelling is kept for messages; equality and order
/// ignore case.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct ConditionKey(String);

impl ConditionKey {
    /// Wraps a key name.
    pub fn new(name: impl Into<String>) -> Self {
        ConditionKey(name.into())
    }

    /// The key as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key in lower case, the form IAM compares.
    pub fn folded(&self) -> String {
        self.0.chars().flat_map(char::to_lowercase).collect()
    }
}

impl PartialEq for ConditionKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ConditionKey {}

impl PartialOrd for ConditionKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ConditionKey {
    fn cmp(&self, other: &Self) -> Ordering {
        let a = self.0.chars().flat_map(char::to_lowercase);
        let b = other.0.chars().flat_map(char::to_lowercase);
        a.cmp(b)
    }
}

impl std::hash::Hash for ConditionKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.folded().hash(state);
    }
}

impl fmt::Display for ConditionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One condition test: an operator applied to one key with a set of values.
///
/// Values are a set because IAM ORs them: `["a", "b"]` and `["b", "a"]` are
/// the same test.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ConditionClause {
    /// The operator as written, e.g. `StringEquals` or `ForAnyValue:StringLike`.
    pub operator: String,
    /// The key, compared case-insensitively.
    pub key: ConditionKey,
    /// The values, as strings.
    pub values: BTreeSet<String>,
}

/// A statement's `Condition` block: every clause must hold (IAM ANDs them).
///
/// Stored as a set of clauses so that blocks written in a different order
/// compare equal, and so "no stricter than" is a subset test.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Conditions(BTreeSet<ConditionClause>);

impl Conditions {
    /// No conditions: the statement applies unconditionally.
    pub fn none() -> Self {
        Conditions::default()
    }

    /// True when there are no clauses.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The clauses, ordered by operator then key.
    pub fn clauses(&self) -> impl Iterator<Item = &ConditionClause> {
        self.0.iter()
    }

    /// True when every clause of `self` is also in `other`: a statement
    /// conditioned on `self` applies whenever one conditioned on `other` does.
    pub fn is_subset_of(&self, other: &Conditions) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The block that holds exactly when `self` or `other` holds, when one
    /// block can say it: both have the same clauses but for one operator and
    /// key whose values differ, and that operator ORs its values, so the
    /// values can be joined. IAM ORs statements, so two Allows that differ
    /// only there grant what one Allow with both values grants.
    ///
    /// Operators that do not OR their values are never joined: the negated
    /// ones (`StringNotEquals k [a]` or `[b]` is not `StringNotEquals k [a, b]`)
    /// and `ForAllValues:` ones.
    pub fn or_merge(&self, other: &Conditions) -> Option<Conditions> {
        if self.0.len() != other.0.len() {
            return None;
        }
        let mut only_self = self.0.difference(&other.0);
        let mut only_other = other.0.difference(&self.0);
        let (a, b) = (only_self.next()?, only_other.next()?);
        if only_self.next().is_some() || only_other.next().is_some() {
            return None;
        }
        let operator = a.operator.to_ascii_lowercase();
        if a.operator != b.operator
            || a.key != b.key
            || operator.contains("not")
            || operator.starts_with("forallvalues:")
        {
            return None;
        }
        let mut clauses = self.0.clone();
        clauses.remove(a);
        clauses.insert(ConditionClause {
            operator: a.operator.clone(),
            key: a.key.clone(),
            values: a.values.union(&b.values).cloned().collect(),
        });
        Some(Conditions(clauses))
    }

    /// The clause for `operator` and `key`, if any.
    pub fn get(&self, operator: &str, key: &str) -> Option<&ConditionClause> {
        let key = ConditionKey::new(key);
        self.0
            .iter()
            .find(|clause| clause.operator == operator && clause.key == key)
    }
}

impl fmt::Display for Conditions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, clause) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(" and ")?;
            }
            let values: Vec<&str> = clause.values.iter().map(String::as_str).collect();
            write!(
                f,
                "{} {} [{}]",
                clause.operator,
                clause.key,
                values.join(", ")
            )?;
        }
        Ok(())
    }
}

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    /// The `Sid`, if given.
    pub sid: Option<String>,
    /// Allow or Deny.
    pub effect: Effect,
    /// `Principal`/`NotPrincipal`; present in trust and resource policies.
    pub principal: Option<PrincipalScope>,
    /// `Action`/`NotAction`, as written (case kept).
    pub action: PatternSet,
    /// `Resource`/`NotResource`; `None` only when the statement names a
    /// principal (trust policies have no resource).
    pub resource: Option<PatternSet>,
    /// The `Condition` block; empty when absent.
    pub conditions: Conditions,
}

const STATEMENT_KEYS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

impl PolicyDocument {
    /// Parses a policy document from JSON text.
    pub fn parse(text: &str) -> Result<PolicyDocument, PolicyError> {
        let syntax = |err: serde_json::Error| {
            let mut message = err.to_string();
            if let Some(cut) = message.rfind(" at line ") {
                message.truncate(cut);
            }
            PolicyError::Syntax {
                line: err.line(),
                column: err.column(),
                message,
            }
        };
        let value: Value = serde_json::from_str(text).map_err(syntax)?;
        // serde_json keeps the last of two equal keys; IAM documents must not be ambiguous.
        // A walk that keeps no paths finds them; only then is the key's path worked out.
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let unique = serde::de::DeserializeSeed::deserialize(duplicates::Quick, &mut deserializer)
            .unwrap_or(false);
        let mut deserializer = serde_json::Deserializer::from_str(text);
        if unique {
            return PolicyDocument::from_json(&value);
        }
        serde::de::DeserializeSeed::deserialize(
            duplicates::Unique(String::new()),
            &mut deserializer,
        )
        .map_err(|err| {
            let message = err.to_string();
            match message.split_once(duplicates::SEPARATOR) {
                Some((field, rest)) => PolicyError::Document {
                    field: field.to_string(),
                    problem: rest
                        .rfind(" at line ")
                        .map_or(rest, |cut| &rest[..cut])
                        .to_string(),
                },
                None => syntax(err),
            }
        })?;
        PolicyDocument::from_json(&value)
    }

    /// Parses a policy document in the URL-encoded form IAM's API returns.
    #[cfg(test)]
    pub fn parse_url_encoded(text: &str) -> Result<PolicyDocument, PolicyError> {
        PolicyDocument::parse(&decode_url_encoded(text)?)
    }

    /// Reads a policy document from an already-parsed JSON value, e.g. one
    /// resolved out of a CloudFormation template.
    pub fn from_json(value: &Value) -> Result<PolicyDocument, PolicyError> {
        let object = value.as_object().ok_or_else(|| PolicyError::Document {
            field: "(document)".to_string(),
            problem: format!("expected an object, found {}", describe(value)),
        })?;
        for key in object.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(PolicyError::Document {
                    field: key.clone(),
                    problem: "unknown policy element (expected Version, Id or Statement)"
                        .to_string(),
                });
            }
        }
        let version = match object.get("Version") {
            None => None,
            Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => Some(v.clone()),
            Some(Value::String(v)) => {
                return Err(PolicyError::Document {
                    field: "Version".to_string(),
                    problem: format!("expected \"2012-10-17\" or \"2008-10-17\", found {v:?}"),
                })
            }
            Some(other) => {
                return Err(PolicyError::Document {
                    field: "Version".to_string(),
                    problem: format!("expected a string, found {}", describe(other)),
                })
            }
        };
        let id = match object.get("Id") {
            None => None,
            Some(Value::String(id)) => Some(id.clone()),
            Some(other) => {
                return Err(PolicyError::Document {
                    field: "Id".to_string(),
                    problem: format!("expected a string, found {}", describe(other)),
                })
            }
        };
        let raw_statements: Vec<&Value> = match object.get("Statement") {
            None => {
                return Err(PolicyError::Document {
                    field: "Statement".to_string(),
                    problem: "missing: a policy needs at least one statement".to_string(),
                })
            }
            Some(Value::Array(list)) => list.iter().collect(),
            Some(single @ Value::Object(_)) => vec![single],
            Some(other) => {
                return Err(PolicyError::Document {
                    field: "Statement".to_string(),
                    problem: format!(
                        "expected an object or a list of objects, found {}",
                        describe(other)
                    ),
                })
            }
        };
        let statements = raw_statements
            .into_iter()
            .enumerate()
            .map(|(index, raw)| parse_statement(index, raw))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PolicyDocument {
            version,
            id,
            statements,
        })
    }

    /// True when some statement names a principal, i.e. this is a trust (or
    /// resource) policy rather than an identity policy.
    #[cfg(test)]
    pub fn has_principals(&self) -> bool {
        self.statements.iter().any(|s| s.principal.is_some())
    }
}

/// Builds statement errors with the statement's index and Sid filled in.
struct StatementContext {
    index: usize,
    sid: Option<String>,
}

impl StatementContext {
    fn error(&self, field: impl Into<String>, problem: impl Into<String>) -> PolicyError {
        PolicyError::Statement {
            index: self.index,
            sid: self.sid.clone(),
            field: field.into(),
            problem: problem.into(),
        }
    }
}

fn parse_statement(index: usize, raw: &Value) -> Result<Statement, PolicyError> {
    let mut context = StatementContext { index, sid: None };
    let object = raw.as_object().ok_or_else(|| {
        context.error(
            "(statement)",
            format!("expected an object, found {}", describe(raw)),
        )
    })?;

    let sid = match object.get("Sid") {
        None => None,
        Some(Value::String(sid)) => Some(sid.clone()),
        Some(other) => {
            return Err(context.error(
                "Sid",
                format!("expected a string, found {}", describe(other)),
            ))
        }
    };
    context.sid = sid.clone();

    for key in object.keys() {
        if !STATEMENT_KEYS.contains(&key.as_str()) {
            return Err(context.error(
                key.clone(),
                format!(
                    "unknown statement element (expected one of {})",
                    STATEMENT_KEYS.join(", ")
                ),
            ));
        }
    }

    let effect = match object.get("Effect") {
        None => return Err(context.error("Effect", "missing (expected \"Allow\" or \"Deny\")")),
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(Value::String(e)) => {
            return Err(context.error(
                "Effect",
                format!("expected \"Allow\" or \"Deny\", found {e:?}"),
            ))
        }
        Some(other) => {
            return Err(context.error(
                "Effect",
                format!("expected a string, found {}", describe(other)),
            ))
        }
    };

    let principal = match (object.get("Principal"), object.get("NotPrincipal")) {
        (Some(_), Some(_)) => {
            return Err(context.error(
                "NotPrincipal",
                "a statement may have Principal or NotPrincipal, not both",
            ))
        }
        (Some(p), None) => Some(PrincipalScope::Only(parse_principals(
            &context,
            "Principal",
            p,
        )?)),
        (None, Some(p)) => Some(PrincipalScope::AllExcept(parse_principals(
            &context,
            "NotPrincipal",
            p,
        )?)),
        (None, None) => None,
    };

    let action = match (object.get("Action"), object.get("NotAction")) {
        (Some(_), Some(_)) => {
            return Err(context.error(
                "NotAction",
                "a statement may have Action or NotAction, not both",
            ))
        }
        (None, None) => {
            return Err(context.error("Action", "missing (a statement needs Action or NotAction)"))
        }
        (Some(a), None) => PatternSet::Only(parse_actions(&context, "Action", a)?),
        (None, Some(a)) => PatternSet::AllExcept(parse_actions(&context, "NotAction", a)?),
    };

    let resource = match (object.get("Resource"), object.get("NotResource")) {
        (Some(_), Some(_)) => {
            return Err(context.error(
                "NotResource",
                "a statement may have Resource or NotResource, not both",
            ))
        }
        (None, None) if principal.is_some() => None,
        (None, None) => return Err(context.error(
            "Resource",
            "missing (only a statement with a Principal, as in a trust policy, may omit Resource)",
        )),
        (Some(r), None) => Some(PatternSet::Only(parse_resources(&context, "Resource", r)?)),
        (None, Some(r)) => Some(PatternSet::AllExcept(parse_resources(
            &context,
            "NotResource",
            r,
        )?)),
    };

    let conditions = match object.get("Condition") {
        None => Conditions::none(),
        Some(c) => parse_conditions(&context, c)?,
    };

    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        conditions,
    })
}

/// Reads a value that IAM allows as a string or a list of strings.
fn string_or_list(
    context: &StatementContext,
    field: &str,
    value: &Value,
) -> Result<Vec<String>, PolicyError> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => {
            if items.is_empty() {
                return Err(context.error(field, "must not be an empty list"));
            }
            items
                .iter()
                .enumerate()
                .map(|(n, item)| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(context.error(
                        format!("{field}[{n}]"),
                        format!("expected a string, found {}", describe(other)),
                    )),
                })
                .collect()
        }
        other => Err(context.error(
            field,
            format!(
                "expected a string or a list of strings, found {}",
                describe(other)
            ),
        )),
    }
}

/// Field name for an entry: `Action` for a lone string, `Action[2]` in a list.
fn entry_field(field: &str, value: &Value, n: usize) -> String {
    if value.is_array() {
        format!("{field}[{n}]")
    } else {
        field.to_string()
    }
}

fn parse_actions(
    context: &StatementContext,
    field: &str,
    value: &Value,
) -> Result<Vec<String>, PolicyError> {
    let actions = string_or_list(context, field, value)?;
    for (n, action) in actions.iter().enumerate() {
        if action == "*" {
            continue;
        }
        let valid = match action.split_once(':') {
            Some((service, name)) => {
                !service.is_empty()
                    && service
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !name.is_empty()
                    && !name.chars().any(|c| c.is_whitespace() || c == ':')
            }
            None => false,
        };
        if !valid {
            return Err(context.error(
                entry_field(field, value, n),
                format!("{action:?} is not an action: expected \"*\" or \"service:action\" such as \"ec2:DescribeVpcs\""),
            ));
        }
    }
    Ok(actions)
}

fn parse_resources(
    context: &StatementContext,
    field: &str,
    value: &Value,
) -> Result<Vec<String>, PolicyError> {
    let resources = string_or_list(context, field, value)?;
    for (n, resource) in resources.iter().enumerate() {
        if resource == "*" || resource.starts_with("arn:") || contains_unknown(resource) {
            continue;
        }
        return Err(context.error(
            entry_field(field, value, n),
            format!(
                "{resource:?} is not a resource: expected \"*\" or an ARN starting with \"arn:\""
            ),
        ));
    }
    Ok(resources)
}

fn parse_principals(
    context: &StatementContext,
    field: &str,
    value: &Value,
) -> Result<Principals, PolicyError> {
    match value {
        Value::String(s) if s == "*" => Ok(Principals::Everyone),
        Value::Object(map) => {
            if map.is_empty() {
                return Err(context.error(field, "must name at least one principal"));
            }
            let mut principals = BTreeSet::new();
            for (key, ids) in map {
                let kind = PrincipalKind::from_key(key).ok_or_else(|| {
                    context.error(
                        format!("{field}.{key}"),
                        "unknown principal type (expected AWS, Federated, Service or CanonicalUser)",
                    )
                })?;
                for id in string_or_list(context, &format!("{field}.{key}"), ids)? {
                    if id.is_empty() {
                        return Err(
                            context.error(format!("{field}.{key}"), "principal must not be empty")
                        );
                    }
                    principals.insert(Principal { kind, id });
                }
            }
            Ok(Principals::Listed(principals))
        }
        other => Err(context.error(
            field,
            format!(
                "expected \"*\" or an object such as {{\"AWS\": \"...\"}}, found {}",
                describe(other)
            ),
        )),
    }
}

fn condition_value(
    context: &StatementContext,
    field: &str,
    value: &Value,
) -> Result<String, PolicyError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(context.error(
            field,
            format!(
                "expected a string, boolean or number, found {}",
                describe(other)
            ),
        )),
    }
}

fn parse_conditions(context: &StatementContext, value: &Value) -> Result<Conditions, PolicyError> {
    let operators = value.as_object().ok_or_else(|| {
        context.error(
            "Condition",
            format!("expected an object of operators, found {}", describe(value)),
        )
    })?;
    let mut clauses = BTreeSet::new();
    for (operator, keys) in operators {
        let field = format!("Condition.{operator}");
        if operator.is_empty() {
            return Err(context.error(field, "operator name must not be empty"));
        }
        if !is_condition_operator(operator) {
            return Err(context.error(
                field,
                format!("unknown condition operator {operator:?} (IAM would refuse the policy)"),
            ));
        }
        let keys = keys.as_object().ok_or_else(|| {
            context.error(
                field.as_str(),
                format!(
                    "expected an object of condition keys, found {}",
                    describe(keys)
                ),
            )
        })?;
        let mut seen: BTreeSet<ConditionKey> = BTreeSet::new();
        for (key, raw_values) in keys {
            let key_field = format!("{field}.{key}");
            let condition_key = ConditionKey::new(key.clone());
            if !seen.insert(condition_key.clone()) {
                return Err(context.error(
                    key_field,
                    "the key appears twice under this operator (condition keys are case-insensitive)",
                ));
            }
            let values: BTreeSet<String> = match raw_values {
                Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(n, item)| condition_value(context, &format!("{key_field}[{n}]"), item))
                    .collect::<Result<_, _>>()?,
                single => std::iter::once(condition_value(context, &key_field, single)?).collect(),
            };
            clauses.insert(ConditionClause {
                operator: operator.clone(),
                key: condition_key,
                values,
            });
        }
    }
    Ok(Conditions(clauses))
}

/// The condition operators IAM knows, without the `ForAllValues:`/`ForAnyValue:` prefixes
/// and the `IfExists` suffix.
const CONDITION_OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Null",
];

/// True for an operator IAM accepts: a known one, optionally set-qualified
/// (`ForAnyValue:StringLike`) and, except `Null`, with `IfExists`. IAM matches operator
/// names without regard to case.
fn is_condition_operator(operator: &str) -> bool {
    let lower = operator.to_ascii_lowercase();
    let base = ["forallvalues:", "foranyvalue:"]
        .iter()
        .find_map(|prefix| lower.strip_prefix(prefix))
        .unwrap_or(&lower);
    let (base, if_exists) = match base.strip_suffix("ifexists") {
        Some(base) => (base, true),
        None => (base, false),
    };
    CONDITION_OPERATORS
        .iter()
        .any(|known| known.eq_ignore_ascii_case(base) && !(if_exists && *known == "Null"))
}

mod duplicates {
    //! Walks a JSON document and fails at the first object with a key twice, naming the
    //! key's path (`Statement[0].Effect`) before [`SEPARATOR`].

    use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use std::collections::HashSet;
    use std::fmt;

    pub(super) const SEPARATOR: &str = "\u{1}";

    /// True when no object has a key twice; keys are borrowed from the text where it has
    /// no escapes, and no path is kept.
    pub(super) struct Quick;

    impl<'de> DeserializeSeed<'de> for Quick {
        type Value = bool;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_any(self)
        }
    }

    /// One object key, borrowed when it can be.
    struct Key<'de>(std::borrow::Cow<'de, str>);

    impl<'de> de::Deserialize<'de> for Key<'de> {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct KeyVisitor;
            impl<'de> Visitor<'de> for KeyVisitor {
                type Value = Key<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a key")
                }
                fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                    Ok(Key(std::borrow::Cow::Borrowed(v)))
                }
                fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                    Ok(Key(std::borrow::Cow::Owned(v.to_string())))
                }
            }
            d.deserialize_str(KeyVisitor)
        }
    }

    impl<'de> Visitor<'de> for Quick {
        type Value = bool;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
            Ok(true)
        }
        fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
            Ok(true)
        }
        fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
            Ok(true)
        }
        fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
            Ok(true)
        }
        fn visit_str<E>(self, _: &str) -> Result<bool, E> {
            Ok(true)
        }
        fn visit_unit<E>(self) -> Result<bool, E> {
            Ok(true)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            let mut unique = true;
            while let Some(ok) = seq.next_element_seed(Quick)? {
                unique &= ok;
            }
            Ok(unique)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            // Objects are small: a list is searched until it is long, then a set.
            let mut seen: Vec<std::borrow::Cow<'de, str>> = Vec::new();
            let mut many: HashSet<std::borrow::Cow<'de, str>> = HashSet::new();
            let mut unique = true;
            while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                if seen.len() < 16 {
                    unique &= !seen.contains(&key);
                    seen.push(key);
                } else {
                    if many.is_empty() {
                        many.extend(seen.iter().cloned());
                    }
                    unique &= many.insert(key);
                }
                unique &= map.next_value_seed(Quick)?;
            }
            Ok(unique)
        }
    }

    /// The path of the value being walked.
    pub(super) struct Unique(pub(super) String);

    impl<'de> DeserializeSeed<'de> for Unique {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Unique {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut index = 0;
            while seq
                .next_element_seed(Unique(format!("{}[{index}]", self.0)))?
                .is_some()
            {
                index += 1;
            }
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                let path = if self.0.is_empty() {
                    key.clone()
                } else {
                    format!("{}.{key}", self.0)
                };
                if !seen.insert(key.clone()) {
                    map.next_value::<IgnoredAny>()?;
                    return Err(de::Error::custom(format!(
                        "{path}{SEPARATOR}the key {key:?} appears twice; IAM documents must not be ambiguous"
                    )));
                }
                map.next_value_seed(Unique(path))?;
            }
            Ok(())
        }
    }
}

/// Names a JSON value's type for error messages: "found a number".
pub(crate) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> String {
        match PolicyDocument::parse(text) {
            Ok(doc) => panic!("expected an error, parsed {doc:?}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn a_key_given_twice_is_an_error_naming_its_path() {
        let err = PolicyDocument::parse(
            r#"{"Statement":[{"Effect":"Allow","Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.field_path(), "Statement[0].Effect");
        assert!(err.problem().contains("appears twice"), "{err}");
        // In a long object (past the short list the quick walk searches first), and with
        // an escaped key equal to a plain one.
        let keys: Vec<String> = (0..40).map(|n| format!(r#""k{n}":["v"]"#)).collect();
        let long = |extra: &str| {
            format!(
                r#"{{"Statement":[{{"Effect":"Allow","Action":"s3:*","Resource":"*",
                "Condition":{{"StringEquals":{{{},{extra}}}}}}}]}}"#,
                keys.join(",")
            )
        };
        let err = PolicyDocument::parse(&long(r#""k33":["w"]"#)).unwrap_err();
        assert_eq!(
            err.field_path(),
            "Statement[0].Condition.StringEquals.k33",
            "{err}"
        );
        assert!(PolicyDocument::parse(&long(r#""k40":["w"]"#)).is_ok());
        let err = PolicyDocument::parse(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","\u0045ffect":"Deny"}}"#,
        )
        .unwrap_err();
        assert!(err.problem().contains("appears twice"), "{err}");
    }

    #[test]
    fn an_unknown_condition_operator_is_an_error_but_qualified_ones_are_not() {
        let with = |op: &str| {
            format!(
                r#"{{"Statement":[{{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{{"{op}":{{"aws:SourceVpc":"vpc-1"}}}}}}]}}"#
            )
        };
        assert!(parse_err(&with("StringEqualz")).contains("unknown condition operator"));
        assert!(parse_err(&with("NullIfExists")).contains("unknown condition operator"));
        for op in [
            "StringEquals",
            "ForAnyValue:StringLike",
            "ForAllValues:StringNotEqualsIfExists",
            "ArnLikeIfExists",
            "stringequals",
            "Null",
        ] {
            assert!(PolicyDocument::parse(&with(op)).is_ok(), "{op}");
        }
    }

    #[test]
    fn a_syntax_error_states_its_position_once() {
        let err = PolicyDocument::parse("{\"Statement\": [").unwrap_err();
        assert!(matches!(err, PolicyError::Syntax { line: 1, .. }));
        assert!(!err.to_string().contains(" at line "), "{err}");
    }

    #[test]
    fn statement_may_be_a_single_object_or_a_list() {
        let single = PolicyDocument::parse(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#,
        )
        .unwrap();
        let list = PolicyDocument::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["*"]}]}"#,
        )
        .unwrap();
        assert_eq!(single, list);
        assert_eq!(single.version.as_deref(), Some("2012-10-17"));
    }

    #[test]
    fn not_action_and_not_resource_are_kept_as_exclusions() {
        let doc = PolicyDocument::parse(
            r#"{"Statement":{"Effect":"Deny","NotAction":"iam:*","NotResource":["arn:aws:s3:::x"]}}"#,
        )
        .unwrap();
        let s = &doc.statements[0];
        assert_eq!(s.effect, Effect::Deny);
        assert_eq!(s.action, PatternSet::AllExcept(vec!["iam:*".into()]));
        assert_eq!(
            s.resource,
            Some(PatternSet::AllExcept(vec!["arn:aws:s3:::x".into()]))
        );
    }

    #[test]
    fn principal_accepts_every_form() {
        let doc = PolicyDocument::parse(
            r#"{"Statement":[
              {"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"},
              {"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"},
              {"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::1:root","arn:aws:iam::2:role/x"],
                 "Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"},
              {"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::1:oidc-provider/oidc.eks.x"},
                 "Action":"sts:AssumeRoleWithWebIdentity"},
              {"Effect":"Deny","NotPrincipal":{"CanonicalUser":"abc"},"Action":"s3:*","Resource":"*"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(
            doc.statements[0].principal,
            Some(PrincipalScope::Only(Principals::Everyone))
        );
        match &doc.statements[2].principal {
            Some(PrincipalScope::Only(Principals::Listed(set))) => assert_eq!(set.len(), 3),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            doc.statements[4].principal,
            Some(PrincipalScope::AllExcept(_))
        ));
        assert!(doc.has_principals());
    }

    #[test]
    fn trust_statement_may_omit_resource_but_identity_statement_may_not() {
        let trust = PolicyDocument::parse(
            r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"1"},"Action":"sts:AssumeRole"}}"#,
        )
        .unwrap();
        assert_eq!(trust.statements[0].resource, None);
        let err = parse_err(r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject"}}"#);
        assert!(err.starts_with("Statement[0]: Resource: missing"), "{err}");
    }

    #[test]
    fn conditions_normalise_scalars_and_fold_key_case() {
        let doc = PolicyDocument::parse(
            r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"1"},"Action":"sts:AssumeRole",
               "Condition":{"StringEquals":{"STS:externalid":"abc"},"Bool":{"aws:MultiFactorAuthPresent":true},
                            "NumericLessThan":{"aws:MultiFactorAuthAge":[3600, "60"]}}}}"#,
        )
        .unwrap();
        let c = &doc.statements[0].conditions;
        let ext = c.get("StringEquals", "sts:ExternalId").unwrap();
        assert_eq!(ext.key.as_str(), "STS:externalid");
        assert!(
            c.get("stringequals", "sts:ExternalId").is_none(),
            "operators keep case"
        );
        assert_eq!(
            c.get("Bool", "aws:multifactorauthpresent").unwrap().values,
            BTreeSet::from(["true".to_string()])
        );
        assert_eq!(
            c.get("NumericLessThan", "aws:MultiFactorAuthAge")
                .unwrap()
                .values,
            BTreeSet::from(["3600".to_string(), "60".to_string()])
        );
    }

    #[test]
    fn condition_blocks_in_any_order_are_equal() {
        let a = PolicyDocument::parse(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*",
               "Condition":{"StringEquals":{"a:b":["1","2"],"c:d":"x"},"Bool":{"e:f":"true"}}}}"#,
        )
        .unwrap();
        let b = PolicyDocument::parse(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*",
               "Condition":{"Bool":{"E:F":true},"StringEquals":{"c:d":["x"],"A:B":["2","1"]}}}}"#,
        )
        .unwrap();
        assert_eq!(a.statements[0].conditions, b.statements[0].conditions);
    }

    #[test]
    fn duplicate_condition_key_differing_only_in_case_is_rejected() {
        let err = parse_err(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*",
               "Condition":{"StringEquals":{"a:b":"1","A:B":"2"}}}}"#,
        );
        assert!(err.contains("Condition.StringEquals."), "{err}");
        assert!(err.contains("appears twice"), "{err}");
    }

    #[test]
    fn error_names_statement_index_sid_and_field() {
        let err = parse_err(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},
               {"Effect":"Allow","Action":"s3:*","Resource":"*"},
               {"Effect":"Allow","Action":"s3:*","Resource":"*"},
               {"Sid":"self1","Effect":"Allow","Action":7,"Resource":"*"}]}"#,
        );
        assert_eq!(
            err,
            "Statement[3] (Sid \"self1\"): Action: expected a string or a list of strings, found a number"
        );
    }

    #[test]
    fn non_string_action_entry_names_its_position() {
        let err = parse_err(
            r#"{"Statement":{"Effect":"Allow","Action":["s3:GetObject",true],"Resource":"*"}}"#,
        );
        assert_eq!(
            err,
            "Statement[0]: Action[1]: expected a string, found a boolean"
        );
    }

    #[test]
    fn missing_or_bad_effect_is_rejected() {
        assert!(
            parse_err(r#"{"Statement":{"Action":"s3:*","Resource":"*"}}"#)
                .contains("Effect: missing")
        );
        assert!(
            parse_err(r#"{"Statement":{"Effect":"allow","Action":"s3:*","Resource":"*"}}"#)
                .contains("Effect: expected \"Allow\" or \"Deny\", found \"allow\"")
        );
        assert!(
            parse_err(r#"{"Statement":{"Effect":1,"Action":"s3:*","Resource":"*"}}"#)
                .contains("Effect: expected a string, found a number")
        );
    }

    #[test]
    fn action_and_not_action_together_or_neither_are_rejected() {
        assert!(parse_err(r#"{"Statement":{"Effect":"Allow","Action":"s3:*","NotAction":"s3:Get*","Resource":"*"}}"#)
            .contains("Action or NotAction, not both"));
        assert!(
            parse_err(r#"{"Statement":{"Effect":"Allow","Resource":"*"}}"#)
                .contains("Action: missing")
        );
        assert!(parse_err(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","NotResource":"*"}}"#
        )
        .contains("Resource or NotResource, not both"));
    }

    #[test]
    fn action_without_service_prefix_is_rejected() {
        let err = parse_err(
            r#"{"Statement":{"Effect":"Allow","Action":["s3:GetObject","DescribeVpcs"],"Resource":"*"}}"#,
        );
        assert!(
            err.starts_with("Statement[0]: Action[1]: \"DescribeVpcs\" is not an action"),
            "{err}"
        );
        assert!(
            parse_err(r#"{"Statement":{"Effect":"Allow","Action":":x","Resource":"*"}}"#)
                .contains("not an action")
        );
        assert!(
            parse_err(r#"{"Statement":{"Effect":"Allow","Action":"s3:","Resource":"*"}}"#)
                .contains("not an action")
        );
        assert!(PolicyDocument::parse(
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#
        )
        .is_ok());
    }

    #[test]
    fn unknown_statement_and_document_elements_are_rejected() {
        let err = parse_err(
            r#"{"Statement":{"Sid":"x","Effect":"Allow","Action":"s3:*","Resource":"*","Actions":"s3:*"}}"#,
        );
        assert!(
            err.starts_with("Statement[0] (Sid \"x\"): Actions: unknown statement element"),
            "{err}"
        );
        assert!(parse_err(r#"{"Statement":[],"Statements":[]}"#)
            .starts_with("Statements: unknown policy element"));
    }

    #[test]
    fn bad_document_shapes_are_rejected() {
        assert!(parse_err("[]").contains("expected an object, found a list"));
        assert!(parse_err(r#"{"Version":"2012-10-17"}"#).contains("Statement: missing"));
        assert!(
            parse_err(r#"{"Version":"2020-01-01","Statement":[]}"#).contains("Version: expected")
        );
        assert!(
            parse_err(r#"{"Statement":"x"}"#).contains("Statement: expected an object or a list")
        );
        assert!(parse_err(r#"{"Statement":["x"]}"#)
            .starts_with("Statement[0]: (statement): expected an object"));
        assert!(
            parse_err(r#"{"Statement":{"Effect":"Allow","Action":[],"Resource":"*"}}"#)
                .contains("Action: must not be an empty list")
        );
        assert!(parse_err(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"bucket"}}"#
        )
        .contains("is not a resource"));
        assert!(parse_err(
            r#"{"Statement":{"Effect":"Allow","Principal":{"Aws":"1"},"Action":"s3:*"}}"#
        )
        .contains("Principal.Aws: unknown principal type"));
        assert!(
            parse_err(r#"{"Statement":{"Effect":"Allow","Principal":"x","Action":"s3:*"}}"#)
                .contains("Principal: expected \"*\" or an object")
        );
        assert!(parse_err(r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"Bool":{"a:b":null}}}}"#)
            .contains("Condition.Bool.a:b: expected a string, boolean or number, found null"));
        assert!(parse_err(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":[]}}"#
        )
        .contains("Condition: expected an object of operators"));
    }

    #[test]
    fn invalid_json_reports_line_and_column() {
        match PolicyDocument::parse("{\n  \"Statement\": [,]\n}") {
            Err(PolicyError::Syntax { line, .. }) => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn deeply_nested_json_is_an_error_not_a_crash() {
        let text = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(matches!(
            PolicyDocument::parse(&text),
            Err(PolicyError::Syntax { .. })
        ));
        let nested = format!(
            r#"{{"Statement":{{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{}1{}}}}}"#,
            r#"{"a":"#.repeat(5000),
            "}".repeat(5000)
        );
        assert!(PolicyDocument::parse(&nested).is_err());
    }

    #[test]
    fn url_encoded_documents_decode() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3AGetObject%22%2C%22Resource%22%3A%22arn%3Aaws%3As3%3A%3A%3Aa%20b%2Bc%22%7D%5D%7D";
        let doc = PolicyDocument::parse_url_encoded(encoded).unwrap();
        assert_eq!(
            doc.statements[0].resource,
            Some(PatternSet::Only(vec!["arn:aws:s3:::a b+c".into()]))
        );
        assert_eq!(decode_url_encoded("a+b").unwrap(), "a+b");
    }

    #[test]
    fn bad_url_encoding_is_rejected() {
        let err = decode_url_encoded("%7B%2").unwrap_err().to_string();
        assert!(
            err.contains("not followed by two hexadecimal digits"),
            "{err}"
        );
        assert!(decode_url_encoded("%zz").is_err());
        let err = decode_url_encoded("%FF%FE").unwrap_err().to_string();
        assert!(err.contains("not UTF-8"), "{err}");
    }

    #[test]
    fn unknown_placeholders_are_recognised_and_become_wildcards() {
        let v = format!("arn:aws:iam::{}:role/x", unknown_value("Account"));
        assert!(contains_unknown(&v));
        assert_eq!(unknown_as_wildcard(&v), "arn:aws:iam::*:role/x");
        assert_eq!(unknown_as_wildcard("plain"), "plain");
        assert_eq!(
            unknown_as_wildcard(UNKNOWN_VALUE_PREFIX),
            UNKNOWN_VALUE_PREFIX
        );
    }

    #[test]
    fn error_field_path_and_problem_are_separable() {
        let err = PolicyDocument::parse(
            r#"{"Statement":[{"Sid":"a","Effect":"Allow","Action":"s3:*","Resource":5}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.field_path(), "Statement[0].Resource");
        assert_eq!(
            err.problem(),
            "expected a string or a list of strings, found a number (Sid \"a\")"
        );
    }

    #[test]
    fn teradata_reference_policies_parse() {
        let dir = crate::iam::tests_support::teradata_dir();
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).unwrap();
                let doc = PolicyDocument::parse(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!doc.statements.is_empty());
                count += 1;
            }
        }
        assert_eq!(count, 4);
    }
}
