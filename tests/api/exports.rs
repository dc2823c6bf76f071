//! Flow 6: the ledger CSV. No individual number in any cell, in either
//! encoding; formulas neutralised; only the municipality's own doses.

use crate::helpers::*;
use crate::residents::{my_numbers_of, resident_csv};
use diesel::prelude::*;
use vrs::db::schema::audit_log;
use vrs::domain::{AddresseeNumber, DoseNumber, MyNumber};
use vrs::flows::doses::{self, NewDose};
use vrs::flows::residents;
use vrs::tenancy::Partition;

/// Every run of exactly 12 digits in `text` that is a valid individual number.
fn individual_numbers_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let run: String = chars[start..i].iter().collect();
            // Any 12-digit window, so a number glued to other digits counts too.
            for w in 0..run.len().saturating_sub(11) {
                let cand = &run[w..w + 12];
                if MyNumber::parse(cand).is_ok() {
                    found.push(cand.to_string());
                }
            }
        } else {
            i += 1;
        }
    }
    found
}

#[tokio::test]
async fn the_ledger_export_holds_no_individual_number_in_either_encoding() {
    let app = spawn_app().await;
    app.seed_demo();
    let (staff, csrf) = app.staff_of("082040").await;
    let (status, _) = staff
        .import(&csrf, resident_csv(50, 8).into_bytes(), "auto")
        .await;
    assert_eq!(status, "succeeded");
    // Doses for the imported people, one with a site name Excel would run.
    {
        let mut conn = app.conn();
        let p = Partition::open(&mut conn, app.master(), code("082040")).unwrap();
        p.run(&mut conn, |scope, conn| {
            let mut new = Vec::new();
            for i in 0..50 {
                let a = AddresseeNumber::parse(&format!("A-8-{i:06}")).unwrap();
                let r = residents::find_by_addressee(scope, conn, &a)?.unwrap();
                new.push(NewDose {
                    resident_id: r.id,
                    dose_number: DoseNumber::new(1).unwrap(),
                    administered_on: chrono::NaiveDate::from_ymd_opt(2021, 7, 1).unwrap(),
                    ticket_number: None,
                    site_municipality: Some(code("131016")),
                    site_name: Some(if i == 0 {
                        "=HYPERLINK(\"http://x\")".into()
                    } else {
                        "丸の内クリニック".into()
                    }),
                    product_code: "MOD_ORIG".into(),
                    lot_number: Some(format!("LOT{i}")),
                    recorded_by: None,
                    age_band: None,
                    sex: None,
                });
            }
            doses::append(scope, conn, &new)
        })
        .unwrap();
    }
    let known = my_numbers_of(50, 8);
    // The demo residents' numbers too.
    let demo_known: Vec<String> = (0..vrs::demo::RESIDENTS_PER_MUNICIPALITY)
        .filter_map(|i| vrs::demo::demo_resident(code("082040"), i).my_number)
        .map(|n| String::from_utf8(n.expose_digits().to_vec()).unwrap())
        .collect();

    let utf8 = staff.get("/exports/doses.csv?encoding=utf8").await;
    assert_eq!(utf8.status(), 200);
    assert_eq!(utf8.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        utf8.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let bytes = utf8.bytes().await.unwrap();
    assert_eq!(&bytes[..3], &[0xEF, 0xBB, 0xBF]);
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();

    let sjis = staff.get("/exports/doses.csv?encoding=sjis").await;
    assert_eq!(
        sjis.headers()["content-type"],
        "text/csv; charset=shift_jis"
    );
    let raw = sjis.bytes().await.unwrap();
    let (decoded, _, bad) = encoding_rs::SHIFT_JIS.decode(&raw);
    assert!(!bad);
    // The same lines, apart from the registration time that is the same too.
    assert_eq!(decoded, text);

    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, vrs::flows::exports::DOSE_HEADER);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let mut conn = app.conn();
    let expected: i64 = conn
        .transaction(|c| {
            vrs::db::set_transaction_municipality(c, "082040").unwrap();
            vrs::db::schema::doses::table
                .filter(vrs::db::schema::doses::municipality_code.eq("082040"))
                .count()
                .get_result(c)
        })
        .unwrap();
    assert_eq!(rows.len() as i64, expected);
    assert!(rows.len() > 50);
    for row in &rows {
        for cell in row.iter() {
            assert!(
                individual_numbers_in(cell).is_empty(),
                "a valid individual number in cell {cell:?}"
            );
        }
    }
    for n in known.iter().chain(&demo_known) {
        assert!(!text.contains(n.as_str()));
    }
    // Keyed by 宛名番号, with the product master's names.
    let first = rows.iter().find(|r| &r[0] == "A-8-000000").unwrap();
    assert_eq!(&first[6], "'=HYPERLINK(\"http://x\")");
    assert_eq!(&first[7], "武田/モデルナ");
    assert_eq!(&first[5], "131016");
    assert!(rows.iter().any(|r| r[0].starts_with("D0")));

    let logged: Vec<Option<String>> = audit_log::table
        .filter(audit_log::action.eq("doses.export"))
        .select(audit_log::detail)
        .load(&mut conn)
        .unwrap();
    assert_eq!(logged.len(), 2);
    assert!(
        logged
            .iter()
            .flatten()
            .any(|d| d.contains(&format!("lines={expected}")))
    );
}

