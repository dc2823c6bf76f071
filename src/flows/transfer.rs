//! Flow 4: the transfer inquiry (転出元への接種記録照会). The municipality a
//! person moved to asks the one they moved from for their dose history, by
//! individual number and the source's code, after recording consent and the
//! identity check.
//!
//! The only door between two partitions. The asking side checks its own
//! records and limits; the source is opened by the code given and nothing
//! else — no fan-out, no fallback — and matches only in its own partition
//! through its own blind index. Both sides keep a provision record
//! (metadata only); the source keeps nothing of the number it was sent.

mod approval;
mod provider;
use super::residents::{self, MyNumberPurpose};
use crate::audit::{self, Actor, AuditKey, Entry};
use crate::clock::now;
use crate::crypto::MasterKey;
use crate::db::DbConn;
use crate::db::TenantConn;
use crate::db::models::audit_log::PendingRow;
use crate::db::models::doses::{self as dose_rows, DoseRow};
use crate::db::models::provisions::{self as prov, NoticeRow, PROVIDER, ProvisionRow, REQUESTER};
use crate::db::models::residents::ResidentRow;
use crate::domain::{Consent, InquiryPurpose, MunicipalityCode, MyNumber};
use crate::tenancy::{Partition, Scope, TenancyError};
pub use approval::*;
use chrono::{NaiveDate, NaiveDateTime};
pub use provider::*;

/// The procedure every provision record names (事務手続).
pub const PROCEDURE: &str = "transfer_in_inquiry";
/// The record items a provision gives: per dose, no more (F15).
pub const ITEMS: &str = "dose_number,administered_on,vaccine,lot_number,site,site_municipality";
/// Notice kind for inquiries past the configured rate.
pub const RATE_NOTICE: &str = "inquiry_rate";

/// How an inquiry reached the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Window,
    Bulk,
    Api,
}

impl Channel {
    pub fn code(&self) -> &'static str {
        match self {
            Channel::Window => "window",
            Channel::Bulk => "bulk",
            Channel::Api => "api",
        }
    }
}

/// Inquiries one account, and one municipality, may send in an hour through
/// the window and the API; past either, inquiries are refused and the
/// administrators of both municipalities see a notice.
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    pub per_account_hour: u32,
    pub per_municipality_hour: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_account_hour: 60,
            per_municipality_hour: 1000,
        }
    }
}

/// The inquiry settings of a running server.
#[derive(Debug, Clone)]
pub struct Settings {
    pub rates: RateLimits,
    /// When a window or API inquiry may be answered, match or not.
    pub answer_floor: std::sync::Arc<AnswerFloor>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            rates: RateLimits::default(),
            answer_floor: std::sync::Arc::new(AnswerFloor::new(AnswerFloor::DEFAULT_MIN)),
        }
    }
}

/// How long after it arrived a window or API inquiry is answered: never
/// sooner than a configured minimum, and never sooner than a margin above
/// the 99th percentile of the recent inquiries' own working times, matches
/// and misses pooled. A match costs more work than a miss (its doses are
/// read and copied); answering both at the same later moment makes the
/// time say nothing, and the floor follows the machine's real speed rather
/// than a guess that may sit below it.
#[derive(Debug)]
pub struct AnswerFloor {
    min: std::time::Duration,
    recent: std::sync::Mutex<std::collections::VecDeque<std::time::Duration>>,
}

impl AnswerFloor {
    pub const DEFAULT_MIN: std::time::Duration = std::time::Duration::from_millis(15);
    /// However slow the recent inquiries were (a stalled disk), no answer
    /// is held longer than this.
    pub const MAX: std::time::Duration = std::time::Duration::from_millis(500);
    /// Working times remembered (the newest).
    const WINDOW: usize = 256;

    pub fn new(min: std::time::Duration) -> AnswerFloor {
        AnswerFloor {
            min,
            recent: std::sync::Mutex::new(std::collections::VecDeque::with_capacity(Self::WINDOW)),
        }
    }

    /// Notes how long one inquiry's work took.
    pub fn observe(&self, took: std::time::Duration) {
        if let Ok(mut r) = self.recent.lock() {
            if r.len() == Self::WINDOW {
                r.pop_front();
            }
            r.push_back(took);
        }
    }

    /// How long after arrival this answer leaves: the floor, plus up to
    /// two milliseconds drawn at random, so that what differs by some
    /// microseconds between the two paths after the work (waking up,
    /// rendering) is lost in the draw.
    pub fn hold(&self) -> std::time::Duration {
        use rand::Rng;
        let jitter = rand::thread_rng().gen_range(0..2000u64);
        self.current() + std::time::Duration::from_micros(jitter)
    }

