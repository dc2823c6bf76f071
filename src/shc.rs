//! SMART Health Cards (HL7 SMART Health Cards and Links IG, STU1): the card
//! as the specification defines it, with no database and no keys of ours.
//! A card is a FHIR R4 Bundle, minified, compressed with raw DEFLATE and
//! signed as a compact JWS (ES256, header `zip: "DEF"`, `kid` the RFC 7638
//! thumbprint of the key); it travels as `shc:/` plus two digits per JWS
//! character in one numeric-mode QR code of version 22 at most.
//!
//! The numeric encoding, the segment layout of the QR code and the card's
//! checks are written here by hand: no maintained crate implements them.
//! DEFLATE, ECDSA and QR error correction come from libraries.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use chrono::NaiveDate;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use qrcodegen::QrCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::io::{Read, Write};

pub const HEALTH_CARD: &str = "https://smarthealth.cards#health-card";
pub const CVX: &str = "http://hl7.org/fhir/sid/cvx";
/// CVX 213, "SARS-COV-2 (COVID-19) vaccine, UNSPECIFIED FORMULATION": the
/// code a dose gets when its product has no CVX code of its own.
pub const CVX_UNSPECIFIED: &str = "213";
pub const FHIR_VERSION: &str = "4.0.1";
/// The largest QR version the specification allows for one code, at error
/// correction level L; it holds a JWS of at most 1,195 characters.
pub const MAX_QR_VERSION: u8 = 22;
pub const MAX_JWS_CHARS: usize = 1195;
pub const QR_PREFIX: &str = "shc:/";
/// `application/smart-health-card`, the file a wallet imports.
pub const FILE_MEDIA_TYPE: &str = "application/smart-health-card";
/// A card inflates to a few kilobytes; anything much larger is not a card.
const MAX_INFLATED: u64 = 64 * 1024;

/// The person, as the card names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    pub family: String,
    pub given: Vec<String>,
    pub birth_date: NaiveDate,
}

/// One dose, as the card records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Immunization {
    pub cvx: String,
    pub date: NaiveDate,
    pub lot: Option<String>,
    pub performer: String,
}

/// The FHIR Bundle, already minimised as the specification asks: resources
/// referenced as `resource:N`, no ids, no narrative, no display texts.
pub fn bundle(patient: &Patient, doses: &[Immunization]) -> Value {
    let mut name = json!({ "family": patient.family });
    if !patient.given.is_empty() {
        name["given"] = json!(patient.given);
    }
    let mut entry = vec![json!({
        "fullUrl": "resource:0",
        "resource": {
            "resourceType": "Patient",
            "name": [name],
            "birthDate": patient.birth_date.format("%Y-%m-%d").to_string(),
        }
    })];
    for (i, d) in doses.iter().enumerate() {
        let mut resource = json!({
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": { "coding": [{ "system": CVX, "code": d.cvx }] },
            "patient": { "reference": "resource:0" },
            "occurrenceDateTime": d.date.format("%Y-%m-%d").to_string(),
            "performer": [{ "actor": { "display": d.performer } }],
        });
        if let Some(lot) = &d.lot {
            resource["lotNumber"] = json!(lot);
        }
        entry.push(json!({ "fullUrl": format!("resource:{}", i + 1), "resource": resource }));
    }
    json!({ "resourceType": "Bundle", "type": "collection", "entry": entry })
}

