//! Printable ticket sheets (A4, several tickets a page), the same for one
//! resident's ticket and for the tickets an import issued.

use crate::flows::tickets::{self, Label};
use crate::i18n::T;
use askama::Template;

#[derive(Template)]
#[template(path = "records/sheet.html")]
pub struct SheetPage {
    pub t: T,
    pub sheets: Vec<Vec<Label>>,
    pub back_href: String,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
    pub position: String,
}

/// Splits labels into A4 sheets.
pub fn into_sheets(labels: Vec<Label>) -> Vec<Vec<Label>> {
    labels
        .chunks(tickets::PER_SHEET as usize)
        .map(|c| c.to_vec())
        .collect()
}
