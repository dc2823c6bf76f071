//! The layers of the code point one way: a module names only modules on
//! its own floor or below (`crate::…` paths, read from the source). The
//! compiler sees one crate, so this test is what keeps, say, a flow from
//! reaching up into the web layer or the start-up code.

use std::path::{Path, PathBuf};

/// Each top-level module of `src/` and its floor, from the ground up.
const FLOORS: &[(&str, u8)] = &[
    ("domain", 0),
    ("clock", 0),
    ("private_dir", 0),
    ("csvout", 0),
    ("qr", 0),
    ("logging", 0),
    ("i18n", 1),
    ("crypto", 1),
    ("shc", 1),
    // The partition opens its transactions through the database layer and
    // the row models take its scope: one floor, the door and the rooms.
    ("tenancy", 3),
    ("db", 3),
    ("audit", 4),
    ("config", 4),
    ("flows", 5),
    ("web", 6),
    ("demo", 6),
    ("startup", 7),
    ("bench", 8),
    ("cli", 8),
];

fn floor(module: &str) -> Option<u8> {
    FLOORS.iter().find(|(m, _)| *m == module).map(|(_, f)| *f)
}

/// The top-level module a file belongs to: `src/flows/doses.rs` → flows.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_string())
}

/// The modules a file names through `crate::`, outside comments.
fn named(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            for name in leading_names(rest) {
                found.push((n + 1, name));
            }
        }
    }
    found
}

/// `web::…` → web; `{demo, flows::x}` → demo, flows (a group that goes
/// on to the next line is read as far as the line goes).
fn leading_names(path: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = path.strip_prefix('{') else {
        return vec![ident(path)];
    };
    let mut names = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                names.push(ident(&group[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    names.push(ident(&group[start..]));
    names.retain(|n| !n.is_empty() && n != "self");
    names
}

#[test]
fn every_module_names_only_its_floor_and_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files: Vec<PathBuf> = walkdir::WalkDir::new(&src)
        .into_iter()
        .flatten()
        .map(walkdir::DirEntry::into_path)
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    assert!(files.len() > 50, "the source tree was not found at {src:?}");
    let mut wrong = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(own) = floor(&module) else {
            wrong.push(format!(
                "{}: module `{module}` has no floor in FLOORS",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for (line, name) in named(&text) {
            match floor(&name) {
                Some(f) if f > own => wrong.push(format!(
                    "{}:{line}: `{module}` (floor {own}) names `{name}` (floor {f})",
                    file.display()
                )),
                Some(_) => {}
                None => wrong.push(format!(
                    "{}:{line}: `crate::{name}` is not a module in FLOORS",
                    file.display()
                )),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that run up:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_check_sees_an_import_that_runs_up() {
    let text = "use crate::web::Authed; // a flow reaching up\n// crate::startup in a comment\n\
                use crate::{db::{self, DbConn}, startup};\n";
    let names: Vec<(usize, String)> = [(1, "web"), (3, "db"), (3, "startup")]
        .into_iter()
        .map(|(n, s)| (n, s.to_string()))
        .collect();
    assert_eq!(named(text), names);
}
