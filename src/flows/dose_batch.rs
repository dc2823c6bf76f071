//! Doses clinics send in batches, from the paper 予診票: a CSV of ticket,
//! date, product, lot, clinic and dose number, uploaded by the
//! municipality's staff. The file is read whole first (a line that cannot
//! be a dose rejects it, errors by line and column); then each line is
//! recorded through exactly the path a tablet dose takes
//! (`recording::record_many`: the same checks, the 要確認 rules, its log
//! line), idempotent per ticket and dose number so that a batch sent twice
//! records each dose once. What became of each line is kept for the
//! result file, which names tickets, never an individual number.

use super::doses::{DoseError, Recorder};
use super::imports::staged::{self, LineFormat};
use super::imports::{FileEncoding, ImportError, Limits, LineError, Opener, Progress, keep};
use super::line_errors::Conflict;
use super::recording::{self, BatchItem, RecordInput, RecorderCtx};
use super::sites::OpenSite;
use crate::audit::Actor;
use crate::db::DbConn;
use crate::db::models::dose_batch_lines::BatchLineRow;
use crate::db::models::import_jobs::ImportJobRow;
use crate::db::models::vaccines::{LotRow, ProductRow};
use crate::domain::{
    DoseNumber, FieldError, IdempotencyKey, LotNumber, MunicipalityCode, ProductCode, Reason,
    TicketNumber, TicketRef,
};
use crate::flows::AppState;
use crate::tenancy::Partition;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

pub const TICKET_FIELD: &str = "接種券";
pub const DATE_FIELD: &str = "接種日";
pub const PRODUCT_FIELD: &str = "製品コード";
pub const SITE_FIELD: &str = "医療機関";

/// Lines recorded per transaction at most.
const CHUNK: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Ticket,
    Date,
    Product,
    Lot,
    Site,
    Dose,
}

impl Column {
    const ALL: [Column; 6] = [
        Column::Ticket,
        Column::Date,
        Column::Product,
        Column::Lot,
        Column::Site,
        Column::Dose,
    ];

    fn of_header(h: &str) -> Option<Column> {
        Some(match h.trim().trim_start_matches('\u{FEFF}') {
            "接種券" | "接種券番号" | "券番号" | "OCR番号" => Column::Ticket,
            "接種日" | "接種年月日" => Column::Date,
            "製品コード" | "製品" | "ワクチン" => Column::Product,
            "ロット" | "ロット番号" => Column::Lot,
            "医療機関" | "医療機関名" | "接種場所" | "会場" => Column::Site,
            "回数" | "接種回" | "接種回数" => Column::Dose,
            _ => return None,
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Column::Ticket => TICKET_FIELD,
            Column::Date => DATE_FIELD,
            Column::Product => PRODUCT_FIELD,
            Column::Lot => LotNumber::FIELD,
            Column::Site => SITE_FIELD,
            Column::Dose => DoseNumber::FIELD,
        }
    }

    fn required(&self) -> bool {
        *self != Column::Dose
    }
}

/// One line, parsed: a dose as a site would send it.
pub struct BatchLine {
    line: u64,
    ticket: TicketRef,
    date: NaiveDate,
    product: ProductCode,
    lot: LotNumber,
    site: OpenSite,
    dose: Option<DoseNumber>,
}

/// How the batch's lines are read: against the municipality's code, the
/// products of the master and its open sites.
struct Lines<'a> {
    own: MunicipalityCode,
    products: &'a HashMap<String, bool>,
    sites: &'a [OpenSite],
    today: NaiveDate,
}

