//! Flow 5: vaccination certificates (接種証明書). A certificate is issued on
//! application — at the window after an identity check (F17), or through a
//! registered app or kiosk channel the municipality has enabled (F18, F19)
//! — and carries the person's valid doses as a SMART Health Card signed
//! with the deployment's issuer key. Correcting or deleting a dose a card
//! carries revokes that card: its rid goes on the key's public revocation
//! list.

mod channels;
use super::residents::{self, MyNumberPurpose, Resident};
use crate::audit::{self, Actor, Entry};
use crate::clock::now;
use crate::crypto::AadContext;
use crate::db::TenantConn;
use crate::db::models::certificates::{
    self as rows, CertificateRow, ChannelClientRow, RevocationRow,
};
use crate::db::models::doses::{self as dose_rows, DoseRow};
use crate::db::models::issuer_keys::IssuerKeyRow;
use crate::db::{DbConn, DbError};
use crate::domain::{CertificateKind, Consent, MyNumber, Passport, Registry, VaccineCatalog};
use crate::shc;
use crate::tenancy::{Scope, TenancyError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
pub use channels::*;
use chrono::NaiveDate;
use rand::RngCore;

const TABLE: &str = "certificates";

/// How the application reached the municipality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Window,
    App,
    Kiosk,
}

impl Channel {
    pub fn code(&self) -> &'static str {
        match self {
            Channel::Window => "window",
            Channel::App => "app",
            Channel::Kiosk => "kiosk",
        }
    }

    pub fn parse(code: &str) -> Option<Channel> {
        [Channel::Window, Channel::App, Channel::Kiosk]
            .into_iter()
            .find(|c| c.code() == code)
    }

    pub fn label_key(&self) -> &'static str {
        match self {
            Channel::Window => "cert.channel.window",
            Channel::App => "cert.channel.app",
            Channel::Kiosk => "cert.channel.kiosk",
        }
    }
}

/// The issuer as cards name it, and its active key.
pub struct Issuer<'a> {
    pub url: &'a str,
    pub signer: &'a shc::Signer,
}

/// One application for a certificate.
#[derive(Debug, Clone)]
pub struct Application {
    pub kind: CertificateKind,
    /// Required for, and only kept with, the overseas type.
    pub passport: Option<Passport>,
    pub channel: Channel,
    /// The window's identity check; channels authenticate with the card.
    pub identity: Option<Consent>,
    /// The account, or the channel client, issuing.
    pub issued_by: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("no such resident or certificate")]
    NotFound,
    #[error("the resident has no valid dose to certify")]
    NoDoses,
    #[error("an overseas certificate needs the passport details")]
    PassportMissing,
    #[error("the card does not fit one QR code ({0} characters)")]
    TooLarge(usize),
    #[error("the municipality has not enabled this channel")]
    ChannelClosed,
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Resident(#[from] residents::ResidentError),
}

impl crate::db::DbCause for CertError {
    fn db_cause(&self) -> Option<&DbError> {
        match self {
            CertError::Tenancy(e) => crate::db::DbCause::db_cause(e),
            CertError::Db(e) => Some(e),
            CertError::Resident(e) => crate::db::DbCause::db_cause(e),
            _ => None,
        }
    }
}
crate::db::from_diesel_via_db_error!(CertError);

/// A certificate as pages and answers show it; its sealed card is opened
/// apart (`open`).
#[derive(Debug, Clone)]
pub struct Certificate {
    pub id: String,
    pub resident_id: String,
    pub kind: String,
    pub issued_on: chrono::NaiveDate,
    pub valid: bool,
    pub revoked_at: Option<chrono::NaiveDateTime>,
    pub revoked_reason: Option<String>,
}

impl From<&CertificateRow> for Certificate {
    fn from(r: &CertificateRow) -> Certificate {
        Certificate {
            id: r.id.clone(),
            resident_id: r.resident_id.clone(),
            kind: r.kind.clone(),
            issued_on: r.issued_on,
            valid: r.status == rows::VALID,
            revoked_at: r.revoked_at,
            revoked_reason: r.revoked_reason.clone(),
        }
    }
}

