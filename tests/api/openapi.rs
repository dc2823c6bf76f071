//! The OpenAPI document against the running server, driven by the document
//! itself: every documented operation is called as its caller with a body
//! the document accepts, then with bodies that break one of its constraints
//! in turn (a required field left out, a wrong type, an empty or over-long
//! string, a value outside its pattern, enum or range, a flag that must be
//! true), then with generated strings. Every answer must be a status the
//! document lists for the operation, with a body its schema accepts; a
//! refused field must be the one named. Methods a path does not take
//! answer 405 with `Allow`.

use crate::helpers::*;
use serde_json::{Value, json};
use vrs::demo::{DEMO_PASSWORD, MOVER_NUMBER, demo_resident};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

struct Document {
    doc: Value,
}

/// What the server answered.
struct Answer {
    status: u16,
    allow: Option<String>,
    body: Value,
    text: String,
}

impl Document {
    /// A validator for `schema`, with the document's components beside it
    /// so that its `#/components/...` references resolve.
    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut root = json!({ "allOf": [schema], "components": self.doc["components"] });
        if let Some(defs) = schema.get("$ref") {
            root = json!({ "$ref": defs, "components": self.doc["components"] });
        }
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&root)
            .unwrap_or_else(|e| panic!("the document's schema does not compile: {e}\n{schema}"))
    }

    fn accepts(&self, schema: &Value, instance: &Value) -> Result<(), String> {
        let v = self.validator(schema);
        let errors: Vec<String> = v.iter_errors(instance).map(|e| e.to_string()).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// A schema with its reference followed (one level).
    fn resolved<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let pointer = r.trim_start_matches('#');
                self.doc
                    .pointer(pointer)
                    .expect("a reference the document holds")
            }
            None => schema,
        }
    }

    fn operation(&self, path: &str, method: &str) -> &Value {
        &self.doc["paths"][path][method.to_ascii_lowercase()]
    }

    fn request_schema(&self, path: &str, method: &str) -> Option<&Value> {
        let op = self.operation(path, method);
        op["requestBody"]["content"]["application/json"]
            .get("schema")
            .filter(|_| op.get("requestBody").is_some())
    }

    /// Panics unless the answer is one the document lists for the
    /// operation, with a body its schema accepts.
    fn assert_documented(&self, path: &str, method: &str, what: &str, a: &Answer) {
        let responses = &self.operation(path, method)["responses"];
        let Some(response) = responses
            .get(a.status.to_string())
            .map(|r| self.resolved(r))
        else {
            panic!(
                "{method} {path} ({what}) answered {} which the document does not list: {}",
                a.status, a.text
            );
        };
        match response["content"]["application/json"].get("schema") {
            Some(schema) => {
                if let Err(e) = self.accepts(schema, &a.body) {
                    panic!(
                        "{method} {path} ({what}) answered {} with a body its schema refuses: {e}\n{}",
                        a.status, a.text
                    );
                }
            }
            None if response.get("content").is_some() => {}
            None => assert!(
                a.text.is_empty(),
                "{method} {path} ({what}): a {} without content has a body {}",
                a.status,
                a.text
            ),
        }
    }
}

/// One way to break a valid body, and the field the server must name.
struct Broken {
    what: String,
    body: Value,
    field: Option<String>,
}