impl LineFormat for Lines<'_> {
    type Columns = HashMap<usize, Column>;
    type Line = BatchLine;

    fn header(
        &self,
        rec: &csv::StringRecord,
        line: u64,
        _progress: &Progress,
    ) -> Result<Self::Columns, Vec<LineError>> {
        let mut map = HashMap::new();
        let mut errors = Vec::new();
        for (i, h) in rec.iter().enumerate() {
            if let Some(c) = Column::of_header(h) {
                if map.values().any(|x| *x == c) {
                    errors.push(LineError::conflict(
                        line,
                        c.name(),
                        Conflict::DuplicateColumn,
                    ));
                }
                map.insert(i, c);
            }
        }
        for c in Column::ALL.into_iter().filter(Column::required) {
            if !map.values().any(|x| *x == c) {
                errors.push(LineError::conflict(line, c.name(), Conflict::MissingColumn));
            }
        }
        if errors.is_empty() {
            Ok(map)
        } else {
            Err(errors)
        }
    }

    fn line(
        &self,
        columns: &Self::Columns,
        rec: &csv::StringRecord,
        line: u64,
    ) -> Result<BatchLine, Vec<LineError>> {
        let cell = |c: Column| {
            columns
                .iter()
                .find(|(_, x)| **x == c)
                .and_then(|(i, _)| rec.get(*i))
                .unwrap_or("")
        };
        let mut errors = Vec::new();
        let e = &mut errors;
        let ticket = keep(e, line, Some(self.ticket(cell(Column::Ticket))));
        let date = keep(
            e,
            line,
            Some(
                crate::domain::parse_date_field(DATE_FIELD, cell(Column::Date)).and_then(|d| {
                    if d > self.today {
                        Err(FieldError {
                            field: DATE_FIELD,
                            reason: Reason::FutureDate,
                        })
                    } else {
                        Ok(d)
                    }
                }),
            ),
        );
        let product = keep(
            e,
            line,
            Some(
                ProductCode::parse_field(PRODUCT_FIELD, cell(Column::Product)).and_then(|p| {
                    if self.products.contains_key(p.as_str()) {
                        Ok(p)
                    } else {
                        Err(FieldError {
                            field: PRODUCT_FIELD,
                            reason: Reason::UnknownProduct,
                        })
                    }
                }),
            ),
        );
        let lot = keep(e, line, Some(LotNumber::parse(cell(Column::Lot))));
        let dose = match cell(Column::Dose).trim() {
            "" => None,
            d => keep(e, line, Some(DoseNumber::parse(d))),
        };
        let site_name = cell(Column::Site).trim();
        let site = self
            .sites
            .iter()
            .find(|s| s.name == site_name || s.id == site_name)
            .cloned();
        if site.is_none() {
            errors.push(LineError::new(
                line,
                SITE_FIELD,
                "登録されている開設中の接種場所（医療機関）の名前ではありません（管理者が「接種場所」で登録します）".into(),
                "is not the name of an open site (clinic) registered by the municipality (administrators register them under Sites)".into(),
            ));
        }
        match (ticket, date, product, lot, site) {
            (Some(ticket), Some(date), Some(product), Some(lot), Some(site))
                if errors.is_empty() =>
            {
                Ok(BatchLine {
                    line,
                    ticket,
                    date,
                    product,
                    lot,
                    site,
                    dose,
                })
            }
            _ => Err(errors),
        }
    }

    fn no_header(&self) -> LineError {
        LineError::conflict(1, TICKET_FIELD, Conflict::MissingColumn)
    }
}

impl Lines<'_> {
    /// The ticket as the 予診票 gives it: the OCR line, code and number, or
    /// the ten-digit number alone (of this municipality). Another
    /// municipality's ticket goes to that municipality, not here.
    fn ticket(&self, input: &str) -> Result<TicketRef, FieldError> {
        let digits: String = input.chars().filter(|c| !c.is_whitespace()).collect();
        let t = if digits.len() == 10 {
            TicketRef {
                municipality: self.own,
                ticket: TicketNumber::parse(&digits)?,
                printed: None,
            }
        } else {
            TicketRef::parse(input).map_err(|e| FieldError {
                field: TICKET_FIELD,
                reason: e.reason,
            })?
        };
        if t.municipality != self.own {
            return Err(FieldError {
                field: TICKET_FIELD,
                reason: Reason::OtherMunicipality,
            });
        }
        Ok(t)
    }
}

