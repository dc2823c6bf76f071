use super::{FieldError, Reason};
use chrono::NaiveDate;

fn err(field: &'static str, reason: Reason) -> FieldError {
    FieldError { field, reason }
}

/// 宛名番号: the municipality's own resident number. Opaque to us, but it is
/// the join key of every export, so it must be printable ASCII without spaces.
#[derive(Clone, PartialEq, Eq)]
pub struct AddresseeNumber(String);

impl AddresseeNumber {
    pub const FIELD: &'static str = "宛名番号";
    pub const MAX: usize = 32;

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(err(Self::FIELD, Reason::Empty));
        }
        if s.chars().count() > Self::MAX {
            return Err(err(Self::FIELD, Reason::TooLong(Self::MAX)));
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(err(Self::FIELD, Reason::AddresseeChars));
        }
        Ok(AddresseeNumber(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AddresseeNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AddresseeNumber(…)")
    }
}

/// 氏名 in kanji (or whatever script the registry holds).
#[derive(Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub const FIELD: &'static str = "氏名";
    pub const MAX: usize = 100;

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        Self::parse_field(Self::FIELD, input)
    }

    pub fn parse_field(field: &'static str, input: &str) -> Result<Self, FieldError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(err(field, Reason::Empty));
        }
        if s.chars().count() > Self::MAX {
            return Err(err(field, Reason::TooLong(Self::MAX)));
        }
        if s.chars().any(super::is_hidden) {
            return Err(err(field, Reason::ControlChars));
        }
        Ok(PersonName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PersonName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonName(…)")
    }
}

/// 氏名カナ: full-width katakana with spaces; half-width katakana (common in
/// older registry extracts) is refused with a clear reason rather than guessed.
#[derive(Clone, PartialEq, Eq)]
pub struct KanaName(String);

impl KanaName {
    pub const FIELD: &'static str = "氏名カナ";

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(err(Self::FIELD, Reason::Empty));
        }
        if s.chars().count() > PersonName::MAX {
            return Err(err(Self::FIELD, Reason::TooLong(PersonName::MAX)));
        }
        let ok = s.chars().all(|c| {
            matches!(
                c,
                '\u{30A1}'..='\u{30FA}' | 'ー' | '・' | '　' | ' ' | 'ヽ' | 'ヾ'
            )
        });
        if !ok {
            return Err(err(Self::FIELD, Reason::NotKatakana));
        }
        Ok(KanaName(s.replace(' ', "　")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first katakana of each part of the name ("ヤ・タ"), the most of a
    /// name a vaccination site may see.
    pub fn initials(&self) -> String {
        self.0
            .split('　')
            .filter_map(|part| part.chars().next())
            .map(String::from)
            .collect::<Vec<_>>()
            .join("・")
    }
}

impl std::fmt::Debug for KanaName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KanaName(…)")
    }
}

/// 性別 as the resident registry codes it (JIS X 0303): 1 male, 2 female,
/// 9 not applicable / not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    Male,
    Female,
    Unspecified,
}

impl Sex {
    pub const FIELD: &'static str = "性別";

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        match input.trim() {
            "1" | "男" | "男性" | "M" | "m" => Ok(Sex::Male),
            "2" | "女" | "女性" | "F" | "f" => Ok(Sex::Female),
            "9" | "0" => Ok(Sex::Unspecified),
            "" => Err(err(Self::FIELD, Reason::Empty)),
            _ => Err(err(Self::FIELD, Reason::SexCode)),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Sex::Male => "1",
            Sex::Female => "2",
            Sex::Unspecified => "9",
        }
    }
}

/// 生年月日: a real calendar date, not in the future, not before 1900.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BirthDate(NaiveDate);

impl BirthDate {
    pub const FIELD: &'static str = "生年月日";

    pub fn parse(input: &str, today: NaiveDate) -> Result<Self, FieldError> {
        Self::from_date(super::parse_date_field(Self::FIELD, input)?, today)
    }

    pub fn from_date(date: NaiveDate, today: NaiveDate) -> Result<Self, FieldError> {
        if date > today {
            return Err(err(Self::FIELD, Reason::FutureDate));
        }
        if date < NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(date) {
            return Err(err(Self::FIELD, Reason::DateTooOld));
        }
        Ok(BirthDate(date))
    }

    /// A date that passed `parse` when it was stored.
    pub(crate) fn from_stored(date: NaiveDate) -> Self {
        BirthDate(date)
    }

    pub fn date(&self) -> NaiveDate {
        self.0
    }
}

impl std::fmt::Debug for BirthDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BirthDate(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    #[test]
    fn addressee_numbers() {
        assert_eq!(
            AddresseeNumber::parse(" A-0012 ").unwrap().as_str(),
            "A-0012"
        );
        assert_eq!(
            AddresseeNumber::parse("").unwrap_err().reason,
            Reason::Empty
        );
        assert_eq!(
            AddresseeNumber::parse("12 34").unwrap_err().reason,
            Reason::AddresseeChars
        );
        assert_eq!(
            AddresseeNumber::parse(&"1".repeat(33)).unwrap_err().reason,
            Reason::TooLong(32)
        );
    }

    #[test]
    fn kana_names_and_initials() {
        let k = KanaName::parse("ヤマダ タロウ").unwrap();
        assert_eq!(k.as_str(), "ヤマダ　タロウ");
        assert_eq!(k.initials(), "ヤ・タ");
        assert_eq!(
            KanaName::parse("ﾔﾏﾀﾞ").unwrap_err().reason,
            Reason::NotKatakana
        );
        assert_eq!(
            KanaName::parse("やまだ").unwrap_err().reason,
            Reason::NotKatakana
        );
        assert_eq!(KanaName::parse("山田").unwrap_err().field, "氏名カナ");
    }

    #[test]
    fn birth_dates() {
        assert!(BirthDate::parse("1980-04-01", today()).is_ok());
        assert!(BirthDate::parse("1980/04/01", today()).is_ok());
        assert!(BirthDate::parse("19800401", today()).is_ok());
        assert_eq!(
            BirthDate::parse("1980-02-30", today()).unwrap_err().reason,
            Reason::NotADate
        );
        assert_eq!(
            BirthDate::parse("2030-01-01", today()).unwrap_err().reason,
            Reason::FutureDate
        );
        assert_eq!(
            BirthDate::parse("1850-01-01", today()).unwrap_err().reason,
            Reason::DateTooOld
        );
    }

    #[test]
    fn sex_codes() {
        assert_eq!(Sex::parse("1").unwrap(), Sex::Male);
        assert_eq!(Sex::parse("女").unwrap(), Sex::Female);
        assert_eq!(Sex::parse("9").unwrap(), Sex::Unspecified);
        assert_eq!(Sex::parse("x").unwrap_err().reason, Reason::SexCode);
    }

    #[test]
    fn control_and_invisible_characters_are_refused_in_names() {
        for bad in [
            "山田\u{0}",
            "山\u{202E}田",
            "山\u{200B}田",
            "\u{2066}山田",
            "山田\u{FEFF}",
        ] {
            assert_eq!(
                PersonName::parse(bad).unwrap_err().reason,
                Reason::ControlChars,
                "{bad:?}"
            );
        }
        // An ideographic variation selector picks a name's exact glyph.
        assert!(PersonName::parse("葛\u{E0100}飾").is_ok());
    }
}
