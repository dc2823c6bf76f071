//! The log's reviews (recorded, with the last one and an overdue flag on
//! the log page), the per-account report of a period with the
//! municipality's review settings, and the notices of unusual volumes.

use super::*;
use crate::flows::log_review::{Review, ReviewKind, ReviewState, Settings};
use actix_web::post;

pub(in crate::web::admin) struct ShownReview {
    pub(in crate::web::admin) kind: String,
    pub(in crate::web::admin) period: String,
    pub(in crate::web::admin) by: String,
    pub(in crate::web::admin) at: String,
    pub(in crate::web::admin) note: String,
}

pub(super) fn shown_review(t: &T, r: Review) -> ShownReview {
    ShownReview {
        kind: t
            .s(&format!("admin.review.kind.{}", r.kind.code()))
            .to_string(),
        period: format!("{} – {}", r.from, r.until),
        by: r.by,
        at: crate::clock::jst(r.at),
        note: r.note,
    }
}

/// The last review of the log and of the accounts, and whether either is
/// overdue.
pub(in crate::web::admin) struct ReviewBanner {
    pub(in crate::web::admin) log_last: Option<String>,
    pub(in crate::web::admin) accounts_last: Option<String>,
    pub(in crate::web::admin) log_overdue: bool,
    pub(in crate::web::admin) accounts_overdue: bool,
    pub(in crate::web::admin) every_days: u32,
}

pub(in crate::web::admin) fn banner(t: &T, s: &ReviewState, every_days: u32) -> ReviewBanner {
    let last = |r: &Option<Review>| {
        r.as_ref().map(|r| {
            format!(
                "{}（{} {}、{} {}）",
                crate::clock::jst(r.at),
                t.s("admin.review.period"),
                format_args!("{} – {}", r.from, r.until),
                t.s("admin.review.by"),
                r.by
            )
        })
    };
    ReviewBanner {
        log_last: last(&s.last_log),
        accounts_last: last(&s.last_accounts),
        log_overdue: s.log_overdue,
        accounts_overdue: s.accounts_overdue,
        every_days,
    }
}

#[derive(Deserialize)]
pub(in crate::web::admin) struct ReviewForm {
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    note: String,
}

/// A note on a review: required, one paragraph.
const NOTE_MAX: usize = 500;

#[post("/admin/log/reviews")]
pub(in crate::web::admin) async fn record_review(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<ReviewForm>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    auth.check_csrf(&form.csrf)?;
    let t = &ctx.t;
    let mut errors = Vec::new();
    let mut bad = |label: &str, reason: Reason| {
        errors.push(format!(
            "{}: {}",
            t.s(label),
            crate::web::field_message(t, reason)
        ))
    };
    let kind = ReviewKind::parse(form.kind.trim());
    if kind.is_none() {
        bad("admin.review.kind", Reason::UnknownChoice);
    }
    let from = parse_date_field("from", &form.from).map_err(|e| bad("admin.log.from", e.reason));
    let until =
        parse_date_field("until", &form.until).map_err(|e| bad("admin.log.until", e.reason));
    if let (Ok(f), Ok(u)) = (&from, &until)
        && u < f
    {
        bad("admin.log.until", Reason::BeforeStart);
    }
    let note = form.note.trim().to_string();
    if note.is_empty() {
        bad("admin.review.note", Reason::Empty);
    } else if note.chars().count() > NOTE_MAX {
        bad("admin.review.note", Reason::TooLong(NOTE_MAX));
    } else if note
        .chars()
        .any(|c| crate::domain::is_hidden(c) && c != '\n' && c != '\r')
    {
        bad("admin.review.note", Reason::ControlChars);
    }
    let (Some(kind), Ok(from), Ok(until), true) = (kind, from, until, errors.is_empty()) else {
        return log_view(ctx.t, &auth, &state, RawQuery::default(), errors, false).await;
    };
    let (st, actor) = (state.clone(), auth.actor());
    with_db(&state, move |conn| {
        Ok(log_review::record_review(
            conn, &st.audit, &actor, code, kind, from, until, &note,
        )?)
    })
    .await?;
    Ok(crate::web::see_other("/admin/log?done=reviewed"))
}

#[derive(Deserialize, Default)]
pub(in crate::web::admin) struct Period {
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
}

pub(in crate::web::admin) struct ReportLine {
    login: String,
    number: u64,
    view: u64,
    export: u64,
    print: u64,
    change: u64,
    outside_hours: u64,
    busiest: String,
    over: bool,
    search: String,
}

#[derive(Template)]
#[template(path = "admin/log_report.html")]
struct ReportPage {
    t: T,
    nav: Nav,
    csrf: String,
    from: String,
    until: String,
    lines: Vec<ReportLine>,
    settings: Settings,
    errors: Vec<String>,
    raised: usize,
    saved: bool,
}

/// The longest period one report reads.
const REPORT_DAYS: i64 = 366;

