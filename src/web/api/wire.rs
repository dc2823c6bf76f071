//! What travels over the machine API: every request and answer body as a
//! type. The OpenAPI document is generated from these same types, so the
//! document cannot say one thing while the server does another.
//!
//! Request fields are `Option` in Rust even where the document marks them
//! required: a missing field is then refused by the parser of that field,
//! with a 422 naming it, instead of a bare "bad JSON" for the whole body.

use crate::domain::{CertificateKind, IdDocument, InquiryPurpose, Role};
use crate::flows::dose_checks::Rule;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{RefOr, extensions::Extensions};
use utoipa::{ToResponse, ToSchema};

/// Every error code the API answers with, in the `error` field of an
/// error body. One list for the handlers and the request frame (which
/// answers before any handler: unknown paths, methods, over-long bodies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not JSON, or a field has the wrong type (`field` names it).
    BadJson,
    /// A field's value is refused (`field` names it; `message_*` says why).
    InvalidField,
    /// The request itself could not be read.
    BadRequest,
    /// No token, or one that is unknown, expired or signed out.
    Unauthorized,
    /// The login id, password or second factor was not accepted.
    LoginRefused,
    /// No, an unknown or a revoked certificate channel client secret.
    UnknownClient,
    Forbidden,
    /// A site account not bound to a vaccination site.
    NoSite,
    PasswordChangeRequired,
    /// Not from the municipality's declared LG-WAN networks.
    OutsideLgwan,
    /// A channel client calling from outside its registered networks.
    OutsideNetwork,
    SecondFactorRequired,
    /// The municipality does not answer this certificate channel.
    ChannelNotEnabled,
    NotFound,
    /// The method is not one the path takes (`Allow` lists those it does).
    MethodNotAllowed,
    TicketNotIssued,
    TicketInvalidated,
    /// The dose number due moved on since the site was shown it.
    DoseChanged,
    IdempotencyKeyReused,
    NotAResident,
    NoValidDoses,
    /// The body is larger than any request of this API.
    TooLarge,
    UriTooLong,
    TooManyUnknownTickets,
    RateLimited,
    /// The database was too busy: nothing was changed, send again after
    /// `Retry-After` seconds.
    Busy,
    Unavailable,
    Internal,
}

/// An error answer: a stable code, the field at fault when one is, and a
/// message in Japanese and English where there is more to say than the code.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    pub error: ErrorCode,
    /// The request field at fault, as a path (`consent.checked_by`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_ja: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_en: Option<String>,
    /// For `dose_changed`: the dose number now due.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 9)]
    pub dose_number_due: Option<u8>,
    /// The id of this request in the server's log, for a support call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The answers every operation with a body can give, described once.
#[derive(ToResponse)]
#[response(
    description = "`bad_json`: the body is not JSON, or a field has the wrong type (`field` names it)"
)]
pub struct BadJson(#[allow(dead_code)] ApiError);

#[derive(ToResponse)]
#[response(description = "`too_large`: the body is larger than any request of this API (256 KiB)")]
pub struct TooLarge(#[allow(dead_code)] ApiError);

#[derive(ToResponse)]
#[response(description = "`unauthorized`: no token, or one that is unknown, expired or signed out")]
pub struct Unauthorized(#[allow(dead_code)] ApiError);

#[derive(ToResponse)]
#[response(
    description = "`busy`: the database was too busy to answer in time and nothing was changed; send the same request again after `Retry-After` seconds. `unavailable`: the database cannot be reached.",
    headers(("Retry-After" = u32, description = "Seconds to wait before sending the same request again (with `busy`)"))
)]
pub struct Busy(#[allow(dead_code)] ApiError);

/// A data-quality rule a dose failed; such a dose is recorded but waits in
/// the issuing municipality's 要確認 (to-check) queue.
fn rule_schema() -> Schema {
    string_enum(Rule::ALL.iter().map(|r| r.code().to_string()))
}

fn rules_schema() -> Schema {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(RefOr::T(rule_schema()))
        .build()
        .into()
}

fn string_enum(values: impl IntoIterator<Item = String>) -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(values))
        .build()
        .into()
}

