//! The `vrs` binary as an operator runs it: first start, bad input that names
//! what is wrong and changes nothing, key rotation, production refusals.

use crate::helpers::*;
use std::path::Path;
use std::process::{Command, Output};

fn vrs(dir: &Path, db: &TestDb, args: &[&str]) -> Output {
    base_cmd(dir, db).args(args).output().expect("run vrs")
}

fn base_cmd(dir: &Path, db: &TestDb) -> Command {
    vrs_cmd(dir, db)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn tenants(dir: &Path, db: &TestDb) -> String {
    let o = vrs(dir, db, &["municipality", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

#[test]
fn enabling_municipalities_checks_codes_and_changes_nothing_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path());
    let ok = vrs(dir.path(), &db, &["municipality", "enable", "082040"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("茨城県古河市"));
    let before = tenants(dir.path(), &db);

    for (code, expect) in [
        ("082041", "check digit"),
        ("990001", "not a municipality code in use"),
        ("08204", "6 digits"),
        ("abc", "digits"),
    ] {
        let o = vrs(dir.path(), &db, &["municipality", "enable", code]);
        assert!(!o.status.success());
        let e = stderr(&o);
        assert!(
            e.contains("municipality code") && e.contains(expect),
            "{code}: {e}"
        );
    }
    let o = vrs(dir.path(), &db, &["municipality", "enable", "080004"]);
    assert!(stderr(&o).contains("prefecture"), "{}", stderr(&o));
    let o = vrs(dir.path(), &db, &["municipality", "enable", "082040"]);
    assert!(stderr(&o).contains("already enabled"), "{}", stderr(&o));
    let o = vrs(
        dir.path(),
        &db,
        &["municipality", "erase", "082040", "--confirm", "131016"],
    );
    assert!(stderr(&o).contains("nothing erased"), "{}", stderr(&o));
    assert_eq!(tenants(dir.path(), &db), before);
}

#[test]
fn a_bad_database_url_is_named() {
    let dir = tempfile::tempdir().unwrap();
    for url in ["mysql://localhost/vrs", "vrs.db", "sqlite://:memory:"] {
        let o = Command::new(env!("CARGO_BIN_EXE_vrs"))
            .current_dir(dir.path())
            .args(["--database-url", url, "migrate"])
            .output()
            .unwrap();
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("VRS_DATABASE_URL"),
            "{url}: {}",
            stderr(&o)
        );
    }
    let o = Command::new(env!("CARGO_BIN_EXE_vrs"))
        .current_dir(dir.path())
        .args([
            "--database-url",
            "postgres://nobody:secret@127.0.0.1:1/none",
            "migrate",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("cannot open database postgres://nobody:***@127.0.0.1:1/none"),
        "{e}"
    );
    assert!(!e.contains("secret"));
}

#[test]
fn a_bad_master_key_file_is_named_and_no_data_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path());
    assert!(
        vrs(dir.path(), &db, &["municipality", "enable", "131016"])
            .status
            .success()
    );
    let before = tenants(dir.path(), &db);
    let key = dir.path().join("data/master.key");
    let good = std::fs::read(&key).unwrap();

    std::fs::write(&key, "not a key\n").unwrap();
    let o = vrs(dir.path(), &db, &["municipality", "enable", "082040"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("master.key") && stderr(&o).contains("not a master key"),
        "{}",
        stderr(&o)
    );

    // Another valid key: refused as the wrong key, not used to create anything.
    std::fs::remove_file(&key).unwrap();
    let other = vrs::crypto::MasterKey::generate(vrs::crypto::MasterKeySource::File(key.clone()));
    other.write_new_file(&key).unwrap();
    let o = vrs(dir.path(), &db, &["municipality", "enable", "082040"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("is not the one that wrapped"),
        "{}",
        stderr(&o)
    );

    // A missing key for a database that has keys is not silently replaced.
    std::fs::remove_file(&key).unwrap();
    let o = vrs(dir.path(), &db, &["municipality", "list"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no master key file"), "{}", stderr(&o));
    assert!(!key.exists());

    std::fs::write(&key, &good).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(tenants(dir.path(), &db), before);
}

#[test]
fn production_refuses_to_start_without_an_explicit_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path());
    // A production server is started without the owner's URL (it migrates
    // apart, see below).
    let production = |args: &[&str]| {
        base_cmd(dir.path(), &db)
            .env_remove("VRS_MIGRATION_DATABASE_URL")
            .arg("--production")
            .args(args)
            .output()
            .expect("run vrs")
    };
    let o = production(&["serve", "--bind", "127.0.0.1:0"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("VRS_MASTER_KEY"), "{}", stderr(&o));
    assert!(!dir.path().join("data").exists(), "nothing may be created");

    let o = production(&["serve", "--demo"]);
    assert!(!o.status.success());

    // Given the tables' owner's URL, a production server refuses to start:
    // a server holding it could lift the wall it runs behind.
    let o = vrs(
        dir.path(),
        &db,
        &[
            "--production",
            "--migration-database-url",
            "postgres://owner:secret@127.0.0.1:1/vrs",
            "serve",
            "--bind",
            "127.0.0.1:0",
        ],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("does not take --migration-database-url"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("secret"), "{}", stderr(&o));
}

#[test]
fn bad_arguments_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path());
    let o = vrs(dir.path(), &db, &["serve", "--bind", "localhost-8080"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--bind"), "{}", stderr(&o));
    let o = vrs(
        dir.path(),
        &db,
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--tls-cert",
            "nope.pem",
            "--tls-key",
            "nope.key",
        ],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--tls-cert") && stderr(&o).contains("nope.pem"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn key_rotation_from_the_command_line_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path());
    let o = vrs(dir.path(), &db, &["demo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let key = dir.path().join("data/master.key");
    let old = std::fs::read(&key).unwrap();

    let o = vrs(
        dir.path(),
        &db,
        &[
            "keys",
            "rotate",
            "--master",
            "--municipality",
            "082040",
            "--grace",
            "0",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("3 municipality keys and 1 issuer keys re-wrapped"),
        "{out}"
    );
    assert!(
        out.contains("082040: now key v2, 40 residents and 0 other sealed values sealed again"),
        "{out}"
    );
    assert_ne!(std::fs::read(&key).unwrap(), old);
    assert_eq!(
        std::fs::read(dir.path().join("data/master.key.old")).unwrap(),
        old
    );

    // Re-running the demo reads and updates every resident with the new keys.
    let o = vrs(dir.path(), &db, &["demo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("082040 茨城県古河市: 40 residents (0 added now)"),
        "{}",
        stdout(&o)
    );
    let o = vrs(dir.path(), &db, &["keys", "rotate"]);
    assert!(stderr(&o).contains("say what to rotate"));
}

/// Starts the real server process, asks for a URL carrying an
/// individual-number-shaped value, and reads everything the process logged.
#[test]
fn the_server_log_never_holds_an_individual_number() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path());
    let server = ServerProcess::start(base_cmd(dir.path(), &db).args([
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--demo",
    ]));
    let port = server.port.clone();
    let printed = server.printed.clone();
    assert!(printed.contains("Created a new master key"), "{printed}");
    let client = reqwest::blocking_get(&format!(
        "http://127.0.0.1:{port}/records-of/123456789018?n=123456789018"
    ));
    assert_eq!(client, 404);
    let (_, logged) = server.stop();
    assert!(
        logged.contains("[masked]"),
        "the request was logged: {logged}"
    );
    assert!(!logged.contains("123456789018"), "{logged}");
    let demo = vrs::demo::demo_resident(code("082040"), 0);
    let digits = String::from_utf8(demo.my_number.unwrap().expose_digits().to_vec()).unwrap();
    assert!(!logged.contains(&digits) && !printed.contains(&digits));
}

/// One short line per request, without its query string; `--access-log
/// errors` keeps the refused and failed ones only, and a bad setting stops
/// the command naming it.
#[test]
fn the_access_log_is_one_short_line_per_request_and_can_be_turned_down() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path());
    let lines = |setting: &str| {
        let server = ServerProcess::start(base_cmd(dir.path(), &db).args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--access-log",
            setting,
        ]));
        let port = server.port.clone();
        assert_eq!(
            reqwest::blocking_get(&format!("http://127.0.0.1:{port}/?q=secret")),
            200
        );
        assert_eq!(
            reqwest::blocking_get(&format!("http://127.0.0.1:{port}/nowhere")),
            404
        );
        let (_, logged) = server.stop();
        assert!(!logged.contains("secret"), "{logged}");
        let line = |path: &str| {
            logged
                .lines()
                .find(|l| l.contains(&format!("INFO GET {path} ")))
                .map(str::to_string)
        };
        (line("/"), line("/nowhere"))
    };
    let (home, missing) = lines("all");
    let home = home.expect("the page's line");
    assert!(home.contains(" 200 ") && home.contains("ms id="), "{home}");
    assert!(home.len() < 100, "{home}");
    assert!(
        !home.contains('\u{1b}'),
        "no colour codes off a terminal: {home}"
    );
    assert!(missing.is_some());
    let (home, missing) = lines("errors");
    assert!(home.is_none() && missing.is_some());

    let o = base_cmd(dir.path(), &db)
        .args(["serve", "--access-log", "sometimes"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--access-log"), "{}", stderr(&o));
}

/// A tiny blocking GET without another HTTP client dependency.
mod reqwest {
    pub fn blocking_get(url: &str) -> u16 {
        crate::helpers::install_tls_provider();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { ::reqwest::get(url).await.unwrap().status().as_u16() })
    }
}
