//! Pure types parsed once at the edge. Holding one of these is the proof that
//! the value passed its checks; nothing here does I/O.

mod account;
mod certificate;
mod municipality_code;
mod my_number;
mod network;
mod person;
mod protection;
mod record_id;
mod registry;
mod registry_change;
mod ticket;
mod transfer;
mod vaccines;

use chrono::NaiveDate;

pub use account::{LoginId, NewPassword, Permission, Role};
pub use certificate::fields as certificate_fields;
pub use certificate::{CertificateKind, Passport, certificate_identity};
pub use municipality_code::MunicipalityCode;
pub use my_number::{MyNumber, mask_number_like};
pub use network::Network;
pub use person::{AddresseeNumber, BirthDate, KanaName, PersonName, Sex};
pub use protection::Protection;
pub use record_id::new_record_id;
pub use registry::{Municipality, MunicipalityKind, Registry};
pub use registry_change::{Attribute, ChangeKind, Effect as ChangeEffect};
pub use ticket::{
    Address, ChangeReason, DoseNumber, IdempotencyKey, LotNumber, OcrLine, TicketKind,
    TicketNumber, TicketRef,
};
pub use transfer::{
    Consent, IdDocument, InquiryFields, InquiryPurpose, ParsedInquiry, SOURCE_FIELD, consent_mark,
    parse_inquiry, source_municipality,
};
pub use vaccines::{Catalog as VaccineCatalog, Product as VaccineProduct, ProductCode};

/// Why a piece of input was refused. `field` names what the user typed into,
/// so a form or CSV report can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: &'static str,
    pub reason: Reason,
}

/// Closed set of reasons, each with a message in both languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Empty,
    NotDigits,
    WrongLength(usize),
    CheckDigit,
    UnknownMunicipality,
    TooLong(usize),
    AddresseeChars,
    ControlChars,
    NotKatakana,
    SexCode,
    NotADate,
    FutureDate,
    /// A date of something done to a person before they were born.
    BeforeBirth,
    /// A period's end (or review) before its start.
    BeforeStart,
    DateTooOld,
    LoginIdChars,
    PasswordShort,
    PasswordClasses,
    NotCidr,
    CidrTooBroad,
    OutOfRange(u8, u8),
    Undecodable,
    TicketLength,
    LotChars,
    UnknownProduct,
    KeyChars,
    ProductCodeChars,
    UnknownChoice,
    ConsentMissing,
    OwnMunicipality,
    /// Something of another municipality's where only one's own goes.
    OtherMunicipality,
    EntriesDiffer,
    RomanChars,
    CountryCode,
    PassportChars,
    ApplicationMissing,
}

