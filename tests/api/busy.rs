//! Many people at once on a freshly started server, each request appending
//! to an operation-log chain while resident files are imported (a long
//! write): every one is answered as if it were alone.

use crate::helpers::*;
use crate::residents::resident_csv;
use vrs::demo::DEMO_PASSWORD;

const CLIENTS: usize = 16;
const ROUNDS: usize = 40;
const IMPORTS: u64 = 3;

/// 082040 and 131016 declare this machine as their LG-WAN; 012025 does not,
/// so its staff's individual-number pages are refused (and the refusal is
/// logged in its chain).
const INSIDE: [&str; 2] = ["082040", "131016"];
const MUNICIPALITIES: [&str; 3] = ["082040", "131016", "012025"];

fn number_of(muni: &str, i: usize) -> String {
    let n = vrs::demo::demo_resident(code(muni), i)
        .my_number
        .expect("demo residents have numbers");
    String::from_utf8(n.expose_digits().to_vec()).expect("digits")
}

/// What one person did, and what each request was answered.
#[derive(Default)]
struct Tally {
    lookups: usize,
    refusals: usize,
    logins: usize,
    /// Requests answered otherwise than the request itself calls for.
    wrong: Vec<String>,
}

impl Tally {
    fn expect(&mut self, what: &str, got: u16, want: u16) {
        if got != want {
            self.wrong.push(format!("{what}: {got}, expected {want}"));
        }
    }
}

/// One person: signs in, then looks numbers up (or is refused), signing in
/// again now and then.
async fn person(app: TestApp, n: usize) -> Tally {
    let muni = MUNICIPALITIES[n % MUNICIPALITIES.len()];
    // Every fourth person is an administrator: refused by role, wherever.
    let login = if n % 4 == 3 {
        format!("{muni}-admin")
    } else {
        format!("{muni}-staff")
    };
    let may_look_up = INSIDE.contains(&muni) && n % 4 != 3;
    let mut tally = Tally::default();
    let mut csrf = String::new();
    for round in 0..ROUNDS {
        if round % 10 == 0 {
            let res = app.post_login(&login, DEMO_PASSWORD).await;
            tally.logins += 1;
            tally.expect("login", res.status().as_u16(), 303);
            let page = app.get("/dashboard").await;
            tally.expect("dashboard", page.status().as_u16(), 200);
            csrf = hidden(&page.text().await.unwrap_or_default(), "csrf");
            continue;
        }
        if may_look_up {
            // Known and unknown numbers alike are logged.
            let number = if round % 2 == 0 {
                number_of(muni, round)
            } else {
                "123456789018".to_string()
            };
            let res = app
                .client
                .post(app.url("/residents/by-number"))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("purpose", "certificate_lookup"),
                    ("my_number", number.as_str()),
                ])
                .send()
                .await
                .expect("request");
            tally.lookups += 1;
            tally.expect("lookup", res.status().as_u16(), 200);
        } else {
            let res = app.get("/residents/by-number").await;
            tally.refusals += 1;
            tally.expect("refused lookup", res.status().as_u16(), 403);
        }
    }
    tally
}

/// A clerk importing resident files one after another: each holds its
/// municipality's partition for the whole file.
async fn importer(app: TestApp) -> Vec<String> {
    let csrf = app.login_as("082040-staff", DEMO_PASSWORD).await;
    let mut statuses = Vec::new();
    for salt in 0..IMPORTS {
        let file = resident_csv(2000, 60 + salt).into_bytes();
        statuses.push(app.import(&csrf, file, "auto").await.0);
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_log_appends_are_each_answered_as_if_alone() {
    let app = spawn_app().await;
    app.seed_demo();
    for muni in INSIDE {
        app.declare_lgwan(muni);
    }
    let imports = tokio::spawn(importer(TestApp::handle(&app)));
    let people: Vec<_> = (0..CLIENTS)
        .map(|n| tokio::spawn(person(TestApp::handle(&app), n)))
        .collect();
    let mut total = Tally::default();
    for p in people {
        let t = p.await.expect("person finished");
        total.lookups += t.lookups;
        total.refusals += t.refusals;
        total.logins += t.logins;
        total.wrong.extend(t.wrong);
    }
    assert_eq!(
        imports.await.expect("imports finished"),
        vec!["succeeded"; IMPORTS as usize]
    );
    assert!(
        total.wrong.is_empty(),
        "{} of {} requests answered wrongly: {:?}",
        total.wrong.len(),
        CLIENTS * ROUNDS,
        total.wrong
    );

    // Every request left its one line, and every chain still holds.
    let mut conn = app.conn();
    let reports = vrs::audit::verify(&mut conn, &app.state.audit, None, None).expect("verify");
    assert!(reports.iter().all(|r| r.broken_at.is_none()), "{reports:?}");
    let count = |action: &str, outcome: &str| {
        use diesel::prelude::*;
        use vrs::db::schema::audit_log;
        audit_log::table
            .filter(audit_log::action.eq(action))
            .filter(audit_log::outcome.eq(outcome))
            .count()
            .get_result::<i64>(&mut app.conn())
            .expect("count") as usize
    };
    assert_eq!(
        count("resident.lookup_by_number", "ok") + count("resident.lookup_by_number", "no_match"),
        total.lookups
    );
    assert_eq!(count("my_number.access", "refused"), total.refusals);
    assert_eq!(count("login", "ok"), total.logins + 1);
}
