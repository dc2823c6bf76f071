//! The vaccine products of Japan's programme as shipped with the product
//! (reference/vaccines.csv): what an export or a certificate prints for a
//! dose's product code.

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
