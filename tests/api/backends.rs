//! The two backends: the migration sets agree, go down and up, a row of
//! every table round-trips, and lost connections are replaced.

use crate::helpers::*;
use chrono::NaiveDate;
use diesel::prelude::*;
use vrs::db::models::accounts::{AccountRow, PlatformSecretRow, SessionRow, ThrottleRow};
use vrs::db::models::audit_log::{AuditRow, PendingRow};
use vrs::db::models::certificates::{CertificateRow, ChannelClientRow, RevocationRow};
use vrs::db::models::dose_events::DoseEventRow;
use vrs::db::models::doses::DoseRow;
use vrs::db::models::held_inquiries::HeldRow;
use vrs::db::models::import_jobs::ImportJobRow;
use vrs::db::models::issuer_keys::IssuerKeyRow;
use vrs::db::models::job_leases::JobLeaseRow;
use vrs::db::models::log_reviews::{LogReviewRow, ReviewSettingsRow};
use vrs::db::models::networks::NetworkRow;
use vrs::db::models::provisions::{NoticeRow, ProvisionRow};
use vrs::db::models::resident_events::ResidentEventRow;
use vrs::db::models::residents::{NextRow, ResidentRow};
use vrs::db::models::sites::SiteRow;
use vrs::db::models::tenants::{TenantKeyRow, TenantRow};
use vrs::db::models::tickets::TicketRow;
use vrs::db::models::vaccines::{LotRow, ProductRow};
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
        let mut conn = db.owner_conn();
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
    let mut conn = db.owner_conn();
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
    let mut conn: DbConn = db.owner_conn();
    vrs::db::migrate(&mut conn).unwrap();

    let tenant = TenantRow {
        municipality_code: "082040".into(),
        status: "active".into(),
        active_key_version: 3,
        enabled_at: ts("2026-11-23 10:11:12.123456"),
        erased_at: Some(ts("2026-12-01 00:00:00")),
        require_totp: true,
        certificate_channels: "app".into(),
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
        content_mac: Some(vec![10; 32]),
        birth_bucket: Some(vec![11, 2]),
        staged_seq: Some(7),
        protected_from: Some(NaiveDate::from_ymd_opt(2026, 4, 1).unwrap()),
        protected_until: None,
        protection_review: Some(NaiveDate::from_ymd_opt(2027, 3, 31).unwrap()),
    };
    let next = NextRow {
        municipality_code: "082040".into(),
        resident_id: resident.id.clone(),
        seq: 8,
        reindexed: true,
        addressee_index: Some(vec![12; 32]),
        my_number_index: None,
        addressee_number_sealed: vec![13, 0],
        my_number_sealed: None,
        name_kanji_sealed: vec![14; 40],
        name_kana_sealed: vec![15; 41],
        birth_date_sealed: vec![16; 43],
        sex_sealed: vec![17; 34],
        address_sealed: Some(vec![18; 99]),
        content_mac: None,
        birth_bucket: Some(vec![19, 3]),
        updated_at: ts("2026-11-23 10:11:15.75"),
        flags_set: true,
        moved_out_on: Some(NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()),
        deceased_on: None,
        count_delta: -1,
    };
    let ticket = TicketRow {
        municipality_code: "082040".into(),
        ticket_number: "0123456789".into(),
        resident_id: resident.id.clone(),
        kind: 2,
        dose_number: 3,
        status: "invalidated".into(),
        issued_at: ts("2026-11-23 10:11:12.25"),
        issued_by: "import:x".into(),
        invalidated_at: Some(ts("2026-11-24 00:00:00")),
        invalidated_reason: Some("lost".into()),
        staged_seq: Some(7),
        retired_seq: Some(8),
    };
    let event = ResidentEventRow {
        municipality_code: "082040".into(),
        id: "ev-1".into(),
        resident_id: resident.id.clone(),
        at: ts("2026-11-23 10:11:14"),
        kind: "corrected".into(),
        account_id: Some("acc-1".into()),
        detail_sealed: Some(vec![0, 9, 255]),
        staged_seq: Some(8),
    };
    let dose = DoseRow {
        municipality_code: "082040".into(),
        id: "dose-1".into(),
        resident_id: resident.id.clone(),
        dose_number: 2,
        administered_on: NaiveDate::from_ymd_opt(2021, 6, 1).unwrap(),
        recorded_at: ts("2021-06-01 05:06:07.5"),
        ticket_number: Some("0123456789".into()),
        site_municipality_code: Some("131016".into()),
        site_name: Some("千代田区役所".into()),
        product_code: "PFZ_ORIG_12P".into(),
        lot_number: Some("FA1234".into()),
        origin: "transferred".into(),
        origin_municipality_code: Some("131016".into()),
        recorded_by: None,
        status: "pending".into(),
        site_id: Some("site-1".into()),
        idempotency_key: Some("key-0123456789abcdef".into()),
        quality_flags: Some("too_soon,unknown_lot".into()),
        supersedes: None,
        age_band: Some(45),
        sex: Some("2".into()),
    };
    let dose_event = DoseEventRow {
        municipality_code: "082040".into(),
        id: "dev-1".into(),
        dose_id: "dose-1".into(),
        resident_id: resident.id.clone(),
        at: ts("2026-11-23 10:12:00"),
        kind: "queued".into(),
        account_id: None,
        detail: Some("too_soon".into()),
        reason_sealed: Some(vec![1, 2, 3]),
    };
    let job = ImportJobRow {
        municipality_code: "082040".into(),
        id: "job-1".into(),
        kind: "residents".into(),
        status: "rejected".into(),
        account_id: "acc-1".into(),
        login_id: "082040-clerk".into(),
        client_addr: "10.20.0.5".into(),
        file_name: "住民.csv".into(),
        file_sha256: "ab".repeat(32),
        file_bytes: 5_000_000_000,
        encoding: "sjis".into(),
        bytes_done: 4_000_000_000,
        lines_seen: 3_700_000,
        inserted: 1,
        updated: 2,
        unchanged: 3,
        tickets_issued: 4,
        error_count: 5,
        errors: Some("[]".into()),
        message: None,
        created_at: ts("2026-11-23 10:00:00"),
        started_at: Some(ts("2026-11-23 10:00:01")),
        finished_at: None,
        seq: Some(8),
    };
    let provision = ProvisionRow {
        municipality_code: "082040".into(),
        id: "prov-1".into(),
        inquiry_id: "inq-1".into(),
        side: "provider".into(),
        requested_at: ts("2026-11-23 10:00:00.123456"),
        answered_at: Some(ts("2026-11-23 10:00:00.2")),
        requester_code: "131016".into(),
        requester_account_id: Some("acc-9".into()),
        requester_login_id: Some("131016-staff".into()),
        requester_addr: Some("10.1.2.3".into()),
        provider_code: "082040".into(),
        resident_id: Some(resident.id.clone()),
        channel: "bulk".into(),
        procedure_code: "transfer_in_inquiry".into(),
        purpose: "ticket_issuance".into(),
        items: "dose_number,administered_on".into(),
        dose_count: 3,
        outcome: "provided".into(),
        refusal: None,
        consent_form: true,
        id_document: Some("passport".into()),
        id_checked_by: Some("窓口　花子".into()),
        job_id: Some("job-1".into()),
        line_no: Some(4_000_000_000),
    };
    let notice = NoticeRow {
        municipality_code: "082040".into(),
        id: "notice-1".into(),
        at: ts("2026-11-23 10:00:00"),
        kind: "inquiry_rate".into(),
        subject: "municipality:131016".into(),
        detail: None,
        closed_at: Some(ts("2026-11-23 11:00:00")),
        closed_by: Some("082040-admin".into()),
    };
    type Read = (
        ResidentRow,
        TicketRow,
        ResidentEventRow,
        DoseRow,
        ImportJobRow,
        DoseEventRow,
        ProvisionRow,
        NoticeRow,
        NextRow,
    );
    let read: Read = conn
        .transaction(|c| {
            vrs::db::set_transaction_municipality(c, "082040").unwrap();
            diesel::insert_into(residents::table)
                .values(&resident)
                .execute(c)?;
            diesel::insert_into(schema::tickets::table)
                .values(&ticket)
                .execute(c)?;
            diesel::insert_into(schema::resident_events::table)
                .values(&event)
                .execute(c)?;
            diesel::insert_into(schema::doses::table)
                .values(&dose)
                .execute(c)?;
            diesel::insert_into(schema::import_jobs::table)
                .values(&job)
                .execute(c)?;
            diesel::insert_into(schema::dose_events::table)
                .values(&dose_event)
                .execute(c)?;
            diesel::insert_into(schema::provision_records::table)
                .values(&provision)
                .execute(c)?;
            diesel::insert_into(schema::notices::table)
                .values(&notice)
                .execute(c)?;
            diesel::insert_into(schema::resident_next::table)
                .values(&next)
                .execute(c)?;
            Ok::<_, diesel::result::Error>((
                residents::table.select(ResidentRow::as_select()).first(c)?,
                schema::tickets::table
                    .select(TicketRow::as_select())
                    .first(c)?,
                schema::resident_events::table
                    .select(ResidentEventRow::as_select())
                    .first(c)?,
                schema::doses::table.select(DoseRow::as_select()).first(c)?,
                schema::import_jobs::table
                    .select(ImportJobRow::as_select())
                    .first(c)?,
                schema::dose_events::table
                    .select(DoseEventRow::as_select())
                    .first(c)?,
                schema::provision_records::table
                    .select(ProvisionRow::as_select())
                    .first(c)?,
                schema::notices::table
                    .select(NoticeRow::as_select())
                    .first(c)?,
                schema::resident_next::table
                    .select(NextRow::as_select())
                    .first(c)?,
            ))
        })
        .unwrap();
    assert_eq!(
        read,
        (
            resident, ticket, event, dose, job, dose_event, provision, notice, next
        )
    );

    let lease = JobLeaseRow {
        job_id: "job-1".into(),
        municipality_code: "082040".into(),
        runner: "runner-a".into(),
        heartbeat_at: ts("2026-11-23 10:00:02.5"),
    };
    lease.insert(&mut conn).unwrap();
    assert_eq!(
        JobLeaseRow::dead(&mut conn, "runner-a", ts("2000-01-01 00:00:00")).unwrap(),
        vec![lease]
    );

    let site = SiteRow {
        id: "site-1".into(),
        municipality_code: "082040".into(),
        name: "古河市集団接種会場".into(),
        kind: "mass".into(),
        created_by: "acc-0".into(),
        created_at: ts("2026-11-23 10:00:00"),
        closed_at: Some(ts("2026-11-24 10:00:00")),
    };
    site.insert(&mut conn).unwrap();
    assert_eq!(SiteRow::find(&mut conn, "site-1").unwrap(), Some(site));
    let product = ProductRow {
        product_code: "TEST_PRODUCT".into(),
        manufacturer_ja: "試験".into(),
        manufacturer_en: "Test".into(),
        product_ja: "試験ワクチン".into(),
        product_en: "Test vaccine".into(),
        vaccine_type: "mRNA".into(),
        target: "JN.1".into(),
        age_group: "adult".into(),
        cvx: None,
        primary_doses: 3,
        dose2_min_days: Some(19),
        dose3_min_days: Some(56),
        booster_min_months: 6,
        in_use: false,
        created_at: ts("2026-11-23 10:00:00"),
    };
    ProductRow::insert_many(&mut conn, std::slice::from_ref(&product)).unwrap();
    assert_eq!(
        ProductRow::find(&mut conn, "TEST_PRODUCT").unwrap(),
        Some(product)
    );
    let lot = LotRow {
        product_code: "TEST_PRODUCT".into(),
        lot_number: "AB-12".into(),
        expires_on: Some(NaiveDate::from_ymd_opt(2027, 1, 31).unwrap()),
        created_by: Some("acc-0".into()),
        created_at: ts("2026-11-23 10:00:00"),
    };
    lot.insert(&mut conn).unwrap();
    assert_eq!(
        LotRow::of_product(&mut conn, "TEST_PRODUCT").unwrap(),
        vec![lot]
    );

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

    let account = AccountRow {
        id: "acc-1".into(),
        login_id: "082040-clerk".into(),
        role: "municipal_staff".into(),
        municipality_code: Some("082040".into()),
        prefecture_code: Some("08".into()),
        display_name: "古河 花子".into(),
        permissions: "residents,my_number".into(),
        password_hash: "$argon2id$v=19$m=65536,t=2,p=1$abc$def".into(),
        must_change_password: true,
        expires_on: Some(NaiveDate::from_ymd_opt(2027, 3, 31).unwrap()),
        disabled_at: Some(ts("2026-11-24 09:00:00")),
        device_name: Some("受付タブレット1".into()),
        responsible_person: Some("責任者".into()),
        failed_logins: 3,
        locked_until: Some(ts("2026-11-23 12:00:00")),
        last_login_at: Some(ts("2026-11-22 08:30:00.25")),
        last_login_addr: Some("10.20.0.5".into()),
        created_by: Some("acc-0".into()),
        created_at: ts("2026-11-01 00:00:00"),
        totp_secret_wrapped: Some(vec![1, 2, 3]),
        totp_last_step: Some(59_000_000),
        site_id: None,
    };
    account.insert(&mut conn).unwrap();
    assert_eq!(
        AccountRow::find(&mut conn, "acc-1").unwrap().unwrap(),
        account
    );
    // Its earlier passwords: three kept, two asked for, the oldest gone.
    for h in [
        "$argon2id$one",
        "$argon2id$two",
        "$argon2id$three",
        "$argon2id$four",
    ] {
        vrs::db::models::accounts::PasswordHistory::push(&mut conn, "acc-1", h, 3).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert_eq!(
        vrs::db::models::accounts::PasswordHistory::recent(&mut conn, "acc-1", 5).unwrap(),
        ["$argon2id$four", "$argon2id$three", "$argon2id$two"]
    );

    let session = SessionRow {
        token_hash: "h".repeat(64),
        account_id: "acc-1".into(),
        csrf_token: "csrf".into(),
        client_addr: "::1".into(),
        created_at: ts("2026-11-23 10:00:00"),
        last_seen_at: ts("2026-11-23 10:05:00"),
        previous_login_at: Some(ts("2026-11-22 08:30:00")),
        previous_login_addr: Some("10.20.0.5".into()),
    };
    session.insert(&mut conn).unwrap();
    assert_eq!(
        SessionRow::find(&mut conn, &session.token_hash)
            .unwrap()
            .unwrap(),
        session
    );

    let throttle = ThrottleRow {
        throttle_key: "addr:10.0.0.1".into(),
        failures: 4,
        window_start: ts("2026-11-23 10:00:00"),
        locked_until: Some(ts("2026-11-23 10:15:00")),
    };
    throttle.save(&mut conn).unwrap();
    assert_eq!(
        ThrottleRow::find(&mut conn, "addr:10.0.0.1")
            .unwrap()
            .unwrap(),
        throttle
    );

    let line = AuditRow {
        chain: "082040".into(),
        seq: 9_000_000_000,
        at: ts("2026-11-23 10:00:00.123456"),
        account_id: Some("acc-1".into()),
        login_id: Some("082040-clerk".into()),
        client_addr: Some("10.20.0.5".into()),
        action: "login".into(),
        target: None,
        outcome: "ok".into(),
        detail: Some("reason=x".into()),
        prev_mac: "genesis".into(),
        mac: "ab".repeat(32),
    };
    line.insert(&mut conn).unwrap();
    assert_eq!(
        AuditRow::last_of_chain(&mut conn, "082040")
            .unwrap()
            .unwrap(),
        line
    );

    let waiting = PendingRow {
        chain: "131016".into(),
        id: "0193a0c0-0000-7000-8000-000000000001".into(),
        at: ts("2026-11-23 10:00:00.654321"),
        account_id: Some("acc-2".into()),
        login_id: Some("131016-tablet".into()),
        client_addr: None,
        action: "doses.record".into(),
        target: Some("dose:x".into()),
        outcome: "ok".into(),
        detail: None,
    };
    waiting.insert(&mut conn).unwrap();
    assert_eq!(PendingRow::chains(&mut conn).unwrap(), vec!["131016"]);
    assert_eq!(
        PendingRow::oldest_of_chain(&mut conn, "131016", 10).unwrap(),
        vec![waiting]
    );

    let secret = PlatformSecretRow {
        name: "audit-mac-key".into(),
        wrapped_value: vec![0, 255, 7],
        master_key_id: "abcdef0123456789".into(),
        created_at: ts("2026-11-23 10:00:00"),
    };
    secret.insert(&mut conn).unwrap();
    assert_eq!(PlatformSecretRow::all(&mut conn).unwrap(), vec![secret]);

    let network = NetworkRow {
        municipality_code: "082040".into(),
        cidr: "10.20.0.0/16".into(),
        label: "本庁舎".into(),
        created_by: Some("acc-0".into()),
        created_at: ts("2026-11-23 10:00:00"),
    };
    network.insert(&mut conn).unwrap();
    assert_eq!(
        NetworkRow::of_municipality(&mut conn, "082040").unwrap(),
        vec![network]
    );
    let review = LogReviewRow {
        municipality_code: "082040".into(),
        id: "review-1".into(),
        kind: "accounts".into(),
        period_from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        period_until: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
        reviewed_by: "acc-0".into(),
        reviewer_login: "082040-admin".into(),
        at: ts("2026-11-30 10:00:00.123456"),
        note: "退職者2名のアカウントを停止済み".into(),
    };
    review.insert(&mut conn).unwrap();
    assert_eq!(
        LogReviewRow::of_municipality(&mut conn, "082040", 10).unwrap(),
        vec![review]
    );
    let request = vrs::db::models::export_requests::ExportRequestRow {
        municipality_code: "082040".into(),
        id: "export-1".into(),
        kind: "provisions".into(),
        subject: Some("res-1".into()),
        requested_by: "acc-1".into(),
        requester_login: "082040-clerk".into(),
        requested_at: ts("2026-11-30 10:00:00.5"),
        status: "used".into(),
        decided_by: Some("acc-0".into()),
        decided_login: Some("082040-admin".into()),
        decided_at: Some(ts("2026-11-30 11:00:00")),
    };
    request.insert(&mut conn).unwrap();
    assert_eq!(
        vrs::db::models::export_requests::ExportRequestRow::of_municipality(&mut conn, "082040", 5)
            .unwrap(),
        vec![request]
    );
    let settings = ReviewSettingsRow {
        working_from: 7,
        working_until: 22,
        volume_threshold: 2_000_000_000,
        review_every_days: 90,
        access_record_names: false,
    };
    settings.save(&mut conn, "082040").unwrap();
    assert_eq!(
        ReviewSettingsRow::find(&mut conn, "082040").unwrap(),
        Some(settings)
    );
    let certificate = CertificateRow {
        municipality_code: "082040".into(),
        id: "3F9A-01BC-77D2-E410".into(),
        resident_id: "res-1".into(),
        kind: "overseas".into(),
        channel: "kiosk".into(),
        issued_at: ts("2026-11-23 10:00:00.654321"),
        issued_on: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
        issued_by: "client-1".into(),
        kid: "kid-1".into(),
        rid: "AAECAwQFBgc".into(),
        dose_ids: "d1,d2".into(),
        card_sealed: vec![0, 255, 7],
        passport_sealed: Some(vec![9, 8]),
        id_document: None,
        id_checked_by: Some("窓口　花子".into()),
        status: "revoked".into(),
        revoked_at: Some(ts("2026-11-24 09:00:00")),
        revoked_reason: Some("dose_changed".into()),
    };
    let read = conn
        .transaction(|c| {
            vrs::db::set_transaction_municipality(c, "082040").unwrap();
            diesel::insert_into(schema::certificates::table)
                .values(&certificate)
                .execute(c)?;
            schema::certificates::table
                .select(CertificateRow::as_select())
                .first(c)
        })
        .unwrap();
    assert_eq!(read, certificate);
    let revocation = RevocationRow {
        kid: "kid-1".into(),
        rid: "AAECAwQFBgc".into(),
        revoked_at: ts("2026-11-24 09:00:00.5"),
    };
    revocation.insert(&mut conn).unwrap();
    assert_eq!(
        RevocationRow::of_key(&mut conn, "kid-1").unwrap(),
        vec![revocation]
    );
    let client = ChannelClientRow {
        id: "client-1".into(),
        name: "証明書交付センター".into(),
        kind: "kiosk".into(),
        networks: "10.20.0.0/16,192.0.2.0/24".into(),
        secret_hash: vec![1; 32],
        created_at: ts("2026-11-23 10:00:00"),
        created_by: "op-1".into(),
        revoked_at: Some(ts("2026-11-25 00:00:00")),
    };
    client.insert(&mut conn).unwrap();
    assert_eq!(ChannelClientRow::all(&mut conn).unwrap(), vec![client]);
    // The statistics' counts (kept by triggers; written here directly).
    let day = NaiveDate::from_ymd_opt(2021, 6, 1).unwrap();
    {
        use schema::{stat_daily, stat_demographic, stat_monthly, stat_municipal, stat_open};
        diesel::insert_into(stat_daily::table)
            .values((
                stat_daily::prefecture_code.eq("08"),
                stat_daily::administered_on.eq(day),
                stat_daily::dose_number.eq(2),
                stat_daily::n.eq(5_000_000_000i64),
            ))
            .execute(&mut conn)
            .unwrap();
        diesel::insert_into(stat_monthly::table)
            .values((
                stat_monthly::prefecture_code.eq("08"),
                stat_monthly::month.eq("2021-06"),
                stat_monthly::dose_number.eq(2),
                stat_monthly::product_code.eq("MOD_ORIG"),
                stat_monthly::n.eq(9i64),
            ))
            .execute(&mut conn)
            .unwrap();
        diesel::insert_into(stat_municipal::table)
            .values((
                stat_municipal::municipality_code.eq("082040"),
                stat_municipal::month.eq("2021-06"),
                stat_municipal::dose_number.eq(2),
                stat_municipal::n.eq(7i64),
            ))
            .execute(&mut conn)
            .unwrap();
        diesel::insert_into(stat_demographic::table)
            .values((
                stat_demographic::prefecture_code.eq("08"),
                stat_demographic::month.eq("2021-06"),
                stat_demographic::age_band.eq(-1),
                stat_demographic::sex.eq("9"),
                stat_demographic::n.eq(3i64),
            ))
            .execute(&mut conn)
            .unwrap();
        diesel::insert_into(stat_open::table)
            .values((
                stat_open::prefecture_code.eq("08"),
                stat_open::administered_on.eq(day),
                stat_open::dose_number.eq(2),
                stat_open::age_group.eq("65-"),
                stat_open::sex.eq("2"),
                stat_open::n.eq(11i64),
            ))
            .execute(&mut conn)
            .unwrap();
        let daily: (String, NaiveDate, i32, i64, i16) = stat_daily::table.first(&mut conn).unwrap();
        assert_eq!(daily, ("08".into(), day, 2, 5_000_000_000, 0));
        let monthly: (String, String, i32, String, i64, i16) =
            stat_monthly::table.first(&mut conn).unwrap();
        assert_eq!(
            monthly,
            ("08".into(), "2021-06".into(), 2, "MOD_ORIG".into(), 9, 0)
        );
        let municipal: (String, String, i32, i64, i16) =
            stat_municipal::table.first(&mut conn).unwrap();
        assert_eq!(municipal, ("082040".into(), "2021-06".into(), 2, 7, 0));
        let demographic: (String, String, i32, String, i64, i16) =
            stat_demographic::table.first(&mut conn).unwrap();
        assert_eq!(
            demographic,
            ("08".into(), "2021-06".into(), -1, "9".into(), 3, 0)
        );
        let open: (String, NaiveDate, i32, String, String, i64, i16) =
            stat_open::table.first(&mut conn).unwrap();
        assert_eq!(open, ("08".into(), day, 2, "65-".into(), "2".into(), 11, 0));
    }
    // The municipality's own kept counts (the resident above has moved
    // out and the dose is pending, so the triggers counted neither).
    {
        use schema::{dose_progress, queue_days, resident_counts};
        conn.transaction(|c| {
            vrs::db::set_transaction_municipality(c, "082040").unwrap();
            diesel::insert_into(resident_counts::table)
                .values((
                    resident_counts::municipality_code.eq("082040"),
                    resident_counts::staged_seq.eq(0i64),
                    resident_counts::n.eq(3_000_000_000i64),
                ))
                .execute(c)?;
            diesel::insert_into(dose_progress::table)
                .values((
                    dose_progress::municipality_code.eq("082040"),
                    dose_progress::month.eq("2021-06"),
                    dose_progress::dose_number.eq(2),
                    dose_progress::n.eq(4i64),
                ))
                .execute(c)?;
            let residents: Vec<(String, i64, i64)> = resident_counts::table
                .order(resident_counts::staged_seq)
                .load(c)?;
            // The staged move-out above counts under its import's number.
            assert_eq!(
                residents,
                [
                    ("082040".into(), 0, 3_000_000_000),
                    ("082040".into(), 8, -1)
                ]
            );
            let progress: (String, String, i32, i64, i16) = dose_progress::table.first(c)?;
            assert_eq!(progress, ("082040".into(), "2021-06".into(), 2, 4, 0));
            // The recount migration 000018 asks for, not yet run.
            let owed: Vec<chrono::NaiveDateTime> = schema::counts_owed::table
                .select(schema::counts_owed::since)
                .load(c)?;
            assert_eq!(owed.len(), 1);
            // The queued event above entered the queue on its day in Japan
            // (in its connection's shard on PostgreSQL).
            let queue: (String, NaiveDate, String, i64) = queue_days::table
                .select((
                    queue_days::municipality_code,
                    queue_days::day,
                    queue_days::flags,
                    queue_days::n,
                ))
                .first(c)?;
            assert_eq!(
                queue,
                (
                    "082040".into(),
                    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
                    "too_soon,unknown_lot".into(),
                    1
                )
            );
            Ok::<_, diesel::result::Error>(())
        })
        .unwrap();
    }
    let held = HeldRow {
        municipality_code: "082040".into(),
        id: "held-1".into(),
        inquiry_id: "inq-1".into(),
        direction: "asking".into(),
        other_code: "131016".into(),
        resident_id: "res-1".into(),
        channel: "bulk".into(),
        purpose: "ticket_issuance".into(),
        requested_at: ts("2026-11-23 10:00:00.123456"),
        requested_by: Some("acc-1".into()),
        requester_login: Some("082040-clerk".into()),
        request_sealed: Some(vec![0, 1, 2, 255]),
        status: "approved".into(),
        decided_by: Some("acc-0".into()),
        decided_login: Some("082040-admin".into()),
        decided_at: Some(ts("2026-11-24 09:00:00.5")),
    };
    conn.transaction(|c| {
        vrs::db::set_transaction_municipality(c, "082040").unwrap();
        diesel::insert_into(schema::held_inquiries::table)
            .values(&held)
            .execute(c)?;
        let back: HeldRow = schema::held_inquiries::table
            .select(HeldRow::as_select())
            .first(c)?;
        assert_eq!(back, held);
        Ok::<_, diesel::result::Error>(())
    })
    .unwrap();
    let item = vrs::db::models::reconcile_items::ItemRow {
        municipality_code: "082040".into(),
        job_id: "job-r".into(),
        n: 7,
        kind: "new".into(),
        line: Some(12),
        resident_id: None,
        addressee_sealed: Some(vec![3, 0, 255]),
        settled_at: Some(ts("2026-11-24 09:00:00.25")),
        settled_by: Some("acc-1".into()),
        settled_as: Some("kept".into()),
    };
    let line = vrs::db::models::dose_batch_lines::BatchLineRow {
        municipality_code: "082040".into(),
        job_id: "job-d".into(),
        line: 3,
        ticket_number: "0123456789".into(),
        administered_on: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        outcome: "queued".into(),
        dose_id: Some("dose-9".into()),
        dose_number: Some(12),
        rules: Some("too_soon,unknown_lot".into()),
        refusal: None,
    };
    conn.transaction(|c| {
        vrs::db::set_transaction_municipality(c, "082040").unwrap();
        diesel::insert_into(schema::reconcile_items::table)
            .values(&item)
            .execute(c)?;
        diesel::insert_into(schema::dose_batch_lines::table)
            .values(&line)
            .execute(c)?;
        let back: vrs::db::models::reconcile_items::ItemRow = schema::reconcile_items::table
            .select(vrs::db::models::reconcile_items::ItemRow::as_select())
            .first(c)?;
        assert_eq!(back, item);
        let notice = vrs::db::models::notice_items::NoticeItemRow {
            municipality_code: "082040".into(),
            job_id: "job-n".into(),
            n: 1,
            resident_id: "res-1".into(),
            ticket_number: "0123456789".into(),
            dose_number: 11,
            due_from: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            overdue: true,
        };
        diesel::insert_into(schema::notice_items::table)
            .values(&notice)
            .execute(c)?;
        let back: vrs::db::models::notice_items::NoticeItemRow = schema::notice_items::table
            .select(vrs::db::models::notice_items::NoticeItemRow::as_select())
            .first(c)?;
        assert_eq!(back, notice);
        let back: vrs::db::models::dose_batch_lines::BatchLineRow = schema::dose_batch_lines::table
            .select(vrs::db::models::dose_batch_lines::BatchLineRow::as_select())
            .first(c)?;
        assert_eq!(back, line);
        Ok::<_, diesel::result::Error>(())
    })
    .unwrap();
    // Every table of the schema was covered above.
    assert_eq!(schema::ALL_TABLES.len(), 42);

    // A database upgraded with events already stored gets the queue's
    // history the trigger would have kept: migration 000018 starts it from
    // nothing and asks for the recount that counts them.
    let history = |conn: &mut DbConn| {
        use schema::queue_days;
        queue_days::table
            .group_by((
                queue_days::municipality_code,
                queue_days::day,
                queue_days::flags,
            ))
            .select((
                queue_days::municipality_code,
                queue_days::day,
                queue_days::flags,
                vrs::db::sum_n(),
            ))
            .load::<(String, NaiveDate, String, i64)>(conn)
            .unwrap()
    };
    let kept = history(&mut conn);
    assert_eq!(kept.len(), 1);
    {
        // Back to before 000018 (the later migrations go first, newest first).
        use diesel_migrations::MigrationHarness;
        let mut reverted = Vec::new();
        while reverted.last().map(String::as_str) != Some("20261207000018") {
            let v = match &mut conn {
                DbConn::Sqlite(c) => c
                    .revert_last_migration(vrs::db::SQLITE_MIGRATIONS)
                    .map(|v| v.to_string()),
                DbConn::Postgresql(c) => c
                    .revert_last_migration(vrs::db::POSTGRES_MIGRATIONS)
                    .map(|v| v.to_string()),
            }
            .unwrap();
            reverted.push(v);
        }
        assert!(reverted.len() >= 2, "{reverted:?}");
        assert!(reverted.windows(2).all(|w| w[0] > w[1]), "{reverted:?}");
    }
    vrs::db::migrate(&mut conn).unwrap();
    // The history starts from nothing; the recount the migration asked for
    // brings it back, once.
    assert!(history(&mut conn).is_empty());
    assert!(vrs::db::settle_counts(&mut conn).unwrap());
    assert_eq!(history(&mut conn), kept);
    assert!(!vrs::db::settle_counts(&mut conn).unwrap());
}

