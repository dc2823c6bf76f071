//! The vaccine products of Japan's programme as shipped with the product
//! (reference/vaccines.csv), with the minimum intervals of MHLW's guidance:
//! the seed of the national vaccine master that the operator keeps in the
//! database (`flows::vaccines`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

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
    fn the_shipped_list_loads_whole() {
        let c = Catalog::global();
        assert_eq!(c.all().count(), 24);
        let p = c.get("PFZ_ORIG_12P").unwrap();
        assert_eq!(p.manufacturer_ja, "ファイザー");
        assert_eq!(p.cvx, "208");
    }
}
