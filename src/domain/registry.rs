use super::MunicipalityCode;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The national list of local-government codes in use, shipped with the
/// product (reference/municipalities.csv, MIC list as of 2019-05-01).
const REGISTRY_CSV: &str = include_str!("../../reference/municipalities.csv");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MunicipalityKind {
    Prefecture,
    Municipality,
    /// 行政区 of a designated city.
    Ward,
}

#[derive(Debug, Clone)]
pub struct Municipality {
    pub code: MunicipalityCode,
    pub prefecture: String,
    pub name: String,
    pub name_kana: String,
    pub kind: MunicipalityKind,
}

impl Municipality {
    /// Prefecture name + municipality name, as written on letters.
    pub fn full_name(&self) -> String {
        if self.kind == MunicipalityKind::Prefecture {
            self.name.clone()
        } else {
            format!("{}{}", self.prefecture, self.name)
        }
    }

    /// Only municipalities and wards hold residents; prefectures are viewers.
    pub fn can_be_tenant(&self) -> bool {
        self.kind != MunicipalityKind::Prefecture
    }
}

pub struct Registry {
    by_code: BTreeMap<MunicipalityCode, Municipality>,
}

impl Registry {
    /// The shipped list, parsed once. Every code's check digit is verified
    /// while loading; a bad row in the shipped file is a build defect, caught
    /// by the unit test below.
    pub fn global() -> &'static Registry {
        static REG: OnceLock<Registry> = OnceLock::new();
        REG.get_or_init(|| Registry::from_csv(REGISTRY_CSV).expect("shipped registry is valid"))
    }

    fn from_csv(text: &str) -> Result<Registry, String> {
        let mut rdr = csv::Reader::from_reader(text.as_bytes());
        let mut by_code = BTreeMap::new();
        for (i, rec) in rdr.records().enumerate() {
            let rec = rec.map_err(|e| format!("line {}: {e}", i + 2))?;
            let code =
                MunicipalityCode::parse(&rec[0]).map_err(|e| format!("line {}: {e}", i + 2))?;
            let kind = match &rec[5] {
                "prefecture" => MunicipalityKind::Prefecture,
                "municipality" => MunicipalityKind::Municipality,
                "ward" => MunicipalityKind::Ward,
                other => return Err(format!("line {}: unknown kind {other}", i + 2)),
            };
            by_code.insert(
                code,
                Municipality {
                    code,
                    prefecture: rec[2].to_string(),
                    name: rec[3].to_string(),
                    name_kana: rec[4].to_string(),
                    kind,
                },
            );
        }
        Ok(Registry { by_code })
    }

    pub fn get(&self, code: &MunicipalityCode) -> Option<&Municipality> {
        self.by_code.get(code)
    }

    pub fn all(&self) -> impl Iterator<Item = &Municipality> {
        self.by_code.values()
    }

    /// Parses a code and requires it to be in use.
    pub fn lookup(
        &self,
        field: &'static str,
        input: &str,
    ) -> Result<&Municipality, super::FieldError> {
        let code = MunicipalityCode::parse_field(field, input)?;
        self.get(&code).ok_or(super::FieldError {
            field,
            reason: super::Reason::UnknownMunicipality,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_list_is_complete_and_valid() {
        let reg = Registry::global();
        let count = |k| reg.all().filter(|m| m.kind == k).count();
        assert_eq!(reg.all().count(), 1963);
        assert_eq!(count(MunicipalityKind::Prefecture), 47);
        assert_eq!(count(MunicipalityKind::Municipality), 1741);
        assert_eq!(count(MunicipalityKind::Ward), 175);
    }

    #[test]
    fn lookup_names_known_codes_and_refuses_unknown_ones() {
        let reg = Registry::global();
        let chiyoda = reg.lookup("code", "131016").unwrap();
        assert_eq!(chiyoda.full_name(), "東京都千代田区");
        // Valid check digit, but not a code in use.
        let e = reg.lookup("code", "990001").unwrap_err();
        assert_eq!(e.reason, crate::domain::Reason::UnknownMunicipality);
    }
}
