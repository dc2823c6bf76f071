//! CSV for people who open it in Excel: UTF-8 with a BOM, and cells that
//! Excel would run as formulas neutralised.

/// A cell that begins with `= + - @` (or a tab or carriage return, which
/// Excel strips before looking) is prefixed with an apostrophe so it is
/// shown as text, never evaluated.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// A whole small table (account lists, log extracts) as UTF-8 CSV with BOM.
/// Large exports stream instead.
pub fn utf8_bom(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Vec<u8> {
    let mut out = vec![0xEF, 0xBB, 0xBF];
    {
        let mut w = csv::Writer::from_writer(&mut out);
        let _ = w.write_record(header);
        for row in rows {
            let _ = w.write_record(row.iter().map(|c| neutralise(c).into_owned()));
        }
        let _ = w.flush();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(neutralise("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(neutralise("-1+2"), "'-1+2");
        assert_eq!(neutralise("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise("山田"), "山田");
    }

    #[test]
    fn output_has_a_bom_and_quotes() {
        let b = utf8_bom(&["a", "b"], vec![vec!["x,y".into(), "=1".into()]]);
        assert_eq!(&b[..3], &[0xEF, 0xBB, 0xBF]);
        assert_eq!(
            String::from_utf8(b[3..].to_vec()).unwrap(),
            "a,b\n\"x,y\",'=1\n"
        );
    }
}
