//! The two backends: the migration sets agree, go down and up, and a row of
//! every table round-trips.

use crate::helpers::*;
use chrono::NaiveDate;
use diesel::prelude::*;
use vrs::db::models::issuer_keys::IssuerKeyRow;
use vrs::db::models::residents::ResidentRow;
use vrs::db::models::tenants::{TenantKeyRow, TenantRow};
use vrs::db::schema::{self, residents};
use vrs::db::{DbConn, live_columns};

fn sqlite_columns() -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let url = vrs::db::DatabaseUrl::Sqlite(dir.path().join("m.db"));
    let mut conn = vrs::db::Manager::new(url).establish().unwrap();
    vrs::db::migrate(&mut conn).unwrap();
    live_columns(&mut conn).unwrap()
}

fn tables(cols: &[(String, String)]) -> Vec<String> {
    let mut t: Vec<String> = cols.iter().map(|(t, _)| t.clone()).collect();
    t.dedup();
    t
}

#[test]
fn both_migration_sets_give_the_same_tables_and_columns() {
    let sqlite = sqlite_columns();
    let mut expected: Vec<String> = schema::ALL_TABLES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(
        tables(&sqlite),
        expected,
        "SQLite tables vs schema::ALL_TABLES"
    );
    if on_postgres() {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::new(dir.path());
        let mut conn = db.connect();
        vrs::db::migrate(&mut conn).unwrap();
        let pg = live_columns(&mut conn).unwrap();
        assert_eq!(sqlite, pg, "SQLite and PostgreSQL migrations differ");
    } else {
        eprintln!(
            "SQLite run: PostgreSQL side of the comparison runs when TEST_DATABASE_URL is set"
        );
    }
}

#[test]
fn every_migration_goes_down_and_up_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path());
    let mut conn = db.connect();
    let up = vrs::db::migrate(&mut conn).unwrap();
    assert!(up >= 1);
    let with_tables = live_columns(&mut conn).unwrap();
    let down = vrs::db::revert_all(&mut conn).unwrap();
    assert_eq!(down, up);
    assert!(
        live_columns(&mut conn).unwrap().is_empty(),
        "tables left after reverting all"
    );
    assert_eq!(vrs::db::migrate(&mut conn).unwrap(), up);
    assert_eq!(live_columns(&mut conn).unwrap(), with_tables);
}

fn ts(s: &str) -> chrono::NaiveDateTime {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

#[test]
fn a_row_of_every_table_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path());
    let mut conn: DbConn = db.connect();
    vrs::db::migrate(&mut conn).unwrap();

    let tenant = TenantRow {
        municipality_code: "082040".into(),
        status: "active".into(),
        active_key_version: 3,
        enabled_at: ts("2026-11-23 10:11:12.123456"),
        erased_at: Some(ts("2026-12-01 00:00:00")),
    };
    tenant.insert(&mut conn).unwrap();
    assert_eq!(
        TenantRow::find(&mut conn, "082040").unwrap().unwrap(),
        tenant
    );

    let key = TenantKeyRow {
        municipality_code: "082040".into(),
        version: 3,
        wrapped_data_key: vec![0, 1, 2, 255, 254],
        wrapped_index_key: vec![9; 60],
        master_key_id: "abcdef0123456789".into(),
        created_at: ts("2026-11-23 10:11:12"),
    };
    key.insert(&mut conn).unwrap();
    assert_eq!(
        TenantKeyRow::for_municipality(&mut conn, "082040").unwrap(),
        vec![key]
    );

    let resident = ResidentRow {
        municipality_code: "082040".into(),
        id: "6f1c0c1e-0000-4000-8000-000000000001".into(),
        addressee_index: vec![1; 32],
        my_number_index: Some(vec![2; 32]),
        addressee_number_sealed: vec![3, 0, 3],
        my_number_sealed: Some(vec![4; 45]),
        name_kanji_sealed: vec![5; 40],
        name_kana_sealed: vec![6; 41],
        birth_date_sealed: vec![7; 43],
        sex_sealed: vec![8; 34],
        address_sealed: None,
        moved_out_on: Some(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()),
        deceased_on: None,
        address_protected: true,
        created_at: ts("2026-11-23 10:11:12.5"),
        updated_at: ts("2026-11-23 10:11:13"),
    };
    let read: ResidentRow = conn
        .transaction(|c| {
            vrs::db::set_transaction_municipality(c, "082040").unwrap();
            diesel::insert_into(residents::table)
                .values(&resident)
                .execute(c)?;
            residents::table.select(ResidentRow::as_select()).first(c)
        })
        .unwrap();
    assert_eq!(read, resident);

    let issuer = IssuerKeyRow {
        kid: "kid-1".into(),
        status: "retained".into(),
        public_jwk: r#"{"kty":"EC"}"#.into(),
        wrapped_private_key: vec![1, 2, 3],
        master_key_id: "abcdef0123456789".into(),
        crl_version: 7,
        created_at: ts("2026-11-23 10:11:12"),
        retired_at: None,
    };
    issuer.insert(&mut conn).unwrap();
    assert_eq!(IssuerKeyRow::all(&mut conn).unwrap(), vec![issuer]);
}