/// What a batch came to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub encoding: String,
    pub lines: u64,
    pub recorded: u64,
    pub queued: u64,
    /// Recorded by an earlier batch (or a tablet with the same key).
    pub replayed: u64,
    pub refused: u64,
}

/// The job this run belongs to.
pub struct Job<'a> {
    pub id: &'a str,
    pub actor: &'a Actor,
    pub keep_alive: &'a (dyn Fn(&mut DbConn) -> Result<(), ImportError> + Sync),
}

/// Reads the batch whole, then records each line.
#[allow(clippy::too_many_arguments)]
pub fn run(
    conn: &mut DbConn,
    state: &AppState,
    partition: &Partition,
    job: Job<'_>,
    open: Opener<'_>,
    (encoding, limits): (FileEncoding, Limits),
    progress: &Progress,
) -> Result<Outcome, ImportError> {
    progress.two_phase.store(true, Ordering::Relaxed);
    let encoding = super::imports::resolve_encoding(open, encoding)?;
    let own = partition.code();
    let master = super::vaccines::Master::load(conn)?;
    let products: HashMap<String, bool> = master
        .all()
        .map(|p| (p.product_code.clone(), p.in_use))
        .collect();
    let sites: Vec<OpenSite> = super::sites::of_municipality(conn, own)?
        .into_iter()
        .filter(|s| s.open)
        .map(|s| OpenSite {
            id: s.id,
            municipality_code: own.to_string(),
            name: s.name,
        })
        .collect();
    let format = Lines {
        own,
        products: &products,
        sites: &sites,
        today: crate::clock::today_in_japan(),
    };
    let lines = staged::read_all(open, (encoding, limits), &format, progress)?;
    let mut outcome = Outcome {
        encoding: encoding.code().to_string(),
        lines: lines.len() as u64,
        ..Outcome::default()
    };
    progress
        .work_total
        .store(lines.len().max(1) as u64, Ordering::Relaxed);
    partition.run(conn, |_, c| {
        (job.keep_alive)(c)?;
        ImportJobRow::set_lines(c, job.id, lines.len() as i64)?;
        Ok::<_, ImportError>(())
    })?;
    // What a recording reads of the platform — the product, whether the
    // lot is known for it — once per product and lot.
    let mut known: HashMap<(String, String), Option<(ProductRow, bool)>> = HashMap::new();
    for chunk in lines.chunks(CHUNK) {
        for l in chunk {
            let key = (l.product.as_str().to_string(), l.lot.as_str().to_string());
            if let std::collections::hash_map::Entry::Vacant(e) = known.entry(key) {
                let (product, lot) = e.key();
                let found = match master.get(product) {
                    Some(p) => Some((p.clone(), LotRow::exists(conn, product, lot)?)),
                    None => None,
                };
                e.insert(found);
            }
        }
        let mut counted = outcome.clone();
        crate::db::write_transaction(conn, |conn| {
            (job.keep_alive)(conn)?;
            let items: Vec<BatchItem<'_>> = chunk
                .iter()
                .map(|l| item_of(&job, l, &known))
                .collect::<Result<_, _>>()?;
            let answers = recording::record_many(conn, state, partition, &items)
                .map_err(|e| ImportError::Unreadable(e.to_string()))?;
            let results: Vec<BatchLineRow> = chunk
                .iter()
                .zip(answers)
                .map(|(l, a)| result_of(&job, l, a, &mut counted))
                .collect();
            partition.run(conn, |_, c| {
                BatchLineRow::insert_many(c, &results)?;
                Ok::<_, ImportError>(())
            })
        })?;
        outcome = counted;
        progress
            .work_done
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        super::faults::point("doses.batch");
    }
    Ok(outcome)
}

