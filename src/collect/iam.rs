//! IAM: every role of the account with its trust policy, inline policies and attached
//! managed policies, from `GetAccountAuthorizationDetails` (paginated). The number of calls
//! does not grow with the number of roles. IAM is global: one read per account, whichever
//! region's config the client is built from, under one rate-limit bucket per account.
//!
//! A role's permissions boundary is collected too: its ARN from the role, its document from
//! the same `Policies[]` list (the boundary is a managed policy, listed whether or not it is
//! attached anywhere).
//!
//! IAM returns policy documents URL-encoded; they are decoded here, so the snapshot holds
//! plain JSON text. Parsing them is left to evaluation, which can report a bad document
//! against the role it belongs to.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_iam::types::{EntityType, ManagedPolicyDetail, RoleDetail};
use aws_sdk_iam::Client;

use crate::config::accounts::RateLimit;
use crate::iam::decode_url_encoded;
use crate::snapshot::{IamBoundary, IamPolicy, IamRole};

use super::client::{limited_http_client, ApiCallCounter, PageGuard, WholeXmlResponse};
use super::CollectError;

const OP: &str = "iam:GetAccountAuthorizationDetails";

/// An IAM client for `account` from `config`, under `rate`, its calls counted by `counter`.
pub fn client(
    config: &SdkConfig,
    account: &str,
    rate: RateLimit,
    counter: &ApiCallCounter,
) -> Client {
    Client::from_conf(
        aws_sdk_iam::config::Builder::from(config)
            .http_client(limited_http_client("iam", account, "global", rate))
            .interceptor(counter.clone())
            .interceptor(WholeXmlResponse)
            .build(),
    )
}

/// Decodes a document as IAM returns it: URL-encoded JSON (AWS), or plain JSON (some
/// emulators). A URL-encoded document never starts with `{`, which encodes as `%7B`.
pub fn decode_document(text: &str, what: &str) -> Result<String, CollectError> {
    if text.trim_start().starts_with('{') {
        return Ok(text.to_string());
    }
    decode_url_encoded(text).map_err(|e| CollectError::Malformed {
        operation: OP,
        message: format!("{what}: {e}"),
    })
}

/// Collects every role with its policies, paging by hand through a [`PageGuard`] so that a
/// marker that repeats or never ends fails the call instead of truncating it.
pub async fn roles(client: &Client, max_pages: u32) -> Result<Vec<IamRole>, CollectError> {
    let mut guard = PageGuard::new(OP, max_pages);
    let mut pages = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = client
            .get_account_authorization_details()
            .filter(EntityType::Role)
            .filter(EntityType::LocalManagedPolicy)
            .filter(EntityType::AwsManagedPolicy)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| CollectError::aws(OP, e))?;
        // IAM marks the last page with IsTruncated false; a marker on it means nothing.
        let next = match page.is_truncated() {
            true => page.marker().map(str::to_string).or(Some(String::new())),
            false => None,
        };
        if next.as_deref() == Some("") {
            return Err(CollectError::Malformed {
                operation: OP,
                message: "a page says IsTruncated but has no Marker for the next one".into(),
            });
        }
        pages.push(page);
        match guard.next(next)? {
            Some(next) => marker = Some(next),
            None => break,
        }
    }
    let mut role_details: Vec<&RoleDetail> = Vec::new();
    let mut managed: BTreeMap<&str, &ManagedPolicyDetail> = BTreeMap::new();
    for page in &pages {
        role_details.extend(page.role_detail_list());
        for policy in page.policies() {
            if let Some(arn) = policy.arn() {
                managed.insert(arn, policy);
            }
        }
    }
    role_details
        .into_iter()
        .map(|detail| convert_role(detail, &managed))
        .collect()
}

