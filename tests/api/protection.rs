//! Residents under a support measure (支援措置: DV and similar): their
//! address is shown only to an account allowed to see it, each time with a
//! reason in the operation log; it cannot be changed by anyone else; a
//! ticket reissue or a certificate warns and is logged as concerning a
//! protected person; and the disclosure of provision records withholds the
//! other municipality, which is where the person asked from.
//!
//! The demo's mover: 古河市 (082040) resident 1, asked about by 千代田区
//! (131016) with the example number.

use crate::helpers::*;
use diesel::prelude::*;
use vrs::db::schema::audit_log;
use vrs::demo::{DEMO_PASSWORD, MOVER_NUMBER};
use vrs::flows::residents::Resident;

const HOLDER: &str = "082040";
const ASKING: &str = "131016";

/// The mover as 古河市 stores them.
fn mover(app: &TestApp) -> Resident {
    app.holder_of(HOLDER, MOVER_NUMBER).expect("the demo mover")
}

/// The details of 古河市's log lines of `action`, in order.
fn logged(app: &TestApp, action: &str) -> Vec<String> {
    let mut conn = app.conn();
    vrs::audit::flush(&mut conn, &app.state.audit).unwrap();
    audit_log::table
        .filter(audit_log::chain.eq(HOLDER))
        .filter(audit_log::action.eq(action))
        .order(audit_log::seq)
        .select(audit_log::detail)
        .load::<Option<String>>(&mut conn)
        .unwrap()
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect()
}

/// A measure from today, reviewed in a year.
fn from_today() -> (String, String) {
    let today = vrs::clock::today_in_japan();
    (
        today.to_string(),
        (today + chrono::Duration::days(365)).to_string(),
    )
}

/// Lifts the measure on the record at `link`; the answer's status.
async fn lift(s: &TestApp, link: &str, csrf: &str, reason: &str) -> u16 {
    let form = [("csrf", csrf), ("protected", "off"), ("reason", reason)];
    post(s, &format!("{link}/protection"), &form).await.0
}