/// A certificate as issued: its record and its card.
#[derive(Debug, Clone)]
pub struct Issued {
    pub certificate: Certificate,
    pub jws: String,
}

fn ctx<'a>(column: &'static str, id: &'a str) -> AadContext<'a> {
    AadContext {
        table: TABLE,
        column,
        row_id: id,
    }
}

/// 証明書ID: 16 random hexadecimal digits in groups of four, for paper.
fn new_certificate_id() -> String {
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut b);
    let hex = hex::encode_upper(b);
    format!(
        "{}-{}-{}-{}",
        &hex[0..4],
        &hex[4..8],
        &hex[8..12],
        &hex[12..16]
    )
}

/// A per-card revocation id: 64 random bits, base64url (11 characters), so
/// the public list links to nothing.
fn new_rid() -> String {
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut b);
    B64URL.encode(b)
}

/// The name on the card: the passport's for the overseas type, else the
/// resident record's, split at the first space into family and given.
fn card_patient(resident: &Resident, passport: Option<&Passport>) -> shc::Patient {
    let (family, given) = match passport {
        Some(p) => (
            p.family.as_str().to_string(),
            vec![p.given.as_str().to_string()],
        ),
        None => {
            let name = resident.name_kanji.as_str().replace('\u{3000}', " ");
            let mut parts = name.split_whitespace();
            let family = parts.next().unwrap_or_default().to_string();
            let given: Vec<String> = parts.map(str::to_string).collect();
            let given = if given.is_empty() {
                Vec::new()
            } else {
                vec![given.join(" ")]
            };
            (family, given)
        }
    };
    shc::Patient {
        family,
        given,
        birth_date: resident.birth_date.date(),
    }
}

/// The code a card gives a product: its CVX code, or 213 where the product
/// has none (`reference/vaccines.csv` leaves it empty for Daichirona and Kostaive).
pub fn cvx_of(product_code: &str) -> String {
    VaccineCatalog::global()
        .get(product_code)
        .map(|p| p.cvx.clone())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| shc::CVX_UNSPECIFIED.to_string())
}

/// Who gave the dose, as the card names them: the site, else the
/// municipality that recorded it.
fn performer(scope: &Scope<'_>, d: &DoseRow) -> String {
    if let Some(site) = d.site_name.as_deref().filter(|s| !s.is_empty()) {
        return site.to_string();
    }
    let code = d
        .site_municipality_code
        .as_deref()
        .or(d.origin_municipality_code.as_deref())
        .and_then(|c| crate::domain::MunicipalityCode::parse(c).ok())
        .unwrap_or(scope.code());
    Registry::global()
        .get(&code)
        .map(|m| m.full_name())
        .unwrap_or_else(|| code.to_string())
}

/// The doses a certificate carries: the valid ones, in order of date.
fn certified_doses(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    resident_id: &str,
) -> Result<Vec<DoseRow>, CertError> {
    let mut doses: Vec<DoseRow> = DoseRow::of_resident(scope, conn, resident_id)?
        .into_iter()
        .filter(|d| d.status == dose_rows::VALID)
        .collect();
    doses.sort_by(|a, b| {
        (a.administered_on, a.dose_number).cmp(&(b.administered_on, b.dose_number))
    });
    Ok(doses)
}

