//! Who is due a dose, and the reminder notices (接種勧奨): the list for a
//! dose and a period, its download (no individual number), and the job
//! that prints an A4 letter with the ticket for each person.

use super::jobs::{self, JobView};
use super::{
    AppError, Authed, Ctx, Nav, field_message, in_partition, log_in_scope, path_id, render,
    render_form, with_db,
};
use crate::crypto::spool::SpoolWriter;
use crate::domain::{DoseNumber, FieldError, MunicipalityCode, Permission, Reason};
use crate::flows::AppState;
use crate::flows::due::{self, DueLine, DueQuery};
use crate::flows::import_jobs::{self, JobKind};
use crate::flows::notices::{self, Letter, Outcome};
use crate::i18n::T;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(download)
        .service(start)
        .service(notice_job)
        .service(status)
        .service(print);
}

const BASE: &str = "/residents/due";
const NOTICES: &str = "/residents/due/notices";
/// Lines the page shows (the download has them all).
const SHOWN: usize = 200;
/// Letters per print page.
const LETTERS_PER_PAGE: i64 = 50;

fn staff(auth: &Authed) -> Result<MunicipalityCode, AppError> {
    auth.require_staff(Permission::Residents)
}

/// The form as typed, shown back.
#[derive(serde::Deserialize, Default, Clone)]
struct DueForm {
    #[serde(default)]
    dose: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    ended: Option<String>,
    #[serde(default)]
    protected: Option<String>,
    #[serde(default)]
    csrf: String,
}

impl DueForm {
    fn is_empty(&self) -> bool {
        self.dose.is_empty() && self.from.is_empty() && self.to.is_empty()
    }

    /// The query, or every field that cannot be one (named, in the page's
    /// language).
    fn parse(&self, t: &T, auth: &Authed) -> Result<DueQuery, Vec<String>> {
        let msg =
            |key: &str, e: FieldError| format!("{}: {}", t.s(key), field_message(t, e.reason));
        let mut errors = Vec::new();
        let dose = DoseNumber::parse(&self.dose)
            .map_err(|e| errors.push(msg("due.dose", e)))
            .ok();
        let from = crate::domain::parse_date_field("from", &self.from)
            .map_err(|e| errors.push(msg("due.from", e)))
            .ok();
        let to = crate::domain::parse_date_field("to", &self.to)
            .map_err(|e| errors.push(msg("due.to", e)))
            .ok();
        if let (Some(f), Some(t2)) = (from, to)
            && t2 < f
        {
            errors.push(msg(
                "due.to",
                FieldError {
                    field: "to",
                    reason: Reason::BeforeStart,
                },
            ));
        }
        let include_protected = self.protected.is_some();
        if include_protected && !auth.permissions().contains(&Permission::ProtectedAddress) {
            errors.push(t.s("due.protected_refused").to_string());
        }
        match (dose, from, to) {
            (Some(d), Some(from), Some(to)) if errors.is_empty() => Ok(DueQuery {
                dose: d.get(),
                from,
                to,
                include_ended: self.ended.is_some(),
                include_protected,
            }),
            _ => Err(errors),
        }
    }

    fn query(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("dose", &self.dose)
            .append_pair("from", &self.from)
            .append_pair("to", &self.to);
        if self.ended.is_some() {
            s.append_pair("ended", "1");
        }
        if self.protected.is_some() {
            s.append_pair("protected", "1");
        }
        s.finish()
    }
}

#[derive(Template)]
#[template(path = "due/list.html")]
struct ListPage {
    t: T,
    nav: Nav,
    csrf: String,
    form: DueForm,
    errors: Vec<String>,
    /// The list, once asked for: how many, and the first lines.
    found: Option<(usize, Vec<DueLine>)>,
    query: String,
    overdue: usize,
    may_see_protected: bool,
    jobs: Vec<jobs::JobLine>,
}

