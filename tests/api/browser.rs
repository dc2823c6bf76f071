//! The pages in a real browser: the `vrs` binary serving its demo data, and
//! Debian's Chromium driven by tests/browser/pages.mjs (playwright-core)
//! with the keyboard, as a person would use them. Screenshots land in
//! tests/browser/artifacts/.
//!
//! Needs /usr/bin/chromium, node, and `npm ci` run in tests/browser (.ci/run
//! does all three). Without them the test says it skipped, except under CI,
//! where it fails.

use crate::helpers::*;
use std::path::Path;
use std::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";

/// What is missing for the browser test, if anything.
fn missing(root: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if !Path::new(CHROMIUM).exists() {
        missing.push(format!(
            "{CHROMIUM} (apt-get install chromium fonts-noto-cjk)"
        ));
    }
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        missing.push("node (apt-get install nodejs npm)".to_string());
    }
    if !root
        .join("tests/browser/node_modules/playwright-core/package.json")
        .exists()
    {
        missing.push("tests/browser/node_modules (cd tests/browser && npm ci)".to_string());
    }
    missing
}

#[test]
fn the_pages_work_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let missing = missing(root);
    if !missing.is_empty() {
        let what = missing.join(", ");
        if std::env::var_os("CI").is_some() {
            panic!("the browser test needs {what}: CI must install them (see .ci/run)");
        }
        eprintln!("skipped: the browser test needs {what}");
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path());
    let server = ServerProcess::start(vrs_cmd(dir.path(), &db).args([
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--demo",
    ]));
    // This machine is one of 古河市's LG-WAN terminals: its staff import
    // files with individual numbers and look people up by number from it.
    TestApp::attach(server.base_url(), dir.path(), &db).declare_lgwan("082040");

    // The first start prints the operator's one-time password: the script
    // signs in with it to create the viewer accounts, as an operator would.
    let operator_password = server
        .printed
        .split("one-time password ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("vrs serve printed the operator's one-time password")
        .to_string();
    let run = Command::new("node")
        .arg("tests/browser/pages.mjs")
        .current_dir(root)
        .env("BASE_URL", server.base_url())
        .env("OPERATOR_PASSWORD", &operator_password)
        .env("ARTIFACTS", "tests/browser/artifacts")
        .output()
        .expect("run node tests/browser/pages.mjs");
    // The camera pages read a ticket's and a certificate's QR code from
    // Chromium's fake camera, in a browser of their own (camera.mjs).
    let camera = Command::new("node")
        .arg("tests/browser/camera.mjs")
        .current_dir(root)
        .env("BASE_URL", server.base_url())
        .env("ARTIFACTS", "tests/browser/artifacts")
        .output()
        .expect("run node tests/browser/camera.mjs");
    let (_, logged) = server.stop();

    let out = String::from_utf8_lossy(&run.stdout);
    let err = String::from_utf8_lossy(&run.stderr);
    print!("{out}");
    eprint!("{err}");
    assert!(
        run.status.success(),
        "tests/browser/pages.mjs failed ({}):\n{out}\n{err}\n--- server log ---\n{logged}",
        run.status
    );
    assert!(out.contains("browser checks: all "), "{out}");
    let camera_out = String::from_utf8_lossy(&camera.stdout);
    let camera_err = String::from_utf8_lossy(&camera.stderr);
    print!("{camera_out}");
    eprint!("{camera_err}");
    assert!(
        camera.status.success(),
        "tests/browser/camera.mjs failed ({}):\n{camera_out}\n{camera_err}\n--- server log ---\n{logged}",
        camera.status
    );
    assert!(camera_out.contains("camera checks: all "), "{camera_out}");
    // After a whole browser session (logins, pages, errors), the server's
    // own log holds no individual number of any demo resident.
    assert!(
        logged
            .lines()
            .any(|l| l.contains("INFO GET / 200 ") && l.contains("ms id=")),
        "the server logged its requests, one short line each"
    );
    for code in vrs::demo::DEMO_MUNICIPALITIES {
        for i in 0..vrs::demo::RESIDENTS_PER_MUNICIPALITY {
            let n = vrs::demo::demo_resident(crate::helpers::code(code), i)
                .my_number
                .unwrap();
            let digits = String::from_utf8(n.expose_digits().to_vec()).unwrap();
            assert!(
                !logged.contains(&digits),
                "an individual number in the server log"
            );
        }
    }
}
