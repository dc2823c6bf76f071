//! Inquiries about a resident under a support measure (支援措置) are held,
//! not answered, until an administrator of the municipality that holds the
//! resident approves or refuses them — a second person besides the one who
//! asked (S48).
//!
//! Asked about its protected resident (window, API or bulk), the source
//! keeps a provision record "refused: held" and the held inquiry, and the
//! asker gets the answer any miss gets. Approved, the source gives the
//! doses then: its provision record of the provision, and the asker's
//! copies, provision record and notice. About to ask about its own
//! protected resident, the asking municipality keeps the inquiry (the
//! number and the consent sealed) and sends it once approved.

use super::*;
use crate::db::models::held_inquiries::{self as held, HeldRow};
use crate::domain::{ChangeReason, IdDocument};

/// Notice to the holder's administrators: an inquiry waits for them.
pub const HELD_NOTICE: &str = "held_inquiry";
/// Notice to the asker's administrators: a held inquiry was answered.
pub const RELEASED_NOTICE: &str = "held_released";

const TABLE: &str = "held_inquiries";

/// What an asking municipality keeps, sealed, of an inquiry it holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct Request {
    number: String,
    id_document: String,
    checked_by: String,
}

/// A held inquiry of `holder`, waiting.
#[allow(clippy::too_many_arguments)]
fn held_row(
    asked: &Asked<'_>,
    holder: MunicipalityCode,
    id: &str,
    direction: &str,
    other: MunicipalityCode,
    channel: Channel,
    resident_id: &str,
    request_sealed: Option<Vec<u8>>,
) -> HeldRow {
    HeldRow {
        municipality_code: holder.to_string(),
        id: id.to_string(),
        inquiry_id: asked.inquiry_id.to_string(),
        direction: direction.into(),
        other_code: other.to_string(),
        resident_id: resident_id.to_string(),
        channel: channel.code().into(),
        purpose: asked.purpose.code().into(),
        requested_at: asked.at,
        requested_by: asked.actor.account_id.clone(),
        requester_login: asked.actor.login_id.clone(),
        request_sealed,
        status: held::HELD.into(),
        decided_by: None,
        decided_login: None,
        decided_at: None,
    }
}

/// The source's answer for one number: as given, or — its resident being
/// protected — held, with the provision record and the log line either
/// way. What the asker is then given is the third value.
pub fn settle_answer(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    asked: &Asked<'_>,
    source: MunicipalityCode,
    given: Given,
) -> Result<(ProvisionRow, Option<PendingRow>, Given), TransferError> {
    let Some((resident_id, doses)) = given else {
        return Ok((provider_record(asked, source, None), None, None));
    };
    if !residents::protected_now(scope, conn, &resident_id)? {
        let given = Some((resident_id, doses));
        let record = provider_record(asked, source, given.as_ref());
        let (id, doses) = given
            .as_ref()
            .map(|(i, d)| (i.as_str(), d.len()))
            .unwrap_or_default();
        let line = answer_line(asked, source, id, doses, false);
        return Ok((record, Some(line), given));
    }
    let mut record = provider_record(asked, source, None);
    record.resident_id = Some(resident_id.clone());
    record.outcome = prov::REFUSED.into();
    record.refusal = Some("held".into());
    let id = crate::domain::new_record_id();
    let (other, channel) = (asked.asking, asked.channel);
    held_row(
        asked,
        source,
        &id,
        held::ASKED,
        other,
        channel,
        &resident_id,
        None,
    )
    .insert(conn)?;
    notice(conn, HELD_NOTICE, format!("held:{id}"))?;
    // The line names neither who asked nor from where: that is where the
    // person lives now.
    let line = audit::waiting_line(
        &Actor::default(),
        Entry {
            chain: source.as_str(),
            action: "transfer.hold",
            target: Some(format!("resident:{resident_id}")),
            outcome: "held",
            detail: Some(format!(
                "inquiry={} held={id} from=withheld protected=1 channel={}",
                asked.inquiry_id,
                asked.channel.code()
            )),
        },
    );
    Ok((record, Some(line), None))
}