/// One line as its clinic's tablet would send it: recorded by the staff
/// member at the line's clinic, idempotent per ticket and dose number (per
/// date without one), so the same 予診票 sent twice is one dose.
fn item_of<'a>(
    job: &Job<'_>,
    l: &BatchLine,
    known: &'a HashMap<(String, String), Option<(ProductRow, bool)>>,
) -> Result<BatchItem<'a>, ImportError> {
    let own = l.ticket.municipality;
    let rec = RecorderCtx {
        recorder: Recorder {
            account_id: job.actor.account_id.clone().unwrap_or_default(),
            site: Some(l.site.clone()),
        },
        actor: job.actor.clone(),
        chain: own.to_string(),
        only: Some(own),
        paused: false,
    };
    let which = l.dose.map_or(l.date.format("%Y%m%d").to_string(), |d| {
        format!("d{}", d.get())
    });
    let key = IdempotencyKey::parse(&format!(
        "batch-{}{}-{which}",
        own.as_str(),
        l.ticket.ticket.as_str()
    ))
    .map_err(|e| ImportError::Unreadable(format!("{e:?}")))?;
    Ok(BatchItem {
        rec,
        input: RecordInput {
            ticket: l.ticket.clone(),
            administered_on: l.date,
            product_code: l.product.clone(),
            lot: l.lot.clone(),
            expected_dose: l.dose.map(|d| d.get()),
            key,
        },
        product: known
            .get(&(l.product.as_str().to_string(), l.lot.as_str().to_string()))
            .and_then(Option::as_ref),
    })
}

/// What became of one line, for the result file and the tally.
fn result_of(
    job: &Job<'_>,
    l: &BatchLine,
    answer: Result<super::doses::Recorded, DoseError>,
    outcome: &mut Outcome,
) -> BatchLineRow {
    let mut row = BatchLineRow {
        municipality_code: l.ticket.municipality.to_string(),
        job_id: job.id.to_string(),
        line: l.line as i64,
        ticket_number: l.ticket.ticket.as_str().to_string(),
        administered_on: l.date,
        outcome: String::new(),
        dose_id: None,
        dose_number: None,
        rules: None,
        refusal: None,
    };
    match answer {
        Ok(done) => {
            row.outcome = if done.replayed {
                outcome.replayed += 1;
                "replayed"
            } else if done.queued() {
                outcome.queued += 1;
                "queued"
            } else {
                outcome.recorded += 1;
                "recorded"
            }
            .into();
            row.dose_id = Some(done.dose_id.clone());
            row.dose_number = Some(i32::from(done.dose_number));
            row.rules = super::dose_checks::Rule::join(&done.rules);
        }
        Err(e) => {
            outcome.refused += 1;
            row.outcome = "refused".into();
            row.refusal = Some(refusal_code(&e).into());
        }
    }
    row
}

fn refusal_code(e: &DoseError) -> &'static str {
    match e {
        DoseError::NotIssued => "not_issued",
        DoseError::Invalidated => "invalidated",
        DoseError::DoseChanged { .. } => "dose_changed",
        DoseError::KeyReused => "key_reused",
        DoseError::UnknownProduct => "unknown_product",
        DoseError::NotOurs => "not_ours",
        _ => "refused",
    }
}

/// The result file's columns.
pub const RESULT_HEADER: [&str; 7] = [
    "行番号",
    "接種券番号",
    "接種日",
    "結果",
    "接種回",
    "要確認の理由",
    "記録できない理由",
];

/// The result file's lines, in line order, a page at a time.
pub fn result_lines(
    conn: &mut crate::db::TenantConn<'_>,
    job_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<BatchLineRow>, crate::db::DbError> {
    BatchLineRow::of_job(conn, job_id, after, limit)
}

/// How many lines came to each outcome.
pub fn tally(
    conn: &mut crate::db::TenantConn<'_>,
    job_id: &str,
) -> Result<Vec<(String, i64)>, crate::db::DbError> {
    BatchLineRow::tally(conn, job_id)
}
