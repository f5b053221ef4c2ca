//! JWT (HS256) authentication for `/v1/*`: a bearer token signed with `JWT_SECRET`, with an
//! `exp` claim in the future and, when present, an `nbf` claim in the past (30 s of leeway
//! each way). When `JWT_ISSUER` / `JWT_AUDIENCE` are configured, `iss` / `aud` are required
//! and must match; otherwise they are not checked (an identity provider's `aud` is accepted).
//! Only HS256 is accepted, whatever the token's header claims. A refusal says which check
//! failed in fixed words, never the decoder's own message. Registered claims of the wrong
//! type are refused (an `nbf` that is not a number, an `iss` that is not a string), and so is
//! a token whose `exp` is further ahead than the longest lifetime accepted
//! (`JWT_MAX_LIFETIME_SECS`, 24 h by default).
//!
//! During a rotation a second secret (`JWT_SECRET_PREVIOUS`) also verifies: a token whose
//! signature does not verify with the current secret is checked against the previous one,
//! and the caller learns which [`KeyUsed`] verified it. Tokens are only ever signed with the
//! current secret.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Seconds of clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;

/// Claims the service reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subject: who calls.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

/// Why a request was refused (401). The messages are fixed: nothing from the token or the
/// decoder is echoed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token; send `Authorization: Bearer <JWT>`")]
    Missing,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` is still in the future.
    #[error("token not yet valid (nbf)")]
    NotYetValid,
    /// The signature does not verify with the configured secret, or the algorithm is not HS256.
    #[error("token signature does not verify (HS256 with the service's secret expected)")]
    BadSignature,
    /// `iss` is missing or not the configured issuer.
    #[error("token issuer (iss) is missing or not accepted")]
    WrongIssuer,
    /// `aud` is missing or names none of the configured audiences.
    #[error("token audience (aud) is missing or not accepted")]
    WrongAudience,
    /// `exp` is further ahead than the longest lifetime accepted.
    #[error("token lifetime too long (exp too far ahead); request a shorter-lived token")]
    TooLong,
    /// Not a well-formed JWT with the claims the service needs (`sub`, `exp`), or with a
    /// registered claim of the wrong type (`nbf` not a number, `iss` not a string).
    #[error("malformed token; expected a JWT with `sub` and `exp` claims")]
    Malformed,
}

/// Longest token lifetime accepted unless configured (`exp` at most this far ahead, plus
/// the leeway): 24 hours.
pub const DEFAULT_MAX_LIFETIME_SECS: u64 = 24 * 3600;

/// The claims as decoded: those the service reads, and the registered ones whose type the
/// decoder leaves unchecked (it ignores an `nbf` that is not a number and takes an `iss`
/// array as "any of these"), so that a wrong type fails decoding.
#[derive(Deserialize)]
struct Decoded {
    sub: String,
    exp: u64,
    #[serde(default)]
    #[allow(dead_code)] // read for its type only; the decoder checks its value
    nbf: Option<serde_json::Number>,
    #[serde(default)]
    #[allow(dead_code)] // read for its type only; the decoder checks its value
    iss: Option<String>,
}

/// Which configured secret verified a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyUsed {
    /// `JWT_SECRET`.
    Current,
    /// `JWT_SECRET_PREVIOUS`, accepted while a rotation is under way.
    Previous,
}

impl KeyUsed {
    /// The metric label value: `current` or `previous` (no secret material).
    pub fn label(self) -> &'static str {
        match self {
            KeyUsed::Current => "current",
            KeyUsed::Previous => "previous",
        }
    }
}

/// Verifies tokens.
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    /// The secret being rotated out, tried when `key` does not verify the signature.
    previous: Option<DecodingKey>,
    validation: Validation,
    max_lifetime_secs: u64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("key", &"<redacted>")
            .field("previous", &self.previous.as_ref().map(|_| "<redacted>"))
            .field("alg", &"HS256")
            .field("iss", &self.validation.iss)
            .field("aud", &self.validation.aud)
            .field("max_lifetime_secs", &self.max_lifetime_secs)
            .finish()
    }
}

impl Verifier {
    /// A verifier for tokens signed with `secret`, checking neither `iss` nor `aud`.
    pub fn new(secret: &str) -> Self {
        Self::with_claims(secret, None, &[])
    }

    /// A verifier for tokens signed with `secret`; with `issuer`, `iss` must equal it; with
    /// `audiences` non-empty, `aud` must name one of them.
    pub fn with_claims(secret: &str, issuer: Option<&str>, audiences: &[String]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(iss) = issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        if audiences.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(audiences);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        Verifier {
            key: DecodingKey::from_secret(secret.as_bytes()),
            previous: None,
            validation,
            max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
        }
    }

    /// The same verifier, accepting tokens whose `exp` is at most `secs` ahead (plus the
    /// leeway) instead of [`DEFAULT_MAX_LIFETIME_SECS`].
    pub fn with_max_lifetime_secs(mut self, secs: u64) -> Self {
        self.max_lifetime_secs = secs;
        self
    }

    /// The same verifier, also accepting tokens signed with `previous` (the secret being
    /// rotated out) when their signature does not verify with the current one.
    pub fn with_previous(mut self, previous: &str) -> Self {
        self.previous = Some(DecodingKey::from_secret(previous.as_bytes()));
        self
    }

    /// Checks an `Authorization` header value.
    pub fn verify_header(&self, header: Option<&str>) -> Result<Claims, AuthError> {
        self.verify_header_key(header).map(|(claims, _)| claims)
    }

    /// Checks an `Authorization` header value, and says which secret verified the token.
    pub fn verify_header_key(&self, header: Option<&str>) -> Result<(Claims, KeyUsed), AuthError> {
        let token = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        let decode = |key| jsonwebtoken::decode::<Decoded>(token, key, &self.validation);
        // The signature is checked before any claim, so a token of the previous secret fails
        // the current one with InvalidSignature, and then gets the previous one's verdict.
        let (decoded, used) = match (decode(&self.key), &self.previous) {
            (Err(e), Some(previous)) if *e.kind() == ErrorKind::InvalidSignature => {
                (decode(previous), KeyUsed::Previous)
            }
            (decoded, _) => (decoded, KeyUsed::Current),
        };
        let claims = decoded
            .map(|d| Claims {
                sub: d.claims.sub,
                exp: d.claims.exp,
            })
            .map_err(|e| {
                tracing::debug!(error = %e, "token refused");
                match e.kind() {
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                    ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                        AuthError::BadSignature
                    }
                    ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
                    ErrorKind::InvalidAudience => AuthError::WrongAudience,
                    ErrorKind::MissingRequiredClaim(c) if c == "iss" => AuthError::WrongIssuer,
                    ErrorKind::MissingRequiredClaim(c) if c == "aud" => AuthError::WrongAudience,
                    _ => AuthError::Malformed,
                }
            })?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if claims.exp > now.saturating_add(self.max_lifetime_secs + LEEWAY_SECS) {
            return Err(AuthError::TooLong);
        }
        Ok((claims, used))
    }
}

/// Signs an HS256 token for `sub` that expires `ttl_secs` from now.
pub fn mint_token(secret: &str, sub: &str, ttl_secs: u64) -> String {
    mint_token_with(secret, sub, ttl_secs, None, None)
}

/// Signs an HS256 token for `sub` that expires `ttl_secs` from now, with `iss` and `aud`
/// claims when given.
pub fn mint_token_with(
    secret: &str,
    sub: &str,
    ttl_secs: u64,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut claims = serde_json::json!({ "sub": sub, "exp": now + ttl_secs, "iat": now });
    if let Some(iss) = issuer {
        claims["iss"] = iss.into();
    }
    if let Some(aud) = audience {
        claims["aud"] = aud.into();
    }
    // Encoding HS256 with an in-memory key cannot fail.
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn sign(claims: &Value) -> String {
        let t = jsonwebtoken::encode(
            &Header::default(),
            claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        format!("Bearer {t}")
    }

    #[test]
    fn tokens_verify_only_with_the_right_secret_and_scheme() {
        let v = Verifier::new(SECRET);
        let t = mint_token(SECRET, "alice", 60);
        assert_eq!(
            v.verify_header(Some(&format!("Bearer {t}"))).unwrap().sub,
            "alice"
        );
        assert_eq!(v.verify_header(None), Err(AuthError::Missing));
        assert_eq!(
            v.verify_header(Some(&format!("Basic {t}"))),
            Err(AuthError::Missing)
        );
        let other = mint_token("another-secret-another-secret-xx", "alice", 60);
        assert_eq!(
            v.verify_header(Some(&format!("Bearer {other}"))),
            Err(AuthError::BadSignature)
        );
    }

    /// Rotation: a token of the current or the previous secret verifies (and says which),
    /// a token of neither is refused, and the previous secret's tokens are held to the same
    /// claim checks.
    #[test]
    fn a_token_of_either_key_passes_and_of_neither_fails() {
        const PREVIOUS: &str = "fedcba9876543210fedcba9876543210";
        let v = Verifier::new(SECRET).with_previous(PREVIOUS);
        let bearer = |secret: &str| format!("Bearer {}", mint_token(secret, "alice", 60));
        let (claims, used) = v.verify_header_key(Some(&bearer(SECRET))).unwrap();
        assert_eq!((claims.sub.as_str(), used), ("alice", KeyUsed::Current));
        let (claims, used) = v.verify_header_key(Some(&bearer(PREVIOUS))).unwrap();
        assert_eq!((claims.sub.as_str(), used), ("alice", KeyUsed::Previous));
        assert_eq!(
            v.verify_header(Some(&bearer("neither-secret-neither-secret-xxx"))),
            Err(AuthError::BadSignature)
        );
        // Without the previous secret, its tokens are refused.
        assert_eq!(
            Verifier::new(SECRET).verify_header(Some(&bearer(PREVIOUS))),
            Err(AuthError::BadSignature)
        );
        let expired = jsonwebtoken::encode(
            &Header::default(),
            &json!({"sub": "a", "exp": 1_000_000}),
            &EncodingKey::from_secret(PREVIOUS.as_bytes()),
        )
        .unwrap();
        assert_eq!(
            v.verify_header(Some(&format!("Bearer {expired}"))),
            Err(AuthError::Expired)
        );
        assert_eq!(
            (KeyUsed::Current.label(), KeyUsed::Previous.label()),
            ("current", "previous")
        );
        assert!(!format!("{v:?}").contains(PREVIOUS), "{v:?}");
    }

    #[test]
    fn expired_tokens_are_refused() {
        let v = Verifier::new(SECRET);
        let t = sign(&json!({"sub": "a", "exp": 1_000_000}));
        assert_eq!(v.verify_header(Some(&t)), Err(AuthError::Expired));
    }

    #[test]
    fn tokens_not_valid_yet_are_refused() {
        let v = Verifier::new(SECRET);
        let later = sign(&json!({"sub": "a", "exp": now() + 7200, "nbf": now() + 3600}));
        assert_eq!(v.verify_header(Some(&later)), Err(AuthError::NotYetValid));
        let skewed = sign(&json!({"sub": "a", "exp": now() + 7200, "nbf": now() + 10}));
        assert!(v.verify_header(Some(&skewed)).is_ok(), "within the leeway");
    }

    #[test]
    fn issuer_and_audience_are_checked_only_when_configured() {
        let exp = now() + 600;
        let idp =
            sign(&json!({"sub": "a", "exp": exp, "iss": "https://idp", "aud": ["api", "other"]}));
        let bare = sign(&json!({"sub": "a", "exp": exp}));
        // Unconfigured: an identity provider's iss/aud do not get a token refused.
        let open = Verifier::new(SECRET);
        assert!(open.verify_header(Some(&idp)).is_ok());
        assert!(open.verify_header(Some(&bare)).is_ok());

        let strict = Verifier::with_claims(SECRET, Some("https://idp"), &["api".to_owned()]);
        assert!(strict.verify_header(Some(&idp)).is_ok());
        let no_iss = sign(&json!({"sub": "a", "exp": exp, "aud": "api"}));
        assert_eq!(
            strict.verify_header(Some(&no_iss)),
            Err(AuthError::WrongIssuer)
        );
        assert!(strict.verify_header(Some(&bare)).is_err());
        let wrong_iss = sign(&json!({"sub": "a", "exp": exp, "iss": "https://evil", "aud": "api"}));
        assert_eq!(
            strict.verify_header(Some(&wrong_iss)),
            Err(AuthError::WrongIssuer)
        );
        let wrong_aud = sign(&json!({"sub": "a", "exp": exp, "iss": "https://idp", "aud": "web"}));
        assert_eq!(
            strict.verify_header(Some(&wrong_aud)),
            Err(AuthError::WrongAudience)
        );
        let no_aud = sign(&json!({"sub": "a", "exp": exp, "iss": "https://idp"}));
        assert_eq!(
            strict.verify_header(Some(&no_aud)),
            Err(AuthError::WrongAudience)
        );
        let minted = mint_token_with(SECRET, "a", 60, Some("https://idp"), Some("api"));
        assert!(
            strict
                .verify_header(Some(&format!("Bearer {minted}")))
                .is_ok()
        );
    }

    /// Issue 24, bug 5: an `nbf` that is not a number is refused (not ignored), an `iss`
    /// array is not an issuer (even holding the configured one), and a token may live at
    /// most the configured lifetime (24 h unless set).
    #[test]
    fn issue_24_claims_are_checked_strictly() {
        let exp = now() + 600;
        let open = Verifier::new(SECRET);
        for nbf in [json!("soon"), json!([1]), json!({"t": 1})] {
            let t = sign(&json!({"sub": "a", "exp": exp, "nbf": nbf}));
            assert_eq!(
                open.verify_header(Some(&t)),
                Err(AuthError::Malformed),
                "{nbf}"
            );
        }
        let strict = Verifier::with_claims(SECRET, Some("https://idp"), &[]);
        let array = sign(&json!({"sub": "a", "exp": exp, "iss": ["https://evil", "https://idp"]}));
        assert!(strict.verify_header(Some(&array)).is_err());
        assert!(
            open.verify_header(Some(&array)).is_err(),
            "not a valid iss anywhere"
        );

        assert_eq!(DEFAULT_MAX_LIFETIME_SECS, 24 * 3600);
        for far in [now() + 25 * 3600, 1 << 63, u64::MAX] {
            let t = sign(&json!({"sub": "a", "exp": far}));
            assert_eq!(
                open.verify_header(Some(&t)),
                Err(AuthError::TooLong),
                "{far}"
            );
        }
        let day = sign(&json!({"sub": "a", "exp": now() + 23 * 3600}));
        assert!(open.verify_header(Some(&day)).is_ok());
        let short = Verifier::new(SECRET).with_max_lifetime_secs(3600);
        assert_eq!(short.verify_header(Some(&day)), Err(AuthError::TooLong));
    }

    #[test]
    fn refusals_do_not_echo_decoder_internals() {
        let v = Verifier::new(SECRET);
        for bad in [
            "Bearer not-a-jwt",
            "Bearer a.b.c",
            &sign(&json!({"exp": now() + 60})),
            &sign(&json!({"sub": 5, "exp": now() + 60})),
        ] {
            let e = v.verify_header(Some(bad)).unwrap_err();
            assert_eq!(e, AuthError::Malformed, "{bad}");
            let text = e.to_string();
            for internal in ["Base64", "Json", "line", "column", "InvalidToken", "field"] {
                assert!(!text.contains(internal), "{text}");
            }
        }
    }
}
