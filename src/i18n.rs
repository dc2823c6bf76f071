//! Japanese first, English available: every page takes a `T` that looks up
//! its strings in the catalogues under locales/.

use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Ja,
    En,
}

impl Lang {
    pub fn code(&self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "ja" => Some(Lang::Ja),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn other(&self) -> Lang {
        match self {
            Lang::Ja => Lang::En,
            Lang::En => Lang::Ja,
        }
    }
}

type Catalog = HashMap<String, String>;

fn catalogs() -> &'static (Catalog, Catalog) {
    static C: OnceLock<(Catalog, Catalog)> = OnceLock::new();
    C.get_or_init(|| {
        let ja =
            serde_json::from_str(include_str!("../locales/ja.json")).expect("ja.json is valid");
        let en =
            serde_json::from_str(include_str!("../locales/en.json")).expect("en.json is valid");
        (ja, en)
    })
}

/// A page's translator: the language, and the path to come back to after
/// switching language.
#[derive(Debug, Clone)]
pub struct T {
    pub lang: Lang,
    pub path: String,
}

impl T {
    /// A path that could carry an individual number is not echoed back
    /// into the page's language link; the switch then returns to the top.
    pub fn new(lang: Lang, path: &str) -> T {
        let path = if crate::domain::mask_number_like(path) == path {
            path.to_string()
        } else {
            "/".to_string()
        };
        T { lang, path }
    }

    /// The string for `key`; a missing key shows itself (and the catalogue
    /// test fails), never a blank.
    pub fn s<'a>(&self, key: &'a str) -> &'a str
    where
        'static: 'a,
    {
        let (ja, en) = catalogs();
        let cat = match self.lang {
            Lang::Ja => ja,
            Lang::En => en,
        };
        match cat.get(key) {
            Some(v) => v.as_str(),
            None => {
                tracing::warn!(key, lang = self.lang.code(), "missing translation");
                key
            }
        }
    }

    pub fn code(&self) -> &'static str {
        self.lang.code()
    }

    pub fn other_code(&self) -> &'static str {
        self.lang.other().code()
    }

    pub fn other_label(&self) -> &'static str {
        match self.lang {
            Lang::Ja => "English",
            Lang::En => "日本語",
        }
    }

    pub fn switch_href(&self) -> String {
        format!("/lang/{}?next={}", self.other_code(), urlencode(&self.path))
    }

    /// The string for `prefix` + `code` (a status or kind stored as a
    /// code), or the code itself when the catalogue has no entry.
    pub fn code_label(&self, prefix: &str, code: &str) -> String {
        let key = format!("{prefix}{code}");
        let (ja, en) = catalogs();
        let cat = match self.lang {
            Lang::Ja => ja,
            Lang::En => en,
        };
        cat.get(&key).cloned().unwrap_or_else(|| code.to_string())
    }

    /// A field's name (the domain's Japanese name) in the page's language.
    pub fn field(&self, name: &str) -> String {
        self.code_label("field.", name)
    }

    /// The string for `key` with `{n}` replaced (the catalogues put the
    /// number where each language wants it: 「2回目」, "Dose 2").
    pub fn with_n(&self, key: &str, n: impl std::fmt::Display) -> String {
        self.s(key).replace("{n}", &n.to_string())
    }

    /// A birth year and month as the language writes it.
    pub fn year_month(&self, y: i32, m: u32) -> String {
        self.s("site.year_month")
            .replace("{y}", &y.to_string())
            .replace("{m}", &m.to_string())
    }

    pub fn is_en(&self) -> bool {
        self.lang == Lang::En
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogues_have_the_same_keys() {
        let (ja, en) = catalogs();
        let mut a: Vec<_> = ja.keys().collect();
        let mut b: Vec<_> = en.keys().collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        assert!(ja.values().chain(en.values()).all(|v| !v.trim().is_empty()));
    }

    #[test]
    fn every_key_used_in_templates_exists() {
        let (ja, _) = catalogs();
        let mut missing = Vec::new();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
        let mut stack = vec![std::path::PathBuf::from(dir)];
        while let Some(p) = stack.pop() {
            for entry in std::fs::read_dir(&p).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for part in text.split("t.s(\"").skip(1) {
                    let key = part.split('"').next().unwrap();
                    if !ja.contains_key(key) {
                        missing.push(format!("{}: {key}", path.display()));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "missing translations: {missing:?}");
    }

    #[test]
    fn switch_link_returns_to_the_same_page() {
        let t = T::new(Lang::Ja, "/municipalities/check");
        assert_eq!(t.switch_href(), "/lang/en?next=/municipalities/check");
    }
}
