//! The vaccine products of Japan's programme as shipped with the product
//! (reference/vaccines.csv), with the minimum intervals of MHLW's guidance:
//! the seed of the national vaccine master that the operator keeps in the
//! database (`flows::vaccines`).

use super::{FieldError, Reason};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// A product's code in the national vaccine master (PFZ_ORIG_12P): 3 to 40
/// of A–Z, 0–9 and `_`, read upper-case. Whether the master holds it is for
/// the database to say; what cannot be a code never reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductCode(String);

impl ProductCode {
    pub const FIELD: &'static str = "ワクチン（製品）";

    pub fn parse(input: &str) -> Result<ProductCode, FieldError> {
        Self::parse_field(Self::FIELD, input)
    }

    /// Same rules under another field name (e.g. 製品コード).
    pub fn parse_field(field: &'static str, input: &str) -> Result<ProductCode, FieldError> {
        let code = input.trim().to_ascii_uppercase();
        let reason = if code.is_empty() {
            Reason::Empty
        } else if (3..=40).contains(&code.len())
            && code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            return Ok(ProductCode(code));
        } else {
            Reason::ProductCodeChars
        };
        Err(FieldError { field, reason })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const VACCINES_CSV: &str = include_str!("../../reference/vaccines.csv");

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Product {
    pub product_code: String,
    pub manufacturer_ja: String,
    pub manufacturer_en: String,
    pub product_ja: String,
    pub product_en: String,
    pub vaccine_type: String,
    pub cvx: String,
    pub target: String,
    pub age_group: String,
    /// Doses of the primary series this product is given for (0: boosters only).
    pub primary_doses: i32,
    /// Least date difference, in days, between dose 1 and dose 2 (MHLW's
    /// 「18日以上の間隔」 counts clear days, so it is 19 here).
    pub dose2_min_days: Option<i32>,
    /// The same between dose 2 and dose 3 of a three-dose primary series.
    pub dose3_min_days: Option<i32>,
    /// Least calendar months after the previous dose for a booster.
    pub booster_min_months: i32,
}

pub struct Catalog {
    by_code: BTreeMap<String, Product>,
}

impl Catalog {
    pub fn global() -> &'static Catalog {
        static C: OnceLock<Catalog> = OnceLock::new();
        C.get_or_init(|| {
            let mut by_code = BTreeMap::new();
            for p in csv::Reader::from_reader(VACCINES_CSV.as_bytes())
                .deserialize::<Product>()
                .flatten()
            {
                by_code.insert(p.product_code.clone(), p);
            }
            Catalog { by_code }
        })
    }

    pub fn get(&self, code: &str) -> Option<&Product> {
        self.by_code.get(code)
    }

    pub fn all(&self) -> impl Iterator<Item = &Product> {
        self.by_code.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_product_code_is_read_upper_case_and_nothing_else_reaches_the_database() {
        assert_eq!(
            ProductCode::parse(" pfz_orig_12p ")
                .ok()
                .map(|c| c.as_str().to_string()),
            Some("PFZ_ORIG_12P".to_string())
        );
        for (bad, reason) in [
            ("", Reason::Empty),
            ("  ", Reason::Empty),
            ("AB", Reason::ProductCodeChars),
            ("PFZ\0ORIG", Reason::ProductCodeChars),
            ("PFZ-ORIG", Reason::ProductCodeChars),
            ("ＰＦＺ", Reason::ProductCodeChars),
        ] {
            assert_eq!(
                ProductCode::parse(bad).map_err(|e| e.reason),
                Err(reason),
                "{bad:?}"
            );
        }
        assert!(ProductCode::parse(&"A".repeat(41)).is_err());
    }

    #[test]
    fn the_shipped_list_loads_whole() {
        let c = Catalog::global();
        assert_eq!(c.all().count(), 24);
        let p = c.get("PFZ_ORIG_12P").unwrap();
        assert_eq!(p.manufacturer_ja, "ファイザー");
        assert_eq!(p.cvx, "208");
    }
}