fn convert_role(
    detail: &RoleDetail,
    managed: &BTreeMap<&str, &ManagedPolicyDetail>,
) -> Result<IamRole, CollectError> {
    let name = detail.role_name().ok_or_else(|| CollectError::Malformed {
        operation: OP,
        message: "a role has no RoleName".into(),
    })?;
    let arn = detail.arn().unwrap_or_default().to_string();
    let trust_policy = detail
        .assume_role_policy_document()
        .map(|d| decode_document(d, &format!("role {name}: AssumeRolePolicyDocument")))
        .transpose()?;
    let inline_policies = detail
        .role_policy_list()
        .iter()
        .map(|p| {
            let policy_name = p.policy_name().unwrap_or_default();
            let document = p.policy_document().unwrap_or_default();
            Ok(IamPolicy {
                name: policy_name.to_string(),
                document: decode_document(
                    document,
                    &format!("role {name}: inline policy {policy_name}"),
                )?,
            })
        })
        .collect::<Result<Vec<_>, CollectError>>()?;
    let mut attached_policies = Vec::new();
    let mut unresolved_policies = Vec::new();
    for attached in detail.attached_managed_policies() {
        let Some(policy_arn) = attached.policy_arn() else {
            continue;
        };
        let document = managed.get(policy_arn).and_then(|m| default_document(m));
        match document {
            Some(document) => attached_policies.push(IamPolicy {
                name: policy_arn.to_string(),
                document: decode_document(
                    document,
                    &format!("role {name}: managed policy {policy_arn}"),
                )?,
            }),
            None => unresolved_policies.push(policy_arn.to_string()),
        }
    }
    // The boundary's document comes from the same Policies[] list as attached policies
    // (moto omits its PolicyName, so the name is always taken from the ARN).
    let permissions_boundary = detail
        .permissions_boundary()
        .and_then(|b| b.permissions_boundary_arn())
        .map(|boundary_arn| {
            let document = managed
                .get(boundary_arn)
                .and_then(|m| default_document(m))
                .map(|d| {
                    decode_document(
                        d,
                        &format!("role {name}: permissions boundary {boundary_arn}"),
                    )
                })
                .transpose()?;
            Ok::<_, CollectError>(IamBoundary {
                arn: boundary_arn.to_string(),
                document,
            })
        })
        .transpose()?;
    let tags = detail
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    Ok(IamRole {
        tags,
        name: name.to_string(),
        arn,
        trust_policy,
        inline_policies,
        attached_policies,
        unresolved_policies,
        permissions_boundary,
    })
}

/// The account's OIDC identity providers, as ARNs: one call (the operation is not
/// paginated), made only when a pack checks custom roles.
pub async fn oidc_providers(client: &Client) -> Result<Vec<String>, CollectError> {
    const OIDC_OP: &str = "iam:ListOpenIDConnectProviders";
    let out = client
        .list_open_id_connect_providers()
        .send()
        .await
        .map_err(|e| CollectError::aws(OIDC_OP, e))?;
    Ok(out
        .open_id_connect_provider_list()
        .iter()
        .filter_map(|p| p.arn().map(str::to_string))
        .collect())
}

