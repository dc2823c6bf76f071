//! Flow 5 over HTTP: certificates issued at the window and through the
//! app/kiosk channel, checked by a verifier written here from the SMART
//! Health Cards specification alone (none of the application's card code
//! is used to check its cards), rotation, revocation and privacy.
//!
//! 千代田区 (131016) demo resident 5 has three doses; resident 0 none.

use crate::helpers::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use diesel::prelude::*;
use serde_json::Value;
use std::io::Read;
use vrs::db::models::certificates::CertificateRow;
use vrs::db::schema;
use vrs::demo::{DEMO_PASSWORD, demo_resident};
use vrs::tenancy::Partition;

const MUNI: &str = "131016";

fn number_of(i: usize) -> String {
    let n = demo_resident(code(MUNI), i).my_number.unwrap();
    String::from_utf8(n.expose_digits().to_vec()).unwrap()
}

fn birth_of(i: usize) -> String {
    demo_resident(code(MUNI), i).birth_date.date().to_string()
}

fn resident_id(app: &TestApp, i: usize) -> String {
    let mut conn = app.conn();
    let p = Partition::open(&mut conn, app.master(), code(MUNI)).unwrap();
    let n = vrs::domain::MyNumber::parse(&number_of(i)).unwrap();
    p.run(&mut conn, |s, c| {
        vrs::flows::residents::find_by_my_number(
            s,
            c,
            &n,
            vrs::flows::residents::MyNumberPurpose::CertificateLookup,
        )
    })
    .unwrap()
    .unwrap()
    .id
}

fn certificates(app: &TestApp) -> Vec<CertificateRow> {
    let mut conn = app.conn();
    conn.transaction(|c| {
        vrs::db::set_transaction_municipality(c, MUNI).unwrap();
        schema::certificates::table
            .select(CertificateRow::as_select())
            .load(c)
    })
    .unwrap()
}

/// Every operation-log line of every chain, as text.
fn log_text(app: &TestApp) -> String {
    let mut conn = app.conn();
    vrs::audit::flush(&mut conn, &app.state.audit).unwrap();
    let rows: Vec<vrs::db::models::audit_log::AuditRow> = schema::audit_log::table
        .select(vrs::db::models::audit_log::AuditRow::as_select())
        .load(&mut conn)
        .unwrap();
    rows.iter().map(|r| format!("{r:?}\n")).collect()
}

/// The app with 千代田区's terminals on loopback and its staff signed in.
async fn window() -> (TestApp, TestApp, String) {
    let app = spawn_app().await;
    app.seed_demo();
    app.declare_lgwan(MUNI);
    let staff = TestApp::handle(&app);
    let csrf = staff.login_as("131016-staff", DEMO_PASSWORD).await;
    (app, staff, csrf)
}

impl TestApp {
    /// Issues at the window; returns the status and the certificate id.
    async fn issue(&self, csrf: &str, resident: &str, extra: &[(&str, &str)]) -> (u16, String) {
        let mut form: Vec<(&str, &str)> = vec![
            ("csrf", csrf),
            ("kind", "domestic"),
            ("applied", "1"),
            ("id_document", "my_number_card"),
            ("checked_by", "窓口　一郎"),
        ];
        for (k, v) in extra {
            form.retain(|(f, _)| f != k);
            form.push((k, v));
        }
        let res = self
            .client
            .post(self.url(&format!("/residents/{resident}/certificates")))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default();
        if status == 303 {
            (
                status,
                location.trim_start_matches("/certificates/").to_string(),
            )
        } else {
            (status, res.text().await.unwrap())
        }
    }

