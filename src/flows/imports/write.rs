//! The writing side of an import: decides insert / update / unchanged per
//! line against the stored residents, writes in batches, and collects every
//! error; any error rolls the whole import back.

use super::staged::StagedWriter;
use super::{ImportError, MAX_REPORTED_ERRORS, Outcome, ParsedLine, Prepared};
use crate::db::TenantConn;
use crate::db::models::resident_events::ResidentEventRow;
use crate::db::models::residents::{NextRow, ResidentRow, Visible};
use crate::db::models::tickets::{self as ticket_rows, TicketRow};
use crate::domain::{AddresseeNumber, TicketNumber};
use crate::flows::line_errors::Conflict;
use crate::flows::line_errors::LineError;
use crate::flows::residents;
use crate::tenancy::Scope;
use chrono::NaiveDateTime;
use std::collections::{HashMap, HashSet};

/// The writing side: decides insert / update / unchanged per line, writes,
/// and collects every error; any error rolls the whole import back.
pub(super) struct Writer<'a> {
    stamp: NaiveDateTime,
    issued_by: &'a str,
    /// This import's sequence number: rows it wrote carry it.
    seq: i64,
    pub(super) outcome: Outcome,
    errors: Vec<LineError>,
    error_count: u64,
    /// Stored residents an earlier line matched (those it changed too:
    /// their rows are read as stored until the import succeeds). Residents
    /// the import inserted carry its number instead.
    matched: HashSet<String>,
    rng: rand::rngs::ThreadRng,
    /// The partition held no resident and no ticket when the import began.
    pub(super) fresh: bool,
    /// Residents held when the import began, and those PostgreSQL's
    /// statistics last counted (see `committed`).
    pub(super) held: i64,
    pub(super) counted: i64,
}

/// What the writer knows about one resident while deciding a batch.
#[derive(Clone)]
struct Known {
    m: ResidentMatch,
    active_ticket: Option<String>,
}

/// A stored resident as an import needs to know it, without opening
/// anything sealed.
#[derive(Debug, Clone)]
struct ResidentMatch {
    id: String,
    addressee_index: Vec<u8>,
    my_number_index: Option<Vec<u8>>,
    birth_bucket: Option<Vec<u8>>,
    content_mac: Option<Vec<u8>>,
    flagged: bool,
    /// The import that last wrote the resident.
    written_by: Option<i64>,
}

impl From<ResidentRow> for ResidentMatch {
    fn from(row: ResidentRow) -> Self {
        let written_by = row.staged_seq;
        ResidentMatch::from(Visible { row, written_by })
    }
}

impl From<Visible> for ResidentMatch {
    fn from(v: Visible) -> Self {
        ResidentMatch {
            flagged: v.row.moved_out_on.is_some() || v.row.deceased_on.is_some(),
            id: v.row.id,
            addressee_index: v.row.addressee_index,
            my_number_index: v.row.my_number_index,
            birth_bucket: v.row.birth_bucket,
            content_mac: v.row.content_mac,
            written_by: v.written_by,
        }
    }
}

impl<'a> Writer<'a> {
    pub(super) fn new(stamp: NaiveDateTime, issued_by: &'a str, seq: i64) -> Self {
        Writer {
            stamp,
            issued_by,
            seq,
            outcome: Outcome::default(),
            errors: Vec::new(),
            error_count: 0,
            matched: HashSet::new(),
            rng: rand::thread_rng(),
            fresh: false,
            held: 0,
            counted: 0,
        }
    }

    pub(super) fn finish(self) -> Result<Outcome, ImportError> {
        if self.error_count > 0 {
            let mut errors = self.errors;
            errors.sort_by_key(|e| e.line);
            return Err(ImportError::Rejected {
                lines: self.outcome.lines,
                error_count: self.error_count,
                errors,
            });
        }
        Ok(self.outcome)
    }

    fn touched(&self, k: &Known) -> bool {
        k.m.written_by == Some(self.seq) || self.matched.contains(&k.m.id)
    }
}