    /// The earliest time after arrival at which an answer may leave: the
    /// minimum, or half as much again as the recent 99th percentile if
    /// that is later.
    pub fn current(&self) -> std::time::Duration {
        let p99 = self
            .recent
            .lock()
            .ok()
            .and_then(|r| {
                let mut v: Vec<_> = r.iter().copied().collect();
                v.sort_unstable();
                v.get((v.len() * 99).div_ceil(100).saturating_sub(1))
                    .copied()
            })
            .unwrap_or_default();
        self.min.max((p99 * 3 / 2).min(Self::MAX))
    }
}

/// One person's inquiry, parsed.
pub struct Inquiry {
    pub asking: MunicipalityCode,
    pub source: MunicipalityCode,
    pub number: MyNumber,
    pub consent: Consent,
    pub purpose: InquiryPurpose,
    pub channel: Channel,
}

/// What the asking municipality learns.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The source holds the person: their doses, as now copied here (those
    /// copied by an earlier inquiry are not copied twice).
    Matched {
        inquiry_id: String,
        resident_id: String,
        doses: Vec<super::resident_doses::Dose>,
        newly_copied: usize,
    },
    /// Nobody with this number at that municipality — or no such partition.
    /// Said the same way whatever the cause.
    NoMatch,
    /// The resident asked about is ours and under a support measure: the
    /// inquiry waits for an administrator's approval before it is sent.
    Held,
}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The number is not one of the asking municipality's residents: it
    /// must be registered (from the resident registry) first (F10).
    #[error("the individual number is not registered to a resident of this municipality")]
    NotResident,
    #[error("too many inquiries in the last hour: refused")]
    RateLimited,
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
    #[error(transparent)]
    Stopped(#[from] super::Stopped),
}

impl crate::db::DbCause for TransferError {
    fn db_cause(&self) -> Option<&crate::db::DbError> {
        match self {
            TransferError::Tenancy(e) => crate::db::DbCause::db_cause(e),
            _ => None,
        }
    }
}

crate::db::from_diesel_via_db_error!(TransferError);

impl From<crate::db::DbError> for TransferError {
    fn from(e: crate::db::DbError) -> Self {
        TransferError::Tenancy(e.into())
    }
}

impl From<residents::ResidentError> for TransferError {
    fn from(e: residents::ResidentError) -> Self {
        match e {
            residents::ResidentError::Tenancy(t) => TransferError::Tenancy(t),
            _ => TransferError::NotResident,
        }
    }
}

/// What the source's answer carries: its doses, no more.
#[derive(Debug, Clone, PartialEq)]
pub struct GivenDose {
    pub dose_number: i32,
    pub administered_on: NaiveDate,
    pub product_code: String,
    pub lot_number: Option<String>,
    pub site_name: Option<String>,
    pub site_municipality_code: Option<String>,
}

impl GivenDose {
    fn of(row: &DoseRow) -> GivenDose {
        GivenDose {
            dose_number: row.dose_number,
            administered_on: row.administered_on,
            product_code: row.product_code.clone(),
            lot_number: row.lot_number.clone(),
            site_name: row.site_name.clone(),
            site_municipality_code: row.site_municipality_code.clone(),
        }
    }
}

/// What the source gives for one number: its resident and their doses, or
/// nothing.
pub type Given = Option<(String, Vec<GivenDose>)>;

/// The requester's facts both sides' records carry.
pub struct Asked<'a> {
    pub inquiry_id: &'a str,
    pub at: NaiveDateTime,
    pub asking: MunicipalityCode,
    pub actor: &'a Actor,
    pub channel: Channel,
    pub purpose: InquiryPurpose,
    pub job: Option<(&'a str, i64)>,
}

impl Asked<'_> {
    /// A provision record of this inquiry, kept by `keeper`.
    pub fn record(
        &self,
        keeper: MunicipalityCode,
        side: &str,
        provider: MunicipalityCode,
    ) -> ProvisionRow {
        ProvisionRow {
            municipality_code: keeper.to_string(),
            id: crate::domain::new_record_id(),
            inquiry_id: self.inquiry_id.to_string(),
            side: side.to_string(),
            requested_at: self.at,
            answered_at: None,
            requester_code: self.asking.to_string(),
            requester_account_id: self.actor.account_id.clone(),
            requester_login_id: self.actor.login_id.clone(),
            requester_addr: self.actor.client_addr.clone(),
            provider_code: provider.to_string(),
            resident_id: None,
            channel: self.channel.code().to_string(),
            procedure_code: PROCEDURE.to_string(),
            purpose: self.purpose.code().to_string(),
            items: String::new(),
            dose_count: 0,
            outcome: prov::NO_MATCH.to_string(),
            refusal: None,
            consent_form: false,
            id_document: None,
            id_checked_by: None,
            job_id: self.job.map(|(id, _)| id.to_string()),
            line_no: self.job.map(|(_, line)| line),
        }
    }
}

