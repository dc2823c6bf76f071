//! The OpenAPI document of the machine API, generated from the handlers'
//! annotations and the types in `wire`, and the 405 answers derived from it:
//! a path takes exactly the methods the document lists for it.

use super::wire;
use crate::web::frame::Ctx;
use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use std::sync::LazyLock;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "VRS machine API",
        version = "1.0.0",
        description = include_str!("about.md"),
    ),
    paths(
        document,
        super::sessions::login,
        super::sessions::logout,
        super::doses::check_ticket,
        super::doses::record_dose,
        super::transfers::transfer_inquiry,
        super::certificates::request_certificate,
    ),
    components(
        schemas(wire::ApiError, wire::ErrorCode),
        responses(wire::BadJson, wire::TooLarge, wire::Unauthorized, wire::Busy),
    ),
    modifiers(&Schemes, &OverseasNeedsPassport),
)]
struct ApiDoc;

/// An overseas certificate needs the passport's family and given names,
/// nationality and number: a rule across two fields, which the generator
/// has no attribute for, written here as JSON Schema `if`/`then`.
struct OverseasNeedsPassport;

impl utoipa::Modify for OverseasNeedsPassport {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, schema::Schema};
        let Some(RefOr::T(Schema::Object(request))) = doc
            .components
            .as_mut()
            .and_then(|c| c.schemas.get_mut("CertificateRequest"))
        else {
            return;
        };
        let keywords = request.extensions.get_or_insert_with(Default::default);
        keywords.insert(
            "if".to_string(),
            serde_json::json!({
                "properties": { "kind": { "const": "overseas" } },
                "required": ["kind"],
            }),
        );
        keywords.insert(
            "then".to_string(),
            serde_json::json!({
                "required": ["passport"],
                "properties": {
                    "passport": {
                        "type": "object",
                        "required": ["family", "given", "nationality", "number"],
                    },
                },
            }),
        );
    }
}

/// The two kinds of bearer credential.
struct Schemes;

impl utoipa::Modify for Schemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |what: &str| {
            let mut scheme = Http::new(HttpAuthScheme::Bearer);
            scheme.description = Some(what.to_string());
            SecurityScheme::Http(scheme)
        };
        components.add_security_scheme(
            "bearer",
            bearer("The token from POST /api/v1/sessions. Sessions end after 15 idle minutes."),
        );
        components.add_security_scheme(
            "channelClient",
            bearer(
                "The secret the platform operator issued to a registered certificate channel \
                 client (a citizen app's backend or the kiosk issuance centre), not a session token.",
            ),
        );
    }
}

/// The document, built once.
static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// The document as JSON (also written out by `vrs api openapi`).
pub fn json() -> String {
    DOCUMENT
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// This document.
#[utoipa::path(
    tag = "document",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", content_type = "application/json")),
)]
#[get("/api/v1/openapi.json")]
async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(json())
}

/// For every documented path, the methods it takes, in the order of the
/// `Allow` header.
fn allowed_methods() -> Vec<(String, String)> {
    DOCUMENT
        .paths
        .paths
        .iter()
        .map(|(path, item)| {
            let methods = [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("PATCH", item.patch.is_some()),
                ("DELETE", item.delete.is_some()),
            ];
            let allow: Vec<&str> = methods.iter().filter(|m| m.1).map(|m| m.0).collect();
            (path.clone(), allow.join(", "))
        })
        .collect()
}

/// The document's own route, and after every handler a catch-all per
/// documented path that answers any other method with 405 and `Allow`.
/// (The handlers' resources carry method guards, so a request another
/// method falls through to these.)
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(document);
}

pub fn method_fallbacks(cfg: &mut web::ServiceConfig) {
    for (path, allow) in allowed_methods() {
        cfg.service(
            web::resource(path).default_service(web::to(move |ctx: Ctx| {
                let allow = allow.clone();
                async move {
                    HttpResponse::MethodNotAllowed()
                        .insert_header((header::ALLOW, allow))
                        .json(wire::ApiError {
                            request_id: Some(ctx.request_id),
                            ..wire::ApiError::of(wire::ErrorCode::MethodNotAllowed)
                        })
                }
            })),
        );
    }
}