impl StagedWriter for Writer<'_> {
    type Line = Prepared;

    fn reject(&mut self, errors: Vec<LineError>) {
        self.error_count += errors.len() as u64;
        let room = MAX_REPORTED_ERRORS.saturating_sub(self.errors.len());
        self.errors.extend(errors.into_iter().take(room));
    }

    /// As the import grows the municipality past three times the residents
    /// PostgreSQL's statistics last counted, they are taken again, so that
    /// its lookups keep the plan of their own index (with the statistics of
    /// a 40-line pilot, a lookup by 宛名番号 read the whole municipality
    /// through another index).
    fn committed(&mut self, conn: &mut crate::db::DbConn) -> Result<(), ImportError> {
        let now_held = self.held + self.outcome.inserted as i64;
        if !self.fresh && now_held >= (3 * self.counted).max(1000) {
            crate::db::refresh_resident_statistics(conn)?;
            self.counted = now_held;
        }
        Ok(())
    }

    fn batch(
        &mut self,
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        lines: Vec<Result<Prepared, Vec<LineError>>>,
    ) -> Result<(), ImportError> {
        self.outcome.lines += lines.len() as u64;
        let mut good = Vec::with_capacity(lines.len());
        for l in lines {
            match l {
                Ok(p) => good.push(p),
                Err(e) => self.reject(e),
            }
        }
        if self.fresh && self.error_count == 0 && self.try_fresh(scope, conn, &mut good)? {
            return Ok(());
        }
        // Writing goes on after an error, inside the transaction that will be
        // rolled back, so that conflicts further down (a person or ticket
        // named twice) are still found and listed.
        // What is stored already about the people of this batch: each is
        // found by its 宛名番号, the registry's key. An individual number is
        // looked up only where it is not the one the person found already
        // holds (a new person, or a number that changes): the unique index
        // vouches that no one else holds it otherwise.
        let addressee: Vec<Vec<u8>> = good.iter().map(|p| p.row.addressee_index.clone()).collect();
        let mut matches: Vec<ResidentMatch> =
            ResidentRow::settled_by_addressee(scope, conn, &addressee)?
                .into_iter()
                .map(ResidentMatch::from)
                .collect();
        let held: HashMap<&[u8], Option<&[u8]>> = matches
            .iter()
            .map(|m| (m.addressee_index.as_slice(), m.my_number_index.as_deref()))
            .collect();
        let numbers: Vec<Vec<u8>> = good
            .iter()
            .filter_map(|p| {
                let n = p.row.my_number_index.as_deref()?;
                match held.get(p.row.addressee_index.as_slice()) {
                    Some(Some(own)) if *own == n => None,
                    _ => Some(n.to_vec()),
                }
            })
            .collect();
        drop(held);
        if !numbers.is_empty() {
            let mut ids: HashSet<String> = matches.iter().map(|m| m.id.clone()).collect();
            matches.extend(
                ResidentRow::by_my_number_indexes(scope, conn, &numbers)?
                    .into_iter()
                    .map(ResidentMatch::from)
                    .filter(|m| ids.insert(m.id.clone())),
            );
        }
        // The tickets the file names, checked against every ticket the
        // municipality ever issued; the active ticket of each person found,
        // unless the line names it already.
        let given: Vec<String> = good
            .iter()
            .filter_map(|p| p.parsed.ticket.as_ref().map(|t| t.as_str().to_string()))
            .collect();
        let mut tickets: HashMap<String, TicketRow> = TicketRow::existing(scope, conn, &given)?
            .into_iter()
            .map(|t| (t.ticket_number.clone(), t))
            .collect();
        let mut active: HashMap<String, String> = tickets
            .values()
            .filter(|t| t.status == ticket_rows::ACTIVE)
            .map(|t| (t.resident_id.clone(), t.ticket_number.clone()))
            .collect();
        let unknown: Vec<String> = matches
            .iter()
            .filter(|m| !active.contains_key(&m.id))
            .map(|m| m.id.clone())
            .collect();
        if !unknown.is_empty() {
            for t in TicketRow::active_of_residents(scope, conn, &unknown)? {
                active.insert(t.resident_id, t.ticket_number);
            }
        }
        let mut by_addressee: HashMap<Vec<u8>, Known> = HashMap::new();
        let mut by_number: HashMap<Vec<u8>, Known> = HashMap::new();
        for m in matches {
            let k = Known {
                active_ticket: active.get(&m.id).cloned(),
                m,
            };
            by_addressee.insert(k.m.addressee_index.clone(), k.clone());
            if let Some(n) = &k.m.my_number_index {
                by_number.insert(n.clone(), k);
            }
        }

        let mut inserts: Vec<ResidentRow> = Vec::new();
        let mut changes: Vec<NextRow> = Vec::new();
        let mut events = Vec::new();
        let mut new_tickets: Vec<TicketRow> = Vec::new();
        let mut need_number: Vec<usize> = Vec::new();
        for p in good {
            let line = p.parsed.line;
            let a = by_addressee.get(&p.row.addressee_index).cloned();
            let n = p
                .row
                .my_number_index
                .as_ref()
                .and_then(|i| by_number.get(i))
                .cloned();
            if let Some(k) = &a
                && self.touched(k)
            {
                self.reject(vec![LineError::conflict(
                    line,
                    AddresseeNumber::FIELD,
                    Conflict::DuplicateInFile,
                )]);
                continue;
            }
            if let Some(y) = &n
                && crate::flows::residents::number_held_elsewhere(
                    a.as_ref().map(|x| x.m.id.as_str()),
                    &y.m.id,
                )
            {
                let c = if self.touched(y) {
                    Conflict::DuplicateInFile
                } else {
                    Conflict::NumberHeldByOther
                };
                self.reject(vec![LineError::conflict(line, "個人番号", c)]);
                continue;
            }
            let target = a;
            let resident_id = target
                .as_ref()
                .map(|k| k.m.id.clone())
                .unwrap_or_else(|| p.row.id.clone());
            let flagged = target.as_ref().is_some_and(|k| k.m.flagged);
            let current = target.as_ref().and_then(|k| k.active_ticket.clone());
            // The ticket this line asks for, checked against every ticket
            // the municipality ever issued.
            let mut issue: Option<Option<TicketNumber>> = None;
            match &p.parsed.ticket {
                Some(t) => match tickets.get(t.as_str()) {
                    Some(existing) if existing.resident_id != resident_id => {
                        let c = if existing.staged_seq == Some(self.seq) {
                            Conflict::DuplicateInFile
                        } else {
                            Conflict::TicketHeldByOther
                        };
                        self.reject(vec![LineError::conflict(line, TicketNumber::FIELD, c)]);
                        continue;
                    }
                    Some(existing) if existing.status != ticket_rows::ACTIVE => {
                        self.reject(vec![LineError::conflict(
                            line,
                            TicketNumber::FIELD,
                            Conflict::TicketInvalidated,
                        )]);
                        continue;
                    }
                    Some(_) => {}
                    None if flagged => {
                        self.reject(vec![LineError::conflict(
                            line,
                            TicketNumber::FIELD,
                            Conflict::FlaggedResident,
                        )]);
                        continue;
                    }
                    None => issue = Some(Some(t.clone())),
                },
                None if current.is_none() && flagged => self.outcome.tickets_withheld += 1,
                None if current.is_none() => issue = Some(None),
                None => {}
            }

            // The person.
            let mut known = match target {
                None => {
                    self.outcome.inserted += 1;
                    let k = Known {
                        m: ResidentMatch {
                            id: p.row.id.clone(),
                            addressee_index: p.row.addressee_index.clone(),
                            my_number_index: p.row.my_number_index.clone(),
                            birth_bucket: p.row.birth_bucket.clone(),
                            content_mac: p.row.content_mac.clone(),
                            flagged: false,
                            written_by: Some(self.seq),
                        },
                        active_ticket: None,
                    };
                    let mut row = p.row;
                    row.staged_seq = Some(self.seq);
                    inserts.push(row);
                    k
                }
                Some(mut k)
                    if k.m.content_mac == p.row.content_mac
                        && p.row
                            .my_number_index
                            .as_ref()
                            .is_none_or(|n| k.m.my_number_index.as_ref() == Some(n)) =>
                {
                    self.outcome.unchanged += 1;
                    self.matched.insert(k.m.id.clone());
                    k.active_ticket = current.clone();
                    k
                }
                Some(mut k) => {
                    self.outcome.updated += 1;
                    let row =
                        residents::new_row(scope, &p.parsed.resident, k.m.id.clone(), self.stamp);
                    changes.push(NextRow::of(
                        &row,
                        self.seq,
                        (
                            &k.m.addressee_index,
                            k.m.my_number_index.as_deref(),
                            k.m.birth_bucket.as_deref(),
                        ),
                    ));
                    let mut event = residents::event_row(
                        scope,
                        &k.m.id,
                        "import_update",
                        None,
                        &residents::EventDetail {
                            import: Some(self.issued_by.to_string()),
                            ..Default::default()
                        },
                        self.stamp,
                    );
                    event.staged_seq = Some(self.seq);
                    events.push(event);
                    self.matched.insert(k.m.id.clone());
                    if row.my_number_index.is_some() {
                        k.m.my_number_index = row.my_number_index.clone();
                    }
                    k.m.birth_bucket = row.birth_bucket.clone();
                    k.m.content_mac = row.content_mac.clone();
                    k.m.written_by = Some(self.seq);
                    k
                }
            };
            if let Some(number) = issue {
                if let Some(old) = &current {
                    ticket_rows::TicketRow::retire_active(
                        scope,
                        conn,
                        &known.m.id,
                        (self.seq, "replaced"),
                        self.stamp,
                    )?;
                    if let Some(t) = tickets.get_mut(old) {
                        t.status = ticket_rows::INVALIDATED.into();
                    }
                }
                let row = self.ticket_row(
                    scope,
                    number
                        .as_ref()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    &known.m.id,
                    &p.parsed,
                );
                if number.is_none() {
                    need_number.push(new_tickets.len());
                } else {
                    tickets.insert(row.ticket_number.clone(), row.clone());
                    known.active_ticket = Some(row.ticket_number.clone());
                }
                new_tickets.push(row);
                self.outcome.tickets_issued += 1;
            }
            by_addressee.insert(known.m.addressee_index.clone(), known.clone());
            if let Some(i) = &known.m.my_number_index {
                by_number.insert(i.clone(), known);
            }
        }
        assign_numbers(
            &mut self.rng,
            scope,
            conn,
            &mut new_tickets,
            &need_number,
            &tickets,
        )?;
        ResidentRow::insert_many(conn, &inserts)?;
        NextRow::insert_many(conn, &changes)?;
        ResidentEventRow::insert_many(conn, &events)?;
        TicketRow::insert_many(conn, &new_tickets)?;
        Ok(())
    }
}

