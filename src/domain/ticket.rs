//! The vaccination ticket (接種券): its number, kind and dose, and the 18-digit
//! OCR line printed on it (券種 1 + 回数 1 + 市町村コード 6 + 券番号 10).

use super::{FieldError, MunicipalityCode, Reason, parse_digits};

fn ascii(d: &[u8]) -> String {
    d.iter().map(|x| char::from(b'0' + x)).collect()
}

/// 接種券番号: ten digits, unique within the issuing municipality. It has no
/// check digit of its own, so a ticket is only ever trusted together with its
/// municipality's code, whose check digit is verified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TicketNumber(String);

impl TicketNumber {
    pub const FIELD: &'static str = "接種券番号";

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        Ok(TicketNumber(ascii(&parse_digits::<10>(
            Self::FIELD,
            input,
        )?)))
    }

    /// A fresh number from ten random digits. The caller makes sure it is
    /// unused in the municipality.
    pub fn random(rng: &mut impl rand::Rng) -> Self {
        let n: u64 = rng.gen_range(1_000_000_000..10_000_000_000);
        TicketNumber(n.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A single-digit code between 1 and 9: 券種 (the ticket's kind, the
/// municipality's own classification) and 回数 (the dose the ticket is for).
macro_rules! digit_code {
    ($name:ident, $field:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u8);

        impl $name {
            pub const FIELD: &'static str = $field;

            pub fn parse(input: &str) -> Result<Self, FieldError> {
                let [d] = parse_digits::<1>(Self::FIELD, input)?;
                Self::new(d).ok_or(FieldError {
                    field: Self::FIELD,
                    reason: Reason::OutOfRange(1, 9),
                })
            }

            pub fn new(n: u8) -> Option<Self> {
                (1..=9).contains(&n).then_some($name(n))
            }

            pub fn get(&self) -> u8 {
                self.0
            }
        }
    };
}

digit_code!(
    TicketKind,
    "券種",
    "券種: the kind of ticket, 1–9 as the municipality classifies them."
);
/// 回数 / 接種回: which dose (1st, 2nd, …). An open number (the real system
/// moved from 1st/2nd/3rd to an open one), 1 to 99.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DoseNumber(u8);

impl DoseNumber {
    pub const FIELD: &'static str = "回数";
    pub const MAX: u8 = 99;

    /// One or two digits (half- or full-width).
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let ascii: String = input
            .chars()
            .map(|c| match c {
                '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
                _ => c,
            })
            .collect();
        let digits = ascii.trim();
        if !digits.is_empty() && (digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit())) {
            return Err(FieldError {
                field: Self::FIELD,
                reason: Reason::OutOfRange(1, Self::MAX),
            });
        }
        super::parse_number(Self::FIELD, digits, 1, Self::MAX).map(DoseNumber)
    }

    pub fn new(n: u8) -> Option<Self> {
        (1..=Self::MAX).contains(&n).then_some(DoseNumber(n))
    }

    pub fn get(&self) -> u8 {
        self.0
    }

    /// The digit printed for it in the OCR line, which has room for one:
    /// the dose itself up to 9, 0 for the tenth and later.
    pub fn ocr_digit(&self) -> u8 {
        if self.0 <= 9 { self.0 } else { 0 }
    }
}

impl Default for TicketKind {
    fn default() -> Self {
        TicketKind(1)
    }
}

impl Default for DoseNumber {
    fn default() -> Self {
        DoseNumber(1)
    }
}

/// The 18 digits printed under the ticket's barcode and in its QR code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcrLine {
    pub kind: TicketKind,
    /// 回数 as printed: 1–9, or 0 for the tenth dose and later.
    pub dose_digit: u8,
    pub municipality: MunicipalityCode,
    pub ticket: TicketNumber,
}

impl OcrLine {
    pub const FIELD: &'static str = "OCR番号";

    /// Parses the 18 digits; the municipality code's check digit must hold.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let d = parse_digits::<18>(Self::FIELD, input)?;
        let field_err = |reason| FieldError {
            field: Self::FIELD,
            reason,
        };
        let kind = TicketKind::new(d[0]).ok_or(field_err(Reason::OutOfRange(1, 9)))?;
        let dose_digit = d[1];
        let municipality = MunicipalityCode::parse_field(Self::FIELD, &ascii(&d[2..8]))?;
        Ok(OcrLine {
            kind,
            dose_digit,
            municipality,
            ticket: TicketNumber(ascii(&d[8..])),
        })
    }

    pub fn digits(&self) -> String {
        format!(
            "{}{}{}{}",
            self.kind.get(),
            self.dose_digit,
            self.municipality.as_str(),
            self.ticket.as_str()
        )
    }
}

