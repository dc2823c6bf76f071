//! What a transfer inquiry carries besides the number: the consent and the
//! identity check (番号法第16条) the asking municipality recorded, the
//! source municipality, and the stated purpose.

use super::{FieldError, MunicipalityCode, MyNumber, Reason, Registry, parse_text};

/// The document by which staff checked the person's identity and number
/// (番号法第16条: the number card alone, or a number document with a photo
/// identity document).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdDocument {
    MyNumberCard,
    DriversLicence,
    Passport,
    ResidenceCard,
    Other,
}

/// The Japanese names a municipal system writes for each document.
const NAMES: [(&str, IdDocument); 8] = [
    ("個人番号カード", IdDocument::MyNumberCard),
    ("マイナンバーカード", IdDocument::MyNumberCard),
    ("運転免許証", IdDocument::DriversLicence),
    ("旅券", IdDocument::Passport),
    ("パスポート", IdDocument::Passport),
    ("在留カード", IdDocument::ResidenceCard),
    ("特別永住者証明書", IdDocument::ResidenceCard),
    ("その他", IdDocument::Other),
];

impl IdDocument {
    pub const FIELD: &'static str = "本人確認書類";
    pub const ALL: [IdDocument; 5] = [
        IdDocument::MyNumberCard,
        IdDocument::DriversLicence,
        IdDocument::Passport,
        IdDocument::ResidenceCard,
        IdDocument::Other,
    ];

    pub fn code(&self) -> &'static str {
        match self {
            IdDocument::MyNumberCard => "my_number_card",
            IdDocument::DriversLicence => "drivers_licence",
            IdDocument::Passport => "passport",
            IdDocument::ResidenceCard => "residence_card",
            IdDocument::Other => "other",
        }
    }

    pub fn label_key(&self) -> &'static str {
        match self {
            IdDocument::MyNumberCard => "iddoc.my_number_card",
            IdDocument::DriversLicence => "iddoc.drivers_licence",
            IdDocument::Passport => "iddoc.passport",
            IdDocument::ResidenceCard => "iddoc.residence_card",
            IdDocument::Other => "iddoc.other",
        }
    }

    /// Every spelling `parse` accepts: the codes, then the Japanese names.
    pub fn spellings() -> impl Iterator<Item = &'static str> {
        Self::ALL
            .iter()
            .map(|d| d.code())
            .chain(NAMES.iter().map(|(n, _)| *n))
    }

    /// The code, or the Japanese name a municipal system writes in a file.
    pub fn parse(input: &str) -> Result<IdDocument, FieldError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(FieldError {
                field: Self::FIELD,
                reason: Reason::Empty,
            });
        }
        Self::ALL
            .into_iter()
            .find(|d| d.code() == s)
            .or_else(|| NAMES.iter().find(|(n, _)| *n == s).map(|(_, d)| *d))
            .ok_or(FieldError {
                field: Self::FIELD,
                reason: Reason::UnknownChoice,
            })
    }
}

/// Why the asking municipality needs the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InquiryPurpose {
    /// To issue a ticket for the next dose (新たな接種券の発行).
    TicketIssuance,
    /// To confirm the person's vaccination history (接種記録の確認).
    HistoryConfirmation,
}

impl InquiryPurpose {
    pub const FIELD: &'static str = "照会の目的";
    pub const ALL: [InquiryPurpose; 2] = [
        InquiryPurpose::TicketIssuance,
        InquiryPurpose::HistoryConfirmation,
    ];

    pub fn code(&self) -> &'static str {
        match self {
            InquiryPurpose::TicketIssuance => "ticket_issuance",
            InquiryPurpose::HistoryConfirmation => "history_confirmation",
        }
    }

    pub fn label_key(&self) -> &'static str {
        match self {
            InquiryPurpose::TicketIssuance => "inquiry_purpose.ticket_issuance",
            InquiryPurpose::HistoryConfirmation => "inquiry_purpose.history_confirmation",
        }
    }

    pub fn parse(input: &str) -> Result<InquiryPurpose, FieldError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(FieldError {
                field: Self::FIELD,
                reason: Reason::Empty,
            });
        }
        Self::ALL
            .into_iter()
            .find(|p| p.code() == s)
            .ok_or(FieldError {
                field: Self::FIELD,
                reason: Reason::UnknownChoice,
            })
    }
}

/// The consent and identity check recorded before an inquiry may be sent
/// (F9): the signed consent form was received, and who checked which
/// identity document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub id_document: IdDocument,
    pub checked_by: String,
}

impl Consent {
    pub const FORM_FIELD: &'static str = "同意書の受領";
    pub const CHECKED_BY_FIELD: &'static str = "確認した職員";

    /// `form_received` is the clerk's tick (or a file's consent cell, see
    /// `consent_mark`): without it there is no consent and no inquiry.
    pub fn parse(
        form_received: bool,
        id_document: &str,
        checked_by: &str,
    ) -> Result<Consent, Vec<FieldError>> {
        let mut errors = Vec::new();
        if !form_received {
            errors.push(FieldError {
                field: Self::FORM_FIELD,
                reason: Reason::ConsentMissing,
            });
        }
        let doc = IdDocument::parse(id_document).map_err(|e| errors.push(e));
        let by = parse_text(Self::CHECKED_BY_FIELD, checked_by, 40).map_err(|e| errors.push(e));
        match (doc, by) {
            (Ok(id_document), Ok(checked_by)) if errors.is_empty() => Ok(Consent {
                id_document,
                checked_by,
            }),
            _ => Err(errors),
        }
    }
}

