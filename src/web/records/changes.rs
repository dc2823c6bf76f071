//! Changes to a record, each with a reason and a log line in the same
//! transaction: corrections, the moved-out / deceased flags, address
//! protection, and what staff do to a dose (confirm, correct, delete).

use super::detail::detail_page;
use super::{back, change, field_error, posted, sees_protected, staff};
use crate::domain::{BirthDate, ChangeReason, FieldError, KanaName, PersonName, Protection, Sex};
use crate::flows::AppState;
use crate::flows::residents::{self, AddressFix, Correction, Flag};
use crate::i18n::T;
use crate::web::{AppError, Authed, Ctx, field_message, path_id};
use actix_web::{HttpResponse, post, web};
use serde::Deserialize;

#[derive(Deserialize)]
struct CorrectForm {
    csrf: String,
    name_kanji: String,
    name_kana: String,
    birth_date: String,
    sex: String,
    /// Absent when the form was shown without the address (a protected
    /// resident's, to someone who may not see it): the stored one stays.
    address: Option<String>,
    reason: String,
}

#[post("/residents/{id}/correct")]
pub(super) async fn correct(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CorrectForm>,
) -> Result<HttpResponse, AppError> {
    let (code, id) = posted(&auth, &path, &form.csrf)?;
    let today = crate::clock::now().date();
    let parsed = (|| {
        Ok::<_, FieldError>((
            Correction {
                name_kanji: PersonName::parse(&form.name_kanji)?,
                name_kana: KanaName::parse(&form.name_kana)?,
                birth_date: BirthDate::parse(&form.birth_date, today)?,
                sex: Sex::parse(&form.sex)?,
                address: match &form.address {
                    None => AddressFix::Keep,
                    Some(a) => AddressFix::Set(
                        crate::domain::Address::parse(a)?.map(|a| a.as_str().to_string()),
                    ),
                },
            },
            ChangeReason::parse(&form.reason)?,
        ))
    })();
    let (fix, reason) = match parsed {
        Ok(v) => v,
        Err(e) => {
            // The field names of these types are the page's labels.
            let msg = format!("{}: {}", e.field, field_message(&ctx.t, e.reason));
            return detail_page(ctx, &auth, &state, code, id, Some(msg), None).await;
        }
    };
    let sees = sees_protected(&auth);
    let changed = change(
        &state,
        &auth,
        code,
        &id,
        "resident.correct",
        move |s, c, rid, account| {
            let changed = residents::correct(s, c, rid, &fix, &reason, account, sees)?;
            Ok((changed, format!("changed={changed}")))
        },
    )
    .await?;
    Ok(back(&id, if changed { "corrected" } else { "unchanged" }))
}

#[derive(Deserialize)]
struct FlagForm {
    csrf: String,
    flag: String,
    #[serde(default)]
    date: String,
    reason: String,
}

#[post("/residents/{id}/flag")]
pub(super) async fn flag(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<FlagForm>,
) -> Result<HttpResponse, AppError> {
    let (code, id) = posted(&auth, &path, &form.csrf)?;
    let which = Flag::parse(&form.flag).ok_or_else(|| AppError::BadRequest("flag".into()))?;
    let today = crate::clock::now().date();
    let t = &ctx.t;
    // A flag's date follows the rules of a birth date: real, not in the future.
    let date = match form.date.trim() {
        "" => Ok(None),
        d => BirthDate::parse(d, today)
            .map(|d| Some(d.date()))
            .map_err(|e| field_error(t, "records.flag_date", e)),
    };
    let reason = ChangeReason::parse(&form.reason).map_err(|e| field_error(t, "records.reason", e));
    let (on, reason) = match (date, reason) {
        (Ok(d), Ok(r)) => (d, r),
        (Err(m), _) | (_, Err(m)) => {
            return detail_page(ctx, &auth, &state, code, id, Some(m), None).await;
        }
    };
    change(
        &state,
        &auth,
        code,
        &id,
        "resident.flag",
        move |s, c, rid, account| {
            residents::set_flag(s, c, rid, which, on, &reason, account)?;
            let state = if on.is_some() { "set" } else { "cleared" };
            Ok(((), format!("{}={state}", which.code())))
        },
    )
    .await?;
    Ok(back(&id, "flag"))
}