/// The asking side's hold of an inquiry about its own protected resident:
/// kept with the number and the consent sealed, nothing sent; its own
/// provision record says "refused: held". Returns the held inquiry's id.
pub fn hold_asking(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    asked: &Asked<'_>,
    inquiry: &Inquiry,
    resident_id: &str,
) -> Result<String, TransferError> {
    let id = crate::domain::new_record_id();
    let request = Request {
        number: String::from_utf8_lossy(&inquiry.number.expose_digits()).into_owned(),
        id_document: inquiry.consent.id_document.code().into(),
        checked_by: inquiry.consent.checked_by.clone(),
    };
    let json = zeroize::Zeroizing::new(serde_json::to_vec(&request).unwrap_or_default());
    let sealed = scope.seal(
        crate::crypto::AadContext {
            table: TABLE,
            column: "request",
            row_id: &id,
        },
        &json,
    );
    let (other, channel) = (inquiry.source, inquiry.channel);
    held_row(
        asked,
        scope.code(),
        &id,
        held::ASKING,
        other,
        channel,
        resident_id,
        Some(sealed),
    )
    .insert(conn)?;
    notice(conn, HELD_NOTICE, format!("held:{id}"))?;
    // Our own record of the inquiry, as a bulk inquiry's result reads it.
    let mut record = asked.record(scope.code(), REQUESTER, inquiry.source);
    mark_consent(&mut record, &inquiry.consent);
    record.resident_id = Some(resident_id.to_string());
    record.outcome = prov::REFUSED.into();
    record.refusal = Some("held".into());
    ProvisionRow::insert_many(conn, &[record])?;
    audit::append_later(
        conn.db(),
        asked.actor,
        Entry {
            chain: scope.code().as_str(),
            action: "transfer.hold",
            target: Some(format!("resident:{resident_id}")),
            outcome: "held",
            detail: Some(format!(
                "inquiry={} held={id} source={} channel={} protected=1",
                asked.inquiry_id,
                inquiry.source,
                inquiry.channel.code()
            )),
        },
    )?;
    Ok(id)
}

/// A held inquiry as its holder's administrators see it.
#[derive(Debug, Clone)]
pub struct Held {
    pub id: String,
    pub direction: String,
    /// The other municipality's code.
    pub other: String,
    pub resident_id: String,
    pub addressee: Option<String>,
    pub channel: String,
    pub purpose: String,
    pub requested_at: NaiveDateTime,
    pub requester: Option<String>,
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<NaiveDateTime>,
}

/// The municipality's held inquiries, those waiting first.
pub fn held_list(scope: &Scope<'_>, conn: &mut TenantConn<'_>) -> Result<Vec<Held>, TransferError> {
    let rows = HeldRow::list(conn, 200)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let addressee = residents::addressee_of(scope, conn, &r.resident_id)?;
        // Who asked from the other municipality is not named.
        let requester = (r.direction == held::ASKING)
            .then_some(r.requester_login)
            .flatten();
        out.push(Held {
            id: r.id,
            direction: r.direction,
            other: r.other_code,
            resident_id: r.resident_id,
            addressee,
            channel: r.channel,
            purpose: r.purpose,
            requested_at: r.requested_at,
            requester,
            status: r.status,
            decided_by: r.decided_login,
            decided_at: r.decided_at,
        });
    }
    Ok(out)
}

/// What deciding a held inquiry came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    NotFound,
    /// Decided already (by someone else meanwhile).
    AlreadyDecided,
    /// The person who asked may not approve their own inquiry.
    SamePerson,
    Refused,
    /// Approved and answered: the doses given (none on a miss).
    Approved {
        doses: usize,
    },
}