#[test]
fn the_scanner_finds_numbers_it_should() {
    assert_eq!(individual_numbers_in("x123456789018y"), ["123456789018"]);
    assert!(individual_numbers_in("123456789017").is_empty());
    assert_eq!(individual_numbers_in("00123456789018"), ["123456789018"]);
}

#[tokio::test]
async fn downloads_of_personal_data_open_only_once_after_an_administrator_approves() {
    let app = spawn_app().await;
    app.seed_demo();
    let (staff, csrf) = app.staff_of("082040").await;
    let admin = TestApp::handle(&app);
    let acsrf = admin
        .login_as("082040-admin", vrs::demo::DEMO_PASSWORD)
        .await;
    let post = |s: &TestApp, path: String, form: Vec<(&'static str, String)>| {
        let req = s.client.post(s.url(&path)).form(&form);
        async move { req.send().await.unwrap() }
    };
    // Without the setting, the ledger opens at once.
    assert_eq!(staff.get("/exports/doses.csv").await.status(), 200);
    let res = post(
        &admin,
        "/admin/exports/setting".into(),
        vec![("csrf", acsrf.clone()), ("required", "1".into())],
    )
    .await;
    assert_eq!(res.status(), 303);

    // Now it asks for approval first.
    let res = staff.get("/exports/doses.csv").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/exports");
    let page = staff.get("/exports").await.text().await.unwrap();
    assert!(page.contains("id=\"export-request\""), "{page}");
    let res = post(
        &staff,
        "/exports/requests".into(),
        vec![("csrf", csrf.clone()), ("kind", "ledger".into())],
    )
    .await;
    assert_eq!(res.status(), 303);
    let page = staff.get("/exports").await.text().await.unwrap();
    assert!(page.contains("id=\"export-pending\""));
    assert_eq!(staff.get("/exports/doses.csv").await.status(), 303);

    // Another municipality's administrator cannot approve it.
    let page = admin.get("/admin/exports").await.text().await.unwrap();
    let doc = html(&page);
    let sel = scraper::Selector::parse("#export-requests tbody tr").unwrap();
    let id = doc
        .select(&sel)
        .next()
        .and_then(|r| r.value().attr("data-id"))
        .expect("the request")
        .to_string();
    let other = TestApp::handle(&app);
    let ocsrf = other
        .login_as("131016-admin", vrs::demo::DEMO_PASSWORD)
        .await;
    let res = post(
        &other,
        format!("/admin/exports/{id}"),
        vec![("csrf", ocsrf), ("decision", "approve".into())],
    )
    .await;
    assert_eq!(res.status(), 404);
    let res = post(
        &admin,
        format!("/admin/exports/{id}"),
        vec![("csrf", acsrf.clone()), ("decision", "approve".into())],
    )
    .await;
    assert_eq!(res.status(), 303);
    let page = staff.get("/exports").await.text().await.unwrap();
    assert!(page.contains("id=\"export-approved\""));
    let res = staff.get("/exports/doses.csv").await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().lines().count() > 1);
    // Once only.
    assert_eq!(staff.get("/exports/doses.csv").await.status(), 303);

    // A resident's provision records: the same.
    let resident = app
        .holder_of("082040", vrs::demo::MOVER_NUMBER)
        .expect("the demo mover")
        .id;
    let csv = format!("/residents/{resident}/provisions.csv");
    assert_eq!(staff.get(&csv).await.status(), 303);
    let res = post(
        &staff,
        "/exports/requests".into(),
        vec![
            ("csrf", csrf.clone()),
            ("kind", "provisions".into()),
            ("subject", resident.clone()),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    let page = admin.get("/admin/exports").await.text().await.unwrap();
    let doc = html(&page);
    let pending: Vec<String> = doc
        .select(&sel)
        .filter(|r| r.text().collect::<String>().contains("承認待ち"))
        .filter_map(|r| r.value().attr("data-id").map(str::to_string))
        .collect();
    assert_eq!(pending.len(), 1);
    let res = post(
        &admin,
        format!("/admin/exports/{}", pending[0]),
        vec![("csrf", acsrf), ("decision", "approve".into())],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(staff.get(&csv).await.status(), 200);
    assert_eq!(staff.get(&csv).await.status(), 303);
}