/// The JWS payload: issuer, not-before time (seconds), the credential and
/// its revocation id.
pub fn payload(iss: &str, nbf: i64, bundle: Value, rid: &str) -> Value {
    json!({
        "iss": iss,
        "nbf": nbf,
        "vc": {
            "type": [HEALTH_CARD],
            "credentialSubject": { "fhirVersion": FHIR_VERSION, "fhirBundle": bundle },
            "rid": rid,
        }
    })
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CardError {
    #[error("the card is {0} characters long; one QR code holds at most {MAX_JWS_CHARS}")]
    TooLong(usize),
}

/// Signs payloads with one issuer key.
pub struct Signer {
    key: SigningKey,
    kid: String,
    header: String,
}

impl Signer {
    pub fn new(key: SigningKey, kid: String) -> Signer {
        let header = B64URL.encode(
            serde_json::to_vec(&json!({ "alg": "ES256", "kid": kid, "zip": "DEF" }))
                .expect("a JSON object serialises"),
        );
        Signer { key, kid, header }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The compact JWS of a payload: minified JSON, raw DEFLATE, ES256.
    pub fn sign(&self, payload: &Value) -> String {
        let json = serde_json::to_vec(payload).expect("a JSON value serialises");
        let mut deflater =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        deflater
            .write_all(&json)
            .expect("writing to memory cannot fail");
        let compressed = deflater.finish().expect("writing to memory cannot fail");
        let mut jws = format!("{}.{}", self.header, B64URL.encode(compressed));
        let signature: Signature = self.key.sign(jws.as_bytes());
        jws.push('.');
        jws.push_str(&B64URL.encode(signature.to_bytes()));
        jws
    }
}

/// `shc:/` and two digits per character: the character's code minus 45.
pub fn numeric(jws: &str) -> String {
    let mut out = String::with_capacity(QR_PREFIX.len() + 2 * jws.len());
    out.push_str(QR_PREFIX);
    for b in jws.bytes() {
        let n = b.saturating_sub(b'-');
        out.push(char::from(b'0' + n / 10));
        out.push(char::from(b'0' + n % 10));
    }
    out
}

/// The one QR code of a card: `shc:/` in a byte segment, the digits in a
/// numeric segment, error correction L, the smallest version that holds it.
pub fn qr(jws: &str) -> Result<QrCode, CardError> {
    if jws.len() > MAX_JWS_CHARS {
        return Err(CardError::TooLong(jws.len()));
    }
    let text = numeric(jws);
    let segs = [
        crate::qr::Segment::make_bytes(QR_PREFIX.as_bytes()),
        crate::qr::Segment::make_numeric(&text[QR_PREFIX.len()..]),
    ];
    crate::qr::encode(&segs, crate::qr::Ecc::Low, MAX_QR_VERSION)
        .ok_or(CardError::TooLong(jws.len()))
}

/// The QR code as an inline SVG image, for screen and print.
pub fn qr_svg(code: &QrCode) -> String {
    crate::qr::svg(code, 320)
}

/// The contents of a `.smart-health-card` file.
pub fn file(jws: &str) -> String {
    json!({ "verifiableCredential": [jws] }).to_string()
}

/// A public key as a verifier needs it from the issuer's JWKS.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub kid: String,
    pub crv: String,
    pub x: String,
    pub y: String,
}

/// Why a text is not a valid card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("not a SMART Health Card QR text or JWS")]
    NotACard,
    #[error("the card was not signed by a key of this issuer")]
    UnknownKey,
    #[error("the signature does not match the card")]
    BadSignature,
    #[error("the card's contents are not a SMART Health Card")]
    BadContents,
    #[error("the card names another issuer")]
    OtherIssuer,
}

/// A card's text as scanned or pasted: the QR text (`shc:/…`), a bare JWS,
/// or a `.smart-health-card` file's JSON.
pub fn jws_of(text: &str) -> Result<String, Invalid> {
    let text = text.trim();
    if let Some(digits) = text
        .strip_prefix(QR_PREFIX)
        .or_else(|| text.strip_prefix("SHC:/"))
    {
        let d = digits.as_bytes();
        if d.is_empty() || d.len() % 2 != 0 || !d.iter().all(u8::is_ascii_digit) {
            return Err(Invalid::NotACard);
        }
        return d
            .chunks(2)
            .map(|p| {
                let n = (p[0] - b'0') * 10 + (p[1] - b'0');
                char::from_u32(u32::from(n) + 45).ok_or(Invalid::NotACard)
            })
            .collect();
    }
    if text.starts_with('{') {
        #[derive(Deserialize)]
        struct File {
            #[serde(rename = "verifiableCredential")]
            vc: Vec<String>,
        }
        let f: File = serde_json::from_str(text).map_err(|_| Invalid::NotACard)?;
        return f.vc.into_iter().next().ok_or(Invalid::NotACard);
    }
    Ok(text.to_string())
}

/// A card taken apart, its signature not yet checked.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub kid: String,
    pub payload: Value,
    signing_input: String,
    signature: Signature,
}