/// A flag the request must carry as `true` (JSON Schema `const`, which the
/// generator has no attribute for).
fn must_be_true() -> RefOr<Schema> {
    // The extensions builder would prefix the key with `x-`; the map itself
    // is written out as it is.
    let mut keywords = Extensions::default();
    keywords.insert("const".to_string(), true.into());
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Boolean))
        .extensions(Some(keywords))
        .build()
        .into()
}

fn roles_schema() -> Schema {
    string_enum(Role::ALL.iter().map(|r| r.code().to_string()))
}

fn id_document_schema() -> Schema {
    string_enum(IdDocument::spellings().map(str::to_string))
}

fn kind_schema() -> Schema {
    string_enum(CertificateKind::ALL.iter().map(|k| k.code().to_string()))
}

/// The kind a request names; without one, a domestic certificate.
fn kind_request_schema() -> Schema {
    let mut schema = kind_schema();
    if let Schema::Object(o) = &mut schema {
        o.default = Some(CertificateKind::Domestic.code().into());
    }
    schema
}

fn purpose_schema() -> Schema {
    string_enum(InquiryPurpose::ALL.iter().map(|p| p.code().to_string()))
}

/// The ticket as a site reads it: the 18-digit OCR line as printed and in
/// the ticket's QR code (券種 1 + 回数 1 + municipality code 6 + ticket
/// number 10), an NW-7 (Codabar) reading of it with its start/stop letters,
/// or the 6-digit municipality code followed by the 10-digit ticket number.
/// Spaces, hyphens and slashes are ignored; full-width digits are read as
/// digits. The municipality code's check digit is verified before anything
/// is looked up.
#[derive(ToSchema)]
#[schema(
    value_type = String,
    min_length = 1,
    max_length = 64,
    pattern = "^[A-Da-d]?[0-9０-９ 　/‐－-]+[A-Da-d]?$",
    examples("110820401234567890", "082040-1234567890")
)]
pub struct Ticket(#[allow(dead_code)] String);

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(required = true, value_type = String, min_length = 1)]
    pub login_id: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1, format = Password)]
    pub password: Option<String>,
    /// Only for accounts with a second factor: the six digits of the
    /// authenticator app.
    #[schema(required = false, value_type = String, pattern = "^([0-9]{6})?$")]
    pub totp_code: Option<String>,
    /// Only for site tablets enrolled on a device: the device key the
    /// enrolment gave.
    #[schema(required = false, value_type = String)]
    pub device_key: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Session {
    /// Send it as `Authorization: Bearer <token>`.
    pub token: String,
    #[schema(value_type = String, pattern = "^Bearer$")]
    pub token_type: &'static str,
    /// The session ends after this many minutes without a request.
    pub idle_timeout_minutes: i64,
    #[schema(schema_with = roles_schema)]
    pub role: String,
}

#[derive(Deserialize, ToSchema)]
pub struct CheckRequest {
    #[schema(required = true, value_type = Ticket)]
    pub ticket: Option<String>,
    /// The product about to be given, for the interval check.
    #[schema(required = false, value_type = String)]
    pub product_code: Option<String>,
}

/// A masked hint of the person, so a misread ticket is caught by the eye.
#[derive(Serialize, ToSchema)]
pub struct Hint {
    #[schema(examples("ヤ・タ"))]
    pub kana_initials: String,
    pub birth_year: i32,
    #[schema(minimum = 1, maximum = 12)]
    pub birth_month: u32,
}

