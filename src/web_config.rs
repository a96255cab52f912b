//! The daemon listener's web config file: optional TLS and HTTP basic auth, in the format
//! Prometheus exporters use (the exporter-toolkit's `--web.config.file`):
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt          # paths are relative to this file
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert   # optional, with client_ca_file
//!   client_ca_file: clients-ca.crt
//!   min_version: TLS12             # TLS12 (default) or TLS13; max_version likewise
//! basic_auth_users:
//!   prometheus: $2y$10$...         # bcrypt hashes, e.g. from `htpasswd -nBC 10 ""`
//! ```
//!
//! This module owns reading and validating that file into a [`WebConfig`] (a rustls
//! `ServerConfig` and the users' hashes) and checking an `Authorization` header against
//! it. Every problem (an unknown key, an unreadable or non-PEM certificate, a key that does
//! not match its certificate, a hash that is not bcrypt) is an [`InputError`] naming the
//! web config file, the line and the field. It does no network I/O.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use sha2::Digest;

use crate::input::ValidatedStr;
use crate::input::{self, InputError};

/// The file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebConfigFile {
    #[serde(default)]
    tls_server_config: Option<TlsServerConfigFile>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, BcryptHash>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsServerConfigFile {
    cert_file: PathBuf,
    key_file: PathBuf,
    #[serde(default)]
    client_auth_type: ClientAuthType,
    #[serde(default)]
    client_ca_file: Option<PathBuf>,
    #[serde(default)]
    min_version: Option<TlsVersion>,
    #[serde(default)]
    max_version: Option<TlsVersion>,
}

/// The exporter-toolkit's names for Go's client auth modes; rustls only accepts a client
/// certificate it verified, so the two modes that take unverified ones are rejected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
enum ClientAuthType {
    #[default]
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
enum TlsVersion {
    TLS10,
    TLS11,
    TLS12,
    TLS13,
}

/// A bcrypt hash (`$2a$`, `$2b$`, `$2x$` or `$2y$`, cost, salt and hash; 60 characters),
/// checked when the file is read.
#[derive(Clone)]
struct BcryptHash(String);

impl std::fmt::Debug for BcryptHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BcryptHash(..)")
    }
}

impl TryFrom<String> for BcryptHash {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        // The value is never echoed: a mistake here may be a plain-text password.
        match value.parse::<bcrypt::HashParts>() {
            Ok(_) => Ok(BcryptHash(value)),
            Err(err) => Err(format!(
                "expected a bcrypt hash such as $2y$10$ followed by 53 characters \
                 (make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`): {err}"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for BcryptHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(ValidatedStr(std::marker::PhantomData))
    }
}

/// The validated web config: what the listener serves with.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// The file it came from; `None` for plain HTTP without auth.
    pub file: Option<PathBuf>,
    /// TLS for every connection, when set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub users: BasicAuthUsers,
}

impl WebConfig {
    /// Reads and validates the web config file; certificate and key paths are relative to
    /// its folder.
    pub fn load(path: &Path) -> Result<WebConfig, InputError> {
        let text = input::read_text(path)?;
        // An empty file (or only comments) is a valid config: plain HTTP, no auth.
        let file: WebConfigFile = if text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            WebConfigFile::default()
        } else {
            input::parse_yaml(path, &text)?
        };
        let base = path.parent().unwrap_or(Path::new(""));
        let at = |field: &str, message: String| {
            InputError {
                field: field.to_string(),
                ..InputError::file(path, message)
            }
            .located_in(&text)
        };
        for name in file.basic_auth_users.keys() {
            if name.is_empty() || name.contains(':') {
                return Err(at(
                    &format!("basic_auth_users.{name}"),
                    "a user name must be non-empty and must not contain ':'".into(),
                ));
            }
        }
        let tls = match &file.tls_server_config {
            Some(tls) => Some(Arc::new(server_config(tls, base, &at)?)),
            None => None,
        };
        Ok(WebConfig {
            file: Some(path.to_path_buf()),
            tls,
            users: BasicAuthUsers::new(
                file.basic_auth_users
                    .into_iter()
                    .map(|(user, hash)| (user, hash.0))
                    .collect(),
            ),
        })
    }

