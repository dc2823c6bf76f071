//! The operation log: searched on the server over the whole chain (by
//! account, action, outcome, period and resident) a page at a time, each
//! line in words; the chain's verification; the CSV export of a search;
//! the per-account report; and the record of reviews.

use crate::audit;
use crate::audit::actions::{self, Group};
use crate::domain::{MunicipalityCode, Reason, parse_date_field};
use crate::flows::AppState;
use crate::flows::log_review::{self, ActionChoice, Found, LogQuery, Target};
use crate::i18n::T;
use crate::web::{AppError, Authed, Ctx, Nav, in_partition, render, render_form, with_db};
use actix_web::{HttpResponse, get, web};
use askama::Template;
use serde::Deserialize;

mod report;
pub(super) use report::*;

/// The search as the page's form sends it.
#[derive(Deserialize, Default, Clone)]
pub(super) struct RawQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    resident: String,
    /// A resident named by 宛名番号, found through the blind index.
    #[serde(default)]
    addressee: String,
    before: Option<i64>,
}

impl RawQuery {
    /// The query, or each field that is not one of its choices.
    fn parse(&self, t: &T) -> Result<LogQuery, Vec<String>> {
        let mut errors = Vec::new();
        let mut bad = |field: &str, reason: Reason| {
            errors.push(format!(
                "{}: {}",
                t.s(field),
                crate::web::field_message(t, reason)
            ))
        };
        let action = ActionChoice::parse(&self.action).unwrap_or_else(|| {
            bad("admin.log.action", Reason::UnknownChoice);
            ActionChoice::All
        });
        let outcome = match self.outcome.trim() {
            "" => None,
            o => actions::OUTCOMES
                .iter()
                .find(|x| **x == o)
                .copied()
                .or_else(|| {
                    bad("admin.log.outcome", Reason::UnknownChoice);
                    None
                }),
        };
        let mut date = |field: &'static str, label: &str, v: &str| {
            if v.trim().is_empty() {
                return None;
            }
            parse_date_field(field, v)
                .map_err(|e| bad(label, e.reason))
                .ok()
        };
        let from = date("from", "admin.log.from", &self.from);
        let until = date("until", "admin.log.until", &self.until);
        let login = Some(self.login.trim())
            .filter(|l| !l.is_empty())
            .map(|l| l.chars().take(64).collect());
        let resident = match self.resident.trim() {
            "" => None,
            r => match crate::web::path_id(r) {
                Ok(id) => Some(id),
                Err(_) => {
                    bad("admin.log.resident", Reason::UnknownChoice);
                    None
                }
            },
        };
        if errors.is_empty() {
            Ok(LogQuery {
                login,
                action,
                outcome,
                from,
                until,
                resident,
            })
        } else {
            Err(errors)
        }
    }

    /// The query string of this search without its page.
    fn without_page(&self) -> String {
        let pairs = [
            ("action", &self.action),
            ("login", &self.login),
            ("outcome", &self.outcome),
            ("from", &self.from),
            ("until", &self.until),
            ("resident", &self.resident),
            ("addressee", &self.addressee),
        ];
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs.iter().filter(|(_, v)| !v.trim().is_empty()) {
            s.append_pair(k, v.trim());
        }
        s.finish()
    }
}

/// A line as the page shows it, in words.
pub(super) struct ShownLine {
    seq: i64,
    at: String,
    login: String,
    addr: String,
    action: String,
    target: String,
    outcome: String,
    outcome_code: String,
    detail: String,
}

fn shown(t: &T, l: log_review::Line) -> ShownLine {
    let gone = || t.s("log.target.gone").to_string();
    let target = match l.target {
        Target::None => String::new(),
        Target::Resident(n) => {
            n.map_or_else(gone, |n| format!("{} {n}", t.s("log.target.resident")))
        }
        Target::Dose(n) => format!(
            "{}（{}）",
            t.s("log.target.dose"),
            n.map_or_else(gone, |n| format!("{} {n}", t.s("log.target.resident")))
        ),
        Target::Account(a) => format!(
            "{} {}",
            t.s("log.target.account"),
            a.unwrap_or_else(|| "—".into())
        ),
        Target::Municipality(c) => format!("{c} {}", crate::flows::provisions::name_of(&c)),
        Target::Import => t.s("log.target.import").to_string(),
        Target::Other(o) => o,
    };
    ShownLine {
        seq: l.seq,
        at: crate::clock::jst(l.at),
        action: t.code_label("log.action.", &l.action),
        outcome: t.code_label("log.outcome.", &l.outcome),
        outcome_code: l.outcome,
        login: l.login,
        addr: l.addr,
        target,
        detail: l.detail,
    }
}