/// Asks on the blocking pool and answers no sooner than the configured
/// floor after `started`, whatever the outcome: how long an answer takes
/// must not say whether anyone matched. (Window, API: a bulk inquiry's
/// lines are answered in its result file, not one by one.)
pub async fn inquire_held(
    state: &super::AppState,
    actor: Actor,
    inquiry: Inquiry,
    started: std::time::Instant,
) -> Result<Answer, TransferError> {
    let st = state.clone();
    let out = state
        .blocking(move |conn| {
            inquire(
                conn,
                &st.master,
                &st.audit,
                st.transfer.rates,
                &actor,
                &inquiry,
            )
        })
        .await;
    let floor = &state.transfer.answer_floor;
    // Only inquiries that were asked of the other municipality teach the
    // floor: a flood of cheap refusals must not pull it down.
    if out.is_ok() {
        floor.observe(started.elapsed());
    }
    tokio::time::sleep_until((started + floor.hold()).into()).await;
    out
}

/// Sends one inquiry and brings back the answer. Writes, in order: the
/// source's provision record (and its log line on a match), then in the
/// asking partition the copied doses, its own provision record and its log
/// line.
pub fn inquire(
    conn: &mut DbConn,
    master: &MasterKey,
    key: &AuditKey,
    limits: RateLimits,
    actor: &Actor,
    inquiry: &Inquiry,
) -> Result<Answer, TransferError> {
    send(conn, master, key, limits, actor, inquiry, true)
}

/// `inquire`, or with `hold_protected` false the sending of an inquiry an
/// administrator approved.
fn send(
    conn: &mut DbConn,
    master: &MasterKey,
    key: &AuditKey,
    limits: RateLimits,
    actor: &Actor,
    inquiry: &Inquiry,
    hold_protected: bool,
) -> Result<Answer, TransferError> {
    let asking = Partition::open(conn, master, inquiry.asking)?;
    let inquiry_id = crate::domain::new_record_id();
    let asked = Asked {
        inquiry_id: &inquiry_id,
        at: now(),
        asking: inquiry.asking,
        actor,
        channel: inquiry.channel,
        purpose: inquiry.purpose,
        job: None,
    };
    let log = |outcome: &'static str, target: Option<String>, detail: String| Entry {
        chain: inquiry.asking.as_str(),
        action: "transfer.inquire",
        target,
        outcome,
        detail: Some(format!(
            "inquiry={inquiry_id} source={} channel={} purpose={} {detail}",
            inquiry.source,
            inquiry.channel.code(),
            inquiry.purpose.code()
        )),
    };

    // The asking side first: its limits, and that the number is one of its
    // residents. Neither reaches the source.
    enum Before {
        Go(residents::Resident),
        Held,
        Refused,
        NotResident,
    }
    let before = asking.run(conn, |scope, conn| {
        if over_rate(scope, conn, limits, actor, asked.at)? {
            let mut refused = asked.record(inquiry.asking, REQUESTER, inquiry.source);
            refused.outcome = prov::REFUSED.into();
            refused.refusal = Some("rate_limit".into());
            mark_consent(&mut refused, &inquiry.consent);
            ProvisionRow::insert_many(conn, &[refused])?;
            audit::append(
                conn,
                key,
                actor,
                log("refused", None, "reason=rate_limit".into()),
            )?;
            raise_rate_notice(scope, conn, actor, inquiry.asking, inquiry.asking)?;
            return Ok::<_, TransferError>(Before::Refused);
        }
        let found = residents::find_by_my_number(
            scope,
            conn,
            &inquiry.number,
            MyNumberPurpose::TransferInquiry,
        )?;
        Ok(match found {
            Some(r) if hold_protected && r.address_protected => {
                hold_asking(scope, conn, &asked, inquiry, &r.id)?;
                Before::Held
            }
            Some(r) => Before::Go(r),
            None => {
                audit::append(
                    conn,
                    key,
                    actor,
                    log("refused", None, "reason=not_resident".into()),
                )?;
                Before::NotResident
            }
        })
    })?;
    let resident = match before {
        Before::Go(r) => r,
        Before::Held => return Ok(Answer::Held),
        Before::NotResident => return Err(TransferError::NotResident),
        Before::Refused => {
            // The source's administrators hear of it too.
            if let Some(source) = open_source(conn, master, inquiry.source)? {
                source.run(conn, |scope, conn| {
                    raise_rate_notice(scope, conn, actor, inquiry.asking, inquiry.source)
                })?;
            }
            return Err(TransferError::RateLimited);
        }
    };

    let given = answer(conn, master, &asked, inquiry.source, &inquiry.number)?;

    asking.run(conn, |scope, conn| {
        let mut record = asked.record(inquiry.asking, REQUESTER, inquiry.source);
        mark_consent(&mut record, &inquiry.consent);
        record.resident_id = Some(resident.id.clone());
        record.answered_at = Some(now());
        let existing = DoseRow::of_resident(scope, conn, &resident.id)?;
        let Some(given) = given else {
            ProvisionRow::insert_many(conn, &[record])?;
            audit::append(
                conn,
                key,
                actor,
                log(
                    "no_match",
                    Some(format!("resident:{}", resident.id)),
                    String::new(),
                ),
            )?;
            return Ok(Answer::NoMatch);
        };
        let person = (resident.birth_date.date(), resident.sex.code());
        let (copies, fresh) = copies_for(
            scope.code(),
            inquiry.source,
            &resident.id,
            person,
            actor,
            &existing,
            &given,
        );
        DoseRow::insert_many(conn, &fresh)?;
        record.outcome = prov::PROVIDED.into();
        record.items = ITEMS.into();
        record.dose_count = given.len() as i32;
        ProvisionRow::insert_many(conn, &[record])?;
        audit::append(
            conn,
            key,
            actor,
            log(
                "ok",
                Some(format!("resident:{}", resident.id)),
                format!("doses={} copied={}", given.len(), fresh.len()),
            ),
        )?;
        Ok(Answer::Matched {
            inquiry_id: inquiry_id.clone(),
            resident_id: resident.id.clone(),
            newly_copied: fresh.len(),
            doses: copies
                .into_iter()
                .map(super::resident_doses::Dose::from)
                .collect(),
        })
    })
}

