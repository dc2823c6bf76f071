//! What a certificate application holds: its type and, for travel, the
//! passport details (旅券関係情報), each parsed at the edge.

use super::{FieldError, Reason};
use serde::{Deserialize, Serialize};

/// 日本国内用 or 海外用. Only the overseas type takes passport details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateKind {
    Domestic,
    Overseas,
}

impl CertificateKind {
    pub const FIELD: &'static str = "証明書の種類";
    pub const ALL: [CertificateKind; 2] = [CertificateKind::Domestic, CertificateKind::Overseas];

    pub fn code(&self) -> &'static str {
        match self {
            CertificateKind::Domestic => "domestic",
            CertificateKind::Overseas => "overseas",
        }
    }

    pub fn label_key(&self) -> &'static str {
        match self {
            CertificateKind::Domestic => "cert.kind.domestic",
            CertificateKind::Overseas => "cert.kind.overseas",
        }
    }

    pub fn parse(input: &str) -> Result<CertificateKind, FieldError> {
        match input.trim() {
            "" => Err(FieldError {
                field: Self::FIELD,
                reason: Reason::Empty,
            }),
            "domestic" | "日本国内用" => Ok(CertificateKind::Domestic),
            "overseas" | "海外用" => Ok(CertificateKind::Overseas),
            _ => Err(FieldError {
                field: Self::FIELD,
                reason: Reason::UnknownChoice,
            }),
        }
    }
}

fn required(field: &'static str, input: &str) -> Result<String, FieldError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(FieldError {
            field,
            reason: Reason::Empty,
        });
    }
    Ok(s.to_string())
}

/// A name as the passport writes it: A–Z, spaces, hyphens and apostrophes
/// (lower case is raised), at most 39 characters as in the MRZ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RomanName(String);

impl RomanName {
    pub const MAX: usize = 39;

    pub fn parse(field: &'static str, input: &str) -> Result<RomanName, FieldError> {
        let s = required(field, input)?.to_ascii_uppercase();
        if s.chars().count() > Self::MAX {
            return Err(FieldError {
                field,
                reason: Reason::TooLong(Self::MAX),
            });
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_uppercase() || matches!(c, ' ' | '-' | '\''))
        {
            return Err(FieldError {
                field,
                reason: Reason::RomanChars,
            });
        }
        Ok(RomanName(
            s.split_whitespace().collect::<Vec<_>>().join(" "),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 国籍: an ISO 3166-1 alpha-3 code as passports print it (JPN).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nationality(String);

impl Nationality {
    pub const FIELD: &'static str = "国籍";

    pub fn parse(input: &str) -> Result<Nationality, FieldError> {
        let s = required(Self::FIELD, input)?.to_ascii_uppercase();
        if s.len() != 3 || !s.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(FieldError {
                field: Self::FIELD,
                reason: Reason::CountryCode,
            });
        }
        Ok(Nationality(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 旅券番号: 6 to 9 letters and digits (a Japanese passport has two
/// letters and seven digits; other countries' differ).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassportNumber(String);

impl PassportNumber {
    pub const FIELD: &'static str = "旅券番号";

    pub fn parse(input: &str) -> Result<PassportNumber, FieldError> {
        let s = required(Self::FIELD, input)?.to_ascii_uppercase();
        if !(6..=9).contains(&s.len()) || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(FieldError {
                field: Self::FIELD,
                reason: Reason::PassportChars,
            });
        }
        Ok(PassportNumber(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The window's identity check (F17): the application was received, and
/// an identity document was checked by a named member of staff.
pub fn certificate_identity(
    applied: bool,
    id_document: &str,
    checked_by: &str,
) -> Result<super::Consent, Vec<FieldError>> {
    let checked = super::Consent::parse(true, id_document, checked_by);
    let mut errors = Vec::new();
    if !applied {
        errors.push(FieldError {
            field: APPLICATION_FIELD,
            reason: Reason::ApplicationMissing,
        });
    }
    match checked {
        Ok(c) if errors.is_empty() => Ok(c),
        Ok(_) => Err(errors),
        Err(e) => {
            errors.extend(e);
            Err(errors)
        }
    }
}

pub const APPLICATION_FIELD: &str = "交付申請の受理";

/// Field names of a channel request, as errors name them.
pub mod fields {
    pub const BIRTH_DATE: &str = "生年月日";
    pub const MUNICIPALITY: &str = "市区町村コード";
    pub const NATIONALITY: &str = super::Nationality::FIELD;
    pub const PASSPORT_NUMBER: &str = super::PassportNumber::FIELD;
}

/// 旅券関係情報: what an overseas certificate prints besides the resident
/// record. Stored sealed, and only with a certificate that needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passport {
    pub family: RomanName,
    pub given: RomanName,
    pub nationality: Nationality,
    pub number: PassportNumber,
    /// 旧姓・別姓・別名, when the passport carries one.
    pub other_name: Option<RomanName>,
}

impl Passport {
    pub const FAMILY_FIELD: &'static str = "ローマ字氏名（姓）";
    pub const GIVEN_FIELD: &'static str = "ローマ字氏名（名）";
    pub const OTHER_NAME_FIELD: &'static str = "旧姓・別姓・別名";

    /// Parses every field; all errors are returned together.
    pub fn parse(
        family: &str,
        given: &str,
        nationality: &str,
        number: &str,
        other_name: &str,
    ) -> Result<Passport, Vec<FieldError>> {
        let family = RomanName::parse(Self::FAMILY_FIELD, family);
        let given = RomanName::parse(Self::GIVEN_FIELD, given);
        let nationality = Nationality::parse(nationality);
        let number = PassportNumber::parse(number);
        let other = if other_name.trim().is_empty() {
            Ok(None)
        } else {
            RomanName::parse(Self::OTHER_NAME_FIELD, other_name).map(Some)
        };
        match (family, given, nationality, number, other) {
            (Ok(family), Ok(given), Ok(nationality), Ok(number), Ok(other_name)) => Ok(Passport {
                family,
                given,
                nationality,
                number,
                other_name,
            }),
            (a, b, c, d, e) => Err([a.err(), b.err(), c.err(), d.err(), e.err()]
                .into_iter()
                .flatten()
                .collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passport_fields_are_raised_checked_and_reported_together() {
        let p = Passport::parse("yamada", "hanako", "jpn", "tk1234567", "").unwrap();
        assert_eq!(p.family.as_str(), "YAMADA");
        assert_eq!(p.nationality.as_str(), "JPN");
        assert_eq!(p.number.as_str(), "TK1234567");
        assert_eq!(p.other_name, None);
        let errors = Passport::parse("山田", "", "JP", "12", "O'BRIEN").unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| (e.field, e.reason)).collect();
        assert_eq!(
            fields,
            vec![
                (Passport::FAMILY_FIELD, Reason::RomanChars),
                (Passport::GIVEN_FIELD, Reason::Empty),
                (Nationality::FIELD, Reason::CountryCode),
                (PassportNumber::FIELD, Reason::PassportChars),
            ]
        );
        assert_eq!(
            RomanName::parse("x", &"A".repeat(40)).unwrap_err().reason,
            Reason::TooLong(39)
        );
    }

    #[test]
    fn the_kind_takes_its_code_or_its_japanese_name() {
        assert_eq!(
            CertificateKind::parse("海外用").unwrap(),
            CertificateKind::Overseas
        );
        assert_eq!(
            CertificateKind::parse("x").unwrap_err().reason,
            Reason::UnknownChoice
        );
    }
}