/// Approves (`approve`) or refuses a held inquiry of `code`, by the
/// administrator `admin`, with a reason kept in the resident's sealed
/// history.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    conn: &mut DbConn,
    master: &MasterKey,
    key: &AuditKey,
    limits: RateLimits,
    admin: &Actor,
    code: MunicipalityCode,
    id: &str,
    approve: bool,
    reason: &ChangeReason,
) -> Result<Decided, TransferError> {
    let holder = Partition::open(conn, master, code)?;
    crate::db::write_transaction(conn, |conn| {
        let row = holder.run(conn, |scope, conn| {
            let Some(row) = HeldRow::find(conn, id)? else {
                return Ok::<_, TransferError>(Err(Decided::NotFound));
            };
            if row.status != held::HELD {
                return Ok(Err(Decided::AlreadyDecided));
            }
            if row.requested_by.is_some() && row.requested_by == admin.account_id {
                return Ok(Err(Decided::SamePerson));
            }
            let status = if approve {
                held::APPROVED
            } else {
                held::REFUSED
            };
            let by = (
                admin.account_id.as_deref().unwrap_or(""),
                admin.login_id.as_deref().unwrap_or(""),
            );
            if !HeldRow::decide(conn, id, status, by, now())? {
                return Ok(Err(Decided::AlreadyDecided));
            }
            residents::inquiry_decided(scope, conn, &row.resident_id, approve, reason, by.0)?;
            Ok(Ok(row))
        })?;
        let row = match row {
            Ok(row) => row,
            Err(d) => return Ok(d),
        };
        let outcome = if !approve {
            Decided::Refused
        } else if row.direction == held::ASKED {
            release_asked(conn, master, &holder, &row)?
        } else {
            release_asking(conn, master, key, limits, &holder, &row)?
        };
        let doses = match &outcome {
            Decided::Approved { doses } => doses.to_string(),
            _ => "-".into(),
        };
        holder.run(conn, |scope, conn| {
            audit::append(
                conn.db(),
                key,
                admin,
                Entry {
                    chain: scope.code().as_str(),
                    action: "transfer.release",
                    target: Some(format!("resident:{}", row.resident_id)),
                    outcome: if approve { "ok" } else { "refused" },
                    detail: Some(format!(
                        "held={} inquiry={} direction={} doses={doses} protected=1 reason=in_history",
                        row.id, row.inquiry_id, row.direction
                    )),
                },
            )?;
            Ok::<_, TransferError>(())
        })?;
        Ok(outcome)
    })
}

/// The held inquiry's asker, as its provision records name them.
fn asker_of(row: &HeldRow) -> Actor {
    Actor {
        account_id: row.requested_by.clone(),
        login_id: row.requester_login.clone(),
        client_addr: None,
    }
}

