//! JWT (HS256) authentication for `/v1/*`: a bearer token signed with `JWT_SECRET`, with an
//! `exp` claim in the future. Only HS256 is accepted, whatever the token's header claims.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Claims the service reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subject: who calls.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

/// Why a request was refused (401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token; send `Authorization: Bearer <JWT>`")]
    Missing,
    /// The token does not verify.
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Verifies tokens.
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier { key: <redacted>, alg: HS256 }")
    }
}

impl Verifier {
    /// A verifier for tokens signed with `secret`.
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 30;
        Verifier {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// Checks an `Authorization` header value.
    pub fn verify_header(&self, header: Option<&str>) -> Result<Claims, AuthError> {
        let token = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| AuthError::Invalid(e.to_string()))
    }
}

/// Signs an HS256 token for `sub` that expires `ttl_secs` from now.
pub fn mint_token(secret: &str, sub: &str, ttl_secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = Claims {
        sub: sub.to_owned(),
        exp: now + ttl_secs,
    };
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

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

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
        assert!(matches!(
            v.verify_header(Some(&format!("Bearer {other}"))),
            Err(AuthError::Invalid(_))
        ));
    }

    #[test]
    fn expired_tokens_are_refused() {
        let v = Verifier::new(SECRET);
        let claims = Claims {
            sub: "a".into(),
            exp: 1_000_000,
        };
        let t = jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(matches!(
            v.verify_header(Some(&format!("Bearer {t}"))),
            Err(AuthError::Invalid(_))
        ));
    }
}