impl Reason {
    pub fn message_ja(&self) -> String {
        match self {
            Reason::Empty => "入力されていません".into(),
            Reason::NotDigits => "半角数字で入力してください".into(),
            Reason::WrongLength(n) => format!("{n}桁で入力してください"),
            Reason::CheckDigit => "チェックデジットが一致しません".into(),
            Reason::UnknownMunicipality => "存在しない地方公共団体コードです".into(),
            Reason::TooLong(n) => format!("{n}文字以内で入力してください"),
            Reason::AddresseeChars => "半角英数字とハイフンで入力してください".into(),
            Reason::ControlChars => "制御文字や見えない書式文字は使えません".into(),
            Reason::NotKatakana => "全角カタカナで入力してください".into(),
            Reason::SexCode => "1（男）、2（女）、9（未設定）のいずれかで入力してください".into(),
            Reason::NotADate => "日付はYYYY-MM-DDの形式で、実在する日付を入力してください".into(),
            Reason::FutureDate => "未来の日付は入力できません".into(),
            Reason::BeforeBirth => "生年月日より前の日付は入力できません".into(),
            Reason::BeforeStart => "開始日より前の日付は入力できません".into(),
            Reason::DateTooOld => "1900年より前の日付は入力できません".into(),
            Reason::LoginIdChars => {
                "3文字以上の半角英小文字・数字・「.」「_」「-」で入力してください".into()
            }
            Reason::PasswordShort => "12文字以上で入力してください".into(),
            Reason::PasswordClasses => "英字と数字の両方を含めてください".into(),
            Reason::NotCidr => {
                "ネットワークは 10.20.0.0/16 のようなCIDR形式で入力してください".into()
            }
            Reason::CidrTooBroad => {
                "範囲が広すぎます（IPv4は/8、IPv6は/32より狭くしてください）".into()
            }
            Reason::OutOfRange(a, b) => format!("{a}から{b}までの数字で入力してください"),
            Reason::Undecodable => {
                "文字コードを解釈できない文字があります（UTF-8かShift_JISで保存してください）"
                    .into()
            }
            Reason::TicketLength => {
                "OCR番号18桁、または市町村コード6桁と接種券番号10桁（計16桁）を入力してください"
                    .into()
            }
            Reason::LotChars => "半角英数字とハイフンで20文字以内で入力してください".into(),
            Reason::UnknownProduct => "ワクチンのマスタにない製品です".into(),
            Reason::KeyChars => "半角英数字・「-」「_」の16〜64文字で指定してください".into(),
            Reason::ProductCodeChars => {
                "半角英大文字・数字・「_」の3〜40文字で入力してください".into()
            }
            Reason::UnknownChoice => "選択肢にない値です".into(),
            Reason::ConsentMissing => {
                "本人の同意（同意書の受領）が記録されていません。照会できません".into()
            }
            Reason::OwnMunicipality => "当団体のコードは指定できません".into(),
            Reason::OtherMunicipality => {
                "他の市区町村が発行した接種券です（発行した市区町村に送ってください）".into()
            }
            Reason::EntriesDiffer => "2回の入力が一致しません".into(),
            Reason::RomanChars => {
                "旅券のとおり、半角英字（A〜Z）・空白・「-」「'」で入力してください".into()
            }
            Reason::CountryCode => {
                "旅券に記載の3文字の国名コード（例: JPN）で入力してください".into()
            }
            Reason::PassportChars => "半角英数字6〜9文字で入力してください".into(),
            Reason::ApplicationMissing => {
                "記録されていません。証明書は申請があった場合にのみ発行します。".into()
            }
        }
    }

    pub fn message_en(&self) -> String {
        match self {
            Reason::Empty => "is empty".into(),
            Reason::NotDigits => "must be half-width digits".into(),
            Reason::WrongLength(n) => format!("must be {n} digits"),
            Reason::CheckDigit => "check digit does not match".into(),
            Reason::UnknownMunicipality => "is not a municipality code in use".into(),
            Reason::TooLong(n) => format!("must be at most {n} characters"),
            Reason::AddresseeChars => "may contain only ASCII letters, digits and hyphens".into(),
            Reason::ControlChars => {
                "must not contain control characters or invisible formatting characters".into()
            }
            Reason::NotKatakana => "must be full-width katakana".into(),
            Reason::SexCode => "must be 1 (male), 2 (female) or 9 (unspecified)".into(),
            Reason::NotADate => "must be a real date as YYYY-MM-DD".into(),
            Reason::FutureDate => "must not be in the future".into(),
            Reason::BeforeBirth => "must not be before the date of birth".into(),
            Reason::BeforeStart => "must not be before the start date".into(),
            Reason::DateTooOld => "must not be before 1900".into(),
            Reason::LoginIdChars => "must be at least 3 of a-z, 0-9, '.', '_' or '-'".into(),
            Reason::PasswordShort => "must be at least 12 characters".into(),
            Reason::PasswordClasses => "must contain both letters and digits".into(),
            Reason::NotCidr => "must be a network in CIDR form, such as 10.20.0.0/16".into(),
            Reason::CidrTooBroad => "is too broad (at most /8 for IPv4, /32 for IPv6)".into(),
            Reason::OutOfRange(a, b) => format!("must be a number from {a} to {b}"),
            Reason::Undecodable => {
                "contains characters that could not be decoded (save as UTF-8 or Shift_JIS)".into()
            }
            Reason::TicketLength => {
                "must be the 18-digit OCR line, or the 6-digit municipality code and the \
                 10-digit ticket number (16 digits)"
                    .into()
            }
            Reason::LotChars => "must be up to 20 ASCII letters, digits or hyphens".into(),
            Reason::UnknownProduct => "is not a product of the vaccine master".into(),
            Reason::KeyChars => "must be 16 to 64 ASCII letters, digits, '-' or '_'".into(),
            Reason::ProductCodeChars => "must be 3 to 40 of A-Z, 0-9 and '_'".into(),
            Reason::UnknownChoice => "is not one of the choices".into(),
            Reason::ConsentMissing => {
                "the person's consent (the signed form) is not recorded: no inquiry can be sent"
                    .into()
            }
            Reason::OwnMunicipality => "must not be this municipality's own code".into(),
            Reason::OtherMunicipality => {
                "is another municipality's ticket (send it to the municipality that issued it)"
                    .into()
            }
            Reason::EntriesDiffer => "the two entries differ".into(),
            Reason::RomanChars => {
                "must be written as in the passport: A-Z, spaces, '-' and apostrophes".into()
            }
            Reason::CountryCode => {
                "must be the passport's three-letter country code (e.g. JPN)".into()
            }
            Reason::PassportChars => "must be 6 to 9 letters and digits".into(),
            Reason::ApplicationMissing => {
                "is not recorded: a certificate is issued only on application".into()
            }
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message_en())
    }
}