/// Issues a certificate to one of the municipality's residents: builds and
/// signs the card, keeps the record (card and passport sealed) and logs it.
pub fn issue(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    issuer: &Issuer<'_>,
    resident: &Resident,
    app: &Application,
    actor: &Actor,
) -> Result<Issued, CertError> {
    let passport = match (app.kind, &app.passport) {
        (CertificateKind::Overseas, None) => return Err(CertError::PassportMissing),
        (CertificateKind::Overseas, Some(p)) => Some(p),
        (CertificateKind::Domestic, _) => None,
    };
    let doses = certified_doses(scope, conn, &resident.id)?;
    if doses.is_empty() {
        return Err(CertError::NoDoses);
    }
    let immunizations: Vec<shc::Immunization> = doses
        .iter()
        .map(|d| shc::Immunization {
            cvx: cvx_of(&d.product_code),
            date: d.administered_on,
            lot: d.lot_number.clone().filter(|l| !l.is_empty()),
            performer: performer(scope, d),
        })
        .collect();
    let at = now();
    let rid = new_rid();
    let payload = shc::payload(
        issuer.url,
        at.and_utc().timestamp(),
        shc::bundle(&card_patient(resident, passport), &immunizations),
        &rid,
    );
    let jws = issuer.signer.sign(&payload);
    if jws.len() > shc::MAX_JWS_CHARS {
        return Err(CertError::TooLarge(jws.len()));
    }
    let id = new_certificate_id();
    let passport_sealed = passport
        .map(|p| serde_json::to_vec(p).map(|json| scope.seal(ctx("passport", &id), &json)))
        .transpose()
        .map_err(DbError::from)?;
    let row = CertificateRow {
        municipality_code: scope.code().to_string(),
        id: id.clone(),
        resident_id: resident.id.clone(),
        kind: app.kind.code().into(),
        channel: app.channel.code().into(),
        issued_at: at,
        issued_on: crate::clock::today_in_japan(),
        issued_by: app.issued_by.clone(),
        kid: issuer.signer.kid().to_string(),
        rid,
        dose_ids: doses
            .iter()
            .map(|d| d.id.as_str())
            .collect::<Vec<_>>()
            .join(","),
        card_sealed: scope.seal(ctx("card", &id), jws.as_bytes()),
        passport_sealed,
        id_document: app
            .identity
            .as_ref()
            .map(|c| c.id_document.code().to_string()),
        id_checked_by: app.identity.as_ref().map(|c| c.checked_by.clone()),
        status: rows::VALID.into(),
        revoked_at: None,
        revoked_reason: None,
    };
    row.insert(conn)?;
    log(
        scope,
        conn,
        actor,
        "certificate.issue",
        Some(&resident.id),
        "ok",
        format!(
            "certificate={id} kind={} channel={} doses={} kid={}{}",
            app.kind.code(),
            app.channel.code(),
            doses.len(),
            row.kid,
            // Whoever reviews the log sees a protected resident's card.
            if resident.address_protected {
                " protected=1"
            } else {
                ""
            }
        ),
    )?;
    Ok(Issued {
        certificate: (&row).into(),
        jws,
    })
}

/// A line in the municipality's operation log, chained after the commit.
fn log(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    actor: &Actor,
    action: &str,
    resident: Option<&str>,
    outcome: &str,
    detail: String,
) -> Result<(), DbError> {
    audit::append_later(
        conn,
        actor,
        Entry {
            chain: scope.code().as_str(),
            action,
            target: resident.map(|r| format!("resident:{r}")),
            outcome,
            detail: Some(detail),
        },
    )
}

/// A certificate opened for its own municipality's staff: the card, what
/// it says, and the passport details kept with it.
#[derive(Debug, Clone)]
pub struct Opened {
    pub certificate: Certificate,
    pub jws: String,
    pub contents: shc::Contents,
    pub passport: Option<Passport>,
    /// The doses carried, as recorded (a corrected one shows its old values).
    pub doses: Vec<super::resident_doses::Dose>,
}

pub fn open(scope: &Scope<'_>, conn: &mut TenantConn<'_>, id: &str) -> Result<Opened, CertError> {
    let row = CertificateRow::find(conn, id)?.ok_or(CertError::NotFound)?;
    let jws = scope.open_string(ctx("card", &row.id), &row.card_sealed)?;
    let malformed = || TenancyError::Seal(scope.code(), crate::crypto::SealError::Malformed);
    let contents = shc::parse(&jws)
        .and_then(|p| shc::contents(&p.payload))
        .map_err(|_| malformed())?;
    let passport = match &row.passport_sealed {
        Some(sealed) => Some(
            serde_json::from_slice(&scope.open(ctx("passport", &row.id), sealed)?)
                .map_err(|_| malformed())?,
        ),
        None => None,
    };
    let ids: Vec<&str> = row.dose_ids.split(',').collect();
    let mut doses: Vec<_> = super::resident_doses::of_resident(scope, conn, &row.resident_id)?
        .into_iter()
        .filter(|d| ids.contains(&d.id.as_str()))
        .collect();
    doses.sort_by_key(|d| ids.iter().position(|i| *i == d.id));
    Ok(Opened {
        certificate: (&row).into(),
        jws,
        contents,
        passport,
        doses,
    })
}

