//! What is wrong with one line of an uploaded file, in both languages:
//! shared by the reader of CSV lines and the imports that check them.

use crate::domain::FieldError;
use serde::{Deserialize, Serialize};

/// One problem in the file: where, and why — never the cell's value, which
/// may be an individual number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineError {
    pub line: u64,
    pub column: String,
    pub message_ja: String,
    pub message_en: String,
}

impl LineError {
    pub(crate) fn new(line: u64, column: &str, ja: String, en: String) -> LineError {
        LineError {
            line,
            column: column.to_string(),
            message_ja: ja,
            message_en: en,
        }
    }

    pub(crate) fn field(line: u64, e: FieldError) -> LineError {
        LineError {
            line,
            column: e.field.to_string(),
            message_ja: e.reason.message_ja(),
            message_en: e.reason.message_en(),
        }
    }

    pub(crate) fn conflict(line: u64, column: &str, c: Conflict) -> LineError {
        let (ja, en) = c.messages();
        LineError {
            line,
            column: column.to_string(),
            message_ja: ja,
            message_en: en,
        }
    }
}

/// Problems only the stored records (or the rest of the file) reveal.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Conflict {
    MissingColumn,
    DuplicateColumn,
    DuplicateInFile,
    NumberHeldByOther,
    /// An individual-number column from someone who may not hand them over.
    NumbersNotAllowed,
    TicketHeldByOther,
    TicketInvalidated,
    FlaggedResident,
    TooManyLines(u64),
    /// A line with another number of cells than the header line.
    CellCount {
        header: usize,
        cells: usize,
    },
    /// The file ends inside its last line.
    CutOff,
    /// A change file's cell the line's 異動事由 does not take.
    NotForThisChange,
    /// An attribute the line's 異動事由 may not change (F24: a 転居 that
    /// touches anything but the address).
    ChangeNotAllowed,
    /// A change of someone the municipality does not hold.
    NotResident,
    /// A 転入 (or birth) of someone who lives here now.
    AlreadyResident,
    /// A change of someone who moved out or died.
    NotCurrent,
}

impl Conflict {
    fn messages(&self) -> (String, String) {
        match self {
            Conflict::MissingColumn => (
                "必須の列がありません".into(),
                "required column is missing".into(),
            ),
            Conflict::DuplicateColumn => {
                ("同じ列が2回あります".into(), "column appears twice".into())
            }
            Conflict::DuplicateInFile => (
                "ファイル内の別の行と重複しています".into(),
                "duplicates another line of the file".into(),
            ),
            Conflict::NumbersNotAllowed => (
                "個人番号の列を取り込めるのは、個人番号の権限を持つ職員がこの自治体のLG-WAN端末から取り込む場合だけです。列を除くか、その職員に依頼してください".into(),
                "may only be imported by staff holding the individual-number permission, on one of the municipality's LG-WAN terminals: remove the column, or ask such staff to import the file".into(),
            ),
            Conflict::NumberHeldByOther => (
                "別の住民（宛名番号が異なる）に登録済みの個人番号です".into(),
                "is already registered to another resident (different 宛名番号)".into(),
            ),
            Conflict::TicketHeldByOther => (
                "別の住民に発行済みの接種券番号です".into(),
                "is already issued to another resident".into(),
            ),
            Conflict::TicketInvalidated => (
                "無効にした接種券番号は再使用できません".into(),
                "was invalidated and cannot be used again".into(),
            ),
            Conflict::FlaggedResident => (
                "転出または死亡の登録がある住民には接種券を発行できません".into(),
                "cannot be issued: the resident is registered as moved out or deceased".into(),
            ),
            Conflict::TooManyLines(n) => (
                format!("行数が上限（{n}行）を超えています。ファイルを分けてください"),
                format!("the file has more than {n} lines; split it"),
            ),
            Conflict::CellCount { header, cells } => (
                format!("列の数が見出し行と合いません（見出し{header}列、この行{cells}列）"),
                format!(
                    "the line has a different number of cells from the header line \
                     (header {header}, this line {cells})"
                ),
            ),
            Conflict::CutOff => (
                "ファイルの最後の行が途中で切れています".into(),
                "the last line of the file is cut off".into(),
            ),
            Conflict::NotForThisChange => (
                "この異動事由の行には書けない項目です（空欄にしてください）".into(),
                "is not taken by a line of this change reason (leave it empty)".into(),
            ),
            Conflict::ChangeNotAllowed => (
                "この異動事由では変更できない項目です（転居で変わるのは住所だけ、氏名変更で変わるのは氏名だけです）".into(),
                "cannot change with this change reason (an address change changes the address alone, a name change the name alone)".into(),
            ),
            Conflict::NotResident => (
                "登録されていない宛名番号です".into(),
                "is not a registered resident".into(),
            ),
            Conflict::AlreadyResident => (
                "現に住民として登録されている人です（転入・出生・職権記載はできません）".into(),
                "is a current resident already (cannot move in, be born or be entered again)".into(),
            ),
            Conflict::NotCurrent => (
                "転出または死亡の登録がある人です".into(),
                "is registered as moved out or deceased".into(),
            ),
        }
    }
}
