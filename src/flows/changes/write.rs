//! The writing side of a change file: each line is checked against the
//! person as the file so far leaves them (F24: no 転入 of a current
//! resident, a 転居 changes the address alone…) and what it does is staged
//! under the job's sequence number, like a resident import: new people,
//! the attributes and flags of people stored (`resident_next`), their
//! history, and their tickets (retired on a move-out or death, issued on
//! an arrival). Nothing is seen until the job succeeds.

use super::Outcome;
use super::parse::{ChangeLine, Values};
use crate::db::TenantConn;
use crate::db::models::doses::{self as dose_rows, DoseRow};
use crate::db::models::resident_events::ResidentEventRow;
use crate::db::models::residents::{NextRow, ResidentRow};
use crate::db::models::tickets::{self as ticket_rows, TicketRow};
use crate::domain::{
    Address, Attribute, BirthDate, ChangeEffect, ChangeKind, KanaName, PersonName, Sex,
    TicketNumber,
};
use crate::flows::dose_checks::{self, Prior};
use crate::flows::imports::staged::StagedWriter;
use crate::flows::imports::{ImportError, LineError, MAX_REPORTED_ERRORS};
use crate::flows::line_errors::Conflict;
use crate::flows::residents::{self, Change, EventDetail, NewResident};
use crate::tenancy::Scope;
use chrono::{NaiveDate, NaiveDateTime};
use std::collections::{HashMap, HashSet};

/// Moved out on, deceased on.
type Flags = (Option<NaiveDate>, Option<NaiveDate>);

/// A stored resident as the job first found them: what the change it
/// stages is measured against (the index values, whether they change; the
/// flags, how the count of current residents moves).
struct Base {
    index: (Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>),
    flags: Flags,
    /// The job staged a change for them already (in an earlier batch).
    has_next: bool,
}

/// A person as the lines of one batch leave them.
struct Working {
    id: String,
    attrs: NewResident,
    my_number_index: Option<Vec<u8>>,
    /// The individual number as the person's row holds it now (sealed for
    /// their id): carried into a later change unopened, so that a number
    /// an earlier line of the file gave is not lost.
    my_number_sealed: Option<Vec<u8>>,
    flags: Flags,
    /// Not stored before this batch: inserted at its end.
    new: bool,
    dirty: bool,
    /// Their active ticket is retired (moved_out or deceased).
    retire: Option<&'static str>,
    /// A ticket to issue: the number the registry gave, kind, dose (none:
    /// the dose due next), and the line that asked for it.
    ticket: Option<(Option<TicketNumber>, u8, Option<u8>, u64)>,
}

impl Working {
    fn current(&self) -> bool {
        self.flags == (None, None)
    }
}

pub(super) struct Writer<'a> {
    stamp: NaiveDateTime,
    seq: i64,
    issued_by: &'a str,
    account_id: Option<String>,
    pub(super) outcome: Outcome,
    errors: Vec<LineError>,
    error_count: u64,
    /// Stored residents the job staged a change for, or inserted.
    base: HashMap<String, Base>,
    rng: rand::rngs::ThreadRng,
}