    /// The web config file's, or plain HTTP without auth when there is none.
    pub fn load_or_plain(path: Option<&Path>) -> Result<WebConfig, InputError> {
        match path {
            Some(path) => WebConfig::load(path),
            None => Ok(WebConfig::default()),
        }
    }

    /// How the listener is reached, for the start-up log: `http` or `https`, and whether
    /// basic auth is required.
    pub fn describe(&self) -> (&'static str, bool) {
        (
            if self.tls.is_some() { "https" } else { "http" },
            !self.users.is_empty(),
        )
    }
}

fn server_config(
    tls: &TlsServerConfigFile,
    base: &Path,
    at: &dyn Fn(&str, String) -> InputError,
) -> Result<rustls::ServerConfig, InputError> {
    let field = |key: &str| format!("tls_server_config.{key}");
    let read = |key: &str, relative: &Path| -> Result<Vec<u8>, InputError> {
        let path = base.join(relative);
        std::fs::read(&path)
            .map_err(|e| at(&field(key), format!("cannot read {}: {e}", path.display())))
    };
    let read_certs =
        |key: &str, relative: &Path| -> Result<Vec<CertificateDer<'static>>, InputError> {
            let bytes = read(key, relative)?;
            let path = base.join(relative);
            let certs = CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    at(
                        &field(key),
                        format!("{}: not a PEM certificate: {e}", path.display()),
                    )
                })?;
            if certs.is_empty() {
                return Err(at(
                    &field(key),
                    format!(
                        "{}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
                        path.display()
                    ),
                ));
            }
            Ok(certs)
        };

    let certs = read_certs("cert_file", &tls.cert_file)?;
    let key_bytes = read("key_file", &tls.key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
        at(
            &field("key_file"),
            format!(
                "{}: no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
                base.join(&tls.key_file).display()
            ),
        )
    })?;

    let min = tls.min_version.unwrap_or(TlsVersion::TLS12);
    let max = tls.max_version.unwrap_or(TlsVersion::TLS13);
    for (key, version) in [
        ("min_version", tls.min_version),
        ("max_version", tls.max_version),
    ] {
        if matches!(version, Some(TlsVersion::TLS10 | TlsVersion::TLS11)) {
            return Err(at(
                &field(key),
                "TLS 1.0 and 1.1 are not supported; use TLS12 or TLS13".into(),
            ));
        }
    }
    if min > max {
        return Err(at(
            &field("min_version"),
            "min_version is above max_version".into(),
        ));
    }
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::TLS12, &rustls::version::TLS12),
        (TlsVersion::TLS13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (min..=max).contains(v))
    .map(|(_, p)| p)
    .collect();

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| at(&field("min_version"), e.to_string()))?;

    let builder = match (tls.client_auth_type, &tls.client_ca_file) {
        (ClientAuthType::NoClientCert, None) => builder.with_no_client_auth(),
        (ClientAuthType::NoClientCert, Some(_)) => {
            return Err(at(
                &field("client_ca_file"),
                "client_ca_file needs client_auth_type VerifyClientCertIfGiven or \
                 RequireAndVerifyClientCert"
                    .into(),
            ))
        }
        (ClientAuthType::RequestClientCert | ClientAuthType::RequireAnyClientCert, _) => {
            return Err(at(
                &field("client_auth_type"),
                "only verified client certificates are supported: use \
                 VerifyClientCertIfGiven or RequireAndVerifyClientCert with client_ca_file"
                    .into(),
            ))
        }
        (_, None) => {
            return Err(at(
                &field("client_auth_type"),
                "this client_auth_type needs client_ca_file, the CA that signs client \
                 certificates"
                    .into(),
            ))
        }
        (mode, Some(ca_file)) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs("client_ca_file", ca_file)? {
                roots.add(cert).map_err(|e| {
                    at(
                        &field("client_ca_file"),
                        format!("{}: not a usable CA certificate: {e}", ca_file.display()),
                    )
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            let verifier = if mode == ClientAuthType::VerifyClientCertIfGiven {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|e| {
                at(
                    &field("client_ca_file"),
                    format!("cannot verify clients with {}: {e}", ca_file.display()),
                )
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        at(
            &field("key_file"),
            format!(
                "the key {} does not fit the certificate {}: {e}",
                base.join(&tls.key_file).display(),
                base.join(&tls.cert_file).display()
            ),
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Most verified credentials remembered, so a scraper does not pay bcrypt's cost on every
/// scrape; past this the memory is cleared.
const VERIFIED_CACHE_LIMIT: usize = 256;

/// The `basic_auth_users` and the credentials already verified (kept only as SHA-256
/// digests of user, password and hash, never as the password).
#[derive(Default)]
pub struct BasicAuthUsers {
    hashes: BTreeMap<String, String>,
    /// A hash (at the users' cost) of a random password, checked when the user is unknown,
    /// so an unknown user takes as long to reject as a wrong password.
    unknown_user_hash: String,
    verified: Mutex<HashSet<[u8; 32]>>,
}

/// Names the users only: hashes stay out of debug output.
impl std::fmt::Debug for BasicAuthUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuthUsers")
            .field("users", &self.hashes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Clone for BasicAuthUsers {
    fn clone(&self) -> Self {
        BasicAuthUsers::new(self.hashes.clone())
    }
}

/// The outcome of checking an `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthCheck {
    Allowed,
    Denied,
}

impl BasicAuthUsers {
    fn new(hashes: BTreeMap<String, String>) -> Self {
        let cost = hashes
            .values()
            .find_map(|h| h.parse::<bcrypt::HashParts>().ok())
            .map(|parts| parts.get_cost())
            .unwrap_or(bcrypt::DEFAULT_COST);
        let unknown_user_hash = if hashes.is_empty() {
            String::new()
        } else {
            // A random salt makes a hash of an empty password that nobody can match in
            // practice; on the impossible failure an unknown user is still denied.
            bcrypt::hash(b"", cost).unwrap_or_default()
        };
        BasicAuthUsers {
            hashes,
            unknown_user_hash,
            verified: Mutex::new(HashSet::new()),
        }
    }

    /// No users: every request is allowed.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Checks an `Authorization` header value. Blocking: a bcrypt check takes tens of
    /// milliseconds, so call it off the async threads.
    pub fn check(&self, authorization: Option<&[u8]>) -> AuthCheck {
        if self.is_empty() {
            return AuthCheck::Allowed;
        }
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return AuthCheck::Denied;
        };
        let known = self.hashes.get(&user);
        let hash = known.map(String::as_str).unwrap_or(&self.unknown_user_hash);
        let digest: [u8; 32] = {
            let mut d = sha2::Sha256::new();
            d.update(user.as_bytes());
            d.update([0]);
            d.update(&password);
            d.update([0]);
            d.update(hash.as_bytes());
            d.finalize().into()
        };
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if known.is_some() && verified.contains(&digest) {
            return AuthCheck::Allowed;
        }
        drop(verified);
        // bcrypt's own comparison is constant-time.
        let matches = bcrypt::verify(&password, hash).unwrap_or(false);
        if matches && known.is_some() {
            verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if verified.len() >= VERIFIED_CACHE_LIMIT {
                verified.clear();
            }
            verified.insert(digest);
            AuthCheck::Allowed
        } else {
            AuthCheck::Denied
        }
    }
}

/// `Basic base64(user:password)` → user and password bytes.
fn parse_basic(header: &[u8]) -> Option<(String, Vec<u8>)> {
    let header = std::str::from_utf8(header).ok()?.trim();
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate and its key for `localhost`, as PEM.
    fn cert_and_key() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn basic(user: &str, password: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
        .into_bytes()
    }

    #[test]
    fn tls_and_users_load_with_paths_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = cert_and_key();
        std::fs::create_dir(dir.path().join("tls")).unwrap();
        write(dir.path(), "tls/server.crt", &cert);
        write(dir.path(), "tls/server.key", &key);
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let path = write(
            dir.path(),
            "web.yaml",
            &format!(
                "tls_server_config:\n  cert_file: tls/server.crt\n  key_file: tls/server.key\n  min_version: TLS13\nbasic_auth_users:\n  prometheus: {hash}\n"
            ),
        );
        let web = WebConfig::load(&path).unwrap();
        assert_eq!(web.describe(), ("https", true));
        assert_eq!(
            web.users.check(Some(&basic("prometheus", "s3cret"))),
            AuthCheck::Allowed
        );
        // Again, from the cache of verified credentials.
        assert_eq!(
            web.users.check(Some(&basic("prometheus", "s3cret"))),
            AuthCheck::Allowed
        );
        for wrong in [
            Some(basic("prometheus", "s3cre")),
            Some(basic("other", "s3cret")),
            Some(b"Bearer s3cret".to_vec()),
            Some(b"Basic !!!".to_vec()),
            None,
        ] {
            assert_eq!(web.users.check(wrong.as_deref()), AuthCheck::Denied);
        }
    }

    #[test]
    fn no_users_allows_everything_and_an_empty_file_is_plain_http() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "web.yaml", "# nothing yet\n");
        let web = WebConfig::load(&path).unwrap();
        assert_eq!(web.describe(), ("http", false));
        assert_eq!(web.users.check(None), AuthCheck::Allowed);
    }

    #[test]
    fn bad_files_name_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = cert_and_key();
        write(dir.path(), "server.crt", &cert);
        write(dir.path(), "server.key", &key);
        write(dir.path(), "garbage.pem", "not pem at all\n");
        let (other_cert, _) = cert_and_key();
        write(dir.path(), "other.crt", &other_cert);
        let tls = |extra: &str| {
            format!("basic_auth_users: {{}}\ntls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n{extra}")
        };
        let cases: Vec<(String, usize, &str, &str)> = vec![
            (
                "basic_auth_users:\n  alice: hunter2\n".into(),
                2,
                "basic_auth_users.alice",
                "bcrypt hash",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  ciphers: [x]\n".into(),
                4,
                "tls_server_config.ciphers",
                "unknown field `ciphers`",
            ),
            (
                "tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n".into(),
                2,
                "tls_server_config.cert_file",
                "cannot read",
            ),
            (
                "tls_server_config:\n  cert_file: garbage.pem\n  key_file: server.key\n".into(),
                2,
                "tls_server_config.cert_file",
                "no PEM certificate",
            ),
            (
                "tls_server_config:\n  cert_file: server.crt\n  key_file: garbage.pem\n".into(),
                3,
                "tls_server_config.key_file",
                "no PEM private key",
            ),
            (
                "tls_server_config:\n  cert_file: other.crt\n  key_file: server.key\n".into(),
                3,
                "tls_server_config.key_file",
                "does not fit",
            ),
            (
                tls("  min_version: TLS11\n"),
                5,
                "tls_server_config.min_version",
                "TLS 1.0 and 1.1",
            ),
            (
                tls("  client_auth_type: RequireAndVerifyClientCert\n"),
                5,
                "tls_server_config.client_auth_type",
                "needs client_ca_file",
            ),
            (
                tls("  client_auth_type: RequireAnyClientCert\n  client_ca_file: server.crt\n"),
                5,
                "tls_server_config.client_auth_type",
                "only verified",
            ),
            (
                tls("  client_ca_file: server.crt\n"),
                5,
                "tls_server_config.client_ca_file",
                "needs client_auth_type",
            ),
        ];
        for (text, line, field, needle) in cases {
            let path = write(dir.path(), "web.yaml", &text);
            let err = WebConfig::load(&path).unwrap_err();
            assert_eq!(err.file, path, "{text}");
            assert_eq!(err.line, Some(line), "{text}\n{err}");
            assert_eq!(err.field, field, "{text}\n{err}");
            assert!(err.to_string().contains(needle), "{text}\n{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn client_certificates_are_verified_against_the_ca_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = cert_and_key();
        write(dir.path(), "server.crt", &cert);
        write(dir.path(), "server.key", &key);
        let path = write(
            dir.path(),
            "web.yaml",
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: server.crt\n",
        );
        assert!(WebConfig::load(&path).unwrap().tls.is_some());
    }
}
