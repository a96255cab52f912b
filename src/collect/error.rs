//! The one error type of collection: every failure names the AWS operation it happened
//! in, so the snapshot entry it becomes (and the scan-error metric) says which call failed.
//! Collection never lets an error through as data: a failed account or region becomes an
//! entry with `error` set and nothing else in it (see [`super::plan`] and [`super`]).

use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::snapshot::CollectionError;

/// Why collecting a region failed. Each variant knows the AWS operation it failed in.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("{operation}: {message}")]
    Aws {
        operation: &'static str,
        /// The AWS error code, e.g. `UnauthorizedOperation` or `Throttling`, when there is one.
        code: Option<String>,
        message: String,
    },
    #[error("{operation}: unexpected response: {message}")]
    Malformed {
        operation: &'static str,
        message: String,
    },
    /// A paginated call that did not end properly: a token repeated, or more pages than
    /// `aws.max_pages`. Stopping there would report a partial list as the whole.
    #[error("{operation}: pagination did not end: {message}")]
    Pagination {
        operation: &'static str,
        message: String,
    },
    #[error("no AWS region configured: set AWS_REGION, a profile region, `regions:` in the config, or --region")]
    NoRegion,
}

impl CollectError {
    pub fn aws<E, R>(operation: &'static str, err: SdkError<E, R>) -> CollectError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        let code = err.code().map(str::to_string);
        CollectError::Aws {
            operation,
            code,
            message: DisplayErrorContext(&err).to_string(),
        }
    }

    pub fn operation(&self) -> Option<&'static str> {
        match self {
            CollectError::Aws { operation, .. }
            | CollectError::Malformed { operation, .. }
            | CollectError::Pagination { operation, .. } => Some(operation),
            CollectError::NoRegion => None,
        }
    }
}

impl From<&CollectError> for CollectionError {
    fn from(err: &CollectError) -> Self {
        CollectionError {
            operation: err.operation().map(str::to_string),
            message: err.to_string(),
        }
    }
}