async fn post(s: &TestApp, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let res = s.client.post(s.url(path)).form(form).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn a_protected_residents_address_is_shown_only_with_the_permission_and_a_logged_reason() {
    let app = spawn_app().await;
    app.seed_demo();
    // Certificates are issued from the municipality's LG-WAN terminals.
    app.declare_lgwan(HOLDER);
    let person = mover(&app);
    let address = person
        .address
        .clone()
        .expect("the demo mover has an address");
    let link = format!("/residents/{}", person.id);
    // A clerk without the permission; the demo staff holds every one.
    let (clerk, clerk_csrf) = app
        .staff_with(HOLDER, "082040-clerk", &["residents", "certificates"])
        .await;
    let staff = TestApp::handle(&app);
    let csrf = staff.login_as("082040-staff", DEMO_PASSWORD).await;

    // Before protection the clerk sees the address.
    let page = clerk.get(&link).await.text().await.unwrap();
    assert!(page.contains(&address));

    // Any clerk may set a measure (it hides, never shows).
    let (from, review) = from_today();
    let (status, _) = post(
        &clerk,
        &format!("{link}/protection"),
        &[
            ("csrf", &clerk_csrf),
            ("protected", "on"),
            ("from", &from),
            ("review", &review),
            ("reason", "支援措置申出"),
        ],
    )
    .await;
    assert_eq!(status, 303, "the protection is set");

    // The clerk's page: no address anywhere, no way to show it, no field
    // that would send it.
    let page = clerk.get(&link).await.text().await.unwrap();
    assert!(!page.contains(&address), "the address leaked to the clerk");
    let doc = html(&page);
    assert_eq!(
        select_text(&doc, "#address-value"),
        ["支援措置対象 支援措置の対象のため表示していません"]
    );
    assert!(select_text(&doc, "#reveal-form").is_empty());
    assert!(select_text(&doc, "#address-locked")[0].contains("表示・変更できません"));
    assert!(!page.contains("name=\"address\""));
    assert!(page.contains("id=\"reissue-protected\""));
    // Nor may the clerk change or lift it: that would show the address.
    assert!(page.contains("id=\"protection-locked\""));
    assert!(!page.contains("id=\"unprotect-form\""));
    let status = lift(&clerk, &link, &clerk_csrf, "解除").await;
    assert_eq!(status, 403);
    assert!(mover(&app).address_protected);
    let (status, body) = post(
        &clerk,
        &format!("{link}/address"),
        &[("csrf", &clerk_csrf), ("reason", "確認のため")],
    )
    .await;
    assert_eq!(status, 403);
    assert!(!body.contains(&address));

    // The clerk corrects the name: the address stays as stored. Sending an
    // address is refused and changes nothing.
    let fix = |name: &'static str, address: Option<&'static str>| {
        let mut f = vec![
            ("csrf", clerk_csrf.clone()),
            ("name_kanji", name.to_string()),
            ("name_kana", person.name_kana.as_str().to_string()),
            ("birth_date", person.birth_date.date().to_string()),
            ("sex", person.sex.code().to_string()),
            ("reason", "届出の誤記".to_string()),
        ];
        if let Some(a) = address {
            f.push(("address", a.to_string()));
        }
        f
    };
    let res = clerk
        .client
        .post(clerk.url(&format!("{link}/correct")))
        .form(&fix("古河　一郎", None))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(mover(&app).name_kanji.as_str(), "古河　一郎");
    assert_eq!(mover(&app).address.as_deref(), Some(address.as_str()));
    let res = clerk
        .client
        .post(clerk.url(&format!("{link}/correct")))
        .form(&fix("古河　二郎", Some("東京都港区芝公園四丁目2-8")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(mover(&app).name_kanji.as_str(), "古河　一郎");
    assert_eq!(mover(&app).address.as_deref(), Some(address.as_str()));

    // Staff with the permission see it masked too, until they give a
    // reason; the view is logged with it.
    let page = staff.get(&link).await.text().await.unwrap();
    assert!(!page.contains(&address));
    assert!(page.contains("id=\"reveal-form\""));
    let (status, body) = post(
        &staff,
        &format!("{link}/address"),
        &[("csrf", &csrf), ("reason", " ")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(!body.contains(&address));
    assert!(logged(&app, "resident.address_view").is_empty());
    let (status, body) = post(
        &staff,
        &format!("{link}/address"),
        &[("csrf", &csrf), ("reason", "本人からの転居先確認の申出")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains(&address));
    assert!(body.contains("id=\"address-revealed\""));
    // The log, kept in clear, says it was shown; the reason is in the
    // resident's sealed history.
    assert_eq!(logged(&app, "resident.address_view"), ["reason=in_history"]);
    assert!(
        logged(&app, "resident.address_view")
            .iter()
            .all(|l| !l.contains("転居先"))
    );
    let page = staff.get(&link).await.text().await.unwrap();
    let history = select_text(&html(&page), "#history tbody tr").join("\n");
    assert!(history.contains("本人からの転居先確認の申出"), "{history}");

    // They may move the address; the history shows neither to the clerk.
    let moved = "東京都港区芝公園四丁目2-8";
    let res = staff
        .client
        .post(staff.url(&format!("{link}/correct")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name_kanji", "古河　一郎"),
            ("name_kana", person.name_kana.as_str()),
            ("birth_date", &person.birth_date.date().to_string()),
            ("sex", person.sex.code()),
            ("address", moved),
            ("reason", "転居の届出"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(mover(&app).address.as_deref(), Some(moved));
    let page = clerk.get(&link).await.text().await.unwrap();
    assert!(!page.contains(moved) && !page.contains(&address));
    assert!(
        page.contains("転居の届出"),
        "the change itself is in the history"
    );

    // A reissue and the certificate form warn; the log says whom it was for.
    let (status, _) = post(
        &clerk,
        &format!("{link}/reissue"),
        &[("csrf", &clerk_csrf), ("why", "lost"), ("reason", "紛失")],
    )
    .await;
    assert_eq!(status, 303);
    assert!(
        logged(&app, "ticket.reissue")
            .iter()
            .any(|d| d.ends_with(" protected=1")),
        "{:?}",
        logged(&app, "ticket.reissue")
    );
    let page = clerk
        .get(&format!("{link}/certificates/new"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"cert-protected\""), "{page}");
    assert!(!page.contains(moved));
}

#[tokio::test]
async fn the_disclosure_of_a_protected_persons_provision_records_withholds_the_other_municipality()
{
    let app = spawn_app().await;
    app.seed_demo();
    app.declare_lgwan(ASKING);
    let person = mover(&app);
    let link = format!("/residents/{}", person.id);
    let holder = TestApp::handle(&app);
    let holder_csrf = holder.login_as("082040-staff", DEMO_PASSWORD).await;
    let (from, review) = from_today();
    let (status, _) = post(
        &holder,
        &format!("{link}/protection"),
        &[
            ("csrf", &holder_csrf),
            ("protected", "on"),
            ("from", &from),
            ("review", &review),
            ("reason", "支援措置申出"),
        ],
    )
    .await;
    assert_eq!(status, 303);

    // 千代田区 asks about the person at its window.
    let asking = TestApp::handle(&app);
    let csrf = asking.login_as("131016-staff", DEMO_PASSWORD).await;
    let (status, _) = post(
        &asking,
        "/transfers",
        &[
            ("csrf", &csrf),
            ("my_number", MOVER_NUMBER),
            ("my_number_again", MOVER_NUMBER),
            ("source", HOLDER),
            ("consent", "1"),
            ("id_document", "my_number_card"),
            ("checked_by", "窓口　一郎"),
            ("purpose", "ticket_issuance"),
        ],
    )
    .await;
    assert_eq!(status, 200);

    // 古河市's record of that answer names neither 千代田区 nor its account.
    for path in [
        format!("{link}/provisions"),
        format!("{link}/provisions.csv"),
    ] {
        let res = holder.get(&path).await;
        assert_eq!(res.status(), 200, "{path}");
        let body = res.text().await.unwrap();
        assert!(body.contains("支援措置のため非表示"), "{path}: {body}");
        for revealing in [ASKING, "千代田区", "131016-staff"] {
            assert!(!body.contains(revealing), "{path} names {revealing}");
        }
    }
    // Nor does its operation log, which its administrators read: the
    // inquiry was held, not answered (see held.rs).
    assert!(logged(&app, "transfer.answer").is_empty());
    let holds = logged(&app, "transfer.hold");
    assert_eq!(holds.len(), 1);
    assert!(holds[0].contains("from=withheld protected=1"), "{holds:?}");
    assert!(!holds[0].contains(ASKING));
}

#[tokio::test]
async fn a_measure_has_a_period_and_a_review_date_and_every_change_is_logged() {
    let app = spawn_app().await;
    app.seed_demo();
    let person = mover(&app);
    let address = person.address.clone().expect("an address");
    let link = format!("/residents/{}", person.id);
    let (clerk, clerk_csrf) = app.staff_with(HOLDER, "082040-clerk", &["residents"]).await;
    // Changing or lifting a stored measure takes the permission.
    let (staff, csrf) = app
        .staff_with(HOLDER, "082040-keeper", &["residents", "protected_address"])
        .await;
    let today = vrs::clock::today_in_japan();
    let day = |n: i64| (today + chrono::Duration::days(n)).to_string();
    let set = |from: String, until: String, review: String, reason: &'static str| {
        let (staff, csrf, link) = (&staff, csrf.clone(), link.clone());
        async move {
            post(
                staff,
                &format!("{link}/protection"),
                &[
                    ("csrf", &csrf),
                    ("protected", "on"),
                    ("from", &from),
                    ("until", &until),
                    ("review", &review),
                    ("reason", reason),
                ],
            )
            .await
        }
    };

    // An end before the start is named, and nothing is stored.
    let (status, body) = set(day(0), day(-1), day(-2), "支援措置申出").await;
    assert_eq!(status, 422);
    assert!(
        body.contains("終了日: 開始日より前の日付は入力できません"),
        "{body}"
    );
    assert!(body.contains("見直し日: 開始日より前の日付は入力できません"));
    assert!(!mover(&app).address_protected && mover(&app).protection.is_none());

    // A period that ended yesterday: stored, but the address shows again.
    let (status, _) = set(day(-30), day(-1), day(-10), "支援措置申出").await;
    assert_eq!(status, 303);
    let page = clerk.get(&link).await.text().await.unwrap();
    assert!(page.contains(&address));
    assert!(page.contains("設定された期間の外"));

    // Extended without an end: protected again, its review overdue.
    let (status, _) = set(day(-30), String::new(), day(-10), "延長の申出").await;
    assert_eq!(status, 303);
    let page = clerk.get(&link).await.text().await.unwrap();
    assert!(!page.contains(&address));
    assert!(page.contains("id=\"protection-review-due\""));

    // Reviewed: the next review a year on, the notice gone.
    let (status, _) = set(day(-30), String::new(), day(335), "見直し済み").await;
    assert_eq!(status, 303);
    let page = clerk.get(&link).await.text().await.unwrap();
    assert!(!page.contains("id=\"protection-review-due\""));
    let stored = mover(&app).protection.expect("a period");
    assert_eq!(stored.review.to_string(), day(335));

    // A start ahead of today is refused: the address would show until then.
    let (status, body) = set(day(1), String::new(), day(30), "支援措置申出").await;
    assert_eq!(status, 422);
    assert!(body.contains("開始日: 未来の日付"), "{body}");

    // The clerk may not lift it; staff with the permission may.
    let status = lift(&clerk, &link, &clerk_csrf, "解除").await;
    assert_eq!(status, 403);
    let status = lift(&staff, &link, &csrf, "支援措置終了").await;
    assert_eq!(status, 303);
    assert!(mover(&app).protection.is_none());
    assert!(
        clerk
            .get(&link)
            .await
            .text()
            .await
            .unwrap()
            .contains(&address)
    );

    // Every change is a log line with its period, and a history event; the
    // refused ones wrote nothing.
    let lines = logged(&app, "resident.protection");
    let period = |from: i64, until: Option<i64>, review: i64| {
        format!(
            "protected=true from={} until={} review={} changed=true",
            day(from),
            until.map(day).unwrap_or_default(),
            day(review)
        )
    };
    assert_eq!(
        lines
            .iter()
            .map(|l| l.split(" protected=1").next().unwrap_or_default())
            .collect::<Vec<_>>(),
        [
            period(-30, Some(-1), -10),
            period(-30, None, -10),
            period(-30, None, 335),
            "protected=false changed=true".to_string(),
        ]
    );
    let page = clerk.get(&link).await.text().await.unwrap();
    let history = select_text(&html(&page), "#history tbody tr").join("\n");
    for reason in ["支援措置申出", "延長の申出", "見直し済み", "支援措置終了"]
    {
        assert!(history.contains(reason), "{reason} not in the history");
    }
}
