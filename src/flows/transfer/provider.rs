//! The asked municipality's side of an inquiry: its partition opened, the
//! person found and their doses given, its provision record and the answer's
//! line in its operation log, and the copies the asker keeps.

use super::*;

/// The source's partition, or none when the code names no active tenant.
pub fn open_source(
    conn: &mut DbConn,
    master: &MasterKey,
    code: MunicipalityCode,
) -> Result<Option<Partition>, TransferError> {
    match Partition::open(conn, master, code) {
        Ok(p) => Ok(Some(p)),
        Err(TenancyError::NotATenant(_) | TenancyError::Erased(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The source's side: looks for the number in its own partition only, and
/// keeps a provision record either way — about its resident on a match,
/// about nobody otherwise. The number itself is not kept.
pub fn answer(
    conn: &mut DbConn,
    master: &MasterKey,
    asked: &Asked<'_>,
    source: MunicipalityCode,
    number: &MyNumber,
) -> Result<Option<Vec<GivenDose>>, TransferError> {
    let Some(partition) = open_source(conn, master, source)? else {
        return Ok(None);
    };
    partition.run(conn, |scope, conn| {
        let given = find_and_give(scope, conn, std::slice::from_ref(number))?
            .into_iter()
            .next()
            .flatten();
        let (record, line, given) = settle_answer(scope, conn, asked, scope.code(), given)?;
        ProvisionRow::insert_many(conn, std::slice::from_ref(&record))?;
        if let Some(line) = line {
            line.insert(conn)?;
        }
        Ok(given.map(|(_, doses)| doses))
    })
}

/// The source's provision record of one answer.
pub fn provider_record(
    asked: &Asked<'_>,
    source: MunicipalityCode,
    given: Option<&(String, Vec<GivenDose>)>,
) -> ProvisionRow {
    let mut record = asked.record(source, PROVIDER, source);
    record.answered_at = Some(now());
    if let Some((resident_id, doses)) = given {
        record.resident_id = Some(resident_id.clone());
        record.outcome = prov::PROVIDED.into();
        record.items = ITEMS.into();
        record.dose_count = doses.len() as i32;
    }
    record
}

/// The source's log line of a match (a read of its resident's record),
/// written to be chained moments later. For a protected resident it does
/// not name who asked: that is where the person lives now.
pub fn answer_line(
    asked: &Asked<'_>,
    source: MunicipalityCode,
    resident_id: &str,
    doses: usize,
    protected: bool,
) -> PendingRow {
    let from = if protected {
        "withheld protected=1".to_string()
    } else {
        asked.asking.to_string()
    };
    // The asking account names its municipality too.
    let anonymous = Actor::default();
    let actor = if protected { &anonymous } else { asked.actor };
    audit::waiting_line(
        actor,
        Entry {
            chain: source.as_str(),
            action: "transfer.answer",
            target: Some(format!("resident:{resident_id}")),
            outcome: "ok",
            detail: Some(format!(
                "inquiry={} from={from} purpose={} doses={doses}",
                asked.inquiry_id,
                MyNumberPurpose::AnsweringInquiry.code()
            )),
        },
    )
}

/// For each number, the source's resident holding it and their valid doses.
/// (A miss does less work than a hit; the window and the API hide the
/// difference behind the answer floor.)
pub fn find_and_give(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    numbers: &[MyNumber],
) -> Result<Vec<Given>, TransferError> {
    // Each number under every index key the source holds (more than one
    // while it rotates its keys).
    let indexes: Vec<Vec<Vec<u8>>> = numbers.iter().map(|n| scope.my_number_indexes(n)).collect();
    let all: Vec<Vec<u8>> = indexes.iter().flatten().cloned().collect();
    let holders = ResidentRow::holders_of_numbers(scope, conn, &all)?;
    let ids: Vec<String> = holders.iter().map(|(id, _)| id.clone()).collect();
    let mut doses = DoseRow::of_residents(scope, conn, &ids)?;
    doses.retain(|d| d.status == dose_rows::VALID);
    Ok(indexes
        .iter()
        .map(|idx| {
            holders
                .iter()
                .find(|(_, i)| idx.contains(i))
                .map(|(id, _)| {
                    let mine = doses
                        .iter()
                        .filter(|d| &d.resident_id == id)
                        .map(GivenDose::of)
                        .collect();
                    (id.clone(), mine)
                })
        })
        .collect())
}

/// The asking partition's copies of the given doses, marked with their
/// origin, and those of them not already copied by an earlier inquiry.
pub fn copies_for(
    asking: MunicipalityCode,
    source: MunicipalityCode,
    resident_id: &str,
    (born, sex): (NaiveDate, &str),
    actor: &Actor,
    existing: &[DoseRow],
    given: &[GivenDose],
) -> (Vec<DoseRow>, Vec<DoseRow>) {
    let at = now();
    let mut all = Vec::with_capacity(given.len());
    let mut fresh = Vec::new();
    for g in given {
        let earlier = existing.iter().find(|d| {
            d.origin == dose_rows::TRANSFERRED
                && d.origin_municipality_code.as_deref() == Some(source.as_str())
                && d.dose_number == g.dose_number
                && d.administered_on == g.administered_on
                && d.product_code == g.product_code
        });
        if let Some(d) = earlier {
            all.push(d.clone());
            continue;
        }
        let row = DoseRow {
            municipality_code: asking.to_string(),
            id: crate::domain::new_record_id(),
            resident_id: resident_id.to_string(),
            dose_number: g.dose_number,
            administered_on: g.administered_on,
            recorded_at: at,
            ticket_number: None,
            site_municipality_code: g.site_municipality_code.clone(),
            site_name: g.site_name.clone(),
            product_code: g.product_code.clone(),
            lot_number: g.lot_number.clone(),
            origin: dose_rows::TRANSFERRED.into(),
            origin_municipality_code: Some(source.to_string()),
            recorded_by: actor.account_id.clone(),
            status: dose_rows::VALID.into(),
            site_id: None,
            idempotency_key: None,
            quality_flags: None,
            supersedes: None,
            age_band: Some(crate::flows::dose_checks::age_band(born, g.administered_on)),
            sex: Some(sex.to_string()),
        };
        all.push(row.clone());
        fresh.push(row);
    }
    (all, fresh)
}