async fn compute(
    state: &AppState,
    auth: &Authed,
    code: MunicipalityCode,
    q: DueQuery,
    limit: usize,
    action: &'static str,
) -> Result<(usize, usize, Vec<DueLine>), AppError> {
    let (st, actor) = (state.clone(), auth.actor());
    with_db(state, move |conn| {
        let master = crate::flows::vaccines::Master::load(conn)?;
        let partition = crate::tenancy::Partition::open(conn, &st.master, code)?;
        // Worked out in a read (no writer of any municipality waits for
        // it); the log line after, in a short transaction of its own.
        let (n, overdue, lines) = partition.read(conn, |scope, c| {
            let all = due::due(scope, c, &q, &master)?;
            let overdue = all.iter().filter(|d| d.overdue).count();
            let lines = due::open(scope, c, &all[..all.len().min(limit)])?;
            Ok::<_, AppError>((all.len(), overdue, lines))
        })?;
        partition.run(conn, |scope, c| {
            log_in_scope(
                scope,
                c,
                &st.audit,
                &actor,
                action,
                None,
                Some(format!(
                    "dose={} from={} to={} found={n} opened={}",
                    q.dose,
                    q.from,
                    q.to,
                    lines.len()
                )),
            )
        })?;
        Ok((n, overdue, lines))
    })
    .await
}

#[get("/residents/due")]
async fn list(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Query<DueForm>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let form = form.into_inner();
    let jobs = jobs::journal(&state, code, JobKind::NOTICES, NOTICES).await?;
    let (found, errors, overdue) = if form.is_empty() {
        (None, Vec::new(), 0)
    } else {
        match form.parse(&ctx.t, &auth) {
            Ok(q) => {
                let (n, overdue, lines) =
                    compute(&state, &auth, code, q, SHOWN, "residents.due").await?;
                (Some((n, lines)), Vec::new(), overdue)
            }
            Err(e) => (None, e, 0),
        }
    };
    let bad = !errors.is_empty();
    render_form(
        &ListPage {
            nav: Nav::for_account(&auth, BASE),
            csrf: auth.session.csrf_token.clone(),
            query: form.query(),
            form,
            errors,
            found,
            overdue,
            may_see_protected: auth.permissions().contains(&Permission::ProtectedAddress),
            jobs,
            t: ctx.t,
        },
        bad,
    )
}

#[get("/residents/due.csv")]
async fn download(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Query<DueForm>,
) -> Result<HttpResponse, AppError> {
    // A list of names, birth dates and addresses: a download of personal
    // data, for staff who may export.
    let code = auth.require_staff(Permission::Export)?;
    let q = form
        .parse(&ctx.t, &auth)
        .map_err(|e| AppError::BadRequest(e.join(" / ")))?;
    let dose = q.dose;
    let (_, _, lines) = compute(&state, &auth, code, q, usize::MAX, "residents.due_export").await?;
    let body = crate::csvout::utf8_bom(
        &due::CSV_HEADER,
        lines.iter().map(|l| due::csv_row(l, dose)),
    );
    Ok(super::csv_download(format!("due-dose{dose}.csv"), body))
}

/// Starts the notice job: its "file" is the query, spooled like an upload.
#[post("/residents/due/notices")]
async fn start(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<DueForm>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    auth.check_csrf(&form.csrf)?;
    let q = match form.parse(&ctx.t, &auth) {
        Ok(q) => q,
        Err(e) => return Err(AppError::BadRequest(e.join(" / "))),
    };
    let text = serde_json::to_vec(&q).map_err(|e| AppError::Internal(e.into()))?;
    let mut w =
        SpoolWriter::create(&state.spool_dir, 4096).map_err(|e| AppError::Internal(e.into()))?;
    w.write(&text).map_err(|e| AppError::Internal(e.into()))?;
    let spool = w.finish().map_err(|e| AppError::Internal(e.into()))?;
    let req = import_jobs::Request {
        numbers: Ok(()),
        kind: JobKind::Notices,
        municipality: code,
        actor: auth.actor(),
        file_name: format!("接種勧奨 第{}回 {}〜{}", q.dose, q.from, q.to),
        encoding: crate::flows::imports::FileEncoding::Utf8,
        limits: state.import_limits,
        spool,
    };
    match jobs::start(&state, req, NOTICES).await? {
        Ok(page) => Ok(page),
        Err(key) => Err(AppError::BadRequest(ctx.t.s(key).to_string())),
    }
}

#[derive(Template)]
#[template(path = "due/job.html")]
struct JobPage {
    t: T,
    nav: Nav,
    view: JobView,
    outcome: Option<Outcome>,
    message: String,
    pages: Vec<(i64, String)>,
}

