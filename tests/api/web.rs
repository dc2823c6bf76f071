//! The web skeleton over real HTTP: pages in Japanese and English, error
//! pages with a request id, security headers, health, issuer keys.

use crate::helpers::*;
use vrs::demo::DEMO_PASSWORD;

#[tokio::test]
async fn top_page_is_japanese_first_and_english_on_request() {
    let app = spawn_app().await;
    app.seed_demo();
    let res = app.get("/").await;
    assert_eq!(res.status(), 200);
    let doc = html(&res.text().await.unwrap());
    assert_eq!(select_text(&doc, "h1"), vec!["ワクチン接種記録システム"]);
    let rows = select_text(&doc, "table.data-table tbody tr");
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().any(|r| r.contains("茨城県古河市")));

    let switch = app.get("/lang/en?next=/municipalities/check").await;
    assert_eq!(switch.status(), 303);
    assert_eq!(switch.headers()["location"], "/municipalities/check");
    let doc = html(&app.get("/").await.text().await.unwrap());
    assert_eq!(select_text(&doc, "h1"), vec!["Vaccination Record System"]);
    let lang_attr = scraper::Selector::parse("html").unwrap();
    assert_eq!(
        doc.select(&lang_attr).next().unwrap().value().attr("lang"),
        Some("en")
    );
}