impl Writer<'_> {
    /// A new active ticket of this import for a line.
    fn ticket_row(
        &self,
        scope: &Scope<'_>,
        number: String,
        resident_id: &str,
        line: &ParsedLine,
    ) -> TicketRow {
        TicketRow {
            municipality_code: scope.code().to_string(),
            ticket_number: number,
            resident_id: resident_id.to_string(),
            kind: line.kind.get().into(),
            dose_number: line.dose.get().into(),
            status: ticket_rows::ACTIVE.into(),
            issued_at: self.stamp,
            issued_by: self.issued_by.to_string(),
            invalidated_at: None,
            invalidated_reason: None,
            staged_seq: Some(self.seq),
            retired_seq: None,
        }
    }

    /// The first import into an empty partition: nothing stored can match,
    /// so a batch goes in without looking anything up. If a line names a
    /// person or ticket this import already wrote (or two lines of the batch
    /// clash), a unique index refuses the batch; the savepoint undoes it and
    /// the batch is done again the careful way, which names the line.
    /// Returns whether the batch was written.
    fn try_fresh(
        &mut self,
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        good: &mut [Prepared],
    ) -> Result<bool, ImportError> {
        let rows: Vec<ResidentRow> = good
            .iter_mut()
            .map(|p| {
                let mut row = std::mem::take(&mut p.row);
                row.staged_seq = Some(self.seq);
                row
            })
            .collect();
        let mut taken: HashSet<String> = good
            .iter()
            .filter_map(|p| p.parsed.ticket.as_ref().map(|t| t.as_str().to_string()))
            .collect();
        let tickets: Vec<TicketRow> = good
            .iter()
            .zip(&rows)
            .map(|(p, row)| {
                let number = match &p.parsed.ticket {
                    Some(t) => t.as_str().to_string(),
                    None => loop {
                        let n = TicketNumber::random(&mut self.rng).as_str().to_string();
                        if taken.insert(n.clone()) {
                            break n;
                        }
                    },
                };
                self.ticket_row(scope, number, &row.id, &p.parsed)
            })
            .collect();
        let written = conn.savepoint(|c| {
            ResidentRow::insert_many(c, &rows)?;
            TicketRow::insert_many(c, &tickets)
        });
        match written {
            Ok(()) => {
                self.outcome.inserted += rows.len() as u64;
                self.outcome.tickets_issued += tickets.len() as u64;
                Ok(true)
            }
            Err(crate::db::DbError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ))) => {
                for (p, row) in good.iter_mut().zip(rows) {
                    p.row = row;
                }
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Random, unused ten-digit numbers for the tickets the file left blank.
pub(crate) fn assign_numbers(
    rng: &mut impl rand::Rng,
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    rows: &mut [TicketRow],
    need: &[usize],
    batch_known: &HashMap<String, TicketRow>,
) -> Result<(), ImportError> {
    let mut pending: Vec<usize> = need.to_vec();
    let mut taken: HashSet<String> = rows
        .iter()
        .filter(|r| !r.ticket_number.is_empty())
        .map(|r| r.ticket_number.clone())
        .collect();
    while !pending.is_empty() {
        for &i in &pending {
            let mut n = TicketNumber::random(rng);
            while taken.contains(n.as_str()) || batch_known.contains_key(n.as_str()) {
                n = TicketNumber::random(rng);
            }
            taken.insert(n.as_str().to_string());
            rows[i].ticket_number = n.as_str().to_string();
        }
        let candidates: Vec<String> = pending
            .iter()
            .map(|&i| rows[i].ticket_number.clone())
            .collect();
        let used: HashSet<String> = TicketRow::existing(scope, conn, &candidates)?
            .into_iter()
            .map(|t| t.ticket_number)
            .collect();
        pending.retain(|&i| used.contains(&rows[i].ticket_number));
    }
    Ok(())
}