/// Withdraws a certificate at staff's request (see `revoke`).
pub fn withdraw(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    id: &str,
    actor: &Actor,
) -> Result<bool, CertError> {
    let row = CertificateRow::find(conn, id)?.ok_or(CertError::NotFound)?;
    revoke(scope, conn, &row, "withdrawn", actor)
}

/// Revokes one certificate: marks it, puts its rid on its key's public list
/// and counts the list's change (`crlVersion`). False when it was not valid.
fn revoke(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    row: &CertificateRow,
    reason: &str,
    actor: &Actor,
) -> Result<bool, CertError> {
    let at = now();
    if !CertificateRow::revoke(conn, &row.id, at, reason)? {
        return Ok(false);
    }
    RevocationRow {
        kid: row.kid.clone(),
        rid: row.rid.clone(),
        revoked_at: at,
    }
    .insert(conn)?;
    IssuerKeyRow::bump_crl_version(conn, &row.kid)?;
    log(
        scope,
        conn,
        actor,
        "certificate.revoke",
        Some(&row.resident_id),
        "ok",
        format!("certificate={} reason={reason}", row.id),
    )?;
    Ok(true)
}

/// Revokes every valid certificate that carries a dose (called when the
/// dose is corrected or deleted). Returns how many were revoked.
pub fn revoke_carrying(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    resident_id: &str,
    dose_id: &str,
    actor: &Actor,
) -> Result<usize, CertError> {
    let mut n = 0;
    for row in CertificateRow::of_resident(conn, resident_id)? {
        if row.status == rows::VALID
            && row.carries(dose_id)
            && revoke(scope, conn, &row, "dose_changed", actor)?
        {
            n += 1;
        }
    }
    Ok(n)
}

/// A certificate as a resident's record lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub kind: String,
    pub channel: String,
    pub issued_on: chrono::NaiveDate,
    /// Neither revoked nor replaced.
    pub valid: bool,
}

/// The resident's certificates, newest first.
pub fn of_resident(conn: &mut TenantConn<'_>, resident_id: &str) -> Result<Vec<Listed>, DbError> {
    Ok(rows::CertificateRow::of_resident(conn, resident_id)?
        .into_iter()
        .map(|c| Listed {
            valid: c.status == rows::VALID,
            id: c.id,
            kind: c.kind,
            channel: c.channel,
            issued_on: c.issued_on,
        })
        .collect())
}

/// What a scanned or pasted card came to, checked against this issuer's
/// published keys and revocation lists.
#[derive(Debug, Clone)]
pub enum Verdict {
    Valid(shc::Contents),
    Revoked(shc::Contents),
    Invalid(shc::Invalid),
}

pub fn verify(conn: &mut DbConn, issuer_url: &str, text: &str) -> Result<Verdict, DbError> {
    let parsed = match shc::jws_of(text).and_then(|jws| shc::parse(&jws)) {
        Ok(p) => p,
        Err(e) => return Ok(Verdict::Invalid(e)),
    };
    let keys = super::issuer::verifier_keys(conn)?;
    if let Err(e) = shc::check_signature(&parsed, &keys) {
        return Ok(Verdict::Invalid(e));
    }
    let contents = match shc::contents(&parsed.payload) {
        Ok(c) => c,
        Err(e) => return Ok(Verdict::Invalid(e)),
    };
    if contents.iss != issuer_url {
        return Ok(Verdict::Invalid(shc::Invalid::OtherIssuer));
    }
    let revoked = match (&contents.rid, super::issuer::crl(conn, &parsed.kid)?) {
        (Some(rid), Some(crl)) => crl.revokes(rid, contents.nbf),
        _ => false,
    };
    Ok(if revoked {
        Verdict::Revoked(contents)
    } else {
        Verdict::Valid(contents)
    })
}