#[derive(Deserialize)]
struct ProtectionForm {
    csrf: String,
    protected: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    review: String,
    reason: String,
}

#[post("/residents/{id}/protection")]
pub(super) async fn protection(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ProtectionForm>,
) -> Result<HttpResponse, AppError> {
    let (code, id) = posted(&auth, &path, &form.csrf)?;
    let t = &ctx.t;
    // The two values the page sends; anything else is refused, never read
    // as "off" (which would lift a resident's protection).
    let period = match form.protected.as_str() {
        "on" => Protection::parse(
            &form.from,
            &form.until,
            &form.review,
            crate::clock::today_in_japan(),
        )
        .map(Some),
        "off" => Ok(None),
        _ => Err(vec![FieldError {
            field: "",
            reason: crate::domain::Reason::UnknownChoice,
        }]),
    };
    let period = match period {
        Ok(p) => p,
        Err(errors) => {
            let m = errors
                .into_iter()
                .map(|e| match e.field {
                    "" => field_error(t, "records.protection", e),
                    f => format!("{}: {}", t.field(f), field_message(t, e.reason)),
                })
                .collect::<Vec<_>>()
                .join(" / ");
            return detail_page(ctx, &auth, &state, code, id, Some(m), None).await;
        }
    };
    let reason = match ChangeReason::parse(&form.reason) {
        Ok(r) => r,
        Err(e) => {
            let m = field_error(t, "records.reason", e);
            return detail_page(ctx, &auth, &state, code, id, Some(m), None).await;
        }
    };
    let detail = match period {
        Some(p) => format!(
            "protected=true from={} until={} review={}",
            p.from,
            p.until.map(|u| u.to_string()).unwrap_or_default(),
            p.review
        ),
        None => "protected=false".to_string(),
    };
    let sees = sees_protected(&auth);
    let changed = change(
        &state,
        &auth,
        code,
        &id,
        "resident.protection",
        move |s, c, rid, account| {
            let changed = residents::set_protection(s, c, rid, period, &reason, account, sees)?;
            Ok((changed, format!("{detail} changed={changed}")))
        },
    )
    .await?;
    Ok(back(&id, if changed { "protection" } else { "unchanged" }))
}

#[derive(Deserialize)]
struct DoseForm {
    csrf: String,
    action: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    dose_number: String,
    #[serde(default)]
    administered_on: String,
    #[serde(default)]
    product: String,
    #[serde(default)]
    lot: String,
}