    async fn card_of(&self, certificate: &str) -> String {
        let res = self.get(&format!("/certificates/{certificate}/card")).await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.headers()["content-type"],
            "application/smart-health-card"
        );
        let file: Value = res.json().await.unwrap();
        file["verifiableCredential"][0]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn verify_text(&self, text: &str) -> String {
        let res = self
            .client
            .post(self.url("/verify"))
            .form(&[("card", text)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let doc = html(&res.text().await.unwrap());
        select_text(&doc, "#verify-result h2").join("")
    }
}

// ---- An independent verifier, from the specification only. ----

/// RFC 7638: SHA-256 of the required members (crv, kty, x, y) in
/// lexicographic order, no whitespace; base64url without padding.
fn thumbprint(jwk: &Value) -> String {
    use sha2::Digest;
    let canonical = format!(
        r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
        jwk["crv"].as_str().unwrap(),
        jwk["kty"].as_str().unwrap(),
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap()
    );
    B64.encode(sha2::Sha256::digest(canonical.as_bytes()))
}

#[derive(Debug)]
struct Checked {
    kid: String,
    payload: Value,
}

/// Verifies a compact JWS as a SMART Health Card against a JWKS document:
/// header, key by kid (its kid being its thumbprint), ES256 signature over
/// the first two parts, raw DEFLATE payload, and the FHIR shape.
fn independent_verify(jws: &str, jwks: &Value) -> Result<Checked, String> {
    let parts: Vec<&str> = jws.split('.').collect();
    if parts.len() != 3 {
        return Err("not three parts".into());
    }
    let header: Value = serde_json::from_slice(&B64.decode(parts[0]).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    if header["alg"] != "ES256" || header["zip"] != "DEF" {
        return Err(format!("header {header}"));
    }
    let kid = header["kid"].as_str().ok_or("no kid")?.to_string();
    let key = jwks["keys"]
        .as_array()
        .ok_or("no keys")?
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .ok_or("kid not in the JWKS")?;
    if key["kty"] != "EC" || key["crv"] != "P-256" || key["alg"] != "ES256" || key["use"] != "sig" {
        return Err(format!("key {key}"));
    }
    if thumbprint(key) != kid {
        return Err("kid is not the key's RFC 7638 thumbprint".into());
    }
    let x = B64.decode(key["x"].as_str().unwrap()).unwrap();
    let y = B64.decode(key["y"].as_str().unwrap()).unwrap();
    let mut sec1 = vec![4u8];
    sec1.extend(&x);
    sec1.extend(&y);
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).map_err(|e| e.to_string())?;
    let sig_bytes = B64.decode(parts[2]).map_err(|e| e.to_string())?;
    if sig_bytes.len() != 64 {
        return Err("signature is not r||s of 64 bytes".into());
    }
    let sig = p256::ecdsa::Signature::from_slice(&sig_bytes).map_err(|e| e.to_string())?;
    use p256::ecdsa::signature::Verifier;
    vk.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .map_err(|_| "signature does not verify".to_string())?;
    let mut json = Vec::new();
    flate2::read::DeflateDecoder::new(B64.decode(parts[1]).unwrap().as_slice())
        .read_to_end(&mut json)
        .map_err(|e| format!("not raw DEFLATE: {e}"))?;
    let payload: Value = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
    check_shape(&payload)?;
    Ok(Checked { kid, payload })
}

fn check_shape(p: &Value) -> Result<(), String> {
    let iss = p["iss"].as_str().ok_or("no iss")?;
    if iss.ends_with('/') || !iss.starts_with("http") {
        return Err("iss".into());
    }
    p["nbf"].as_f64().ok_or("nbf is not a number")?;
    let vc = &p["vc"];
    if !vc["type"].as_array().is_some_and(|t| {
        t.iter()
            .any(|t| t == "https://smarthealth.cards#health-card")
    }) {
        return Err("vc.type".into());
    }
    let rid = vc["rid"].as_str().ok_or("no rid")?;
    if rid.len() > 24
        || !rid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("rid is not base64url of at most 24 characters".into());
    }
    let subject = &vc["credentialSubject"];
    if subject["fhirVersion"] != "4.0.1" {
        return Err("fhirVersion".into());
    }
    let bundle = &subject["fhirBundle"];
    if bundle["resourceType"] != "Bundle" || bundle["type"] != "collection" {
        return Err("bundle".into());
    }
    let entries = bundle["entry"].as_array().ok_or("entries")?;
    let patient = &entries[0];
    if patient["fullUrl"] != "resource:0" || patient["resource"]["resourceType"] != "Patient" {
        return Err("patient first as resource:0".into());
    }
    let pr = &patient["resource"];
    if pr["name"][0]["family"].as_str().is_none_or(str::is_empty)
        || pr["birthDate"].as_str().is_none()
    {
        return Err("patient name and birthDate".into());
    }
    for (i, e) in entries.iter().enumerate().skip(1) {
        let r = &e["resource"];
        let ok = e["fullUrl"] == format!("resource:{i}").as_str()
            && r["resourceType"] == "Immunization"
            && r["status"] == "completed"
            && r["vaccineCode"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/cvx"
            && r["vaccineCode"]["coding"][0]["code"].as_str().is_some()
            && r["patient"]["reference"] == "resource:0"
            && r["occurrenceDateTime"]
                .as_str()
                .is_some_and(|d| d.len() == 10)
            && r["performer"][0]["actor"]["display"].as_str().is_some()
            && r.get("id").is_none()
            && r.get("meta").is_none();
        if !ok {
            return Err(format!("immunization {i}: {r}"));
        }
    }
    Ok(())
}

/// `shc:/` then two digits per JWS character (its code minus 45).
fn from_qr_text(text: &str) -> String {
    let digits = text.strip_prefix("shc:/").expect("shc:/ prefix");
    digits
        .as_bytes()
        .chunks(2)
        .map(|p| char::from(((p[0] - b'0') * 10 + (p[1] - b'0')) + 45))
        .collect()
}

async fn jwks(app: &TestApp) -> Value {
    let res = app.get("/.well-known/jwks.json").await;
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    res.json().await.unwrap()
}

/// A card with one changed fact, its signature kept.
fn tampered(jws: &str) -> String {
    let parts: Vec<&str> = jws.split('.').collect();
    let mut json = Vec::new();
    flate2::read::DeflateDecoder::new(B64.decode(parts[1]).unwrap().as_slice())
        .read_to_end(&mut json)
        .unwrap();
    let mut payload: Value = serde_json::from_slice(&json).unwrap();
    payload["vc"]["credentialSubject"]["fhirBundle"]["entry"][1]["resource"]["occurrenceDateTime"] =
        Value::from("2021-01-01");
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut enc, &serde_json::to_vec(&payload).unwrap()).unwrap();
    format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(enc.finish().unwrap()),
        parts[2]
    )
}