/// Every body that breaks exactly one constraint of `schema` (an object
/// schema) at `at` in `valid`. Each is checked to be refused by the document
/// before it is sent, so a mutation that happens to be valid is never
/// mistaken for one the server wrongly accepts.
fn broken_bodies(doc: &Document, root: &Value, valid: &Value, at: &[String]) -> Vec<Broken> {
    let mut out = Vec::new();
    let here = pointer(at);
    let schema = schema_at(doc, root, at);
    let name = at.join(".");
    // `None` leaves the field named by `field` out.
    let mut push = |what: String, value: Option<Value>, field: Option<String>| {
        let mut body = valid.clone();
        match value {
            Some(v) => {
                *body
                    .pointer_mut(&here)
                    .expect("the field is in the valid body") = v
            }
            None => {
                let key = field
                    .as_deref()
                    .and_then(|f| f.rsplit('.').next())
                    .unwrap_or_default();
                body.pointer_mut(&here)
                    .and_then(Value::as_object_mut)
                    .expect("an object")
                    .remove(key);
            }
        }
        if doc.accepts(root, &body).is_err() {
            out.push(Broken { what, body, field });
        }
    };
    if !at.is_empty() {
        let field = Some(name.clone());
        let wrong_type = match schema["type"].as_str() {
            Some("string") => json!(12),
            Some("integer") => json!("1"),
            Some("boolean") => json!("yes"),
            Some("object") => json!("x"),
            _ => Value::Null,
        };
        if !wrong_type.is_null() {
            push(
                format!("{name}: wrong type"),
                Some(wrong_type),
                field.clone(),
            );
        }
        if let Some(min) = schema["minLength"].as_u64()
            && min > 0
        {
            push(format!("{name}: empty"), Some(json!("")), field.clone());
        }
        if let Some(max) = schema["maxLength"].as_u64() {
            let long = "A".repeat(max as usize + 1);
            push(
                format!("{name}: too long"),
                Some(json!(long)),
                field.clone(),
            );
        }
        if schema.get("pattern").is_some() {
            for odd in ["", "x", "!", "１２３", "A"] {
                push(
                    format!("{name}: outside its pattern ({odd})"),
                    Some(json!(odd)),
                    field.clone(),
                );
            }
        }
        if schema.get("enum").is_some() {
            push(
                format!("{name}: not one of its values"),
                Some(json!("no_such_value")),
                field.clone(),
            );
        }
        if schema.get("const") == Some(&json!(true)) {
            push(format!("{name}: false"), Some(json!(false)), field.clone());
        }
        if let Some(max) = schema["maximum"].as_i64() {
            push(
                format!("{name}: above its maximum"),
                Some(json!(max + 1)),
                field.clone(),
            );
        }
        if let Some(min) = schema["minimum"].as_i64() {
            push(
                format!("{name}: below its minimum"),
                Some(json!(min - 1)),
                field.clone(),
            );
        }
    }
    if schema["type"] == "object" {
        let object = valid
            .pointer(&here)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        // Kept only where the document then refuses the body: a required
        // field, or one another field's value requires (`if`/`then`).
        for key in object.keys() {
            let mut path = at.to_vec();
            path.push(key.clone());
            push(
                format!("{} left out", path.join(".")),
                None,
                Some(path.join(".")),
            );
        }
        if schema["additionalProperties"] == json!(false) {
            let mut with_more = object.clone();
            with_more.insert("unexpected".into(), json!(1));
            push(
                format!("{name}: a property it does not take"),
                Some(Value::Object(with_more)),
                None,
            );
        }
        for key in object.keys() {
            if schema["properties"].get(key).is_some() {
                let mut path = at.to_vec();
                path.push(key.clone());
                out.extend(broken_bodies(doc, root, valid, &path));
            }
        }
    }
    out
}

/// A `oneOf [X, null]` (an optional object) as X.
fn unwrap_nullable(doc: &Document, schema: &Value) -> Value {
    match schema["oneOf"].as_array() {
        Some(options) => options
            .iter()
            .find(|o| o["type"] != "null")
            .map(|o| doc.resolved(o).clone())
            .unwrap_or_else(|| schema.clone()),
        None => schema.clone(),
    }
}

fn pointer(at: &[String]) -> String {
    at.iter().map(|k| format!("/{k}")).collect()
}

/// The schema of the value at `at` inside a request schema, through
/// `properties`, following references and optional objects.
fn schema_at(doc: &Document, root: &Value, at: &[String]) -> Value {
    let mut schema = unwrap_nullable(doc, doc.resolved(root));
    for key in at {
        let inner = schema["properties"][key].clone();
        schema = unwrap_nullable(doc, doc.resolved(&inner));
    }
    schema
}

/// Strings nobody would type, from a fixed seed: a property test of "every
/// answer is a documented one", repeatable when it fails.
fn odd_strings(seed: u64, n: usize) -> Vec<String> {
    let pool: Vec<char> = "0123456789０１２３ABCxyz-_ /\\'\"<>&%;ーア亜\u{200b}\u{202e}\u{0}\t\n😀"
        .chars()
        .collect();
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|_| {
            let len = (next() % 40) as usize;
            (0..len)
                .map(|_| pool[(next() % pool.len() as u64) as usize])
                .collect()
        })
        .collect()
}

/// One documented operation, as its caller calls it.
struct Call {
    path: &'static str,
    method: &'static str,
    token: Option<String>,
    valid: Option<Value>,
}

async fn send(app: &TestApp, call: &Call, token: Option<&str>, body: Option<&Value>) -> Answer {
    send_raw(
        app,
        call.method,
        call.path,
        token,
        body.map(|b| b.to_string().into_bytes()),
    )
    .await
}

async fn send_raw(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
    let mut req = app.client.request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if path == "/api/v1/doses" {
        req = req.header("Idempotency-Key", uuid::Uuid::new_v4().to_string());
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let res = req.send().await.expect("an answer");
    let status = res.status().as_u16();
    let allow = res
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let text = res.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        allow,
        body,
        text,
    }
}

