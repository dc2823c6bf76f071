//! Demo data: three real municipalities with made-up residents, so a
//! newcomer can try each flow at once. Runs only when asked (`--demo` or
//! `vrs demo`); re-running updates the same residents instead of adding more.

use crate::audit::{Actor, AuditKey};
use crate::crypto::MasterKey;
use crate::db::DbConn;
use crate::domain::{
    AddresseeNumber, BirthDate, KanaName, MunicipalityCode, MyNumber, PersonName, Registry, Sex,
};
use crate::domain::{DoseNumber, TicketKind, TicketNumber};
use crate::domain::{LoginId, NewPassword, Role};
use crate::flows::accounts;
use crate::flows::doses::{self, NewDose};
use crate::flows::municipalities::{self, TenantError};
use crate::flows::residents::{self, NewResident};
use crate::flows::tickets;
use crate::tenancy::Partition;
use chrono::NaiveDate;
use std::fmt::Write;

/// 古河市 (the municipality whose assessment describes VRS), 千代田区, 函館市.
pub const DEMO_MUNICIPALITIES: [&str; 3] = ["082040", "131016", "012025"];
pub const RESIDENTS_PER_MUNICIPALITY: usize = 40;

const FAMILY: [(&str, &str); 10] = [
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("高橋", "タカハシ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"),
    ("山本", "ヤマモト"),
    ("中村", "ナカムラ"),
    ("小林", "コバヤシ"),
    ("加藤", "カトウ"),
];
const GIVEN: [(&str, &str, Sex); 8] = [
    ("太郎", "タロウ", Sex::Male),
    ("花子", "ハナコ", Sex::Female),
    ("健", "ケン", Sex::Male),
    ("陽子", "ヨウコ", Sex::Female),
    ("翔", "ショウ", Sex::Male),
    ("美咲", "ミサキ", Sex::Female),
    ("大輔", "ダイスケ", Sex::Male),
    ("由美", "ユミ", Sex::Female),
];

/// The demo's mover (flow 4): 古河市's resident 1 moved to 千代田区, where
/// they are resident 36 (with no doses there yet). Both records hold the
/// same made-up individual number, so 千代田区's staff can try
/// the transfer inquiry with it and 古河市 as the former municipality.
pub const MOVER_NUMBER: &str = "987654321093";
pub const MOVER_FROM: (&str, usize) = ("082040", 1);
pub const MOVER_TO: (&str, usize) = ("131016", 36);

/// The i-th demo resident of a municipality: deterministic, so re-runs match.
pub fn demo_resident(code: MunicipalityCode, i: usize) -> NewResident {
    let mover = MyNumber::parse(MOVER_NUMBER).ok();
    if (code.as_str(), i) == MOVER_TO
        && let Ok(from) = MunicipalityCode::parse(MOVER_FROM.0)
    {
        let moved = demo_resident(from, MOVER_FROM.1);
        return NewResident {
            addressee_number: AddresseeNumber::parse(&format!("D{:07}", i + 1)).expect("valid"),
            address: Some("一番町1丁目1番".to_string()),
            ..moved
        };
    }
    let number = if (code.as_str(), i) == MOVER_FROM {
        mover
    } else {
        None
    };
    let (fam, fam_kana) = FAMILY[i % FAMILY.len()];
    let (given, given_kana, sex) = GIVEN[(i / FAMILY.len() + i) % GIVEN.len()];
    let seed: u64 = code.as_str()[..5].parse().unwrap_or(0);
    let born = NaiveDate::from_ymd_opt(
        1940 + (i as i32 * 7) % 80,
        1 + (i as u32 % 12),
        1 + (i as u32 * 3) % 28,
    )
    .unwrap_or_default();
    NewResident {
        addressee_number: AddresseeNumber::parse(&format!("D{:07}", i + 1)).expect("valid"),
        my_number: number.or(Some(MyNumber::from_body(
            seed * 1_000_000 + 7_000 + i as u64,
        ))),
        name_kanji: PersonName::parse(&format!("{fam}　{given}")).expect("valid"),
        name_kana: KanaName::parse(&format!("{fam_kana}　{given_kana}")).expect("valid"),
        birth_date: BirthDate::from_stored(born),
        sex,
        address: Some(format!("{}{}丁目{}番", "本町", 1 + i % 5, 1 + i % 20)),
    }
}

/// Most demo residents have had doses (34 of 40): 1 to 3 of them.
pub fn demo_doses(
    code: MunicipalityCode,
    i: usize,
    id: &str,
    ticket: &TicketNumber,
) -> Vec<NewDose> {
    const PRODUCTS: [&str; 3] = ["PFZ_ORIG_12P", "MOD_ORIG", "PFZ_BIV_BA45_12P"];
    let count = (i % 3) + (i % 2);
    let start = NaiveDate::from_ymd_opt(2021, 5, 10).unwrap_or_default();
    let person = demo_resident(code, i);
    (0..count.min(3))
        .map(|n| {
            let on = start + chrono::Duration::days((n * 120 + i * 3) as i64);
            (n, on)
        })
        .map(|(n, on)| NewDose {
            resident_id: id.to_string(),
            dose_number: DoseNumber::new(n as u8 + 1).unwrap_or_default(),
            administered_on: on,
            ticket_number: Some(ticket.as_str().to_string()),
            site_municipality: Some(code),
            site_name: Some(format!("{}集団接種会場", ["中央", "北", "南"][i % 3])),
            product_code: PRODUCTS[n].to_string(),
            lot_number: Some(format!("FA{:04}", 1000 + (i * 7 + n) % 9000)),
            recorded_by: None,
            age_band: Some(crate::flows::dose_checks::age_band(
                person.birth_date.date(),
                on,
            )),
            sex: Some(person.sex.code().to_string()),
        })
        .collect()
}