/// The ticket and what a dose given today would be. Nothing is written but
/// the log line.
#[derive(Serialize, ToSchema)]
pub struct TicketCheck {
    #[schema(pattern = "^[0-9]{6}$")]
    pub municipality_code: String,
    #[schema(pattern = "^[0-9]{10}$")]
    pub ticket_number: String,
    pub hint: Hint,
    #[schema(minimum = 1, maximum = 9)]
    pub dose_number_due: u8,
    /// What would send a dose given today to the queue.
    #[schema(schema_with = rules_schema)]
    pub blocks: Vec<String>,
    /// The first day the next dose counts as on time, when there is one.
    #[schema(format = Date)]
    pub earliest_date: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct DoseRequest {
    #[schema(required = true, value_type = Ticket)]
    pub ticket: Option<String>,
    /// YYYY-MM-DD (also YYYY/MM/DD or YYYYMMDD).
    #[schema(required = true, value_type = String, format = Date, min_length = 1)]
    pub administered_on: Option<String>,
    /// A product of the national vaccine master, e.g. PFZ_ORIG_12P.
    #[schema(required = true, value_type = String, min_length = 1)]
    pub product_code: Option<String>,
    /// Letters, digits and hyphens (full-width ones as typed with a
    /// Japanese input method are read as ASCII); stored upper-case.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 20, pattern = "^[A-Za-z0-9Ａ-Ｚａ-ｚ０-９－-]+$")]
    pub lot_number: Option<String>,
    /// The dose number the site was shown. If the record has moved on
    /// since, the answer is 409 dose_changed.
    #[schema(required = false, value_type = u8, minimum = 1, maximum = 9)]
    pub dose_number: Option<u8>,
}

/// A recorded dose (status recorded), or one recorded into the
/// municipality's to-check queue (status queued, with the rules it failed).
#[derive(Serialize, ToSchema)]
pub struct Dose {
    pub dose_id: String,
    /// The municipality that issued the ticket, in whose partition the dose
    /// now is.
    #[schema(pattern = "^[0-9]{6}$")]
    pub municipality_code: String,
    #[schema(pattern = "^[0-9]{10}$")]
    pub ticket_number: String,
    #[schema(minimum = 1, maximum = 9)]
    pub dose_number: u8,
    pub status: DoseStatus,
    #[schema(schema_with = rules_schema)]
    pub rules: Vec<String>,
    /// True when an earlier request with the same Idempotency-Key recorded
    /// this dose.
    pub replayed: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DoseStatus {
    Recorded,
    Queued,
}

/// Recorded before anything is sent (番号法第16条).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    /// The signed consent form was received. Must be true.
    #[schema(required = true, schema_with = must_be_true)]
    pub form_received: Option<bool>,
    /// The document by which the identity and number were checked: its
    /// code, or its Japanese name as a municipal system writes it.
    #[schema(required = true, schema_with = id_document_schema)]
    pub id_document: Option<String>,
    /// Who checked the identity.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 40)]
    pub checked_by: Option<String>,
}

/// One person's inquiry to the municipality they moved from (flow 4). For
/// municipal staff with the inquiry and the individual-number permissions,
/// from the municipality's declared LG-WAN networks only, within the hourly
/// rate limits. The number must be one of the asking municipality's
/// residents (registered from the resident registry); otherwise nothing is
/// sent.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InquiryRequest {
    /// 個人番号, 12 digits with its check digit. Never echoed in any answer.
    #[schema(required = true, value_type = String, pattern = "^[0-9０-９]{12}$")]
    pub individual_number: Option<String>,
    /// The former municipality's code (JIS X 0402, check digit verified): a
    /// municipality in use other than the asking one.
    #[schema(required = true, value_type = String, pattern = "^[0-9０-９]{6}$")]
    pub source_municipality_code: Option<String>,
    #[schema(required = true, value_type = ConsentRequest)]
    pub consent: Option<ConsentRequest>,
    #[schema(required = true, schema_with = purpose_schema)]
    pub purpose: Option<String>,
}

/// The answer to an inquiry. A match carries the doses as now copied into
/// the asking municipality's partition, marked with their origin. Every
/// miss (wrong code, wrong number, nobody there, no such partition) is the
/// same body, `{"outcome":"no_match"}`, answered no sooner than the same
/// time floor as a match.
#[derive(Serialize, ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TransferAnswer {
    Matched {
        /// Shared by both municipalities' provision records of this inquiry.
        inquiry_id: String,
        /// The asking municipality's resident.
        resident_id: String,
        /// Doses not copied by an earlier inquiry.
        newly_copied: usize,
        doses: Vec<TransferredDose>,
    },
    NoMatch,
    /// The person is this municipality's own resident under a support
    /// measure: the inquiry waits for an administrator's approval, and its
    /// answer reaches the administrators' notices.
    Held,
}

