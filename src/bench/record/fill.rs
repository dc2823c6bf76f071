//! A bench municipality filled through the bulk insert paths: residents,
//! tickets, a known lot, a site and its tablet.

use super::*;

/// The i-th made-up resident of a bench municipality: unique 宛名番号 and
/// individual number, names and birth dates as the demo's.
pub(super) fn bench_resident(code: MunicipalityCode, i: usize) -> anyhow::Result<NewResident> {
    let mut r = crate::demo::demo_resident(code, i % 1000);
    r.addressee_number = AddresseeNumber::parse(&format!("B{i:09}"))?;
    r.my_number = Some(MyNumber::from_body(10_000_000_000 + i as u64));
    Ok(r)
}

pub fn ticket_number(i: usize) -> String {
    format!("{:010}", 1_000_000_000 + i)
}

/// Enables the municipality and stores, through the bulk insert paths in one
/// partition transaction, `n` residents with one active ticket each (the
/// run's tickets), and as many again with a dose already recorded: a
/// campaign under way, whose doses table has rows and statistics.
pub fn fill_municipality(
    conn: &mut DbConn,
    master: &crate::crypto::MasterKey,
    code: MunicipalityCode,
    n: usize,
) -> anyhow::Result<()> {
    crate::flows::municipalities::enable(conn, master, code)?;
    let partition = crate::tenancy::Partition::open(conn, master, code)?;
    let people = (0..n)
        .map(|i| bench_resident(code, i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let vaccinated = (n..2 * n)
        .map(|i| bench_resident(code, i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let at = crate::clock::now();
    let given_on = chrono::NaiveDate::from_ymd_opt(2024, 10, 15).unwrap_or_default();
    partition.run(conn, |scope, conn| {
        for chunk in vaccinated.chunks(BATCH) {
            let rows: Vec<ResidentRow> = chunk
                .iter()
                .map(|p| residents::new_row(scope, p, crate::domain::new_record_id(), at))
                .collect();
            ResidentRow::insert_many(conn, &rows)?;
            let doses: Vec<NewDose> = rows
                .iter()
                .map(|r| NewDose {
                    resident_id: r.id.clone(),
                    dose_number: crate::domain::DoseNumber::default(),
                    administered_on: given_on,
                    ticket_number: None,
                    site_municipality: Some(code),
                    site_name: Some("ベンチ集団接種会場".into()),
                    product_code: PRODUCT.into(),
                    lot_number: Some(LOT.into()),
                    recorded_by: None,
                    age_band: None,
                    sex: None,
                })
                .collect();
            crate::flows::doses::append(scope, conn, &doses)?;
        }
        for (chunk_no, chunk) in people.chunks(BATCH).enumerate() {
            let mut rows = Vec::with_capacity(chunk.len());
            let mut tickets = Vec::with_capacity(chunk.len());
            for (k, p) in chunk.iter().enumerate() {
                let id = crate::domain::new_record_id();
                tickets.push(crate::bench::active_ticket(
                    code.as_str(),
                    ticket_number(chunk_no * BATCH + k),
                    id.clone(),
                    1,
                    at,
                ));
                rows.push(residents::new_row(scope, p, id, at));
            }
            ResidentRow::insert_many(conn, &rows)?;
            TicketRow::insert_many(conn, &tickets)?;
        }
        Ok::<_, residents::ResidentError>(())
    })?;
    Ok(())
}

/// A known lot of the product, so no dose waits in the queue for an
/// unknown lot.
pub fn add_lot(conn: &mut DbConn) -> anyhow::Result<()> {
    if !LotRow::exists(conn, PRODUCT, LOT)? {
        LotRow {
            product_code: PRODUCT.into(),
            lot_number: LOT.into(),
            expires_on: None,
            created_by: None,
            created_at: crate::clock::now(),
        }
        .insert(conn)?;
    }
    Ok(())
}

/// A mass vaccination site of `code` and a tablet account bound to it;
/// returns the tablet's login and password.
pub fn site_tablet(
    conn: &mut DbConn,
    audit: &crate::audit::AuditKey,
    code: MunicipalityCode,
) -> anyhow::Result<(String, String)> {
    use crate::flows::{accounts, sites};
    let site = sites::register(
        conn,
        audit,
        &Actor::default(),
        code,
        &sites::SiteName::parse("ベンチ集団接種会場")?,
        sites::SiteKind::Mass,
    )?;
    crate::bench::bench_account(
        conn,
        audit,
        accounts::NewAccount {
            login_id: LoginId::parse(&format!("{code}-tablet"))?,
            role: Role::SiteTablet,
            municipality: Some(code),
            prefecture_code: None,
            display_name: "ベンチ会場タブレット".into(),
            permissions: Vec::new(),
            expires_on: None,
            device_name: Some("負荷試験".into()),
            responsible_person: Some("ベンチ会場責任者".into()),
            site_id: Some(site.id),
            must_change_password: false,
        },
    )
}