/// The password of every demo account (demo databases only).
pub const DEMO_PASSWORD: &str = "demo-password-2026";

fn demo_accounts(
    conn: &mut DbConn,
    audit: &AuditKey,
    code: MunicipalityCode,
) -> anyhow::Result<Vec<String>> {
    let mut logins = Vec::new();
    for (suffix, role, name) in [
        ("admin", Role::MunicipalAdmin, "デモ管理者"),
        ("staff", Role::MunicipalStaff, "デモ職員"),
    ] {
        // The demo staff account may do every staff task, so one login
        // shows the whole product.
        let permissions = if role == Role::MunicipalStaff {
            crate::domain::Permission::ALL
                .iter()
                .map(|p| p.code().to_string())
                .collect()
        } else {
            Vec::new()
        };
        let login = LoginId::parse(&format!("{code}-{suffix}"))?;
        let new = accounts::NewAccount {
            login_id: login.clone(),
            role,
            municipality: Some(code),
            prefecture_code: None,
            display_name: name.into(),
            permissions,
            expires_on: None,
            device_name: None,
            responsible_person: None,
            site_id: None,
            must_change_password: false,
        };
        create_account(conn, audit, new, &mut logins)?;
    }
    // A mass vaccination site with one tablet, so the tablet pages can be
    // tried with this municipality's (or any other's) demo tickets.
    let site_name = crate::flows::sites::SiteName::parse("デモ集団接種会場")?;
    let site = match crate::db::models::sites::SiteRow::of_municipality(conn, code.as_str())?
        .into_iter()
        .find(|s| s.name == site_name.as_str())
    {
        Some(s) => s,
        None => crate::flows::sites::register(
            conn,
            audit,
            &Actor::default(),
            code,
            &site_name,
            crate::flows::sites::SiteKind::Mass,
        )?,
    };
    let tablet = accounts::NewAccount {
        login_id: LoginId::parse(&format!("{code}-tablet"))?,
        role: Role::SiteTablet,
        municipality: Some(code),
        prefecture_code: None,
        display_name: "デモ会場タブレット".into(),
        permissions: Vec::new(),
        expires_on: None,
        device_name: Some("受付タブレット1".into()),
        responsible_person: Some("デモ会場責任者".into()),
        site_id: Some(site.id),
        must_change_password: false,
    };
    create_account(conn, audit, tablet, &mut logins)?;
    Ok(logins)
}

fn create_account(
    conn: &mut DbConn,
    audit: &AuditKey,
    new: accounts::NewAccount,
    logins: &mut Vec<String>,
) -> anyhow::Result<()> {
    let login = new.login_id.as_str().to_string();
    match accounts::create(
        conn,
        audit,
        &Actor::default(),
        new,
        Some(NewPassword::parse(DEMO_PASSWORD)?),
    ) {
        Ok(_) | Err(accounts::AccountError::LoginTaken) => logins.push(login),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Known lots of the demo's products, so a site can pick one.
fn demo_lots(conn: &mut DbConn) -> anyhow::Result<()> {
    use crate::db::models::vaccines::LotRow;
    for product in [
        "PFZ_ORIG_12P",
        "MOD_ORIG",
        "PFZ_BIV_BA45_12P",
        "PFZ_JN1_12P",
    ] {
        for n in 0..5 {
            let lot = format!("FA{:04}", 1000 + n);
            if !LotRow::exists(conn, product, &lot)? {
                LotRow {
                    product_code: product.into(),
                    lot_number: lot,
                    expires_on: None,
                    created_by: None,
                    created_at: crate::clock::now(),
                }
                .insert(conn)?;
            }
        }
    }
    Ok(())
}

pub fn seed(conn: &mut DbConn, master: &MasterKey, audit: &AuditKey) -> anyhow::Result<String> {
    let mut out = String::new();
    writeln!(
        out,
        "Demo data (every demo account's password: {DEMO_PASSWORD}):"
    )?;
    demo_lots(conn)?;
    for code in DEMO_MUNICIPALITIES {
        let code = MunicipalityCode::parse(code)?;
        match municipalities::enable(conn, master, code) {
            Ok(_) | Err(TenantError::AlreadyEnabled(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let partition = Partition::open(conn, master, code)?;
        let (added, total) = partition.run(conn, |scope, conn| {
            let mut added = 0;
            for i in 0..RESIDENTS_PER_MUNICIPALITY {
                let (id, new) = residents::register(scope, conn, &demo_resident(code, i))?;
                if !new {
                    continue;
                }
                added += 1;
                let ticket = tickets::issue(
                    scope,
                    conn,
                    &id,
                    TicketKind::default(),
                    DoseNumber::default(),
                    "demo",
                )?;
                doses::append(scope, conn, &demo_doses(code, i, &id, &ticket))?;
            }
            Ok::<_, residents::ResidentError>((added, residents::count(scope, conn)?))
        })?;
        let name = Registry::global()
            .get(&code)
            .map(|m| m.full_name())
            .unwrap_or_default();
        let logins = demo_accounts(conn, audit, code)?;
        writeln!(
            out,
            "  {code} {name}: {total} residents ({added} added now); log in as {}",
            logins.join(" or ")
        )?;
    }
    Ok(out)
}