#[tokio::test]
async fn language_switch_never_redirects_off_site() {
    let app = spawn_app().await;
    for next in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        // Browsers drop tabs and line breaks: this is //evil.example.
        "/\t/evil.example",
        "/\n/x",
        "/\r\n/x",
        "/あ",
    ] {
        let res = app.get(&format!("/lang/ja?next={}", urlencode(next))).await;
        assert_eq!(res.status(), 303, "{next:?}");
        assert_eq!(res.headers()["location"], "/", "{next:?}");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[tokio::test]
async fn municipality_code_check_names_the_field_on_bad_input() {
    let app = spawn_app().await;
    let res = app.get("/municipalities/check?code=131017").await;
    assert_eq!(res.status(), 422);
    let doc = html(&res.text().await.unwrap());
    let errors = select_text(&doc, ".field__error");
    assert_eq!(
        errors,
        vec!["地方公共団体コード：チェックデジットが一致しません"]
    );
    assert_eq!(select_text(&doc, "input#code").len(), 1);

    let res = app.get("/municipalities/check?code=082040").await;
    assert_eq!(res.status(), 200);
    let doc = html(&res.text().await.unwrap());
    let result = select_text(&doc, "#code-result dd");
    assert!(result.contains(&"茨城県古河市".to_string()), "{result:?}");

    let res = app.get("/municipalities/check?code=990001").await;
    let doc = html(&res.text().await.unwrap());
    assert_eq!(
        select_text(&doc, ".field__error"),
        vec!["地方公共団体コード：存在しない地方公共団体コードです"]
    );
}

#[tokio::test]
async fn error_pages_show_a_request_id_and_nothing_of_the_request() {
    let app = spawn_app().await;
    let res = app.get("/records-of/123456789018").await;
    assert_eq!(res.status(), 404);
    let rid = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let body = res.text().await.unwrap();
    assert!(!body.contains("123456789018"));
    let doc = html(&body);
    assert_eq!(select_text(&doc, "h1"), vec!["ページが見つかりません"]);
    assert_eq!(select_text(&doc, ".error-page__request code"), vec![rid]);

    // Machine paths answer in JSON with the same id.
    let res = app.get("/api/v1/nothing-here").await;
    assert_eq!(res.status(), 404);
    let rid = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let json: serde_json::Value = res.json().await.unwrap();
    assert_eq!(json["error"], "not_found");
    assert_eq!(json["request_id"], rid.as_str());
}

#[tokio::test]
async fn over_long_addresses_and_oversized_bodies_get_their_page_on_every_route() {
    let app = spawn_app().await;
    app.seed_demo();
    let long = "x".repeat(10 * 1024);
    // Pages, the API, static files, redirects: each answers 414 with its
    // page (or JSON) and the request id, never a 5xx or a bare answer.
    for path in [
        format!("/login?notice={long}"),
        format!("/residents?q={long}"),
        format!("/lang/en?next=/{long}"),
        format!("/static/css/app.css?v={long}"),
        format!("/{long}"),
        format!("/api/v1/doses?x={long}"),
    ] {
        let res = app.get(&path).await;
        assert_eq!(res.status(), 414, "{}", &path[..30]);
        let rid = res.headers()["x-request-id"].to_str().unwrap().to_string();
        let body = res.text().await.unwrap();
        if path.starts_with("/api/") {
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(json["error"], "uri_too_long");
            assert_eq!(json["request_id"], rid.as_str());
        } else {
            let doc = html(&body);
            assert_eq!(select_text(&doc, "h1"), vec!["アドレスが長すぎます"]);
            assert_eq!(select_text(&doc, ".error-page__request code"), vec![rid]);
            assert!(!body.contains(&long[..100]));
        }
    }

    // Bodies over a route's limit: 413, with the page or JSON.
    let csrf = app.login_as("082040-staff", DEMO_PASSWORD).await;
    let big = "あ".repeat(40 * 1024);
    for path in ["/residents/search", "/login"] {
        let res = app
            .client
            .post(app.url(path))
            .form(&[("csrf", csrf.as_str()), ("addressee", big.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 413, "{path}");
        let rid = res.headers()["x-request-id"].to_str().unwrap().to_string();
        let doc = html(&res.text().await.unwrap());
        assert_eq!(
            select_text(&doc, "h1"),
            vec!["送信されたデータが大きすぎます"]
        );
        assert_eq!(select_text(&doc, ".error-page__request code"), vec![rid]);
    }
    let res = app
        .client
        .post(app.url("/api/v1/doses"))
        .header("content-type", "application/json")
        .body(format!("{{\"lot\": \"{}\"}}", "x".repeat(300 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let rid = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let json: serde_json::Value = res.json().await.unwrap();
    assert_eq!(json["error"], "too_large");
    assert_eq!(json["request_id"], rid.as_str());
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in ["/", "/nope", "/health", "/static/css/app.css"] {
        let res = app.get(path).await;
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        if !path.starts_with("/static") {
            assert_eq!(h["cache-control"], "no-store", "{path}");
        }
    }
}

#[tokio::test]
async fn health_reports_the_database() {
    let app = spawn_app().await;
    let res = app.get("/health").await;
    assert_eq!(res.status(), 200);
    let json: serde_json::Value = res.json().await.unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["database"], "ok");
}

#[tokio::test]
async fn static_files_are_served() {
    let app = spawn_app().await;
    let res = app.get("/static/css/app.css").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let res = app
        .get("/static/vendor/digital-go-jp-design-tokens/tokens.css")
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("--color-"));
}

#[tokio::test]
async fn issuer_keys_are_published_with_cors_and_a_derived_kid() {
    let app = spawn_app().await;
    let res = app.get("/.well-known/jwks.json").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let json: serde_json::Value = res.json().await.unwrap();
    let keys = json["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(
        (k["kty"].as_str(), k["crv"].as_str(), k["alg"].as_str()),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert!(k.get("d").is_none(), "private part must never be published");
    let kid = vrs::flows::issuer::thumbprint(k["x"].as_str().unwrap(), k["y"].as_str().unwrap());
    assert_eq!(k["kid"].as_str().unwrap(), kid);
}

#[tokio::test]
async fn serves_https_from_certificate_and_key_files() {
    install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();

    let db = TestDb::new(dir.path());
    let common = common_for(dir.path(), &db);
    let prepared = tokio::task::spawn_blocking(move || vrs::startup::prepare(&common, 2))
        .await
        .unwrap()
        .unwrap();
    let mut args = serve_args(None);
    args.tls_cert = Some(cert_path);
    args.tls_key = Some(key_path);
    let app = vrs::startup::Application::build(prepared.state, &args).unwrap();
    assert_eq!(app.scheme(), "https");
    let port = app.port();
    tokio::spawn(app.into_server());

    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let res = client
        .get(format!("https://localhost:{port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    // Over TLS every cookie of ours is Secure.
    let login = client
        .get(format!("https://localhost:{port}/login"))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with("vrs_prelogin=")
            && cookie.contains("Secure")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // Plain HTTP to the TLS port gets no page.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/health")).await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
}

#[tokio::test]
async fn a_forwarded_host_from_a_client_that_is_no_proxy_does_not_make_a_post_same_origin() {
    let app = spawn_app().await;
    app.seed_demo();
    let csrf = app.login_as("082040-staff", DEMO_PASSWORD).await;
    // The attacker's page posts with its own origin and says the request
    // was forwarded for that host: no proxy is trusted, so it is refused.
    let res = app
        .client
        .post(app.url("/logout"))
        .header("origin", "https://attacker.example")
        .header("x-forwarded-host", "attacker.example")
        .header("forwarded", "host=attacker.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(app.get("/dashboard").await.status(), 200, "still logged in");
}
