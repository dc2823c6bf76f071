//! 異動事由: why the resident registry's change file names a person. Each
//! line of the file gives one, as the registry writes it (the word, or the
//! two-digit code the README lists).

use super::{FieldError, Reason};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// 転入: moved in from another municipality (or back).
    MoveIn,
    /// 出生: born here.
    Birth,
    /// 職権記載: entered by the municipality's own authority.
    EntryByAuthority,
    /// 転出: moved out to another municipality.
    MoveOut,
    /// 死亡: died.
    Death,
    /// 消除 (職権消除): removed from the registry by authority.
    Removal,
    /// 転居: moved within the municipality (the address alone changes).
    AddressChange,
    /// 氏名変更: the name changed.
    NameChange,
    /// 職権修正: corrected by authority (any attribute).
    Correction,
}

/// What a kind of change does to the person's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Registers the person (or brings one who moved out back).
    Adds,
    /// Ends the person's residence: moved out (false) or deceased (true).
    Ends { deceased: bool },
    /// Changes attributes of a current resident.
    Changes,
}

/// The attributes a change line can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    NameKanji,
    NameKana,
    BirthDate,
    Sex,
    Address,
    MyNumber,
}

impl ChangeKind {
    pub const FIELD: &'static str = "異動事由";

    pub const ALL: [ChangeKind; 9] = [
        ChangeKind::MoveIn,
        ChangeKind::Birth,
        ChangeKind::EntryByAuthority,
        ChangeKind::MoveOut,
        ChangeKind::Death,
        ChangeKind::Removal,
        ChangeKind::AddressChange,
        ChangeKind::NameChange,
        ChangeKind::Correction,
    ];

    /// The two-digit code of the file format (README).
    pub fn code(&self) -> &'static str {
        match self {
            ChangeKind::MoveIn => "01",
            ChangeKind::Birth => "02",
            ChangeKind::EntryByAuthority => "03",
            ChangeKind::MoveOut => "11",
            ChangeKind::Death => "12",
            ChangeKind::Removal => "13",
            ChangeKind::AddressChange => "21",
            ChangeKind::NameChange => "22",
            ChangeKind::Correction => "23",
        }
    }

    pub fn word(&self) -> &'static str {
        match self {
            ChangeKind::MoveIn => "転入",
            ChangeKind::Birth => "出生",
            ChangeKind::EntryByAuthority => "職権記載",
            ChangeKind::MoveOut => "転出",
            ChangeKind::Death => "死亡",
            ChangeKind::Removal => "消除",
            ChangeKind::AddressChange => "転居",
            ChangeKind::NameChange => "氏名変更",
            ChangeKind::Correction => "職権修正",
        }
    }

    /// The word or the code; 職権消除 is 消除.
    pub fn parse(input: &str) -> Result<ChangeKind, FieldError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(FieldError {
                field: Self::FIELD,
                reason: Reason::Empty,
            });
        }
        let s = if s == "職権消除" { "消除" } else { s };
        ChangeKind::ALL
            .into_iter()
            .find(|k| k.word() == s || k.code() == s)
            .ok_or(FieldError {
                field: Self::FIELD,
                reason: Reason::UnknownChoice,
            })
    }

    pub fn effect(&self) -> Effect {
        match self {
            ChangeKind::MoveIn | ChangeKind::Birth | ChangeKind::EntryByAuthority => Effect::Adds,
            ChangeKind::MoveOut | ChangeKind::Removal => Effect::Ends { deceased: false },
            ChangeKind::Death => Effect::Ends { deceased: true },
            ChangeKind::AddressChange | ChangeKind::NameChange | ChangeKind::Correction => {
                Effect::Changes
            }
        }
    }

    /// Whether a line of this kind may change the attribute (F24: a 転居
    /// that touches anything but the address is an error). A person added
    /// is given every attribute.
    pub fn may_change(&self, a: Attribute) -> bool {
        match self {
            ChangeKind::MoveIn
            | ChangeKind::Birth
            | ChangeKind::EntryByAuthority
            | ChangeKind::Correction => true,
            ChangeKind::AddressChange => a == Attribute::Address,
            ChangeKind::NameChange => matches!(a, Attribute::NameKanji | Attribute::NameKana),
            ChangeKind::MoveOut | ChangeKind::Death | ChangeKind::Removal => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_codes_parse_to_the_same_kind() {
        for k in ChangeKind::ALL {
            assert_eq!(ChangeKind::parse(k.word()).unwrap(), k);
            assert_eq!(ChangeKind::parse(k.code()).unwrap(), k);
        }
        assert_eq!(
            ChangeKind::parse(" 職権消除 ").unwrap(),
            ChangeKind::Removal
        );
        assert_eq!(
            ChangeKind::parse("引越").unwrap_err().reason,
            Reason::UnknownChoice
        );
        assert_eq!(ChangeKind::parse("").unwrap_err().reason, Reason::Empty);
    }

    #[test]
    fn an_address_change_changes_the_address_alone() {
        assert!(ChangeKind::AddressChange.may_change(Attribute::Address));
        assert!(!ChangeKind::AddressChange.may_change(Attribute::NameKanji));
        assert!(!ChangeKind::MoveOut.may_change(Attribute::Address));
        assert!(ChangeKind::NameChange.may_change(Attribute::NameKana));
    }
}
