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

/// Every `.rs` file under `src/`.
fn source_files() -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    walkdir::WalkDir::new(&src)
        .into_iter()
        .flatten()
        .map(walkdir::DirEntry::into_path)
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect()
}

/// The code of a file with its comments left out, line by line.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.split("//").next().unwrap_or_default()))
}

/// Where a text names one of the municipality's tables of the diesel
/// schema: `schema::doses`, or `doses` in a `use …schema::{…}` group.
fn tenant_tables_named(text: &str) -> Vec<(usize, &'static str)> {
    let mut found = Vec::new();
    for (n, code) in code_lines(text) {
        let Some(at) = code.find("schema::") else {
            continue;
        };
        let path = &code[at + "schema::".len()..];
        for name in leading_names(path) {
            if let Some(t) = vrs::db::schema::TENANT_TABLES.iter().find(|t| **t == name) {
                found.push((n, *t));
            }
        }
    }
    found
}

/// The row functions of `db::models` that may reach a municipality's table
/// without its scoped connection, and why (none so far).
const UNSCOPED: &[(&str, &str)] = &[];

/// A municipality's tables are reached only through the connection of a
/// transaction scoped to it (`db::TenantConn`, made by `Partition::run`
/// and `read` and nowhere else: its constructor is private to `db`). Code
/// outside `db` does not name them at all; in `db::models`, a function that
/// names one takes a `TenantConn`, starts its queries from
/// `TenantConn::rows` (the municipality filter, written once), and checks
/// its inserts with `TenantConn::check`.
#[test]
fn tenant_tables_are_reached_only_through_the_scoped_connection() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let db = src.join("db");
    let models = db.join("models");
    let mut wrong = Vec::new();
    let mut model_functions = 0;
    for file in source_files() {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if !file.starts_with(&db) {
            // The bench's baseline: the database's own insert speed, with
            // no application code in the way.
            if file.ends_with("bench/import.rs") {
                continue;
            }
            for (line, t) in tenant_tables_named(&text) {
                wrong.push(format!("{}:{line}: names `{t}` outside db", file.display()));
            }
            continue;
        }
        if !file.starts_with(&models) {
            continue;
        }
        let tables: Vec<&str> = tenant_tables_named(&text)
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        if tables.is_empty() {
            continue;
        }
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        // Each function, from its `fn` to the next.
        let starts: Vec<usize> = text.match_indices("fn ").map(|(i, _)| i).collect();
        for (k, &start) in starts.iter().enumerate() {
            let end = starts.get(k + 1).copied().unwrap_or(text.len());
            let item = &text[start..end];
            let head = item.split('{').next().unwrap_or_default();
            let line = text[..start].lines().count() + 1;
            let reaches = tables.iter().any(|t| {
                item.contains(&format!("{t}::table")) || item.contains(&format!("FROM {t}"))
            });
            if !reaches {
                continue;
            }
            model_functions += 1;
            let excused = UNSCOPED
                .iter()
                .any(|(f, sig)| *f == name && head.starts_with(sig));
            if head.contains("&mut DbConn") && !excused {
                wrong.push(format!(
                    "{}:{line}: `{}` reaches a municipality's table with a plain connection",
                    file.display(),
                    head.trim()
                ));
            }
        }
        for (line, code) in code_lines(&text) {
            // A join's condition names the other table's column; a filter
            // by hand names a value.
            let by_hand = tables.iter().any(|t| {
                code.split(&format!("{t}::municipality_code.eq("))
                    .skip(1)
                    .any(|rest| !rest.split(')').next().unwrap_or_default().contains("::"))
            });
            // An alias (a table read twice in one query) filters its copy.
            if by_hand && !code.contains("field(") {
                wrong.push(format!(
                    "{}:{line}: a municipality filter written by hand (use TenantConn::rows)",
                    file.display()
                ));
            }
            if code.contains("debug_assert") {
                wrong.push(format!(
                    "{}:{line}: an insert checked in debug builds only (use TenantConn::check)",
                    file.display()
                ));
            }
        }
    }
    assert!(
        model_functions > 50,
        "only {model_functions} row functions found"
    );
    assert!(
        wrong.is_empty(),
        "a municipality's table reached outside its scope:\n{}",
        wrong.join("\n")
    );
}

#[test]
/// Handlers parse, call a flow and render: no web module names a row type
/// of `db::models`, writes a query or opens a transaction.
fn web_modules_leave_the_rows_to_the_flows() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join("web");
    let mut naming: Vec<String> = source_files()
        .into_iter()
        .filter(|f| f.starts_with(&web))
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let shipped = text.split("#[cfg(test)]").next().unwrap_or_default();
            code_lines(shipped).any(|(_, code)| {
                ["db::models", "diesel::", "write_transaction", "savepoint("]
                    .iter()
                    .any(|w| code.contains(w))
            })
        })
        .filter_map(|f| {
            f.strip_prefix(&web)
                .ok()
                .map(|r| r.to_string_lossy().replace('\\', "/"))
        })
        .collect();
    naming.sort();
    assert!(
        naming.is_empty(),
        "web modules reaching rows or transactions themselves (handlers parse, call a flow \
         and render): {naming:?}"
    );
}