/// A choice of a select list.
pub(super) struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// The action list, grouped: a group as a whole, then its actions.
fn action_choices(t: &T, chosen: &str) -> Vec<(String, Vec<Choice>)> {
    Group::ALL
        .into_iter()
        .map(|g| {
            let whole = format!("group:{}", g.code());
            let mut items = vec![Choice {
                label: format!(
                    "{}（{}）",
                    t.s(&format!("log.group.{}", g.code())),
                    t.s("admin.log.all_of_group")
                ),
                selected: chosen == whole,
                value: whole,
            }];
            items.extend(g.actions().map(|a| Choice {
                value: a.to_string(),
                label: t.s(&format!("log.action.{a}")).to_string(),
                selected: chosen == a,
            }));
            (t.s(&format!("log.group.{}", g.code())).to_string(), items)
        })
        .collect()
}

#[derive(Template)]
#[template(path = "admin/log.html")]
struct LogPage {
    t: T,
    nav: Nav,
    csrf: String,
    lines: Vec<ShownLine>,
    /// Verification of the whole chain, on the first page only.
    check: Option<Check>,
    errors: Vec<String>,
    actions: Vec<(String, Vec<Choice>)>,
    outcomes: Vec<Choice>,
    logins: Vec<Choice>,
    q: RawQuery,
    resident_named: Option<String>,
    /// The resident searched for, found by id or by 宛名番号.
    resident_id: String,
    query: String,
    older: Option<String>,
    reviews: Vec<ShownReview>,
    review: ReviewBanner,
    reviewed: bool,
    today: String,
    month_ago: String,
}

pub(super) struct Check {
    total: i64,
    broken_at: Option<i64>,
    /// Cut short or deleted after the witness saw it: (line the witness
    /// saw, lines held).
    cut: Option<(i64, i64)>,
}

fn verify(
    conn: &mut crate::db::DbConn,
    state: &AppState,
    code: MunicipalityCode,
) -> Result<Check, AppError> {
    let report = audit::verify(
        conn,
        &state.audit,
        Some(code.as_str()),
        Some(&state.witness.heads()),
    )?
    .pop()
    .ok_or_else(|| AppError::Internal("no report".into()))?;
    Ok(Check {
        total: report.lines,
        broken_at: report.broken_at,
        cut: (report.truncated || report.missing)
            .then(|| (report.witnessed.unwrap_or_default(), report.lines)),
    })
}

/// One page of the search, in the municipality's partition (a resident's
/// targets and 宛名番号 are read there).
async fn search(
    state: &AppState,
    code: MunicipalityCode,
    q: LogQuery,
    before: Option<i64>,
) -> Result<Found, AppError> {
    in_partition(state, code, move |scope, conn| {
        Ok(log_review::search(scope, conn, &q, before)?)
    })
    .await
}

/// The search, its resident found by 宛名番号 when one was given, or what
/// is wrong with it. Lines still waiting to be chained are chained first,
/// so that the search sees every line written so far.
async fn parse_query(
    t: &T,
    state: &AppState,
    code: MunicipalityCode,
    raw: &RawQuery,
) -> Result<Result<LogQuery, Vec<String>>, AppError> {
    let st = state.clone();
    with_db(state, move |conn| {
        Ok(crate::audit::flush_chain(conn, &st.audit, code.as_str())?)
    })
    .await?;
    let mut parsed = raw.parse(t);
    if let (Ok(q), false) = (&mut parsed, raw.addressee.trim().is_empty()) {
        match resident_by_addressee(t, state, code, &raw.addressee).await? {
            Ok(id) => q.resident = Some(id),
            Err(e) => parsed = Err(vec![format!("{}: {}", t.s("resident.addressee"), e)]),
        }
    }
    Ok(parsed)
}

/// The internal id of the resident with this 宛名番号, or why there is
/// none (in the page's language).
async fn resident_by_addressee(
    t: &T,
    state: &AppState,
    code: MunicipalityCode,
    raw: &str,
) -> Result<Result<String, String>, AppError> {
    let n = match crate::domain::AddresseeNumber::parse(raw) {
        Ok(n) => n,
        Err(e) => return Ok(Err(crate::web::field_message(t, e.reason))),
    };
    let found = in_partition(state, code, move |scope, conn| {
        Ok(crate::flows::residents::find_by_addressee(scope, conn, &n)?.map(|r| r.id))
    })
    .await?;
    Ok(found.ok_or_else(|| t.s("admin.log.no_resident").to_string()))
}

#[get("/admin/log")]
pub(super) async fn log_page(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    raw: web::Query<RawQuery>,
    done: web::Query<crate::web::DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let reviewed = done.into_inner().one_of(&["reviewed"]).is_some();
    log_view(ctx.t, &auth, &state, raw.into_inner(), Vec::new(), reviewed).await
}