#[derive(Serialize, ToSchema)]
pub struct TransferredDose {
    #[schema(minimum = 1, maximum = 9)]
    pub dose_number: i32,
    #[schema(format = Date)]
    pub administered_on: String,
    pub product_code: String,
    pub lot_number: Option<String>,
    pub site_name: Option<String>,
    pub site_municipality_code: Option<String>,
}

/// A certificate for a person identified by the individual number and
/// birth date read from their card.
#[derive(Deserialize, ToSchema)]
pub struct CertificateRequest {
    /// The municipality that keeps the person's record (全国地方公共団体コード,
    /// 6 digits). It must have enabled the client's channel.
    #[schema(required = true, value_type = String, pattern = "^[0-9０-９]{6}$")]
    pub municipality_code: Option<String>,
    /// Read from the individual number card's chip, never typed (F18/F19).
    /// Used only to find the person (purpose: certificate lookup); never
    /// stored, logged or returned.
    #[schema(required = true, value_type = String, pattern = "^[0-9０-９]{12}$")]
    pub individual_number: Option<String>,
    /// From the card; must match the resident record.
    #[schema(required = true, value_type = String, format = Date, min_length = 1)]
    pub birth_date: Option<String>,
    #[schema(schema_with = kind_request_schema)]
    pub kind: Option<String>,
    /// Required for kind overseas: read from the passport. Kept sealed with
    /// the certificate's record.
    pub passport: Option<PassportFields>,
}

#[derive(Deserialize, Default, ToSchema)]
pub struct PassportFields {
    /// Family name in the passport's Latin letters.
    #[schema(required = false, value_type = String, max_length = 39, pattern = "^[A-Za-z '-]+$")]
    pub family: Option<String>,
    #[schema(required = false, value_type = String, max_length = 39, pattern = "^[A-Za-z '-]+$")]
    pub given: Option<String>,
    /// ISO 3166-1 alpha-3.
    #[schema(required = false, value_type = String, pattern = "^[A-Za-z]{3}$")]
    pub nationality: Option<String>,
    #[schema(required = false, value_type = String, pattern = "^[A-Za-z0-9]{6,9}$")]
    pub number: Option<String>,
    /// 旧姓・別姓・別名, when the passport carries one.
    #[schema(required = false, value_type = String, max_length = 39, pattern = "^[A-Za-z '-]*$")]
    pub other_name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct IssuedCertificate {
    /// 証明書ID
    #[schema(examples("3F9A-01BC-77D2-E410"))]
    pub certificate_id: String,
    /// 証明書発行年月日 (date in Japan)
    #[schema(format = Date)]
    pub issued_on: String,
    #[schema(schema_with = kind_schema)]
    pub kind: String,
    /// The SMART Health Card as its QR code text (shc:/ and digits), to
    /// show as one QR code (byte segment 'shc:/', numeric segment for the
    /// digits, error correction L).
    #[schema(pattern = "^shc:/[0-9]+$")]
    pub qr_text: String,
    /// The card as a compact JWS (ES256, zip DEF), as in a
    /// .smart-health-card file. Verify with <issuer>/.well-known/jwks.json.
    #[serde(rename = "verifiableCredential")]
    #[schema(min_items = 1, max_items = 1)]
    pub verifiable_credential: Vec<String>,
}

/// No resident with this number and birth date: one answer whatever the
/// cause.
#[derive(Serialize, ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum NoMatch {
    NoMatch,
}

impl ApiError {
    /// An error body with its code alone.
    pub fn of(error: ErrorCode) -> ApiError {
        ApiError {
            error,
            field: None,
            message_ja: None,
            message_en: None,
            dose_number_due: None,
            request_id: None,
        }
    }

    /// The body says in both languages that the database was busy.
    pub fn saying_busy(self) -> ApiError {
        let (ja, en) = crate::web::error::busy_messages();
        ApiError {
            message_ja: Some(ja.to_string()),
            message_en: Some(en.to_string()),
            ..self
        }
    }
}