/// What a site scanned or typed to name a ticket: the 18-digit OCR line (from
/// the QR code or the printed digits), an NW-7 (Codabar) barcode of the same
/// digits between start/stop letters, or the municipality code followed by
/// the ticket number. The municipality code's check digit is verified here,
/// before anything is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRef {
    pub municipality: MunicipalityCode,
    pub ticket: TicketNumber,
    /// The 券種 and 回数 digit printed in the OCR line, when one was read.
    pub printed: Option<(TicketKind, u8)>,
}

impl TicketRef {
    pub const FIELD: &'static str = "接種券";

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let err = |reason| FieldError {
            field: Self::FIELD,
            reason,
        };
        let mut s: String = input
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '　' | '-' | '－' | '‐' | '/'))
            .collect();
        // Codabar start/stop characters around the digits.
        let codabar = |c: char| matches!(c.to_ascii_uppercase(), 'A'..='D');
        if s.len() > 2 && s.starts_with(codabar) && s.ends_with(codabar) {
            s = s[1..s.len() - 1].to_string();
        }
        if s.is_empty() {
            return Err(err(Reason::Empty));
        }
        let digits = s
            .chars()
            .map(|c| match c {
                '0'..='9' => Some(c),
                '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32),
                _ => None,
            })
            .collect::<Option<String>>()
            .ok_or(err(Reason::NotDigits))?;
        match digits.len() {
            18 => {
                let ocr = OcrLine::parse(&digits).map_err(|e| err(e.reason))?;
                Ok(TicketRef {
                    municipality: ocr.municipality,
                    ticket: ocr.ticket,
                    printed: Some((ocr.kind, ocr.dose_digit)),
                })
            }
            16 => Ok(TicketRef {
                municipality: MunicipalityCode::parse_field(Self::FIELD, &digits[..6])?,
                ticket: TicketNumber(digits[6..].to_string()),
                printed: None,
            }),
            _ => Err(err(Reason::TicketLength)),
        }
    }
}

/// ロット番号 as printed on the vial: up to 20 ASCII letters, digits and
/// hyphens, kept in upper case so "ff3620" and "FF3620" are one lot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotNumber(String);

