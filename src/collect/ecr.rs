//! ECR: the repositories of a cross-account registry that a rule pack declares
//! (`cross_account_ecr:`), each with its repository policy. Read only in an account and
//! region where a pack declares a registry: one paginated `DescribeRepositories`, then one
//! `GetRepositoryPolicy` per selected repository (bounded by the declaration, not by the
//! size of the registry). ECR answers in JSON, so the client has no
//! [`super::client::WholeXmlResponse`] check.

use aws_config::SdkConfig;
use aws_sdk_ecr::Client;

use crate::config::accounts::RateLimit;
use crate::rules::ecr::CrossAccountRegistry;
use crate::snapshot::EcrRepository;

use super::client::{limited_http_client, ApiCallCounter, PageGuard};
use super::CollectError;

const DESCRIBE: &str = "ecr:DescribeRepositories";
const POLICY: &str = "ecr:GetRepositoryPolicy";

/// An ECR client for `account` in `config`'s region, under `rate`, its calls counted by
/// `counter`.
pub fn client(
    config: &SdkConfig,
    account: &str,
    rate: RateLimit,
    counter: &ApiCallCounter,
) -> Client {
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    Client::from_conf(
        aws_sdk_ecr::config::Builder::from(config)
            .http_client(limited_http_client("ecr", account, &region, rate))
            .interceptor(counter.clone())
            .build(),
    )
}

/// The repositories any of `registries` selects, with their policies.
pub async fn repositories(
    client: &Client,
    registries: &[&CrossAccountRegistry],
    max_pages: u32,
) -> Result<Vec<EcrRepository>, CollectError> {
    let mut guard = PageGuard::new(DESCRIBE, max_pages);
    let mut token: Option<String> = None;
    let mut selected = Vec::new();
    loop {
        let page = client
            .describe_repositories()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| CollectError::aws(DESCRIBE, e))?;
        for repo in page.repositories() {
            let (Some(name), Some(arn)) = (repo.repository_name(), repo.repository_arn()) else {
                return Err(CollectError::Malformed {
                    operation: DESCRIBE,
                    message: "a repository without repositoryName or repositoryArn".into(),
                });
            };
            if registries.iter().any(|r| r.selects(name)) {
                selected.push((name.to_string(), arn.to_string()));
            }
        }
        match guard.next(page.next_token().map(str::to_string))? {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    let mut out = Vec::with_capacity(selected.len());
    for (name, arn) in selected {
        let policy = match client
            .get_repository_policy()
            .repository_name(&name)
            .send()
            .await
        {
            Ok(answer) => answer.policy_text().map(str::to_string),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_repository_policy_not_found_exception()) =>
            {
                None
            }
            Err(err) => return Err(CollectError::aws(POLICY, err)),
        };
        out.push(EcrRepository { name, arn, policy });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