#[get("/residents/due/notices/{id}")]
async fn notice_job(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let id = path_id(&path)?;
    let job = jobs::load(&state, code, JobKind::NOTICES, id.clone()).await?;
    let outcome: Option<Outcome> = job.outcome(JobKind::NOTICES);
    let letters = outcome.as_ref().map_or(0, |o| o.letters as i64);
    let pages = (1..=((letters + LETTERS_PER_PAGE - 1) / LETTERS_PER_PAGE))
        .map(|p| {
            let first = (p - 1) * LETTERS_PER_PAGE + 1;
            (
                p,
                format!("{first}〜{}", (p * LETTERS_PER_PAGE).min(letters)),
            )
        })
        .collect();
    let message = super::imports::failure_message(&ctx.t, job.message.as_deref());
    render(&JobPage {
        nav: Nav::for_account(&auth, BASE),
        view: JobView::of(NOTICES, &job),
        outcome,
        message,
        pages,
        t: ctx.t,
    })
}

#[get("/residents/due/notices/{id}/status")]
async fn status(
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let job = jobs::load(&state, code, JobKind::NOTICES, path_id(&path)?).await?;
    Ok(jobs::status_of(&job))
}

#[derive(serde::Deserialize)]
struct PageQuery {
    page: Option<i64>,
}

#[derive(Template)]
#[template(path = "due/letters.html")]
struct LettersPage {
    t: T,
    sender: String,
    letters: Vec<Letter>,
    back_href: String,
    prev_href: Option<String>,
    next_href: Option<String>,
    position: String,
    today: String,
}

/// A page of the letters, to print (each an A4 sheet).
#[get("/residents/due/notices/{id}/print")]
async fn print(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let id = path_id(&path)?;
    let job = jobs::load(&state, code, JobKind::NOTICES, id.clone()).await?;
    // Letters to people under a support measure carry their addresses:
    // only staff who may see those print them.
    let with_protected = job
        .outcome::<Outcome>(JobKind::NOTICES)
        .and_then(|o| o.query)
        .is_none_or(|q| q.include_protected);
    if with_protected && !auth.permissions().contains(&Permission::ProtectedAddress) {
        return Err(AppError::Forbidden);
    }
    let page = q.page.unwrap_or(1).max(1);
    let (st, actor, jid) = (state.clone(), auth.actor(), id.clone());
    let (sender, letters, total) = in_partition(&state, code, move |scope, conn| {
        let (letters, total) = notices::letters(
            scope,
            conn,
            (&jid, with_protected),
            ((page - 1) * LETTERS_PER_PAGE, LETTERS_PER_PAGE),
        )?;
        log_in_scope(
            scope,
            conn,
            &st.audit,
            &actor,
            "notices.print",
            Some(format!("import:{jid}")),
            Some(format!("page={page} letters={}", letters.len())),
        )?;
        Ok((notices::sender(scope), letters, total))
    })
    .await?;
    if letters.is_empty() && page > 1 {
        return Err(AppError::NotFound);
    }
    let pages = ((total + LETTERS_PER_PAGE - 1) / LETTERS_PER_PAGE).max(1);
    let href = |p: i64| format!("{NOTICES}/{id}/print?page={p}");
    render(&LettersPage {
        sender,
        letters,
        back_href: format!("{NOTICES}/{id}"),
        prev_href: (page > 1).then(|| href(page - 1)),
        next_href: (page < pages).then(|| href(page + 1)),
        position: format!("{page} / {pages}"),
        today: crate::clock::today_in_japan().to_string(),
        t: ctx.t,
    })
}

/// Renders the first `wanted` letters of a notice job as their print pages
/// are rendered (for `vrs bench daily`); returns how many letters.
pub fn render_notice_pages(
    state: &AppState,
    code: MunicipalityCode,
    job_id: &str,
    wanted: usize,
) -> anyhow::Result<usize> {
    let mut conn = state.pool.get()?;
    let partition = crate::tenancy::Partition::open(&mut conn, &state.master, code)?;
    let t = T::new(crate::i18n::Lang::Ja, NOTICES);
    let mut done = 0usize;
    let mut page = 0i64;
    while done < wanted {
        let (sender, letters) = partition.read(&mut conn, |scope, c| {
            let (letters, _) = notices::letters(
                scope,
                c,
                (job_id, false),
                (page * LETTERS_PER_PAGE, LETTERS_PER_PAGE),
            )?;
            Ok::<_, anyhow::Error>((notices::sender(scope), letters))
        })?;
        if letters.is_empty() {
            break;
        }
        done += letters.len();
        page += 1;
        let html = LettersPage {
            sender,
            letters,
            back_href: String::new(),
            prev_href: None,
            next_href: None,
            position: String::new(),
            today: crate::clock::today_in_japan().to_string(),
            t: t.clone(),
        }
        .render()?;
        std::hint::black_box(html.len());
    }
    Ok(done.min(wanted))
}