/// A restart or failover of PostgreSQL ends the server processes behind the
/// pool's connections. Checkouts are not tested while nothing was lost, so
/// the first request after it may fail; the loss is noticed, the lost
/// connections are dropped, and from the next request on the application
/// answers again, without a restart of its own. (A SQLite file is not lost.)
#[tokio::test]
async fn lost_database_connections_are_replaced() {
    if !on_postgres() {
        return;
    }
    let app = spawn_app().await;
    for _ in 0..3 {
        assert_eq!(app.get("/health").await.status(), 200);
    }
    assert!(
        app.db.terminate_connections() > 0,
        "the pool had connections"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(app.get("/health").await.status().as_u16());
    }
    assert!(
        statuses[1..].iter().all(|s| *s == 200),
        "only the first request after the loss may fail: {statuses:?}"
    );
}

/// A dose answered as recorded is on disk: every connection of the pool
/// commits durably (SQLite syncs its log at each commit; PostgreSQL
/// sessions overrule a cluster's `synchronous_commit=off`), and a server
/// whose database cannot keep that promise (the test cluster runs with
/// `fsync=off` for speed) says so when it starts.
#[tokio::test]
async fn every_pooled_connection_commits_durably() {
    let app = spawn_app().await;
    let pool = &app.state.pool;
    let held: Vec<_> = (0..pool.max_size()).map(|_| pool.get().unwrap()).collect();
    assert_eq!(held.len() as u32, pool.max_size());
    let mut fsync_off = false;
    for mut conn in held {
        let d = vrs::db::durability(&mut conn).unwrap();
        if on_postgres() {
            assert!(
                d.settings.contains("synchronous_commit=on"),
                "{}",
                d.settings
            );
            fsync_off |= d.settings.contains("fsync=off");
        } else {
            assert!(d.durable, "{}", d.settings);
            assert_eq!(d.settings, "synchronous=FULL, journal_mode=WAL");
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path());
    let server =
        ServerProcess::start(vrs_cmd(dir.path(), &db).args(["serve", "--bind", "127.0.0.1:0"]));
    let (_, logged) = server.stop();
    let warned = logged.contains("does not put a commit on disk");
    assert_eq!(warned, fsync_off, "{logged}");
}
