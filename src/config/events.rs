//! The daemon's `events:` section: the SQS queue that EventBridge fills with CloudTrail
//! change events, and how long to wait for a burst to settle (see `crate::events`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ConfigDuration;

/// `events:`: re-scan an account and region when a change event for it arrives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsSettings {
    /// The SQS queue EventBridge delivers CloudTrail events to, e.g.
    /// `https://sqs.us-east-1.amazonaws.com/123456789012/vpc-auditor-events`.
    pub queue_url: QueueUrl,
    /// How long a target waits after its last event before it is re-scanned, so that a
    /// burst of changes costs one scan; default `5s`.
    #[serde(default = "default_debounce")]
    pub debounce: ConfigDuration,
}

fn default_debounce() -> ConfigDuration {
    ConfigDuration(std::time::Duration::from_secs(5))
}

/// An SQS queue URL: `http(s)://host/ACCOUNT/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String")]
pub struct QueueUrl(pub String);

impl QueueUrl {
    /// The region in an AWS queue URL's host (`sqs.REGION.amazonaws.com`), if it has one.
    pub fn region(&self) -> Option<&str> {
        let rest = self.0.split_once("://")?.1;
        let host = rest.split('/').next()?;
        let mut parts = host.split('.');
        match (parts.next(), parts.next()) {
            (Some("sqs"), Some(region)) if region.contains('-') => Some(region),
            _ => None,
        }
    }
}

impl TryFrom<String> for QueueUrl {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let expected = || {
            format!(
                "expected a queue URL such as \
                 https://sqs.us-east-1.amazonaws.com/123456789012/vpc-auditor-events, found {value:?}"
            )
        };
        let rest = value
            .strip_prefix("https://")
            .or_else(|| value.strip_prefix("http://"))
            .ok_or_else(expected)?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            [host, account, name]
                if !host.is_empty()
                    && !account.is_empty()
                    && !name.is_empty()
                    && !value.contains(char::is_whitespace) =>
            {
                Ok(QueueUrl(value))
            }
            _ => Err(expected()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_url_needs_a_host_an_account_and_a_name() {
        let url = QueueUrl::try_from(
            "https://sqs.us-east-1.amazonaws.com/123456789012/vpc-auditor-events".to_string(),
        )
        .unwrap();
        assert_eq!(url.region(), Some("us-east-1"));
        let local = QueueUrl::try_from("http://127.0.0.1:5000/123456789012/q".to_string()).unwrap();
        assert_eq!(local.region(), None);
        for bad in [
            "sqs.us-east-1.amazonaws.com/1/q",
            "https://sqs.us-east-1.amazonaws.com/q",
            "https://sqs.us-east-1.amazonaws.com/1/q/extra",
            "https:///1/q",
        ] {
            assert!(QueueUrl::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn debounce_defaults_to_five_seconds() {
        let settings: EventsSettings =
            serde_yaml_ng::from_str("queue_url: http://localhost:5000/123456789012/q\n").unwrap();
        assert_eq!(settings.debounce.0, std::time::Duration::from_secs(5));
        let settings: EventsSettings = serde_yaml_ng::from_str(
            "queue_url: http://localhost:5000/123456789012/q\ndebounce: 300ms\n",
        )
        .unwrap();
        assert_eq!(settings.debounce.0, std::time::Duration::from_millis(300));
    }
}