/// Parses a fixed-length run of ASCII digits; full-width digits (common when
/// typed on a Japanese IME) are accepted and normalised.
/// Free text as a form gives it: trimmed, not empty, at most `max`
/// characters, no control characters.
pub fn parse_text(field: &'static str, input: &str, max: usize) -> Result<String, FieldError> {
    let err = |reason| FieldError { field, reason };
    let s = input.trim();
    if s.is_empty() {
        return Err(err(Reason::Empty));
    }
    if s.chars().count() > max {
        return Err(err(Reason::TooLong(max)));
    }
    if s.chars().any(is_hidden) {
        return Err(err(Reason::ControlChars));
    }
    Ok(s.to_string())
}

/// An optional text field: empty is none; otherwise as `parse_text`
/// (never silently cut).
pub fn parse_optional_text(
    field: &'static str,
    input: &str,
    max: usize,
) -> Result<Option<String>, FieldError> {
    if input.trim().is_empty() {
        return Ok(None);
    }
    parse_text(field, input, max).map(Some)
}

/// A character that is not shown as itself: a control character, or an
/// invisible formatting one — bidirectional overrides and isolates (which
/// make 「山田」 display as something else), zero-width spaces and joiners,
/// the soft hyphen, the byte-order mark. (Unicode's Cf category, written
/// out here; ideographic variation selectors, which names need, are not
/// among them.)
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// A whole number within `min..=max` as typed.
pub fn parse_number(field: &'static str, input: &str, min: u8, max: u8) -> Result<u8, FieldError> {
    let err = |reason| FieldError { field, reason };
    let s = input.trim();
    if s.is_empty() {
        return Err(err(Reason::Empty));
    }
    s.parse::<u8>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or(err(Reason::OutOfRange(min, max)))
}

/// A calendar date as staff type it (2024-05-01, 2024/05/01 or 20240501),
/// not before 1900. Whether a date may lie in the future is the caller's rule.
pub fn parse_date_field(field: &'static str, input: &str) -> Result<NaiveDate, FieldError> {
    let err = |reason| FieldError { field, reason };
    let s = input.trim();
    if s.is_empty() {
        return Err(err(Reason::Empty));
    }
    let date = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
        .ok_or(err(Reason::NotADate))?;
    if date < NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(date) {
        return Err(err(Reason::DateTooOld));
    }
    Ok(date)
}

pub(crate) fn parse_digits<const N: usize>(
    field: &'static str,
    input: &str,
) -> Result<[u8; N], FieldError> {
    let err = |reason| FieldError { field, reason };
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(err(Reason::Empty));
    }
    let mut out = [0u8; N];
    let mut len = 0;
    for ch in trimmed.chars() {
        let d = match ch {
            '0'..='9' => ch as u32 - '0' as u32,
            '０'..='９' => ch as u32 - '０' as u32,
            _ => return Err(err(Reason::NotDigits)),
        };
        if len < N {
            out[len] = d as u8;
        }
        len += 1;
    }
    if len != N {
        return Err(err(Reason::WrongLength(N)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_width_digits_are_normalised() {
        assert_eq!(parse_digits::<3>("f", "１２３").unwrap(), [1, 2, 3]);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_digits::<3>("ticket", "12a").unwrap_err();
        assert_eq!(e.field, "ticket");
        assert_eq!(e.reason, Reason::NotDigits);
        assert_eq!(
            parse_digits::<3>("ticket", "1234").unwrap_err().reason,
            Reason::WrongLength(3)
        );
        assert_eq!(
            parse_digits::<3>("ticket", "  ").unwrap_err().reason,
            Reason::Empty
        );
    }
}