impl<'a> Writer<'a> {
    pub(super) fn new(
        stamp: NaiveDateTime,
        seq: i64,
        issued_by: &'a str,
        account_id: Option<String>,
    ) -> Self {
        Writer {
            stamp,
            seq,
            issued_by,
            account_id,
            outcome: Outcome::default(),
            errors: Vec::new(),
            error_count: 0,
            base: HashMap::new(),
            rng: rand::thread_rng(),
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

    /// What one line does to the person, or why it cannot; history
    /// entries go into `events`.
    fn apply(
        &mut self,
        scope: &Scope<'_>,
        l: ChangeLine,
        slot: &mut Option<Working>,
        events: &mut Vec<(String, EventDetail)>,
    ) -> Result<(), Vec<LineError>> {
        let line = l.line;
        let err = |column: &str, c: Conflict| vec![LineError::conflict(line, column, c)];
        let reason = Some(format!("{}（異動日 {}）", l.kind.word(), l.on));
        match l.kind.effect() {
            ChangeEffect::Adds => {
                if let Some(w) = slot.as_ref() {
                    if w.current() {
                        return Err(err(ChangeKind::FIELD, Conflict::AlreadyResident));
                    }
                    if w.flags.1.is_some() {
                        return Err(err(ChangeKind::FIELD, Conflict::NotCurrent));
                    }
                }
                let attrs = NewResident {
                    addressee_number: l.addressee.clone(),
                    my_number: l.values.my_number.clone(),
                    // The parser made sure an arrival carries these.
                    name_kanji: l
                        .values
                        .name_kanji
                        .clone()
                        .ok_or_else(|| err(PersonName::FIELD, Conflict::MissingColumn))?,
                    name_kana: l
                        .values
                        .name_kana
                        .clone()
                        .ok_or_else(|| err(KanaName::FIELD, Conflict::MissingColumn))?,
                    birth_date: l
                        .values
                        .birth_date
                        .ok_or_else(|| err(BirthDate::FIELD, Conflict::MissingColumn))?,
                    sex: l
                        .values
                        .sex
                        .ok_or_else(|| err(Sex::FIELD, Conflict::MissingColumn))?,
                    address: l.values.address.clone(),
                };
                let number_index = attrs.my_number.as_ref().map(|n| scope.my_number_index(n));
                let ticket = Some((
                    l.ticket.clone(),
                    l.ticket_kind.map_or(1, |k| k.get()),
                    l.dose.map(|d| d.get()),
                    line,
                ));
                match slot {
                    // Back after moving out: the registry's values, the
                    // flag cleared, a ticket for the dose due next.
                    Some(w) => {
                        let mut changes = vec![flag_change("moved_out", w.flags.0, None)];
                        changes.extend(differences(&w.attrs, &attrs));
                        if number_index.is_some() {
                            w.my_number_index = number_index;
                        }
                        w.attrs = NewResident {
                            my_number: attrs.my_number.clone().or(w.attrs.my_number.take()),
                            ..attrs
                        };
                        w.flags = (None, None);
                        w.dirty = true;
                        w.ticket = ticket;
                        events.push((w.id.clone(), self.detail(reason, changes)));
                        self.outcome.returned += 1;
                    }
                    None => {
                        let id = crate::domain::new_record_id();
                        events.push((id.clone(), self.detail(reason, Vec::new())));
                        *slot = Some(Working {
                            id,
                            attrs,
                            my_number_index: number_index,
                            my_number_sealed: None,
                            flags: (None, None),
                            new: true,
                            dirty: true,
                            retire: None,
                            ticket,
                        });
                        self.outcome.added += 1;
                    }
                }
                Ok(())
            }
            ChangeEffect::Ends { deceased } => {
                let w = live(slot, line)?;
                self.unchanged_elsewhere(scope, l.kind, &l.values, w, line)?;
                let (field, before) = if deceased {
                    w.flags.1 = Some(l.on);
                    ("deceased", None)
                } else {
                    w.flags.0 = Some(l.on);
                    ("moved_out", None)
                };
                w.dirty = true;
                w.retire = Some(field);
                // A ticket an arrival earlier in the batch was to get is
                // never issued.
                w.ticket = None;
                events.push((
                    w.id.clone(),
                    self.detail(reason, vec![flag_change(field, before, Some(l.on))]),
                ));
                if deceased {
                    self.outcome.deceased += 1;
                } else {
                    self.outcome.moved_out += 1;
                }
                if !w.new {
                    self.outcome.ended.push(w.id.clone());
                }
                Ok(())
            }
            ChangeEffect::Changes => {
                let w = live(slot, line)?;
                self.unchanged_elsewhere(scope, l.kind, &l.values, w, line)?;
                let v = l.values;
                let mut next = w.attrs.clone();
                if let Some(n) = v.name_kanji {
                    next.name_kanji = n;
                }
                if let Some(n) = v.name_kana {
                    next.name_kana = n;
                }
                if let Some(b) = v.birth_date {
                    next.birth_date = b;
                }
                if let Some(s) = v.sex {
                    next.sex = s;
                }
                if let Some(a) = v.address {
                    next.address = Some(a);
                }
                let mut changes = differences(&w.attrs, &next);
                if let Some(n) = v.my_number {
                    let i = scope.my_number_index(&n);
                    if w.my_number_index.as_ref() != Some(&i) {
                        w.my_number_index = Some(i);
                        next.my_number = Some(n);
                        w.dirty = true;
                        // The history says the number changed, never what
                        // it was or became.
                        changes.push(Change {
                            field: "個人番号".into(),
                            before: String::new(),
                            after: "（変更）".into(),
                        });
                    }
                }
                if !changes.is_empty() {
                    w.dirty = true;
                    events.push((w.id.clone(), self.detail(reason, changes)));
                    self.outcome.changed += 1;
                } else {
                    self.outcome.unchanged += 1;
                }
                next.my_number = next.my_number.or(w.attrs.my_number.take());
                w.attrs = next;
                Ok(())
            }
        }
    }

    /// A value the line's kind may not change must be empty or the one
    /// stored (a registry line often carries the whole record).
    fn unchanged_elsewhere(
        &self,
        scope: &Scope<'_>,
        kind: ChangeKind,
        v: &Values,
        w: &Working,
        line: u64,
    ) -> Result<(), Vec<LineError>> {
        let a = &w.attrs;
        let differs = [
            (
                Attribute::NameKanji,
                PersonName::FIELD,
                v.name_kanji.as_ref().is_some_and(|n| n != &a.name_kanji),
            ),
            (
                Attribute::NameKana,
                KanaName::FIELD,
                v.name_kana.as_ref().is_some_and(|n| n != &a.name_kana),
            ),
            (
                Attribute::BirthDate,
                BirthDate::FIELD,
                v.birth_date
                    .is_some_and(|b| b.date() != a.birth_date.date()),
            ),
            (
                Attribute::Sex,
                Sex::FIELD,
                v.sex.is_some_and(|s| s.code() != a.sex.code()),
            ),
            (
                Attribute::Address,
                Address::FIELD,
                v.address.is_some() && v.address != a.address,
            ),
            (
                Attribute::MyNumber,
                "個人番号",
                v.my_number
                    .as_ref()
                    .is_some_and(|n| w.my_number_index.as_ref() != Some(&scope.my_number_index(n))),
            ),
        ];
        let errors: Vec<LineError> = differs
            .into_iter()
            .filter(|(attr, _, d)| *d && !kind.may_change(*attr))
            .map(|(_, field, _)| LineError::conflict(line, field, Conflict::ChangeNotAllowed))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn detail(&self, reason: Option<String>, changes: Vec<Change>) -> EventDetail {
        EventDetail {
            reason,
            import: Some(self.issued_by.to_string()),
            changes,
        }
    }

    /// Writes what the batch left: new people, staged changes, history,
    /// retired and new tickets.
    fn write(
        &mut self,
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        work: Vec<Working>,
        events: Vec<(String, EventDetail)>,
    ) -> Result<(), ImportError> {
        let mut inserts = Vec::new();
        let mut nexts = Vec::new();
        let mut replaced = Vec::new();
        let mut tickets = Vec::new();
        let mut need_number = Vec::new();
        let mut returning = Vec::new();
        let mut given: Vec<String> = Vec::new();
        for w in work.iter().filter(|w| w.dirty) {
            let mut row = residents::new_row(scope, &w.attrs, w.id.clone(), self.stamp);
            if w.attrs.my_number.is_none() {
                row.my_number_index = w.my_number_index.clone();
                row.my_number_sealed = w.my_number_sealed.clone();
            }
            if w.new {
                row.staged_seq = Some(self.seq);
                (row.moved_out_on, row.deceased_on) = w.flags;
                self.base.insert(
                    w.id.clone(),
                    Base {
                        index: (
                            row.addressee_index.clone(),
                            row.my_number_index.clone(),
                            row.birth_bucket.clone(),
                        ),
                        flags: w.flags,
                        has_next: false,
                    },
                );
                inserts.push(row);
            } else if let Some(base) = self.base.get_mut(&w.id) {
                if base.has_next {
                    replaced.push(w.id.clone());
                }
                base.has_next = true;
                nexts.push(
                    NextRow::of(
                        &row,
                        self.seq,
                        (
                            &base.index.0,
                            base.index.1.as_deref(),
                            base.index.2.as_deref(),
                        ),
                    )
                    .with_flags(w.flags, base.flags),
                );
            }
        }
        for w in &work {
            if let Some((number, _, dose, _)) = &w.ticket {
                given.extend(number.iter().map(|n| n.as_str().to_string()));
                if dose.is_none() && !w.new {
                    returning.push(w.id.clone());
                }
            }
        }
        // Tickets the registry numbered must be new to the municipality.
        let existing: HashMap<String, TicketRow> = TicketRow::existing(scope, conn, &given)?
            .into_iter()
            .map(|t| (t.ticket_number.clone(), t))
            .collect();
        let due = self.dose_due(scope, conn, &returning)?;
        let mut named: HashSet<String> = HashSet::new();
        for w in &work {
            let Some((number, kind, dose, line)) = &w.ticket else {
                continue;
            };
            if let Some(n) = number {
                let c = if existing.contains_key(n.as_str()) {
                    Some(Conflict::TicketHeldByOther)
                } else if !named.insert(n.as_str().to_string()) {
                    Some(Conflict::DuplicateInFile)
                } else {
                    None
                };
                if let Some(c) = c {
                    self.reject(vec![LineError::conflict(*line, TicketNumber::FIELD, c)]);
                    continue;
                }
            }
            let dose = dose.or_else(|| due.get(&w.id).copied()).unwrap_or(1);
            if number.is_none() {
                need_number.push(tickets.len());
            }
            tickets.push(TicketRow {
                municipality_code: scope.code().to_string(),
                ticket_number: number
                    .as_ref()
                    .map(|n| n.as_str().to_string())
                    .unwrap_or_default(),
                resident_id: w.id.clone(),
                kind: i32::from(*kind),
                dose_number: i32::from(dose),
                status: ticket_rows::ACTIVE.into(),
                issued_at: self.stamp,
                issued_by: self.issued_by.to_string(),
                invalidated_at: None,
                invalidated_reason: None,
                staged_seq: Some(self.seq),
                retired_seq: None,
            });
        }
        crate::flows::imports::assign_numbers(
            &mut self.rng,
            scope,
            conn,
            &mut tickets,
            &need_number,
            &existing,
        )?;
        // Retired before the batch's new tickets go in: a person who left
        // is never given one in the same batch.
        for reason in ["moved_out", "deceased"] {
            let ids: Vec<String> = work
                .iter()
                .filter(|w| !w.new && w.retire == Some(reason))
                .map(|w| w.id.clone())
                .collect();
            if !ids.is_empty() {
                self.outcome.tickets_invalidated +=
                    TicketRow::retire_active_of(scope, conn, &ids, (self.seq, reason), self.stamp)?
                        as u64;
            }
        }
        for chunk in replaced.chunks(500) {
            NextRow::delete_of_seq(conn, chunk, self.seq)?;
        }
        ResidentRow::insert_many(conn, &inserts)?;
        NextRow::insert_many(conn, &nexts)?;
        let events: Vec<ResidentEventRow> = events
            .into_iter()
            .map(|(id, detail)| {
                let mut e = residents::event_row(
                    scope,
                    &id,
                    "registry_change",
                    self.account_id.as_deref(),
                    &detail,
                    self.stamp,
                );
                e.staged_seq = Some(self.seq);
                e
            })
            .collect();
        ResidentEventRow::insert_many(conn, &events)?;
        self.outcome.tickets_issued += tickets.len() as u64;
        TicketRow::insert_many(conn, &tickets)?;
        Ok(())
    }

    /// The dose each returning person is due next, from their record.
    fn dose_due(
        &self,
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        ids: &[String],
    ) -> Result<HashMap<String, u8>, ImportError> {
        let mut prior: HashMap<String, Vec<Prior>> = HashMap::new();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        for d in DoseRow::of_residents(scope, conn, ids)? {
            if d.status == dose_rows::VALID || d.status == dose_rows::PENDING {
                prior.entry(d.resident_id.clone()).or_default().push(Prior {
                    dose_number: u8::try_from(d.dose_number).unwrap_or(u8::MAX),
                    administered_on: d.administered_on,
                });
            }
        }
        Ok(ids
            .iter()
            .map(|id| {
                let p = prior.remove(id).unwrap_or_default();
                (
                    id.clone(),
                    dose_checks::due(&p).unwrap_or(crate::domain::DoseNumber::MAX),
                )
            })
            .collect())
    }
}

/// The person a removal or change names, living here now.
fn live(slot: &mut Option<Working>, line: u64) -> Result<&mut Working, Vec<LineError>> {
    let err = |c| {
        vec![LineError::conflict(
            line,
            crate::domain::AddresseeNumber::FIELD,
            c,
        )]
    };
    match slot {
        None => Err(err(Conflict::NotResident)),
        Some(w) if !w.current() => Err(err(Conflict::NotCurrent)),
        Some(w) => Ok(w),
    }
}

fn flag_change(field: &str, before: Option<NaiveDate>, after: Option<NaiveDate>) -> Change {
    let show = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    Change {
        field: field.to_string(),
        before: show(before),
        after: show(after),
    }
}

/// Each attribute that differs, before and after, as a correction lists
/// them.
fn differences(a: &NewResident, b: &NewResident) -> Vec<Change> {
    [
        (
            PersonName::FIELD,
            a.name_kanji.as_str().to_string(),
            b.name_kanji.as_str().to_string(),
        ),
        (
            KanaName::FIELD,
            a.name_kana.as_str().to_string(),
            b.name_kana.as_str().to_string(),
        ),
        (
            BirthDate::FIELD,
            a.birth_date.date().to_string(),
            b.birth_date.date().to_string(),
        ),
        (
            Sex::FIELD,
            a.sex.code().to_string(),
            b.sex.code().to_string(),
        ),
        (
            Address::FIELD,
            a.address.clone().unwrap_or_default(),
            b.address.clone().unwrap_or_default(),
        ),
    ]
    .into_iter()
    .filter(|(_, x, y)| x != y)
    .map(|(f, before, after)| Change {
        field: f.to_string(),
        before,
        after,
    })
    .collect()
}

impl StagedWriter for Writer<'_> {
    type Line = ChangeLine;

    fn reject(&mut self, errors: Vec<LineError>) {
        self.error_count += errors.len() as u64;
        let room = MAX_REPORTED_ERRORS.saturating_sub(self.errors.len());
        self.errors.extend(errors.into_iter().take(room));
    }

    fn batch(
        &mut self,
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        lines: Vec<Result<ChangeLine, Vec<LineError>>>,
    ) -> Result<(), ImportError> {
        self.outcome.lines += lines.len() as u64;
        let mut good = Vec::with_capacity(lines.len());
        for l in lines {
            match l {
                Ok(l) => good.push(l),
                Err(e) => self.reject(e),
            }
        }
        let wanted: Vec<Vec<u8>> = good
            .iter()
            .map(|l| l.addressee_index.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut found: HashMap<Vec<u8>, ResidentRow> =
            ResidentRow::by_addressee(scope, conn, &wanted)?
                .into_iter()
                .map(|v| (v.row.addressee_index.clone(), v.row))
                .collect();
        // Individual numbers the lines give, and who holds them now.
        let numbers: Vec<Vec<u8>> = good
            .iter()
            .filter_map(|l| {
                l.values
                    .my_number
                    .as_ref()
                    .map(|n| scope.my_number_index(n))
            })
            .collect();
        let mut holders: HashMap<Vec<u8>, String> = if numbers.is_empty() {
            HashMap::new()
        } else {
            ResidentRow::by_my_number_indexes(scope, conn, &numbers)?
                .into_iter()
                .filter_map(|v| Some((v.row.my_number_index.clone()?, v.row.id)))
                .collect()
        };
        let mut slots: HashMap<Vec<u8>, Option<Working>> = HashMap::new();
        let mut order: Vec<Vec<u8>> = Vec::new();
        let mut events = Vec::new();
        for l in good {
            let key = l.addressee_index.clone();
            if !slots.contains_key(&key) {
                order.push(key.clone());
                let w = match found.remove(&key) {
                    Some(row) => {
                        let attrs = residents::open_attributes(scope, &row)?;
                        let flags = (row.moved_out_on, row.deceased_on);
                        self.base.entry(row.id.clone()).or_insert_with(|| Base {
                            index: (
                                row.addressee_index.clone(),
                                row.my_number_index.clone(),
                                row.birth_bucket.clone(),
                            ),
                            flags,
                            has_next: false,
                        });
                        Some(Working {
                            id: row.id,
                            attrs,
                            my_number_index: row.my_number_index,
                            my_number_sealed: row.my_number_sealed,
                            flags,
                            new: false,
                            dirty: false,
                            retire: None,
                            ticket: None,
                        })
                    }
                    None => None,
                };
                slots.insert(key.clone(), w);
            }
            if let Some(n) = &l.values.my_number {
                let i = scope.my_number_index(n);
                let own = slots
                    .get(&key)
                    .and_then(|s| s.as_ref())
                    .map(|w| w.id.as_str());
                if let Some(holder) = holders.get(&i)
                    && own != Some(holder.as_str())
                {
                    self.reject(vec![LineError::conflict(
                        l.line,
                        "個人番号",
                        Conflict::NumberHeldByOther,
                    )]);
                    continue;
                }
            }
            let Some(slot) = slots.get_mut(&key) else {
                continue;
            };
            let given = l
                .values
                .my_number
                .as_ref()
                .map(|n| scope.my_number_index(n));
            match self.apply(scope, l, slot, &mut events) {
                // The number is this person's now, for the lines after.
                Ok(()) => {
                    if let (Some(i), Some(w)) = (given, slot.as_ref()) {
                        holders.insert(i, w.id.clone());
                    }
                }
                Err(e) => self.reject(e),
            }
        }
        let work: Vec<Working> = order
            .into_iter()
            .filter_map(|k| slots.remove(&k).flatten())
            .collect();
        self.write(scope, conn, work, events)
    }
}