#[get("/admin/log/report")]
pub(in crate::web::admin) async fn report_page(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    period: web::Query<Period>,
    done: web::Query<crate::web::DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let saved = done.into_inner().one_of(&["saved"]).is_some();
    report_view(ctx.t, &auth, &state, &period, Vec::new(), saved).await
}

/// The report page; `form_errors` are those of settings not saved.
async fn report_view(
    t: T,
    auth: &Authed,
    state: &AppState,
    period: &Period,
    form_errors: Vec<String>,
    saved: bool,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    let today = crate::clock::today_in_japan();
    let mut errors = Vec::new();
    let mut day = |label: &str, v: &str, default| {
        if v.trim().is_empty() {
            return default;
        }
        parse_date_field("date", v).unwrap_or_else(|e| {
            errors.push(format!(
                "{}: {}",
                t.s(label),
                crate::web::field_message(&t, e.reason)
            ));
            default
        })
    };
    let from = day(
        "admin.log.from",
        &period.from,
        today - chrono::Duration::days(30),
    );
    let until = day("admin.log.until", &period.until, today);
    if until < from || (until - from).num_days() > REPORT_DAYS {
        errors.push(format!(
            "{}: {}",
            t.s("admin.log.until"),
            t.s("admin.report.period_invalid")
        ));
    }
    let ok = errors.is_empty();
    errors.extend(form_errors);
    let st = state.clone();
    let settings = with_db(state, move |conn| {
        audit::flush_chain(conn, &st.audit, code.as_str())?;
        Ok(log_review::settings(conn, code)?)
    })
    .await?;
    let (lines, raised) = if ok {
        let s = settings;
        in_partition(state, code, move |scope, conn| {
            let lines = log_review::report(conn.db(), code, &s, from, until)?;
            let raised = log_review::raise_volume_notices(scope, conn, &s, from, until)?;
            Ok((lines, raised))
        })
        .await?
    } else {
        (Vec::new(), 0)
    };
    let page = ReportPage {
        nav: Nav::for_account(auth, "/admin/log"),
        csrf: auth.session.csrf_token.clone(),
        lines: lines
            .into_iter()
            .map(|c| ReportLine {
                search: {
                    let mut s = form_urlencoded::Serializer::new(String::new());
                    s.append_pair("login", &c.login)
                        .append_pair("from", &from.to_string())
                        .append_pair("until", &until.to_string());
                    s.finish()
                },
                busiest: c
                    .busiest
                    .map(|(d, n)| format!("{d}: {n}"))
                    .unwrap_or_default(),
                login: c.login,
                number: c.number,
                view: c.view,
                export: c.export,
                print: c.print,
                change: c.change,
                outside_hours: c.outside_hours,
                over: c.over,
            })
            .collect(),
        from: from.to_string(),
        until: until.to_string(),
        settings,
        errors,
        raised,
        saved,
        t,
    };
    if page.errors.is_empty() {
        render(&page)
    } else {
        render_form(&page, true)
    }
}

#[derive(Deserialize)]
pub(in crate::web::admin) struct SettingsForm {
    csrf: String,
    #[serde(default)]
    working_from: String,
    #[serde(default)]
    working_until: String,
    #[serde(default)]
    volume_threshold: String,
    #[serde(default)]
    review_every_days: String,
    access_record_names: Option<String>,
}

#[post("/admin/log/settings")]
pub(in crate::web::admin) async fn save_settings(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<SettingsForm>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    auth.check_csrf(&form.csrf)?;
    let t = &ctx.t;
    let mut errors = Vec::new();
    let mut num = |label: &str, v: &str, min: u32, max: u32| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .unwrap_or_else(|| {
                errors.push(format!(
                    "{}: {}",
                    t.s(label),
                    t.s("form.whole_number")
                        .replace("{min}", &min.to_string())
                        .replace("{max}", &max.to_string())
                ));
                min
            })
    };
    let working_from = num("admin.report.working_from", &form.working_from, 0, 23);
    let working_until = num("admin.report.working_until", &form.working_until, 1, 24);
    let volume_threshold = num("admin.report.threshold", &form.volume_threshold, 1, 100_000);
    let review_every_days = num("admin.report.every_days", &form.review_every_days, 1, 365);
    if errors.is_empty() && working_until <= working_from {
        errors.push(format!(
            "{}: {}",
            t.s("admin.report.working_until"),
            crate::web::field_message(t, Reason::BeforeStart)
        ));
    }
    if !errors.is_empty() {
        return report_view(ctx.t, &auth, &state, &Period::default(), errors, false).await;
    }
    let s = Settings {
        working_from,
        working_until,
        volume_threshold,
        review_every_days,
        access_record_names: form.access_record_names.is_some(),
    };
    let (st, actor) = (state.clone(), auth.actor());
    with_db(&state, move |conn| {
        Ok(log_review::save_settings(
            conn, &st.audit, &actor, code, &s,
        )?)
    })
    .await?;
    Ok(crate::web::see_other("/admin/log/report?done=saved"))
}
