//! Writes the route table: every `#[get("…")]` path of the web modules, with
//! the file that serves it, read from the sources so that nothing that
//! lists pages (`vrs bench pages`) can fall behind the handlers.

use std::path::{Path, PathBuf};

/// The Rust files under `dir`, in path order.
fn sources(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .flatten()
        .map(walkdir::DirEntry::into_path)
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect()
}

fn main() {
    let web = Path::new("src/web");
    println!("cargo::rerun-if-changed=src/web");
    // `embed_migrations!` reads the migration folders at compile time but
    // does not tell cargo, so a new migration would not be built in.
    println!("cargo::rerun-if-changed=migrations");
    let files = sources(web);
    let mut rows = String::new();
    for file in &files {
        println!("cargo::rerun-if-changed={}", file.display());
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for line in text.lines() {
            let Some(rest) = line.trim().strip_prefix("#[get(\"") else {
                continue;
            };
            let Some((path, _)) = rest.split_once('"') else {
                continue;
            };
            let name = file
                .strip_prefix("src")
                .unwrap_or(file)
                .display()
                .to_string();
            rows.push_str(&format!("    ({name:?}, {path:?}),\n"));
        }
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    let table = format!(
        "/// Every GET route: (source file, path pattern), in file order.\n\
         pub const GET_ROUTES: &[(&str, &str)] = &[\n{rows}];\n"
    );
    if let Err(e) = std::fs::write(out.join("routes.rs"), table) {
        panic!("writing the route table: {e}");
    }
}
