//! Which object store a backup URL names, and the client for it, configured from the usual
//! environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`; README, "Backups on object storage").

use crate::error::{Error, Result};
use object_store::aws::{AmazonS3Builder, Checksum};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use std::sync::Arc;
use std::time::Duration;

/// How long transient failures (timeouts, 5xx, dropped connections) of one request are
/// retried, with exponential backoff, before the operation fails. `WGFIT_STORE_RETRY_SECONDS`
/// changes it.
const RETRY_SECONDS: u64 = 60;

/// Where a backup lives: a local directory, or a prefix in an object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory (a plain path, or a `file://` URL).
    Local(std::path::PathBuf),
    /// An object-store URL (`s3://bucket/prefix`, `gs://…`, `az://…`), without a trailing
    /// slash.
    Remote(String),
}

impl Location {
    /// What `backup_dir` names: a URL with a scheme wgfit stores to remotely, a `file://`
    /// URL, or a path. An unknown scheme is an error, not a directory named `xyz:`.
    pub fn parse(text: &str) -> Result<Location> {
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(Location::Local(text.into()));
        };
        let bad = |reason: String| Error::config("backup_dir", reason);
        match scheme {
            "file" => Ok(Location::Local(rest.into())),
            "s3" | "s3a" | "gs" | "az" | "adl" | "azure" | "abfs" | "abfss" => {
                let url = url::Url::parse(text).map_err(|e| bad(format!("`{text}`: {e}")))?;
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(bad(format!("`{text}` names no bucket or container")));
                }
                Ok(Location::Remote(text.trim_end_matches('/').to_string()))
            }
            other => Err(bad(format!(
                "`{text}`: wgfit stores backups to s3://, gs://, az:// (or abfs://) and file:// URLs, not {other}://"
            ))),
        }
    }
}

/// The longest one attempt of a request may take before it is retried: part of the retry
/// budget, so that a server that accepts connections and never answers is retried, not waited
/// on (an 8 MiB part at 1 MB/s takes 8 s).
fn request_timeout(retry: Duration) -> Duration {
    (retry / 2).clamp(Duration::from_secs(5), Duration::from_secs(30))
}

/// The client, the key prefix for an object-store URL, and how long one operation may take
/// in all (its attempts, their backoff, and the last attempt begun just before the retry
/// budget ran out).
pub(super) fn connect(
    url: &str,
) -> Result<(Arc<dyn ObjectStore>, object_store::path::Path, Duration)> {
    let fail = |reason: String| Error::ObjectStore {
        url: url.to_string(),
        what: "configuring the client".into(),
        reason,
    };
    let parsed = url::Url::parse(url).map_err(|e| fail(e.to_string()))?;
    let prefix = object_store::path::Path::parse(parsed.path().trim_start_matches('/'))
        .map_err(|e| fail(e.to_string()))?;
    let retry_seconds = crate::env_knobs::STORE_RETRY_SECONDS
        .read()?
        .unwrap_or(RETRY_SECONDS);
    let retry_timeout = Duration::from_secs(retry_seconds);
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(8),
            base: 2.0,
        },
        max_retries: 16,
        retry_timeout,
    };
    let attempt = request_timeout(retry_timeout);
    let client = ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(attempt);
    let store: Arc<dyn ObjectStore> = match parsed.scheme() {
        "s3" | "s3a" => {
            let mut builder = AmazonS3Builder::from_env()
                .with_url(url)
                .with_retry(retry)
                .with_client_options(client)
                // The server checks each request's (each part's) SHA-256 on arrival.
                .with_checksum_algorithm(Checksum::SHA256);
            // An S3-compatible server on plain HTTP (a local one) is what the user named.
            if std::env::var("AWS_ENDPOINT_URL").is_ok_and(|e| e.starts_with("http://")) {
                builder = builder.with_allow_http(true);
            }
            Arc::new(builder.build().map_err(|e| fail(e.to_string()))?)
        }
        "gs" => Arc::new(
            GoogleCloudStorageBuilder::from_env()
                .with_url(url)
                .with_retry(retry)
                .with_client_options(client)
                .build()
                .map_err(|e| fail(e.to_string()))?,
        ),
        _ => Arc::new(
            MicrosoftAzureBuilder::from_env()
                .with_url(url)
                .with_retry(retry)
                .with_client_options(client)
                .build()
                .map_err(|e| fail(e.to_string()))?,
        ),
    };
    Ok((store, prefix, retry_timeout + attempt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_told_apart_by_their_scheme() {
        assert_eq!(
            Location::parse("runs/a").unwrap(),
            Location::Local("runs/a".into())
        );
        assert_eq!(
            Location::parse("file:///tmp/x").unwrap(),
            Location::Local("/tmp/x".into())
        );
        assert_eq!(
            Location::parse("s3://bucket/p/q/").unwrap(),
            Location::Remote("s3://bucket/p/q".into())
        );
        let err = Location::parse("ftp://host/x").unwrap_err().to_string();
        assert!(err.contains("not ftp://"), "{err}");
        let err = Location::parse("s3:///x").unwrap_err().to_string();
        assert!(err.contains("no bucket"), "{err}");
    }
}