/// Approved, asked about our resident: the doses given to the asker now.
fn release_asked(
    conn: &mut DbConn,
    master: &MasterKey,
    holder: &Partition,
    row: &HeldRow,
) -> Result<Decided, TransferError> {
    let source = holder.code();
    let Ok(asking) = MunicipalityCode::parse(&row.other_code) else {
        return Ok(Decided::NotFound);
    };
    let actor = asker_of(row);
    let asked = Asked {
        inquiry_id: &row.inquiry_id,
        at: now(),
        asking,
        actor: &actor,
        channel: channel_of(&row.channel),
        purpose: InquiryPurpose::parse(&row.purpose).unwrap_or(InquiryPurpose::HistoryConfirmation),
        job: None,
    };
    let given: Vec<GivenDose> = holder.run(conn, |scope, conn| {
        let mut doses = DoseRow::of_resident(scope, conn, &row.resident_id)?;
        doses.retain(|d| d.status == dose_rows::VALID);
        let given: Vec<GivenDose> = doses.iter().map(GivenDose::of).collect();
        let g = Some((row.resident_id.clone(), given.clone()));
        let record = provider_record(&asked, source, g.as_ref());
        ProvisionRow::insert_many(conn, &[record])?;
        answer_line(&asked, source, &row.resident_id, given.len(), true).insert(conn)?;
        Ok::<_, TransferError>(given)
    })?;
    let Some(asker) = open_source(conn, master, asking)? else {
        return Ok(Decided::Approved { doses: 0 });
    };
    asker.run(conn, |scope, conn| {
        // The asker's resident, from its own record of the inquiry.
        let Some(resident_id) = ProvisionRow::requester_resident(conn, &row.inquiry_id)? else {
            return Ok::<_, TransferError>(());
        };
        let Some(resident) = residents::get(scope, conn, &resident_id)? else {
            return Ok(());
        };
        let existing = DoseRow::of_resident(scope, conn, &resident_id)?;
        let person = (resident.birth_date.date(), resident.sex.code());
        let (_, fresh) = copies_for(
            asking,
            source,
            &resident_id,
            person,
            &actor,
            &existing,
            &given,
        );
        DoseRow::insert_many(conn, &fresh)?;
        let mut record = asked.record(asking, REQUESTER, source);
        record.resident_id = Some(resident_id.clone());
        record.answered_at = Some(now());
        record.outcome = prov::PROVIDED.into();
        record.items = ITEMS.into();
        record.dose_count = given.len() as i32;
        ProvisionRow::insert_many(conn, &[record])?;
        audit::append_later(
            conn.db(),
            &actor,
            Entry {
                chain: asking.as_str(),
                action: "transfer.inquire",
                target: Some(format!("resident:{resident_id}")),
                outcome: "ok",
                detail: Some(format!(
                    "inquiry={} source={source} released=1 doses={} copied={}",
                    row.inquiry_id,
                    given.len(),
                    fresh.len()
                )),
            },
        )?;
        notice(
            conn,
            RELEASED_NOTICE,
            format!("account:{}", actor.login_id.as_deref().unwrap_or("-")),
        )
    })?;
    Ok(Decided::Approved { doses: given.len() })
}

/// Approved, about to ask about our resident: the inquiry sent now, as the
/// person who asked.
fn release_asking(
    conn: &mut DbConn,
    master: &MasterKey,
    key: &AuditKey,
    limits: RateLimits,
    holder: &Partition,
    row: &HeldRow,
) -> Result<Decided, TransferError> {
    let request: Request = holder.read(conn, |scope, _| {
        let sealed = row.request_sealed.as_deref().unwrap_or_default();
        let clear = zeroize::Zeroizing::new(scope.open(
            crate::crypto::AadContext {
                table: TABLE,
                column: "request",
                row_id: &row.id,
            },
            sealed,
        )?);
        serde_json::from_slice(&clear).map_err(|_| {
            TransferError::Tenancy(TenancyError::Seal(
                scope.code(),
                crate::crypto::SealError::Malformed,
            ))
        })
    })?;
    let malformed = || {
        TransferError::Tenancy(TenancyError::Seal(
            holder.code(),
            crate::crypto::SealError::Malformed,
        ))
    };
    let inquiry = Inquiry {
        asking: holder.code(),
        source: MunicipalityCode::parse(&row.other_code).map_err(|_| malformed())?,
        number: MyNumber::parse(&request.number).map_err(|_| malformed())?,
        consent: Consent {
            id_document: IdDocument::parse(&request.id_document).map_err(|_| malformed())?,
            checked_by: request.checked_by,
        },
        purpose: InquiryPurpose::parse(&row.purpose).map_err(|_| malformed())?,
        channel: channel_of(&row.channel),
    };
    let actor = asker_of(row);
    let answer = send(conn, master, key, limits, &actor, &inquiry, false)?;
    holder.run(conn, |_, conn| {
        notice(
            conn,
            RELEASED_NOTICE,
            format!("account:{}", actor.login_id.as_deref().unwrap_or("-")),
        )
    })?;
    Ok(Decided::Approved {
        doses: match answer {
            Answer::Matched { doses, .. } => doses.len(),
            _ => 0,
        },
    })
}

fn channel_of(code: &str) -> Channel {
    match code {
        "bulk" => Channel::Bulk,
        "api" => Channel::Api,
        _ => Channel::Window,
    }
}