pub fn parse(jws: &str) -> Result<Parsed, Invalid> {
    let mut parts = jws.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Invalid::NotACard);
    };
    let header: Value = B64URL
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(Invalid::NotACard)?;
    if header["alg"] != "ES256" || header["zip"] != "DEF" {
        return Err(Invalid::NotACard);
    }
    let kid = header["kid"].as_str().ok_or(Invalid::NotACard)?.to_string();
    let compressed = B64URL.decode(p).map_err(|_| Invalid::NotACard)?;
    let mut json = Vec::new();
    flate2::read::DeflateDecoder::new(compressed.as_slice())
        .take(MAX_INFLATED)
        .read_to_end(&mut json)
        .map_err(|_| Invalid::NotACard)?;
    let payload: Value = serde_json::from_slice(&json).map_err(|_| Invalid::BadContents)?;
    let signature = B64URL
        .decode(s)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or(Invalid::NotACard)?;
    Ok(Parsed {
        kid,
        payload,
        signing_input: format!("{h}.{p}"),
        signature,
    })
}

/// Checks the signature with the key the header names.
pub fn check_signature(parsed: &Parsed, keys: &[Jwk]) -> Result<(), Invalid> {
    let key = keys
        .iter()
        .find(|k| k.kid == parsed.kid)
        .ok_or(Invalid::UnknownKey)?;
    let coordinate = |c: &str| -> Result<[u8; 32], Invalid> {
        B64URL
            .decode(c)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(Invalid::UnknownKey)
    };
    if key.kty != "EC" || key.crv != "P-256" {
        return Err(Invalid::UnknownKey);
    }
    let point = p256::EncodedPoint::from_affine_coordinates(
        &coordinate(&key.x)?.into(),
        &coordinate(&key.y)?.into(),
        false,
    );
    let verifying = VerifyingKey::from_encoded_point(&point).map_err(|_| Invalid::UnknownKey)?;
    verifying
        .verify(parsed.signing_input.as_bytes(), &parsed.signature)
        .map_err(|_| Invalid::BadSignature)
}

/// What a card says, read from a checked payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    pub iss: String,
    pub nbf: i64,
    pub rid: Option<String>,
    pub patient: Patient,
    pub doses: Vec<Immunization>,
}

pub fn contents(payload: &Value) -> Result<Contents, Invalid> {
    let vc = &payload["vc"];
    let types = vc["type"].as_array().ok_or(Invalid::BadContents)?;
    if !types.iter().any(|t| t == HEALTH_CARD) {
        return Err(Invalid::BadContents);
    }
    let bundle = &vc["credentialSubject"]["fhirBundle"];
    if bundle["resourceType"] != "Bundle" {
        return Err(Invalid::BadContents);
    }
    let entries = bundle["entry"].as_array().ok_or(Invalid::BadContents)?;
    let date = |v: &Value| {
        v.as_str()
            .and_then(|s| NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok())
            .ok_or(Invalid::BadContents)
    };
    let text = |v: &Value| v.as_str().map(str::to_string);
    let mut patient = None;
    let mut doses = Vec::new();
    for e in entries {
        let r = &e["resource"];
        match r["resourceType"].as_str() {
            Some("Patient") => {
                let name = &r["name"][0];
                patient = Some(Patient {
                    family: text(&name["family"]).unwrap_or_default(),
                    given: name["given"]
                        .as_array()
                        .map(|g| g.iter().filter_map(text).collect())
                        .unwrap_or_default(),
                    birth_date: date(&r["birthDate"])?,
                });
            }
            Some("Immunization") => doses.push(Immunization {
                cvx: text(&r["vaccineCode"]["coding"][0]["code"]).ok_or(Invalid::BadContents)?,
                date: date(&r["occurrenceDateTime"])?,
                lot: text(&r["lotNumber"]),
                performer: text(&r["performer"][0]["actor"]["display"]).unwrap_or_default(),
            }),
            _ => {}
        }
    }
    Ok(Contents {
        iss: text(&payload["iss"]).ok_or(Invalid::BadContents)?,
        nbf: payload["nbf"]
            .as_f64()
            .map(|n| n as i64)
            .ok_or(Invalid::BadContents)?,
        rid: text(&vc["rid"]),
        patient: patient.ok_or(Invalid::BadContents)?,
        doses,
    })
}

/// A per-key card revocation list, as served at
/// `<iss>/.well-known/crl/<kid>.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Crl {
    pub kid: String,
    pub method: String,
    pub ctr: i64,
    pub rids: Vec<String>,
}