/// The log page; `form_errors` are those of a review that was not
/// recorded.
async fn log_view(
    t: T,
    auth: &Authed,
    state: &AppState,
    raw: RawQuery,
    form_errors: Vec<String>,
    reviewed: bool,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    let parsed = parse_query(&t, state, code, &raw).await?;
    let (found, mut errors) = match parsed.clone() {
        Ok(q) => (Some(search(state, code, q, raw.before).await?), Vec::new()),
        Err(e) => (None, e),
    };
    errors.extend(form_errors);
    let resident_id = match &parsed {
        Ok(LogQuery {
            resident: Some(r), ..
        }) => Some(r.clone()),
        _ => None,
    };
    let resident_named = match resident_id.clone() {
        Some(r) => {
            in_partition(state, code, move |scope, conn| {
                Ok(crate::flows::residents::addressee_of(scope, conn, &r)?)
            })
            .await?
        }
        None => None,
    };
    let (st, first) = (state.clone(), raw.before.is_none());
    let (check, accounts, reviews, settings) = with_db(state, move |conn| {
        let check = if first {
            Some(verify(conn, &st, code)?)
        } else {
            None
        };
        let settings = log_review::settings(conn, code)?;
        Ok((
            check,
            crate::flows::accounts::of_municipality(conn, code)?,
            log_review::review_state(conn, code, settings.review_every_days)
                .and_then(|s| Ok((s, log_review::reviews(conn, code)?)))?,
            settings,
        ))
    })
    .await?;
    let (state_of_reviews, all_reviews) = reviews;
    let query = raw.without_page();
    let (lines, older) = match found {
        Some(f) => (
            f.lines.into_iter().map(|l| shown(&t, l)).collect(),
            f.older.map(|seq| {
                let sep = if query.is_empty() { "" } else { "&" };
                format!("/admin/log?{query}{sep}before={seq}")
            }),
        ),
        None => (Vec::new(), None),
    };
    let today = crate::clock::today_in_japan();
    let bad = !errors.is_empty();
    let page = LogPage {
        nav: Nav::for_account(auth, "/admin/log"),
        csrf: auth.session.csrf_token.clone(),
        lines,
        check,
        errors,
        actions: action_choices(&t, raw.action.trim()),
        outcomes: actions::OUTCOMES
            .iter()
            .map(|o| Choice {
                value: (*o).to_string(),
                label: t.s(&format!("log.outcome.{o}")).to_string(),
                selected: raw.outcome.trim() == *o,
            })
            .collect(),
        logins: accounts
            .into_iter()
            .map(|a| Choice {
                selected: raw.login.trim() == a.login_id,
                label: format!("{}（{}）", a.login_id, a.display_name),
                value: a.login_id,
            })
            .collect(),
        resident_named,
        resident_id: resident_id.unwrap_or_default(),
        query,
        older,
        reviews: all_reviews
            .into_iter()
            .take(10)
            .map(|r| shown_review(&t, r))
            .collect(),
        review: banner(&t, &state_of_reviews, settings.review_every_days),
        reviewed,
        today: today.to_string(),
        month_ago: (today - chrono::Duration::days(30)).to_string(),
        q: raw,
        t,
    };
    if bad {
        render_form(&page, true)
    } else {
        render(&page)
    }
}

/// Lines written to one CSV at most.
const CSV_MAX: usize = 200_000;

#[get("/admin/log.csv")]
pub(super) async fn log_csv(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    raw: web::Query<RawQuery>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    let q = parse_query(&ctx.t, &state, code, &raw)
        .await?
        .map_err(|e| AppError::BadRequest(e.join(" / ")))?;
    let (st, actor) = (state.clone(), auth.actor());
    let rows = in_partition(&state, code, move |scope, conn| {
        let rows = log_review::every_line(scope, conn, &q, CSV_MAX)?;
        crate::web::log_in_scope(
            scope,
            conn,
            &st.audit,
            &actor,
            "log.export",
            None,
            Some(format!("rows={}", rows.len())),
        )?;
        Ok(rows)
    })
    .await?;
    let t = &ctx.t;
    let body = crate::csvout::utf8_bom(
        &[
            "連番",
            "日時(UTC)",
            "ログインID",
            "接続元",
            "操作コード",
            "操作",
            "対象",
            "結果コード",
            "結果",
            "詳細",
            "MAC",
        ],
        rows.iter().map(|r| {
            vec![
                r.seq.to_string(),
                r.at.to_string(),
                r.login_id.clone().unwrap_or_default(),
                r.client_addr.clone().unwrap_or_default(),
                r.action.clone(),
                t.code_label("log.action.", &r.action),
                r.target.clone().unwrap_or_default(),
                r.outcome.clone(),
                t.code_label("log.outcome.", &r.outcome),
                r.detail.clone().unwrap_or_default(),
                r.mac.clone(),
            ]
        }),
    );
    Ok(crate::web::csv_download(
        format!("operation-log-{code}.csv"),
        body,
    ))
}
