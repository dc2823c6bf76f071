//! TOTP second factor (RFC 6238: SHA-1, 6 digits, 30-second steps, one step
//! of clock skew either way). Secrets are wrapped by the master key; the
//! step of each accepted code is recorded so no code is accepted twice.

use super::MasterKey;
use totp_rs::{Algorithm, Secret, TOTP};

pub const STEP_SECONDS: u64 = 30;

fn totp(secret: &[u8]) -> Option<TOTP> {
    TOTP::new(Algorithm::SHA1, 6, 1, STEP_SECONDS, secret.to_vec()).ok()
}

pub fn new_secret() -> Vec<u8> {
    use rand::RngCore;
    let mut s = vec![0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut s);
    s
}

/// Base32 as authenticator apps take it.
pub fn encode(secret: &[u8]) -> String {
    Secret::Raw(secret.to_vec()).to_encoded().to_string()
}

pub fn decode(text: &str) -> Option<Vec<u8>> {
    Secret::Encoded(text.trim().to_string())
        .to_bytes()
        .ok()
        .filter(|s| s.len() >= 16)
}

/// The URI an authenticator app scans.
pub fn otpauth_uri(login_id: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/VRS:{login_id}?secret={}&issuer=VRS&algorithm=SHA1&digits=6&period={STEP_SECONDS}",
        encode(secret)
    )
}

/// The time step a code belongs to, if it is valid at `unix_time`.
pub fn verify(secret: &[u8], code: &str, unix_time: u64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret)?;
    [
        unix_time.saturating_sub(STEP_SECONDS),
        unix_time,
        unix_time + STEP_SECONDS,
    ]
    .into_iter()
    .find(|&at| {
        let expected = t.generate(at);
        expected.len() == code.len()
            && expected
                .bytes()
                .zip(code.bytes())
                .fold(0u8, |a, (x, y)| a | (x ^ y))
                == 0
    })
    .map(|at| (at / STEP_SECONDS) as i64)
}

/// The current code (tests and the enrolment check).
pub fn code_at(secret: &[u8], unix_time: u64) -> String {
    totp(secret)
        .map(|t| t.generate(unix_time))
        .unwrap_or_default()
}

fn label(account_id: &str) -> String {
    format!("vrs/totp/v1:{account_id}")
}

pub fn wrap(master: &MasterKey, account_id: &str, secret: &[u8]) -> Vec<u8> {
    master.wrap(&label(account_id), secret)
}

pub fn unwrap(master: &MasterKey, account_id: &str, wrapped: &[u8]) -> Option<Vec<u8>> {
    master
        .unwrap_bytes(&label(account_id), wrapped)
        .map(|z| z.to_vec())
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vector() {
        // RFC 6238 appendix B: secret "12345678901234567890", T=59 -> 94287082 (8 digits);
        // the 6-digit code is its last six digits.
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 59), "287082");
        assert_eq!(verify(secret, "287082", 59), Some(1));
        assert_eq!(
            verify(secret, "287082", 59 + 30),
            Some(1),
            "one step of skew"
        );
        assert_eq!(verify(secret, "287082", 59 + 90), None);
        assert_eq!(verify(secret, "28708", 59), None);
    }

    #[test]
    fn base32_round_trip() {
        let s = new_secret();
        assert_eq!(decode(&encode(&s)).unwrap(), s);
        assert!(decode("not base32!").is_none());
    }
}