#[tokio::test]
async fn a_window_certificate_is_a_card_an_independent_verifier_accepts_and_a_tampered_one_fails() {
    let (app, staff, csrf) = window().await;
    let id = resident_id(&app, 5);
    let form = staff
        .get(&format!("/residents/{id}/certificates/new"))
        .await;
    assert_eq!(form.status(), 200);
    let (status, cert) = staff.issue(&csrf, &id, &[]).await;
    assert_eq!(status, 303, "{cert}");

    // The printable page: bilingual, the person, the id, the QR code.
    let page = staff.get(&format!("/certificates/{cert}")).await;
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    let doc = html(&body);
    assert_eq!(select_text(&doc, "#cert-id").join(""), cert);
    assert!(body.contains("Vaccination Certificate for COVID-19"));
    assert!(body.contains("新型コロナウイルス感染症予防接種証明書"));
    assert!(body.contains(demo_resident(code(MUNI), 5).name_kanji.as_str()));
    assert_eq!(
        doc.select(&scraper::Selector::parse(".certificate__qr svg").unwrap())
            .count(),
        1
    );
    assert_eq!(select_text(&doc, "#cert-doses tbody tr").len(), 3);

    let jws = staff.card_of(&cert).await;
    let keys = jwks(&app).await;
    let checked = independent_verify(&jws, &keys).expect("the card verifies");
    assert_eq!(checked.payload["iss"], app.url("").trim_end_matches('/'));
    let entries = checked.payload["vc"]["credentialSubject"]["fhirBundle"]["entry"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(entries.len(), 4, "the patient and three doses");
    assert_eq!(entries[0]["resource"]["birthDate"], birth_of(5).as_str());
    let row = certificates(&app).pop().unwrap();
    assert_eq!(checked.payload["vc"]["rid"], row.rid.as_str());
    assert_eq!(checked.kid, row.kid);

    // One changed date with the old signature: refused here and on the page.
    let forged = tampered(&jws);
    assert_eq!(
        independent_verify(&forged, &keys).unwrap_err(),
        "signature does not verify"
    );
    assert_eq!(app.verify_text(&jws).await, "有効な証明書です");
    assert!(
        app.verify_text(&forged)
            .await
            .starts_with("署名が一致しません")
    );
    assert!(
        app.verify_text("shc:/5676")
            .await
            .contains("SMART Health Card")
    );

    // The QR code holds the card in one code of version 22 at most, and
    // decodes back to the same JWS.
    let code = vrs::shc::qr(&jws).unwrap();
    assert!(code.version().value() <= 22);
    let w = code.size() as usize;
    let scale = 4;
    let quiet = 4;
    let side = (w + 2 * quiet) * scale;
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| {
        let (mx, my) = (
            (x / scale) as i32 - quiet as i32,
            (y / scale) as i32 - quiet as i32,
        );
        if code.get_module(mx, my) { 0 } else { 255 }
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, text) = grids[0].decode().unwrap();
    assert!(text.starts_with("shc:/"));
    assert_eq!(from_qr_text(&text), jws);
    assert_eq!(app.verify_text(&text).await, "有効な証明書です");
}

#[tokio::test]
async fn rotating_the_issuer_key_keeps_older_cards_verifiable() {
    let (app, staff, csrf) = window().await;
    let id = resident_id(&app, 5);
    let (_, first) = staff.issue(&csrf, &id, &[]).await;
    let old_card = staff.card_of(&first).await;
    let (old, new) = vrs::flows::issuer::rotate(
        &mut app.conn(),
        app.master(),
        &app.state.audit,
        &vrs::audit::Actor::default(),
    )
    .unwrap();
    let (_, second) = staff.issue(&csrf, &id, &[]).await;
    let new_card = staff.card_of(&second).await;
    let keys = jwks(&app).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
    let a = independent_verify(&old_card, &keys).unwrap();
    let b = independent_verify(&new_card, &keys).unwrap();
    assert_eq!(Some(a.kid), old);
    assert_eq!(b.kid, new);
    assert_eq!(app.verify_text(&old_card).await, "有効な証明書です");
    assert_eq!(app.verify_text(&new_card).await, "有効な証明書です");
}

#[tokio::test]
async fn cards_issued_before_a_key_rotation_open_after_it_and_the_window_works_during_it() {
    let (app, staff, csrf) = window().await;
    let id = resident_id(&app, 5);
    let (status, before) = staff
        .issue(
            &csrf,
            &id,
            &[
                ("kind", "overseas"),
                ("family", "yamada"),
                ("given", "taro"),
                ("nationality", "jpn"),
                ("passport_number", "tk1234567"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{before}");
    let card = staff.card_of(&before).await;
    // The rotation has begun: the window issues with the new key.
    let v = vrs::flows::keys::begin_rotation(&mut app.conn(), app.master(), code(MUNI)).unwrap();
    let (status, during) = staff.issue(&csrf, &id, &[]).await;
    assert_eq!(status, 303, "{during}");
    vrs::flows::keys::reseal_pass(&mut app.conn(), app.master(), code(MUNI)).unwrap();
    vrs::flows::keys::finish_rotation(&mut app.conn(), code(MUNI), v).unwrap();
    // Sealed with the old key, sealed again: the card and the passport
    // page still open once the old key is gone.
    assert_eq!(staff.card_of(&before).await, card);
    let page = staff.get(&format!("/certificates/{before}")).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("TK1234567"));
    let _ = staff.card_of(&during).await;
}

#[tokio::test]
async fn correcting_a_carried_dose_revokes_the_card_and_offers_reissue() {
    let (app, staff, csrf) = window().await;
    let id = resident_id(&app, 5);
    let (_, cert) = staff.issue(&csrf, &id, &[]).await;
    let jws = staff.card_of(&cert).await;
    let row = certificates(&app).pop().unwrap();
    let dose = row.dose_ids.split(',').next().unwrap().to_string();

    let crl_url = format!("/.well-known/crl/{}.json", row.kid);
    let before: Value = app.get(&crl_url).await.json().await.unwrap();
    assert_eq!(before["rids"].as_array().unwrap().len(), 0);

    let res = staff
        .client
        .post(staff.url(&format!("/residents/{id}/doses/{dose}")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "correct"),
            ("reason", "ロット番号の誤り"),
            ("dose_number", "1"),
            ("administered_on", "2021-05-25"),
            ("product", "PFZ_ORIG_12P"),
            ("lot", "FA9999"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);

    let row = certificates(&app).pop().unwrap();
    assert_eq!(row.status, "revoked");
    assert_eq!(row.revoked_reason.as_deref(), Some("dose_changed"));
    let res = app.get(&crl_url).await;
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let crl: Value = res.json().await.unwrap();
    assert_eq!(crl["kid"], row.kid.as_str());
    assert_eq!(crl["method"], "rid");
    assert_eq!(crl["rids"], serde_json::json!([row.rid]));
    let keys = jwks(&app).await;
    let key = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == row.kid.as_str())
        .unwrap();
    assert_eq!(key["crlVersion"], crl["ctr"]);
    assert!(crl["ctr"].as_i64().unwrap() >= 1);

    // A verifier that checks the list now refuses the card; so does ours.
    let checked = independent_verify(&jws, &keys).unwrap();
    let rids: Vec<&str> = crl["rids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(rids.contains(&checked.payload["vc"]["rid"].as_str().unwrap()));
    assert_eq!(app.verify_text(&jws).await, "この証明書は失効しています");

    // The record and the certificate page offer a reissue, which carries
    // the corrected dose.
    let record = staff
        .get(&format!("/residents/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(record.contains(&format!("/residents/{id}/certificates/new?from={cert}")));
    let shown = staff
        .get(&format!("/certificates/{cert}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html(&shown)
            .select(&scraper::Selector::parse("#reissue").unwrap())
            .next()
            .is_some()
    );
    let (status, again) = staff.issue(&csrf, &id, &[]).await;
    assert_eq!(status, 303);
    let card = staff.card_of(&again).await;
    let lots: Vec<String> = independent_verify(&card, &jwks(&app).await)
        .unwrap()
        .payload["vc"]["credentialSubject"]["fhirBundle"]["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["resource"]["lotNumber"].as_str().map(String::from))
        .collect();
    assert!(lots.contains(&"FA9999".to_string()), "{lots:?}");

    // Deleting a dose (a wrong scan undone) revokes the new card too.
    let row = certificates(&app)
        .into_iter()
        .find(|c| c.id == again)
        .unwrap();
    let carried = row.dose_ids.split(',').next_back().unwrap().to_string();
    let res = staff
        .client
        .post(staff.url(&format!("/residents/{id}/doses/{carried}")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "delete"),
            ("reason", "読み取りの誤り"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let row = certificates(&app)
        .into_iter()
        .find(|c| c.id == again)
        .unwrap();
    assert_eq!(row.status, "revoked");
    assert_eq!(app.verify_text(&card).await, "この証明書は失効しています");
}

#[tokio::test]
async fn the_channel_api_answers_only_registered_clients_for_municipalities_that_enabled_it() {
    let app = spawn_app().await;
    app.seed_demo();
    use vrs::flows::certificates::Channel;
    let (_, app_secret) = app.register_channel_client("市民向けアプリ", Channel::App, &[]);
    let (kiosk, kiosk_secret) =
        app.register_channel_client("証明書交付センター", Channel::Kiosk, &["127.0.0.0/8"]);
    let ask = |secret: Option<String>, body: Value| {
        let (client, url) = (app.client.clone(), app.url("/api/v1/certificates"));
        async move {
            let mut req = client.post(url).json(&body);
            if let Some(s) = secret {
                req = req.bearer_auth(s);
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.text().await.unwrap())
        }
    };
    let person = |i: usize| {
        serde_json::json!({
            "municipality_code": MUNI,
            "individual_number": number_of(i),
            "birth_date": birth_of(i),
            "kind": "domestic",
        })
    };

    // No secret, a made-up one: refused.
    assert_eq!(ask(None, person(5)).await.0, 401);
    assert_eq!(ask(Some("vrsc_nothing".into()), person(5)).await.0, 401);
    // A registered client, but 千代田区 has not enabled the channel.
    let (status, body) = ask(Some(app_secret.clone()), person(5)).await;
    assert_eq!(
        (status, body.contains("channel_not_enabled")),
        (403, true),
        "{body}"
    );

    // Its administrator enables the app channel only.
    app.enable_certificate_channels(MUNI, &[("app", "1")]).await;

    let (status, body) = ask(Some(app_secret.clone()), person(5)).await;
    assert_eq!(status, 201, "{body}");
    let issued: Value = serde_json::from_str(&body).unwrap();
    let jws = issued["verifiableCredential"][0].as_str().unwrap();
    assert_eq!(from_qr_text(issued["qr_text"].as_str().unwrap()), jws);
    independent_verify(jws, &jwks(&app).await).unwrap();

    // The kiosk channel stays closed; a wrong birth date and an unknown
    // number get one identical answer.
    assert_eq!(ask(Some(kiosk_secret.clone()), person(5)).await.0, 403);
    let mut wrong_birth = person(5);
    wrong_birth["birth_date"] = "1901-01-01".into();
    let miss_a = ask(Some(app_secret.clone()), wrong_birth).await;
    let mut unknown = person(5);
    unknown["individual_number"] = "123456789018".into();
    let miss_b = ask(Some(app_secret.clone()), unknown).await;
    assert_eq!(miss_a.0, 404);
    assert_eq!(miss_a, miss_b);
    // A bad field is named.
    let mut bad = person(5);
    bad["individual_number"] = "12345".into();
    let (status, body) = ask(Some(app_secret.clone()), bad).await;
    assert_eq!(status, 422);
    assert!(body.contains("\"field\":\"individual_number\""), "{body}");

    // A kiosk centre calls only from its own (LGWAN) networks.
    let (_, elsewhere) =
        app.register_channel_client("別の交付センター", Channel::Kiosk, &["10.99.0.0/16"]);
    let (status, body) = ask(Some(elsewhere), person(5)).await;
    assert_eq!(
        (status, body.contains("outside_network")),
        (403, true),
        "{body}"
    );

    // A revoked client is refused.
    vrs::flows::certificates::revoke_client(
        &mut app.conn(),
        &app.state.audit,
        &vrs::audit::Actor::default(),
        &kiosk.id,
    )
    .unwrap();
    assert_eq!(ask(Some(kiosk_secret), person(5)).await.0, 401);

    // Exactly one certificate was kept, by the app channel; the requests
    // are logged, and never with the number.
    let rows = certificates(&app);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].channel, "app");
    assert_eq!(rows[0].id_document, None);
    let log = log_text(&app);
    assert!(log.contains("certificate.issue"));
    assert!(log.contains("channel_not_enabled") || log.contains("not_enabled"));
    assert!(log.contains("no_match"));
    for n in [number_of(5), "123456789018".to_string()] {
        assert!(!log.contains(&n), "an individual number in the log");
        assert!(!body.contains(&n));
        assert!(!jws.contains(&n));
    }
}

#[tokio::test]
async fn issuing_needs_the_application_the_identity_check_and_good_passport_fields() {
    let (app, staff, csrf) = window().await;
    let id = resident_id(&app, 5);
    // No application recorded: refused, naming the field.
    let (status, body) = staff.issue(&csrf, &id, &[("applied", "")]).await;
    assert_eq!(status, 422);
    assert!(body.contains("交付申請の受理"), "{body}");
    // Overseas with bad passport details: every field named.
    let (status, body) = staff
        .issue(
            &csrf,
            &id,
            &[
                ("kind", "overseas"),
                ("family", "山田"),
                ("given", ""),
                ("nationality", "JP"),
                ("passport_number", "12"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    for f in [
        "ローマ字氏名（姓）",
        "ローマ字氏名（名）",
        "国籍",
        "旅券番号",
    ] {
        assert!(body.contains(f), "{f} not named");
    }
    // A resident with no dose gets no certificate.
    let none = resident_id(&app, 0);
    let (status, body) = staff.issue(&csrf, &none, &[]).await;
    assert_eq!(status, 422);
    assert!(body.contains("有効な接種記録がない"));
    assert!(certificates(&app).is_empty());

    // A good overseas application: the card names the passport name; the
    // passport details are sealed at rest.
    let (status, cert) = staff
        .issue(
            &csrf,
            &id,
            &[
                ("kind", "overseas"),
                ("family", "yamada"),
                ("given", "hanako"),
                ("nationality", "jpn"),
                ("passport_number", "tk1234567"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{cert}");
    let page = staff
        .get(&format!("/certificates/{cert}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("TK1234567") && page.contains("YAMADA HANAKO"));
    let jws = staff.card_of(&cert).await;
    let checked = independent_verify(&jws, &jwks(&app).await).unwrap();
    assert_eq!(
        checked.payload["vc"]["credentialSubject"]["fhirBundle"]["entry"][0]["resource"]["name"][0]
            ["family"],
        "YAMADA"
    );
    let row = certificates(&app).pop().unwrap();
    let sealed = row.passport_sealed.unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains("TK1234567"));
    assert!(!String::from_utf8_lossy(&row.card_sealed).contains(jws.split('.').nth(1).unwrap()));

    // Nobody else issues: not the administrator, not from outside LG-WAN.
    let admin = TestApp::handle(&app);
    let admin_csrf = admin.login_as("131016-admin", DEMO_PASSWORD).await;
    let (status, _) = admin.issue(&admin_csrf, &id, &[]).await;
    assert_eq!(status, 403);
    let other = TestApp::handle(&app);
    let other_csrf = other.login_as("082040-staff", DEMO_PASSWORD).await;
    let (status, _) = other.issue(&other_csrf, &id, &[]).await;
    assert_ne!(status, 303, "another municipality's staff");
    assert_eq!(certificates(&app).len(), 1);
    // No individual number in any page, card or log line.
    let n = number_of(5);
    assert!(!page.contains(&n) && !log_text(&app).contains(&n));
}