impl Crl {
    /// Whether the list revokes a card: its rid is listed, bare or with a
    /// timestamp after the card's not-before time.
    pub fn revokes(&self, rid: &str, nbf: i64) -> bool {
        self.rids.iter().any(|entry| match entry.split_once('.') {
            None => entry == rid,
            Some((r, at)) => r == rid && at.parse::<i64>().is_ok_and(|t| nbf < t),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(doses: usize) -> (Signer, String) {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let signer = Signer::new(key, "kid-1".into());
        let patient = Patient {
            family: "YAMADA".into(),
            given: vec!["HANAKO".into()],
            birth_date: NaiveDate::from_ymd_opt(1960, 4, 1).unwrap(),
        };
        let ds: Vec<Immunization> = (0..doses)
            .map(|i| Immunization {
                cvx: "208".into(),
                date: NaiveDate::from_ymd_opt(2021, 6, 1 + i as u32).unwrap(),
                lot: Some(format!("FF{i:04}")),
                performer: "千代田区集団接種会場".into(),
            })
            .collect();
        let p = payload(
            "https://vrs.example.jp",
            1_700_000_000,
            bundle(&patient, &ds),
            "r1",
        );
        let jws = signer.sign(&p);
        (signer, jws)
    }

    #[test]
    fn numeric_encoding_round_trips_every_jws_character() {
        let jws = "abcXYZ-_.0189";
        let n = numeric(jws);
        assert!(n.starts_with("shc:/"));
        assert_eq!(&n[5..9], "5253"); // 'a' = 97 - 45, 'b' = 98 - 45
        assert_eq!(jws_of(&n).unwrap(), jws);
        assert_eq!(jws_of("shc:/123").unwrap_err(), Invalid::NotACard);
        assert_eq!(jws_of("shc:/12a4").unwrap_err(), Invalid::NotACard);
    }

    #[test]
    fn a_signed_card_parses_checks_and_reads_back() {
        let (signer, jws) = card(3);
        let key = signer.key.verifying_key().to_encoded_point(false);
        let jwk = Jwk {
            kty: "EC".into(),
            kid: "kid-1".into(),
            crv: "P-256".into(),
            x: B64URL.encode(key.x().unwrap()),
            y: B64URL.encode(key.y().unwrap()),
        };
        let parsed = parse(&jws).unwrap();
        assert_eq!(parsed.kid, "kid-1");
        check_signature(&parsed, std::slice::from_ref(&jwk)).unwrap();
        let c = contents(&parsed.payload).unwrap();
        assert_eq!(c.patient.family, "YAMADA");
        assert_eq!(c.doses.len(), 3);
        assert_eq!(c.rid.as_deref(), Some("r1"));

        // One changed character of the payload breaks the signature.
        let mut parts: Vec<String> = jws.split('.').map(String::from).collect();
        let p = parse(&signer.sign(&json!({"iss": "x"}))).unwrap();
        parts[1] = p.signing_input.split('.').nth(1).unwrap().to_string();
        let forged = parse(&parts.join(".")).unwrap();
        assert_eq!(
            check_signature(&forged, std::slice::from_ref(&jwk)),
            Err(Invalid::BadSignature)
        );
        let other = Jwk {
            kid: "other".into(),
            ..jwk
        };
        assert_eq!(check_signature(&parsed, &[other]), Err(Invalid::UnknownKey));
    }

    #[test]
    fn four_doses_fit_one_qr_code_within_the_largest_version() {
        let (_, jws) = card(4);
        let code = qr(&jws).unwrap();
        assert!(code.version().value() <= MAX_QR_VERSION);
        assert!(matches!(
            qr(&"a".repeat(MAX_JWS_CHARS + 1)),
            Err(CardError::TooLong(n)) if n == MAX_JWS_CHARS + 1
        ));
    }

    #[test]
    fn a_revocation_entry_with_a_timestamp_revokes_only_older_cards() {
        let crl = Crl {
            kid: "k".into(),
            method: "rid".into(),
            ctr: 2,
            rids: vec!["aaa".into(), "bbb.1700000000".into()],
        };
        assert!(crl.revokes("aaa", 1));
        assert!(crl.revokes("bbb", 1_699_999_999));
        assert!(!crl.revokes("bbb", 1_700_000_000));
        assert!(!crl.revokes("ccc", 1));
    }
}