async fn token_of(app: &TestApp, login: &str) -> String {
    let res = app
        .client
        .post(app.url("/api/v1/sessions"))
        .json(&json!({ "login_id": login, "password": DEMO_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "api login as {login}");
    res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The demo with everything a documented call needs: a site tablet, staff
/// of 千代田区 on its LG-WAN, and a certificate app client that 千代田区
/// answers.
async fn callers(app: &TestApp) -> Vec<Call> {
    app.seed_demo();
    app.declare_lgwan("131016");
    let (_, secret) = app.register_channel_client(
        "市民向けアプリ",
        vrs::flows::certificates::Channel::App,
        &[],
    );
    app.enable_certificate_channels("131016", &[("app", "1")])
        .await;

    let tablet = token_of(app, "082040-tablet").await;
    let staff = token_of(app, "131016-staff").await;
    let leaving = token_of(app, "012025-admin").await;
    let person = demo_resident(code("131016"), 5);
    let number = person.my_number.expect("a number").expose_digits();
    let today = (chrono::Utc::now() + chrono::Duration::hours(9)).date_naive();
    let ticket = first_ticket(app, "082040");
    let res = app
        .client
        .post(app.url("/api/v1/tickets/check"))
        .bearer_auth(&tablet)
        .json(&json!({ "ticket": ticket }))
        .send()
        .await
        .unwrap();
    let due = res.json::<Value>().await.unwrap()["dose_number_due"].clone();
    vec![
        Call {
            path: "/api/v1/openapi.json",
            method: "GET",
            token: None,
            valid: None,
        },
        Call {
            path: "/api/v1/sessions",
            method: "POST",
            token: None,
            valid: Some(json!({
                "login_id": "012025-staff",
                "password": DEMO_PASSWORD,
                "totp_code": "",
            })),
        },
        Call {
            path: "/api/v1/tickets/check",
            method: "POST",
            token: Some(tablet.clone()),
            valid: Some(json!({ "ticket": ticket, "product_code": "PFZ_ORIG_12P" })),
        },
        Call {
            path: "/api/v1/doses",
            method: "POST",
            token: Some(tablet),
            valid: Some(json!({
                "ticket": ticket,
                "administered_on": today.to_string(),
                "product_code": "PFZ_ORIG_12P",
                "lot_number": "FA1004",
                "dose_number": due,
            })),
        },
        Call {
            path: "/api/v1/transfer-inquiries",
            method: "POST",
            token: Some(staff),
            valid: Some(json!({
                "individual_number": MOVER_NUMBER,
                "source_municipality_code": "082040",
                "consent": { "form_received": true, "id_document": "passport", "checked_by": "窓口" },
                "purpose": "history_confirmation",
            })),
        },
        Call {
            path: "/api/v1/certificates",
            method: "POST",
            token: Some(secret),
            valid: Some(json!({
                "municipality_code": "131016",
                "individual_number": String::from_utf8(number.to_vec()).unwrap(),
                "birth_date": person.birth_date.date().to_string(),
                "kind": "overseas",
                "passport": {
                    "family": "YAMADA",
                    "given": "HANAKO",
                    "nationality": "JPN",
                    "number": "TK1234567",
                    "other_name": "",
                },
            })),
        },
        // Last: it ends the session it is given.
        Call {
            path: "/api/v1/sessions",
            method: "DELETE",
            token: Some(leaving),
            valid: None,
        },
    ]
}

/// The first demo ticket of `muni`, as a site types it (code + number).
fn first_ticket(app: &TestApp, muni: &str) -> String {
    use diesel::prelude::*;
    use vrs::db::schema::tickets;
    let mut conn = app.conn();
    let number = conn
        .transaction(|c| {
            vrs::db::set_transaction_municipality(c, muni).unwrap();
            tickets::table
                .filter(tickets::municipality_code.eq(muni))
                .order(tickets::ticket_number)
                .select(tickets::ticket_number)
                .first::<String>(c)
        })
        .unwrap();
    format!("{muni}{number}")
}

#[tokio::test]
async fn the_server_answers_as_its_document_says() {
    let app = spawn_app().await;
    let calls = callers(&app).await;
    let doc = Document {
        doc: app.get("/api/v1/openapi.json").await.json().await.unwrap(),
    };
    assert_eq!(doc.doc["openapi"], "3.1.0");

    // Every documented operation is one this test calls, and back.
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc.doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method.to_ascii_lowercase()).is_some() {
                documented.push((path.clone(), method.to_string()));
            }
        }
    }
    let mut called: Vec<(String, String)> = calls
        .iter()
        .map(|c| (c.path.to_string(), c.method.to_string()))
        .collect();
    documented.sort();
    called.sort();
    assert_eq!(documented, called, "operations documented vs called");

    // A method a path does not take: 405, with the methods it does.
    for (path, item) in doc.doc["paths"].as_object().unwrap() {
        let takes: Vec<&str> = METHODS
            .into_iter()
            .filter(|m| item.get(m.to_ascii_lowercase()).is_some())
            .collect();
        for method in METHODS.into_iter().filter(|m| !takes.contains(m)) {
            let a = send_raw(&app, method, path, None, None).await;
            assert_eq!(a.status, 405, "{method} {path}: {}", a.text);
            assert_eq!(
                a.allow.as_deref(),
                Some(takes.join(", ").as_str()),
                "{method} {path}"
            );
            let error = json!({ "$ref": "#/components/schemas/ApiError" });
            doc.accepts(&error, &a.body)
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            assert_eq!(a.body["error"], "method_not_allowed");
        }
    }

    for call in &calls {
        let (path, method) = (call.path, call.method);
        let schema = doc.request_schema(path, method).cloned();
        if let (Some(schema), Some(valid)) = (&schema, &call.valid) {
            doc.accepts(schema, valid)
                .unwrap_or_else(|e| panic!("{method} {path}: the test's valid body: {e}"));
        }

        // As its caller, with a body the document accepts: a success.
        let a = send(&app, call, call.token.as_deref(), call.valid.as_ref()).await;
        doc.assert_documented(path, method, "valid", &a);
        assert!(
            (200..300).contains(&a.status),
            "{method} {path}: {} {}",
            a.status,
            a.text
        );

        let secured = doc.operation(path, method)["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty());
        if secured {
            let a = send(&app, call, None, call.valid.as_ref()).await;
            doc.assert_documented(path, method, "no credential", &a);
            assert_eq!(a.status, 401, "{method} {path}: {}", a.text);
        }

        let (Some(schema), Some(valid)) = (schema, call.valid.clone()) else {
            continue;
        };
        let root = doc.resolved(&schema).clone();
        let broken = broken_bodies(&doc, &root, &valid, &[]);
        assert!(
            broken.len() >= 3,
            "{method} {path}: few constraints to break"
        );
        for b in &broken {
            let a = send(&app, call, call.token.as_deref(), Some(&b.body)).await;
            doc.assert_documented(path, method, &b.what, &a);
            assert!(
                (400..500).contains(&a.status),
                "{method} {path} ({}): the document refuses it, the server answered {} {}",
                b.what,
                a.status,
                a.text
            );
            if let Some(field) = &b.field
                && matches!(a.body["error"].as_str(), Some("invalid_field" | "bad_json"))
            {
                let named = a.body["field"].as_str().unwrap_or_default();
                assert!(
                    named.starts_with(field.as_str()),
                    "{method} {path} ({}): the answer names {named:?}: {}",
                    b.what,
                    a.text
                );
            }
        }

        // Not JSON, and a body larger than any request.
        let a = send_raw(
            &app,
            method,
            path,
            call.token.as_deref(),
            Some(b"{".to_vec()),
        )
        .await;
        doc.assert_documented(path, method, "not JSON", &a);
        assert_eq!(a.status, 400, "{method} {path}: {}", a.text);
        let huge = format!("{{\"x\":\"{}\"}}", "A".repeat(300 * 1024));
        let a = send_raw(
            &app,
            method,
            path,
            call.token.as_deref(),
            Some(huge.into_bytes()),
        )
        .await;
        doc.assert_documented(path, method, "too large", &a);
        assert_eq!(a.status, 413, "{method} {path}: {}", a.text);

        // Generated strings in every string field: whatever the server
        // makes of them, its answer is a documented one and never a 5xx.
        let fields: Vec<String> = valid
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, v)| v.is_string())
            .map(|(k, _)| k.clone())
            .collect();
        for (i, field) in fields.iter().enumerate() {
            let edges = ["\0", "A\0B", " ", &"😀".repeat(300)].map(String::from);
            for odd in edges.into_iter().chain(odd_strings(0x5eed + i as u64, 6)) {
                let mut body = valid.clone();
                body[field] = json!(odd);
                let a = send(&app, call, call.token.as_deref(), Some(&body)).await;
                doc.assert_documented(path, method, &format!("{field} = {odd:?}"), &a);
                assert!(
                    a.status < 500,
                    "{method} {path} ({field} = {odd:?}): {}",
                    a.text
                );
            }
        }
    }
}