/// A file's consent cell: yes only for an explicit mark.
pub fn consent_mark(cell: &str) -> bool {
    matches!(
        cell.trim(),
        "1" | "済" | "有" | "あり" | "○" | "〇" | "yes" | "Yes" | "YES" | "true"
    )
}

/// The municipality the person moved from: a code in use, of a
/// municipality (not a prefecture), and not the asking one.
pub fn source_municipality(
    field: &'static str,
    input: &str,
    asking: MunicipalityCode,
) -> Result<MunicipalityCode, FieldError> {
    let m = Registry::global().lookup(field, input)?;
    let err = |reason| FieldError { field, reason };
    if !m.can_be_tenant() {
        return Err(err(Reason::UnknownMunicipality));
    }
    if m.code == asking {
        return Err(err(Reason::OwnMunicipality));
    }
    Ok(m.code)
}

/// The field naming the municipality asked (the person's former one).
pub const SOURCE_FIELD: &str = "転出元市区町村コード";
const AGAIN_FIELD: &str = "個人番号（確認）";

/// Everything an inquiry needs from a person's input, or every field's
/// problem (field name and reason, for the page's language).
pub struct ParsedInquiry {
    pub number: MyNumber,
    pub source: MunicipalityCode,
    pub consent: Consent,
    pub purpose: InquiryPurpose,
}

/// An inquiry's fields as typed or sent.
pub struct InquiryFields<'a> {
    pub number: &'a str,
    /// The number typed again, where the client confirms it that way.
    pub again: Option<&'a str>,
    pub source: &'a str,
    pub consent: bool,
    pub id_document: &'a str,
    pub checked_by: &'a str,
    pub purpose: &'a str,
}

/// Parses an inquiry's fields, the same for the form and the API. The
/// number must be typed twice alike (F26); `again` is `None` where the
/// client confirmed it otherwise.
pub fn parse_inquiry(
    asking: MunicipalityCode,
    f: &InquiryFields<'_>,
) -> Result<ParsedInquiry, Vec<FieldError>> {
    let mut errors = Vec::new();
    let number = MyNumber::parse(f.number).map_err(|e| errors.push(e)).ok();
    if let (Some(n), Some(again)) = (&number, f.again)
        && MyNumber::parse(again).ok().as_ref() != Some(n)
    {
        errors.push(FieldError {
            field: AGAIN_FIELD,
            reason: Reason::EntriesDiffer,
        });
    }
    let source = source_municipality(SOURCE_FIELD, f.source, asking)
        .map_err(|e| errors.push(e))
        .ok();
    let consent = Consent::parse(f.consent, f.id_document, f.checked_by)
        .map_err(|es| errors.extend(es))
        .ok();
    let purpose = InquiryPurpose::parse(f.purpose)
        .map_err(|e| errors.push(e))
        .ok();
    match (number, source, consent, purpose) {
        (Some(number), Some(source), Some(consent), Some(purpose)) if errors.is_empty() => {
            Ok(ParsedInquiry {
                number,
                source,
                consent,
                purpose,
            })
        }
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_documents_parse_by_code_and_by_name() {
        assert_eq!(
            IdDocument::parse("my_number_card").unwrap(),
            IdDocument::MyNumberCard
        );
        assert_eq!(
            IdDocument::parse(" 運転免許証 ").unwrap(),
            IdDocument::DriversLicence
        );
        assert_eq!(IdDocument::parse("").unwrap_err().reason, Reason::Empty);
        assert_eq!(
            IdDocument::parse("library card").unwrap_err().reason,
            Reason::UnknownChoice
        );
    }

    #[test]
    fn consent_needs_the_form_the_document_and_the_checker() {
        let ok = Consent::parse(true, "passport", "窓口 太郎").unwrap();
        assert_eq!(ok.id_document, IdDocument::Passport);
        let errs = Consent::parse(false, "", " ").unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            vec![
                Consent::FORM_FIELD,
                IdDocument::FIELD,
                Consent::CHECKED_BY_FIELD
            ]
        );
        assert_eq!(errs[0].reason, Reason::ConsentMissing);
    }

    #[test]
    fn consent_marks_are_explicit() {
        for yes in ["1", "済", "有", "あり", "○", "yes"] {
            assert!(consent_mark(yes), "{yes}");
        }
        for no in ["", "0", "無", "なし", "no", "x"] {
            assert!(!consent_mark(no), "{no}");
        }
    }

    #[test]
    fn the_source_is_another_municipality_in_use() {
        let koga = MunicipalityCode::parse("082040").unwrap();
        let chiyoda = MunicipalityCode::parse("131016").unwrap();
        assert_eq!(source_municipality("f", "131016", koga).unwrap(), chiyoda);
        assert_eq!(
            source_municipality("f", "082040", koga).unwrap_err().reason,
            Reason::OwnMunicipality
        );
        assert_eq!(
            source_municipality("f", "131017", koga).unwrap_err().reason,
            Reason::CheckDigit
        );
        // 東京都 itself: a prefecture holds no residents.
        assert_eq!(
            source_municipality("f", "130001", koga).unwrap_err().reason,
            Reason::UnknownMunicipality
        );
    }
}