impl LotNumber {
    pub const FIELD: &'static str = "ロット番号";

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let s: String = input
            .trim()
            .chars()
            .map(|c| match c {
                // Full-width ASCII as typed with a Japanese input method.
                '！'..='～' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                _ => c,
            })
            .collect::<String>()
            .to_ascii_uppercase();
        let err = |reason| FieldError {
            field: Self::FIELD,
            reason,
        };
        if s.is_empty() {
            return Err(err(Reason::Empty));
        }
        if s.len() > 20 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(err(Reason::LotChars));
        }
        Ok(LotNumber(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The key a site sends with each recording so that a double tap, a
/// resubmitted form or a retry after a dropped connection records one dose:
/// 16–64 ASCII letters, digits, `-` or `_` (a UUID fits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const FIELD: &'static str = "Idempotency-Key";

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let s = input.trim();
        let err = |reason| FieldError {
            field: Self::FIELD,
            reason,
        };
        if s.is_empty() {
            return Err(err(Reason::Empty));
        }
        if !(16..=64).contains(&s.len())
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(err(Reason::KeyChars));
        }
        Ok(IdempotencyKey(s.to_string()))
    }

    /// A fresh key for a form the server renders.
    pub fn generate() -> Self {
        IdempotencyKey(super::new_record_id())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 住所 as the ticket's envelope needs it: free text, bounded, no control
/// characters.
#[derive(Clone, PartialEq, Eq)]
pub struct Address(String);

impl Address {
    pub const FIELD: &'static str = "住所";
    pub const MAX: usize = 200;

    pub fn parse(input: &str) -> Result<Option<Self>, FieldError> {
        let s = input.trim();
        if s.is_empty() {
            return Ok(None);
        }
        let e = |reason| FieldError {
            field: Self::FIELD,
            reason,
        };
        if s.chars().count() > Self::MAX {
            return Err(e(Reason::TooLong(Self::MAX)));
        }
        if s.chars().any(super::is_hidden) {
            return Err(e(Reason::ControlChars));
        }
        Ok(Some(Address(s.to_string())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Address(…)")
    }
}

/// Why staff changed a record: required, kept in the resident's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeReason(String);

impl ChangeReason {
    pub const FIELD: &'static str = "理由";
    pub const MAX: usize = 200;

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let s = input.trim();
        let e = |reason| FieldError {
            field: Self::FIELD,
            reason,
        };
        if s.is_empty() {
            return Err(e(Reason::Empty));
        }
        if s.chars().count() > Self::MAX {
            return Err(e(Reason::TooLong(Self::MAX)));
        }
        if s.chars()
            .any(|c| super::is_hidden(c) && c != '\n' && c != '\r')
        {
            return Err(e(Reason::ControlChars));
        }
        Ok(ChangeReason(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_numbers_are_ten_digits() {
        assert_eq!(
            TicketNumber::parse("０１２３４５６７８９")
                .unwrap()
                .as_str(),
            "0123456789"
        );
        assert_eq!(
            TicketNumber::parse("123456789").unwrap_err().reason,
            Reason::WrongLength(10)
        );
        assert_eq!(
            TicketNumber::parse("12345678x0").unwrap_err().field,
            "接種券番号"
        );
        let mut rng = rand::thread_rng();
        for _ in 0..100 {
            assert_eq!(TicketNumber::random(&mut rng).as_str().len(), 10);
        }
    }

    #[test]
    fn kinds_are_one_to_nine_and_doses_an_open_number() {
        assert_eq!(DoseNumber::parse("3").unwrap().get(), 3);
        assert_eq!(DoseNumber::parse("12").unwrap().get(), 12);
        assert_eq!(DoseNumber::parse("１２").unwrap().get(), 12);
        assert_eq!(
            DoseNumber::parse("0").unwrap_err().reason,
            Reason::OutOfRange(1, 99)
        );
        assert_eq!(
            DoseNumber::parse("100").unwrap_err().reason,
            Reason::OutOfRange(1, 99)
        );
        for bad in ["+5", "007", "1.5", "３a"] {
            assert_eq!(
                DoseNumber::parse(bad).unwrap_err().reason,
                Reason::OutOfRange(1, 99),
                "{bad}"
            );
        }
        assert_eq!(DoseNumber::new(12).unwrap().ocr_digit(), 0);
        assert_eq!(DoseNumber::new(7).unwrap().ocr_digit(), 7);
        assert_eq!(
            TicketKind::parse("10").unwrap_err().reason,
            Reason::WrongLength(1)
        );
    }

    #[test]
    fn ocr_line_round_trips_and_checks_the_municipality() {
        let line = OcrLine::parse("111310160000000042").unwrap();
        assert_eq!(line.municipality.as_str(), "131016");
        assert_eq!(line.ticket.as_str(), "0000000042");
        assert_eq!(line.dose_digit, 1);
        assert_eq!(line.digits(), "111310160000000042");
        // 131017 fails the check digit.
        assert_eq!(
            OcrLine::parse("111310170000000042").unwrap_err().reason,
            Reason::CheckDigit
        );
        assert_eq!(
            OcrLine::parse("01131016000000004").unwrap_err().reason,
            Reason::WrongLength(18)
        );
    }

    #[test]
    fn addresses_and_reasons() {
        assert_eq!(Address::parse("  ").unwrap(), None);
        assert!(Address::parse("東京都千代田区1-1").unwrap().is_some());
        assert_eq!(
            Address::parse("a\u{7}").unwrap_err().reason,
            Reason::ControlChars
        );
        assert_eq!(ChangeReason::parse(" ").unwrap_err().reason, Reason::Empty);
        assert!(ChangeReason::parse("届出により訂正").is_ok());
    }

    #[test]
    fn a_scanned_or_typed_ticket() {
        // The OCR line from the QR code: kind 1, dose 2, 福山市 082040.
        let r = TicketRef::parse("120820401234567890").unwrap();
        assert_eq!(r.municipality.as_str(), "082040");
        assert_eq!(r.ticket.as_str(), "1234567890");
        assert_eq!(r.printed.map(|(k, d)| (k.get(), d)), Some((1, 2)));
        // The same from an NW-7 barcode (start/stop letters), or typed
        // with separators and full-width digits.
        assert_eq!(
            TicketRef::parse("a120820401234567890b").unwrap().ticket,
            r.ticket
        );
        let typed = TicketRef::parse("０８２０４０-1234567890").unwrap();
        assert_eq!(typed.municipality, r.municipality);
        assert_eq!(typed.printed, None);
        // A misread municipality code (the real system confused 1 and 4)
        // fails its check digit before anything is looked up.
        let e = TicketRef::parse("082041 1234567890").unwrap_err();
        assert_eq!((e.field, e.reason), ("接種券", Reason::CheckDigit));
        let e = TicketRef::parse("120820411234567890").unwrap_err();
        assert_eq!((e.field, e.reason), ("接種券", Reason::CheckDigit));
        assert_eq!(
            TicketRef::parse("12345").unwrap_err().reason,
            Reason::TicketLength
        );
        assert_eq!(TicketRef::parse("  ").unwrap_err().reason, Reason::Empty);
        assert_eq!(
            TicketRef::parse("0820401234x67890").unwrap_err().reason,
            Reason::NotDigits
        );
    }

    #[test]
    fn lot_numbers() {
        assert_eq!(LotNumber::parse(" ff3620 ").unwrap().as_str(), "FF3620");
        assert_eq!(LotNumber::parse("ＦＦ３６２０").unwrap().as_str(), "FF3620");
        assert_eq!(LotNumber::parse("").unwrap_err().reason, Reason::Empty);
        assert_eq!(
            LotNumber::parse("FF 3620").unwrap_err().reason,
            Reason::LotChars
        );
        assert_eq!(
            LotNumber::parse(&"A".repeat(21)).unwrap_err().reason,
            Reason::LotChars
        );
    }
}