pub fn mark_consent(record: &mut ProvisionRow, consent: &Consent) {
    record.consent_form = true;
    record.id_document = Some(consent.id_document.code().to_string());
    record.id_checked_by = Some(consent.checked_by.clone());
}

/// Whether the account, or its municipality, has sent as many inquiries in
/// the last hour as it may.
fn over_rate(
    _scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    limits: RateLimits,
    actor: &Actor,
    at: NaiveDateTime,
) -> Result<bool, TransferError> {
    let account = actor.account_id.as_deref().unwrap_or("");
    let (all, mine) = ProvisionRow::sent_since(conn, account, at - chrono::Duration::hours(1))?;
    Ok(
        mine >= i64::from(limits.per_account_hour)
            || all >= i64::from(limits.per_municipality_hour),
    )
}

/// A notice on the administrators' screen of the municipality `scope` is
/// in, unless one about the same asking account is still open.
fn raise_rate_notice(
    _scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    actor: &Actor,
    asking: MunicipalityCode,
    keeper: MunicipalityCode,
) -> Result<(), TransferError> {
    // The asking municipality learns which account; the source only which
    // municipality asked.
    let subject = if keeper == asking {
        format!("account:{}", actor.login_id.as_deref().unwrap_or("-"))
    } else {
        format!("municipality:{asking}")
    };
    if NoticeRow::is_open(conn, RATE_NOTICE, &subject)? {
        return Ok(());
    }
    notice(conn, RATE_NOTICE, subject)
}

/// A notice for the administrators of the municipality `conn` is in.
fn notice(conn: &mut TenantConn<'_>, kind: &str, subject: String) -> Result<(), TransferError> {
    NoticeRow {
        municipality_code: conn.code().to_string(),
        id: crate::domain::new_record_id(),
        at: now(),
        kind: kind.into(),
        subject,
        detail: None,
        closed_at: None,
        closed_by: None,
    }
    .insert(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::AnswerFloor;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_answer_floor_stays_above_the_recent_working_times() {
        let f = AnswerFloor::new(ms(15));
        assert_eq!(f.current(), ms(15));
        // Working times of 10–29 ms (a slower machine than the minimum
        // assumed): every answer waits for half as much again as the 99th
        // percentile, later than any of them.
        for i in 0..200 {
            f.observe(ms(10 + i % 20));
        }
        assert_eq!(f.current(), ms(29) * 3 / 2);
        // Old times are forgotten as newer ones come.
        for _ in 0..AnswerFloor::WINDOW {
            f.observe(ms(1));
        }
        assert_eq!(f.current(), ms(15));
    }
}
