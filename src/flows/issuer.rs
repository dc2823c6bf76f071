//! The deployment's certificate issuer keys (ES256). Created on first start;
//! the public halves are published as a JWKS. A key's `kid` is derived from
//! the key itself (RFC 7638 thumbprint), never chosen.

use crate::clock::now;
use crate::crypto::MasterKey;
use crate::db::models::issuer_keys::IssuerKeyRow;
use crate::db::{DbConn, DbError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use p256::ecdsa::SigningKey;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub const ACTIVE: &str = "active";

pub fn wrap_label(kid: &str) -> String {
    format!("vrs/issuer-key/v1:{kid}")
}

/// A public key as published in the JWKS.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct PublicJwk {
    pub kty: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
    pub crv: String,
    pub x: String,
    pub y: String,
    #[serde(rename = "crlVersion", skip_serializing_if = "Option::is_none")]
    pub crl_version: Option<i32>,
}

/// RFC 7638: SHA-256 over the required members in lexicographic order, no
/// whitespace, base64url without padding.
pub fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    B64URL.encode(Sha256::digest(canonical.as_bytes()))
}

fn public_jwk(key: &SigningKey) -> PublicJwk {
    let point = key.verifying_key().to_encoded_point(false);
    let x = B64URL.encode(point.x().expect("uncompressed point has x"));
    let y = B64URL.encode(point.y().expect("uncompressed point has y"));
    PublicJwk {
        kty: "EC".into(),
        kid: thumbprint(&x, &y),
        use_: "sig".into(),
        alg: "ES256".into(),
        crv: "P-256".into(),
        x,
        y,
        crl_version: None,
    }
}

/// Creates a signing key unless an active one exists. Returns its kid and
/// whether it was created now.
pub fn ensure_issuer_key(conn: &mut DbConn, master: &MasterKey) -> Result<(String, bool), DbError> {
    if let Some(k) = IssuerKeyRow::active(conn)? {
        return Ok((k.kid, false));
    }
    Ok((create_key(conn, master)?, true))
}

fn create_key(conn: &mut DbConn, master: &MasterKey) -> Result<String, DbError> {
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let jwk = public_jwk(&key);
    let kid = jwk.kid.clone();
    IssuerKeyRow {
        kid: kid.clone(),
        status: ACTIVE.into(),
        public_jwk: serde_json::to_string(&jwk).map_err(DbError::from)?,
        wrapped_private_key: master.wrap(&wrap_label(&kid), &key.to_bytes()),
        master_key_id: master.key_id(),
        crl_version: 0,
        created_at: now(),
        retired_at: None,
    }
    .insert(conn)?;
    Ok(kid)
}

#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the deployment has no active issuer key")]
    NoKey,
    #[error("issuer key {0} cannot be unwrapped with the current master key")]
    Unwrap(String),
}

impl crate::db::DbCause for IssuerError {
    fn db_cause(&self) -> Option<&DbError> {
        match self {
            IssuerError::Db(e) => Some(e),
            _ => None,
        }
    }
}
crate::db::from_diesel_via_db_error!(IssuerError);

/// The active key, opened for signing.
pub fn signer(conn: &mut DbConn, master: &MasterKey) -> Result<crate::shc::Signer, IssuerError> {
    let row = IssuerKeyRow::active(conn)?.ok_or(IssuerError::NoKey)?;
    let bytes = master
        .unwrap_bytes(&wrap_label(&row.kid), &row.wrapped_private_key)
        .ok_or_else(|| IssuerError::Unwrap(row.kid.clone()))?;
    let key = SigningKey::from_slice(&bytes).map_err(|_| IssuerError::Unwrap(row.kid.clone()))?;
    Ok(crate::shc::Signer::new(key, row.kid))
}

/// Signs new cards with a new key from now on. The old key is retained:
/// its public half stays in the JWKS, so every card it signed still
/// verifies, and its revocation list stays served. Logged in the platform
/// chain. Returns the old and the new kid.
pub fn rotate(
    conn: &mut DbConn,
    master: &MasterKey,
    audit_key: &crate::audit::AuditKey,
    actor: &crate::audit::Actor,
) -> Result<(Option<String>, String), IssuerError> {
    crate::db::write_transaction(conn, |conn| {
        let old = IssuerKeyRow::active(conn)?;
        if let Some(k) = &old {
            IssuerKeyRow::retain(conn, &k.kid, now())?;
        }
        let new = create_key(conn, master)?;
        let old = old.map(|k| k.kid);
        crate::audit::append(
            conn,
            audit_key,
            actor,
            crate::audit::Entry::done(
                crate::audit::PLATFORM_CHAIN,
                "issuer.rotate",
                Some(format!("issuer_key:{new}")),
                Some(format!("retained={}", old.as_deref().unwrap_or("-"))),
            ),
        )?;
        Ok((old, new))
    })
}

/// A key's card revocation list; `None` for a key never published.
pub fn crl(conn: &mut DbConn, kid: &str) -> Result<Option<crate::shc::Crl>, DbError> {
    use crate::db::models::certificates::RevocationRow;
    let Some(key) = IssuerKeyRow::find(conn, kid)? else {
        return Ok(None);
    };
    if key.status == "revoked" {
        return Ok(None);
    }
    Ok(Some(crate::shc::Crl {
        kid: key.kid.clone(),
        method: "rid".into(),
        ctr: key.crl_version.into(),
        rids: RevocationRow::of_key(conn, kid)?
            .into_iter()
            .map(|r| r.rid)
            .collect(),
    }))
}

/// The published keys as a verifier reads them.
pub fn verifier_keys(conn: &mut DbConn) -> Result<Vec<crate::shc::Jwk>, DbError> {
    Ok(jwks(conn)?
        .keys
        .into_iter()
        .map(|k| crate::shc::Jwk {
            kty: k.kty,
            kid: k.kid,
            crv: k.crv,
            x: k.x,
            y: k.y,
        })
        .collect())
}

#[derive(Debug, Serialize)]
pub struct Jwks {
    pub keys: Vec<PublicJwk>,
}

/// The published keys: active and retained (so older cards still verify).
pub fn jwks(conn: &mut DbConn) -> Result<Jwks, DbError> {
    let keys = IssuerKeyRow::published(conn)?
        .into_iter()
        .filter_map(|row| {
            let mut jwk: PublicJwk = serde_json::from_str(&row.public_jwk).ok()?;
            if row.crl_version > 0 {
                jwk.crl_version = Some(row.crl_version);
            }
            Some(jwk)
        })
        .collect();
    Ok(Jwks { keys })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_thumbprint_of_the_smart_health_cards_example_shape() {
        // The thumbprint covers exactly crv, kty, x, y in that order.
        let t1 = thumbprint("abc", "def");
        let t2 = thumbprint("abc", "deg");
        assert_ne!(t1, t2);
        assert_eq!(t1.len(), 43);
        assert!(!t1.contains('='));
    }

    #[test]
    fn kid_is_derived_from_the_key() {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let jwk = public_jwk(&key);
        assert_eq!(jwk.kid, thumbprint(&jwk.x, &jwk.y));
    }
}