/// What staff do to one dose: confirm or reject it from the queue, delete
/// it (a wrong scan undone) or correct it, always with a reason (optional
/// only when confirming). The dose row is never rewritten.
#[post("/residents/{id}/doses/{dose}")]
pub(super) async fn dose_action(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: web::Form<DoseForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf)?;
    let code = staff(&auth)?;
    let id = path_id(&path.0)?;
    let dose_id = path_id(&path.1)?;
    let form = form.into_inner();
    let t = &ctx.t;
    let action = match DoseAction::parse(t, &form) {
        Some(Ok(a)) => a,
        Some(Err(msg)) => return detail_page(ctx, &auth, &state, code, id, Some(msg), None).await,
        None => return Err(AppError::BadRequest("action".into())),
    };
    let did = dose_id.clone();
    let outcome = change(
        &state,
        &auth,
        code,
        &id,
        "doses.change",
        move |scope, conn, rid, account| {
            use crate::flows::doses::{self, DoseError};
            // The dose must be this resident's: a foreign id is simply not found.
            if !crate::flows::resident_doses::belongs_to(conn, rid, &did)? {
                return Err(AppError::NotFound);
            }
            let done = match &action {
                DoseAction::Confirm(r) => {
                    doses::confirm(scope, conn, &did, account, r.as_ref()).map(|_| None)
                }
                DoseAction::Reject(r) => doses::reject(scope, conn, &did, account, r).map(|_| None),
                DoseAction::Delete(r) => doses::delete(scope, conn, &did, account, r).map(|_| None),
                DoseAction::Correct {
                    number,
                    date,
                    product,
                    lot,
                    reason,
                } => {
                    let c = doses::Correction {
                        dose_number: *number,
                        administered_on: *date,
                        product: product.clone(),
                        lot: lot.clone(),
                    };
                    doses::correct(scope, conn, &did, &c, account, reason).map(Some)
                }
            };
            match done {
                Ok(new_id) => Ok((
                    "dose",
                    format!(
                        "dose:{} action={}{}",
                        did,
                        action.code(),
                        new_id.map(|n| format!(" new=dose:{n}")).unwrap_or_default()
                    ),
                )),
                Err(DoseError::Stale) => Ok(("dose_stale", format!("dose:{} stale", did))),
                Err(DoseError::ImpossibleDate(r)) => Ok((
                    match r {
                        crate::domain::Reason::BeforeBirth => "dose_before_birth",
                        _ => "dose_future",
                    },
                    format!("dose:{} refused date", did),
                )),
                Err(DoseError::NotFound) => Err(AppError::NotFound),
                Err(DoseError::UnknownProduct) => Err(AppError::BadRequest("product".into())),
                Err(e) => Err(AppError::failed(e)),
            }
        },
    )
    .await?;
    Ok(back(&id, outcome))
}

enum DoseAction {
    Confirm(Option<ChangeReason>),
    Reject(ChangeReason),
    Delete(ChangeReason),
    Correct {
        number: crate::domain::DoseNumber,
        date: chrono::NaiveDate,
        product: crate::domain::ProductCode,
        lot: crate::domain::LotNumber,
        reason: ChangeReason,
    },
}

impl DoseAction {
    /// The form as an action, or the first field error as the page shows
    /// it; `None` for an action no button sends.
    fn parse(t: &T, form: &DoseForm) -> Option<Result<DoseAction, String>> {
        let field = |key: &'static str| move |e: FieldError| field_error(t, key, e);
        let reason = ChangeReason::parse(&form.reason).map_err(field("dose.reason"));
        Some(match form.action.as_str() {
            // A reason is optional when confirming, but one given must be
            // a valid one: never dropped silently.
            "confirm" => match reason {
                Ok(r) => Ok(DoseAction::Confirm(Some(r))),
                Err(_) if form.reason.trim().is_empty() => Ok(DoseAction::Confirm(None)),
                Err(e) => Err(e),
            },
            "reject" => reason.map(DoseAction::Reject),
            "delete" => reason.map(DoseAction::Delete),
            "correct" => (|| {
                Ok(DoseAction::Correct {
                    reason: reason?,
                    number: crate::domain::DoseNumber::parse(&form.dose_number)
                        .map_err(field("ticket.dose"))?,
                    date: crate::domain::parse_date_field("接種日", &form.administered_on)
                        .map_err(field("records.dose_date"))?,
                    product: crate::domain::ProductCode::parse(&form.product)
                        .map_err(field("records.product"))?,
                    lot: crate::domain::LotNumber::parse(&form.lot)
                        .map_err(field("records.lot"))?,
                })
            })(),
            _ => return None,
        })
    }

    fn code(&self) -> &'static str {
        match self {
            DoseAction::Confirm(_) => "confirm",
            DoseAction::Reject(_) => "reject",
            DoseAction::Delete(_) => "delete",
            DoseAction::Correct { .. } => "correct",
        }
    }
}