/// The document of a managed policy's default version.
fn default_document(policy: &ManagedPolicyDetail) -> Option<&str> {
    let default_id = policy.default_version_id();
    policy
        .policy_version_list()
        .iter()
        .find(|v| v.is_default_version() || (default_id.is_some() && v.version_id() == default_id))
        .and_then(|v| v.document())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::operation::get_account_authorization_details::GetAccountAuthorizationDetailsOutput;
    use aws_sdk_iam::types::{AttachedPolicy, PolicyDetail, PolicyVersion};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    const TRUST: &str = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";

    fn role(name: &str) -> RoleDetail {
        RoleDetail::builder()
            .role_name(name)
            .arn(format!("arn:aws:iam::123456789012:role/{name}"))
            .assume_role_policy_document(TRUST)
            .build()
    }

    #[tokio::test]
    async fn roles_across_pages_get_their_managed_policies_from_any_page() {
        let first = mock!(Client::get_account_authorization_details)
            .match_requests(|req| req.marker().is_none())
            .then_output(|| {
                GetAccountAuthorizationDetailsOutput::builder()
                    .role_detail_list(
                        RoleDetail::builder()
                            .role_name("a")
                            .arn("arn:aws:iam::123456789012:role/a")
                            .assume_role_policy_document(TRUST)
                            .role_policy_list(
                                PolicyDetail::builder()
                                    .policy_name("inline")
                                    .policy_document("%7B%22Statement%22%3A%5B%5D%7D")
                                    .build(),
                            )
                            .attached_managed_policies(
                                AttachedPolicy::builder()
                                    .policy_arn("arn:aws:iam::123456789012:policy/p")
                                    .build(),
                            )
                            .attached_managed_policies(
                                AttachedPolicy::builder()
                                    .policy_arn("arn:aws:iam::aws:policy/Gone")
                                    .build(),
                            )
                            .build(),
                    )
                    .is_truncated(true)
                    .marker("m2")
                    .build()
            });
        let second = mock!(Client::get_account_authorization_details)
            .match_requests(|req| req.marker() == Some("m2"))
            .then_output(|| {
                GetAccountAuthorizationDetailsOutput::builder()
                    .role_detail_list(role("b"))
                    .policies(
                        ManagedPolicyDetail::builder()
                            .arn("arn:aws:iam::123456789012:policy/p")
                            .default_version_id("v2")
                            .policy_version_list(
                                PolicyVersion::builder()
                                    .version_id("v1")
                                    .document("%7B%22old%22%3A1%7D")
                                    .build(),
                            )
                            .policy_version_list(
                                PolicyVersion::builder()
                                    .version_id("v2")
                                    .is_default_version(true)
                                    .document("%7B%22Statement%22%3A%5B%5D%7D")
                                    .build(),
                            )
                            .build(),
                    )
                    .is_truncated(false)
                    .build()
            });
        let client = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&first, &second]);
        let roles = roles(&client, 1000).await.expect("roles");
        assert_eq!(roles.len(), 2);
        let a = &roles[0];
        assert_eq!(
            a.trust_policy.as_deref(),
            Some(r#"{"Version":"2012-10-17","Statement":[]}"#)
        );
        assert_eq!(a.inline_policies[0].document, r#"{"Statement":[]}"#);
        assert_eq!(
            a.attached_policies[0].document, r#"{"Statement":[]}"#,
            "the default version"
        );
        assert_eq!(a.unresolved_policies, ["arn:aws:iam::aws:policy/Gone"]);
    }

    #[tokio::test]
    async fn permissions_boundary_is_collected_with_its_document_or_marked_unread() {
        use aws_sdk_iam::types::AttachedPermissionsBoundary;
        let boundary = |arn: &str| {
            AttachedPermissionsBoundary::builder()
                .permissions_boundary_arn(arn)
                .build()
        };
        let page = mock!(Client::get_account_authorization_details).then_output(move || {
            let mut bounded = role("bounded");
            bounded.permissions_boundary =
                Some(boundary("arn:aws:iam::123456789012:policy/team/Cap"));
            let mut unread = role("unread");
            unread.permissions_boundary =
                Some(boundary("arn:aws:iam::123456789012:policy/Missing"));
            GetAccountAuthorizationDetailsOutput::builder()
                .role_detail_list(bounded)
                .role_detail_list(unread)
                .role_detail_list(role("free"))
                .policies(
                    // As moto returns it: no PolicyName.
                    ManagedPolicyDetail::builder()
                        .arn("arn:aws:iam::123456789012:policy/team/Cap")
                        .default_version_id("v1")
                        .policy_version_list(
                            PolicyVersion::builder()
                                .version_id("v1")
                                .is_default_version(true)
                                .document("%7B%22Statement%22%3A%5B%5D%7D")
                                .build(),
                        )
                        .build(),
                )
                .is_truncated(false)
                .build()
        });
        let client = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&page]);
        let roles = roles(&client, 1000).await.expect("roles");
        let bounded = roles[0].permissions_boundary.as_ref().expect("boundary");
        assert_eq!(bounded.name(), "Cap");
        assert_eq!(bounded.document.as_deref(), Some(r#"{"Statement":[]}"#));
        let unread = roles[1].permissions_boundary.as_ref().expect("boundary");
        assert_eq!(unread.document, None);
        assert_eq!(roles[2].permissions_boundary, None);
        // The boundary's document is not mistaken for an attached policy.
        assert!(roles[0].attached_policies.is_empty());
    }

    #[tokio::test]
    async fn a_marker_that_repeats_or_never_ends_fails_instead_of_truncating() {
        let repeating = mock!(Client::get_account_authorization_details).then_output(|| {
            GetAccountAuthorizationDetailsOutput::builder()
                .role_detail_list(role("a"))
                .is_truncated(true)
                .marker("same")
                .build()
        });
        let client = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&repeating]);
        let err = roles(&client, 1000).await.expect_err("repeated marker");
        assert!(err.to_string().contains("repeats the token"), "{err}");
        assert_eq!(repeating.num_calls(), 2);

        let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let endless = mock!(Client::get_account_authorization_details).then_output(move || {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            GetAccountAuthorizationDetailsOutput::builder()
                .role_detail_list(role(&format!("r{i}")))
                .is_truncated(true)
                .marker(format!("m{i}"))
                .build()
        });
        let client = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&endless]);
        let err = roles(&client, 4).await.expect_err("endless markers");
        assert!(
            err.to_string().contains("still more after 4 pages"),
            "{err}"
        );

        let no_marker = mock!(Client::get_account_authorization_details).then_output(|| {
            GetAccountAuthorizationDetailsOutput::builder()
                .role_detail_list(role("a"))
                .is_truncated(true)
                .build()
        });
        let client = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&no_marker]);
        let err = roles(&client, 1000)
            .await
            .expect_err("truncated without marker");
        assert!(err.to_string().contains("no Marker"), "{err}");
    }

    #[test]
    fn plain_json_is_kept_and_bad_percent_encoding_is_an_error_naming_the_role() {
        assert_eq!(decode_document(" {\"a\":1}", "x").unwrap(), " {\"a\":1}");
        let err = decode_document("%7B%2", "role r: inline policy p").unwrap_err();
        assert!(err.to_string().contains("role r: inline policy p"), "{err}");
    }
}
