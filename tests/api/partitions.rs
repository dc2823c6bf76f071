//! The encrypted partition: ciphertext at rest, ciphertext bound to its place,
//! key rotation, erasure, and the database refusing other municipalities' rows.

use crate::helpers::*;
use diesel::prelude::*;
use vrs::crypto::{MasterKey, MasterKeySource};
use vrs::db::DbConn;
use vrs::db::models::residents::ResidentRow;
use vrs::db::schema::residents;
use vrs::demo::{DEMO_MUNICIPALITIES, RESIDENTS_PER_MUNICIPALITY, demo_resident};
use vrs::flows::residents::{self as res, MyNumberPurpose};
use vrs::tenancy::Partition;

fn rows_of(conn: &mut DbConn, master: &MasterKey, muni: &str) -> Vec<ResidentRow> {
    let p = Partition::open(conn, master, code(muni)).unwrap();
    p.run(conn, |scope, conn| {
        let mut all = Vec::new();
        let mut after = String::new();
        loop {
            let page = ResidentRow::page_of_municipality(scope, conn, &after, 1000)?;
            match page.last() {
                Some(l) => after = l.id.clone(),
                None => break,
            }
            all.extend(page);
        }
        Ok::<_, vrs::db::DbError>(all)
    })
    .unwrap()
}

/// Every byte the database holds about residents, as text and as hex.
fn database_bytes(app: &TestApp) -> Vec<u8> {
    let mut out = Vec::new();
    match app.db.sqlite_path() {
        Some(path) => {
            // Read the main file and the write-ahead log as they lie on disk.
            for suffix in ["", "-wal"] {
                let p = format!("{}{}", path.display(), suffix);
                if let Ok(b) = std::fs::read(&p) {
                    out.extend(b);
                }
            }
        }
        None => {
            #[derive(QueryableByName)]
            struct Line {
                #[diesel(sql_type = diesel::sql_types::Text)]
                line: String,
            }
            let mut conn = app.conn();
            for muni in DEMO_MUNICIPALITIES {
                conn.transaction(|c| {
                    vrs::db::set_transaction_municipality(c, muni).unwrap();
                    for table in vrs::db::schema::ALL_TABLES {
                        let lines: Vec<Line> = diesel::sql_query(format!(
                            "SELECT row_to_json(t)::text AS line FROM {table} t"
                        ))
                        .load(c)?;
                        for l in lines {
                            out.extend(l.line.into_bytes());
                        }
                    }
                    Ok::<_, diesel::result::Error>(())
                })
                .unwrap();
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn personal_fields_are_ciphertext_at_rest() {
    let app = spawn_app().await;
    app.seed_demo();
    let bytes = database_bytes(&app);
    assert!(bytes.len() > 10_000, "the scan must see the stored rows");
    let person = demo_resident(code("082040"), 3);
    let name = person.name_kanji.as_str().as_bytes();
    let kana = person.name_kana.as_str().as_bytes();
    let digits = person.my_number.as_ref().unwrap().expose_digits();
    let address = person.address.as_ref().unwrap().as_bytes();
    for (what, needle) in [
        ("name", name),
        ("kana", kana),
        ("individual number", &digits[..]),
        ("address", address),
    ] {
        assert!(!contains(&bytes, needle), "{what} found in clear");
        let hexed = hex::encode(needle);
        assert!(
            !contains(&bytes, hexed.as_bytes()),
            "{what} found hex-encoded"
        );
    }
    // The same rows do open with the key: the scan looked at real data.
    let mut conn = app.conn();
    let p = Partition::open(&mut conn, app.master(), code("082040")).unwrap();
    let found = p
        .run(&mut conn, |s, c| {
            res::find_by_my_number(
                s,
                c,
                person.my_number.as_ref().unwrap(),
                MyNumberPurpose::CertificateLookup,
            )
        })
        .unwrap()
        .expect("resident found through the blind index");
    assert_eq!(found.name_kanji.as_str(), person.name_kanji.as_str());
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_row_or_municipality_does_not_open() {
    let app = spawn_app().await;
    app.seed_demo();
    let mut conn = app.conn();
    let koga = rows_of(&mut conn, app.master(), "082040");
    let (a, b) = (&koga[0], &koga[1]);

    // Swap one sealed field from row a into row b.
    let p = Partition::open(&mut conn, app.master(), code("082040")).unwrap();
    p.run(&mut conn, |scope, c| {
        let mut moved = b.clone();
        moved.name_kanji_sealed = a.name_kanji_sealed.clone();
        moved.update_sealed(scope, c)?;
        Ok::<_, vrs::db::DbError>(())
    })
    .unwrap();
    let err = p.run(&mut conn, |s, c| res::get(s, c, &b.id)).unwrap_err();
    assert!(err.to_string().contains("does not open"), "{err}");
    // Row a itself is untouched and still opens.
    assert!(
        p.run(&mut conn, |s, c| res::get(s, c, &a.id))
            .unwrap()
            .is_some()
    );

    // Copy row a, as it is, into another municipality's partition.
    let chiyoda = Partition::open(&mut conn, app.master(), code("131016")).unwrap();
    chiyoda
        .run(&mut conn, |_scope, c| {
            let mut copy = a.clone();
            copy.municipality_code = "131016".into();
            copy.id = "copied-row".into();
            copy.addressee_index = vec![1; 32];
            copy.my_number_index = Some(vec![2; 32]);
            copy.insert(c)?;
            Ok::<_, vrs::db::DbError>(())
        })
        .unwrap();
    let err = chiyoda
        .run(&mut conn, |s, c| res::get(s, c, "copied-row"))
        .unwrap_err();
    assert!(err.to_string().contains("does not open"), "{err}");
}

#[tokio::test]
async fn finders_see_only_their_own_municipality() {
    let app = spawn_app().await;
    app.seed_demo();
    let mut conn = app.conn();
    let koga_person = demo_resident(code("082040"), 0);
    let koga_id = rows_of(&mut conn, app.master(), "082040")[0].id.clone();
    let chiyoda = Partition::open(&mut conn, app.master(), code("131016")).unwrap();
    // Another municipality's id and individual number find nothing.
    assert!(
        chiyoda
            .run(&mut conn, |s, c| res::get(s, c, &koga_id))
            .unwrap()
            .is_none()
    );
    let by_number = chiyoda
        .run(&mut conn, |s, c| {
            res::find_by_my_number(
                s,
                c,
                koga_person.my_number.as_ref().unwrap(),
                MyNumberPurpose::AnsweringInquiry,
            )
        })
        .unwrap();
    assert!(by_number.is_none());
    let count = chiyoda.run(&mut conn, res::count).unwrap();
    assert_eq!(count, RESIDENTS_PER_MUNICIPALITY as i64);
}

/// A row for another municipality is refused before it is written, on
/// both databases and in release builds alike (the check is the scoped
/// connection's, not an assertion): the insert fails, names the table, and
/// leaves nothing behind.
#[tokio::test]
async fn a_row_of_another_municipality_is_refused_by_the_scoped_connection() {
    use vrs::db::models::dose_events::DoseEventRow;
    use vrs::db::models::residents::NextRow;
    let app = spawn_app().await;
    app.seed_demo();
    let mut conn = app.conn();
    let koga = rows_of(&mut conn, app.master(), "082040")[0].clone();
    let before = tenant_row_counts(&mut conn, "082040");
    let chiyoda = Partition::open(&mut conn, app.master(), code("131016")).unwrap();
    let event = DoseEventRow {
        municipality_code: "082040".into(),
        id: uuid::Uuid::now_v7().to_string(),
        dose_id: "d".into(),
        resident_id: koga.id.clone(),
        at: vrs::clock::now(),
        kind: "queued".into(),
        account_id: None,
        detail: None,
        reason_sealed: None,
    };
    let refused = chiyoda.run(&mut conn, |_, c| event.insert(c)).unwrap_err();
    assert!(
        matches!(refused, vrs::db::DbError::OutsidePartition("dose_events")),
        "{refused:?}"
    );
    // A batch with one stray row among its own is refused whole.
    let mut own = rows_of(&mut conn, app.master(), "131016")[0].clone();
    own.id = uuid::Uuid::now_v7().to_string();
    let mut stray = own.clone();
    stray.municipality_code = "082040".into();
    stray.id = uuid::Uuid::now_v7().to_string();
    let refused = chiyoda
        .run(&mut conn, |_, c| {
            ResidentRow::insert_many(c, &[own.clone(), stray.clone()])
        })
        .unwrap_err();
    assert!(
        matches!(refused, vrs::db::DbError::OutsidePartition("residents")),
        "{refused:?}"
    );
    let next = NextRow {
        municipality_code: "082040".into(),
        resident_id: stray.id.clone(),
        seq: 1,
        reindexed: false,
        addressee_index: None,
        my_number_index: None,
        addressee_number_sealed: vec![1],
        my_number_sealed: None,
        name_kanji_sealed: vec![1],
        name_kana_sealed: vec![1],
        birth_date_sealed: vec![1],
        sex_sealed: vec![1],
        address_sealed: None,
        content_mac: None,
        birth_bucket: None,
        updated_at: vrs::clock::now(),
        flags_set: false,
        moved_out_on: None,
        deceased_on: None,
        count_delta: 0,
    };
    assert!(matches!(
        chiyoda.run(&mut conn, |_, c| NextRow::insert_many(
            c,
            std::slice::from_ref(&next)
        )),
        Err(vrs::db::DbError::OutsidePartition("resident_next"))
    ));
    assert_eq!(tenant_row_counts(&mut conn, "082040"), before);
    assert_eq!(
        rows_of(&mut conn, app.master(), "131016").len(),
        RESIDENTS_PER_MUNICIPALITY
    );
}

/// On PostgreSQL the database itself refuses: a query with no municipality
/// filter at all returns only the scoped municipality's rows, an unscoped
/// transaction sees nothing, and a row for another municipality cannot be
/// written. (On SQLite, scoping is by construction; see the test above.)
#[tokio::test]
async fn postgres_row_level_security_refuses_other_municipalities() {
    if !on_postgres() {
        eprintln!(
            "SQLite run: row-level security exists only on PostgreSQL; covered in the PostgreSQL run"
        );
        return;
    }
    let app = spawn_app().await;
    app.seed_demo();
    let mut conn = app.conn();
    assert!(
        !vrs::db::role_bypasses_rls(&mut conn).unwrap(),
        "tests must run as an ordinary role"
    );
    let unscoped: i64 = residents::table.count().get_result(&mut *conn).unwrap();
    assert_eq!(unscoped, 0, "no municipality named: no rows");
    let scoped: i64 = conn
        .transaction(|c| {
            vrs::db::set_transaction_municipality(c, "082040").unwrap();
            residents::table.count().get_result(c)
        })
        .unwrap();
    assert_eq!(scoped, RESIDENTS_PER_MUNICIPALITY as i64);
    let row = rows_of(&mut conn, app.master(), "131016").remove(0);
    let write_other = conn.transaction(|c| {
        vrs::db::set_transaction_municipality(c, "082040").unwrap();
        let mut r = row.clone();
        r.id = "smuggled".into();
        r.addressee_index = vec![9; 32];
        r.my_number_index = None;
        diesel::insert_into(residents::table).values(&r).execute(c)
    });
    let err = write_other.expect_err("a row of 131016 written while scoped to 082040 must fail");
    assert!(err.to_string().contains("row-level security"), "{err}");
}

/// The server's own role cannot lift the wall: it owns nothing, so it can
/// neither disable row-level security nor change a policy; it may only add
/// to the operation log; and inside one municipality's transaction it sees
/// no other municipality's accounts, networks, sites or keys.
#[tokio::test]
async fn postgres_the_servers_role_cannot_lift_the_wall() {
    if !on_postgres() {
        eprintln!("SQLite run: database roles exist only on PostgreSQL");
        return;
    }
    let app = spawn_app().await;
    app.seed_demo();
    app.declare_lgwan("131016");
    app.declare_lgwan("082040");
    app.login_as("082040-staff", vrs::demo::DEMO_PASSWORD).await;
    let mut conn = app.conn();
    vrs::audit::flush(&mut conn, &app.state.audit).unwrap();
    assert!(
        app.db.owner_url.is_some(),
        "the PostgreSQL run has two roles (scripts/with-postgres.sh sets TEST_SERVER_ROLE)"
    );
    assert!(!vrs::db::role_owns_tables(&mut conn).unwrap());
    let refused = |conn: &mut DbConn, sql: &str| {
        let r = conn.transaction(|c| {
            use diesel::connection::SimpleConnection;
            c.batch_execute(sql)
        });
        let e = r.expect_err(sql).to_string();
        assert!(
            e.contains("must be owner") || e.contains("permission denied"),
            "{sql}: {e}"
        );
    };
    refused(
        &mut conn,
        "ALTER TABLE residents NO FORCE ROW LEVEL SECURITY",
    );
    refused(
        &mut conn,
        "ALTER TABLE residents DISABLE ROW LEVEL SECURITY",
    );
    refused(
        &mut conn,
        "ALTER POLICY tenant_isolation ON residents USING (true)",
    );
    refused(&mut conn, "DROP POLICY tenant_isolation ON residents");
    refused(&mut conn, "DELETE FROM audit_log");
    refused(&mut conn, "UPDATE audit_log SET outcome = 'ok'");
    refused(&mut conn, "TRUNCATE audit_log");
    refused(&mut conn, "DELETE FROM provision_records");
    refused(&mut conn, "DELETE FROM __diesel_schema_migrations");
    refused(&mut conn, "CREATE TABLE smuggled (x int)");

    // Scoped to 082040: nothing of 131016 in the tables that carry a
    // municipality, though it has accounts, a network, a site and keys.
    let count = |conn: &mut DbConn, table: &str, column: &str| -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        conn.transaction(|c| {
            vrs::db::set_transaction_municipality(c, "082040").unwrap();
            diesel::sql_query(format!(
                "SELECT count(*) AS n FROM {table} WHERE {column} = '131016'"
            ))
            .get_result::<N>(c)
        })
        .unwrap()
        .n
    };
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    for (table, column) in [
        ("accounts", "municipality_code"),
        ("lgwan_networks", "municipality_code"),
        ("sites", "municipality_code"),
        ("tenants", "municipality_code"),
        ("tenant_keys", "municipality_code"),
        ("stat_municipal", "municipality_code"),
        ("audit_log", "chain"),
    ] {
        // Outside a municipality's transaction (the platform's flows:
        // sign-in, opening a partition) the rows are there…
        let unscoped: N = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM {table} WHERE {column} = '131016'"
        ))
        .get_result(&mut *conn)
        .unwrap();
        assert!(unscoped.n > 0, "{table} holds rows of 131016");
        // …and inside 082040's, the wall hides them, from the owner too
        // (FORCE).
        assert_eq!(count(&mut conn, table, column), 0, "{table}");
        assert_eq!(count(&mut app.db.owner_conn(), table, column), 0, "{table}");
    }
}

#[tokio::test]
async fn key_rotation_keeps_every_record_readable() {
    let app = spawn_app().await;
    app.seed_demo();
    let mut conn = app.conn();
    let before: Vec<_> = (0..RESIDENTS_PER_MUNICIPALITY)
        .map(|i| demo_resident(code("082040"), i))
        .collect();

    // A history entry and a dose event with a reason, both sealed: they
    // must still open after the data key is rotated and the old one gone.
    let someone = rows_of(&mut conn, app.master(), "082040")[0].id.clone();
    {
        let p = Partition::open(&mut conn, app.master(), code("082040")).unwrap();
        p.run(&mut conn, |s, c| {
            res::set_flag(
                s,
                c,
                &someone,
                res::Flag::Deceased,
                Some(chrono::NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()),
                &vrs::domain::ChangeReason::parse("死亡届の受理").unwrap(),
                "test",
            )
            .unwrap();
            vrs::flows::doses::append(
                s,
                c,
                &vrs::demo::demo_doses(
                    code("082040"),
                    1,
                    &someone,
                    &vrs::domain::TicketNumber::parse("0000000001").unwrap(),
                ),
            )
            .unwrap();
            let dose = vrs::db::models::doses::DoseRow::of_resident(s, c, &someone).unwrap()[0]
                .id
                .clone();
            vrs::flows::doses::delete(
                s,
                c,
                &dose,
                "test",
                &vrs::domain::ChangeReason::parse("誤スキャン").unwrap(),
            )
            .unwrap();
            Ok::<_, vrs::flows::doses::DoseError>(())
        })
        .unwrap();
    }

    // Master key: re-wrap everything under a new key.
    let new_master = MasterKey::generate(MasterKeySource::Env("TEST_NEW"));
    let r = vrs::flows::keys::rotate_master(&mut conn, app.master(), &new_master).unwrap();
    assert_eq!(r.tenant_keys, 3);
    assert_eq!(r.issuer_keys, 1);
    let old_fails = Partition::open(&mut conn, app.master(), code("082040"));
    assert!(matches!(
        old_fails,
        Err(vrs::tenancy::TenancyError::WrongMasterKey { .. })
    ));

    // Data key: a new version, every row sealed again while the
    // municipality works on, the old version destroyed.
    // A request that opened the keys just before the rotation began...
    let stale = Partition::open(&mut conn, &new_master, code("082040")).unwrap();
    let v = vrs::flows::keys::begin_rotation(&mut conn, &new_master, code("082040")).unwrap();
    assert_eq!(v, 2);
    // ...while it runs, lookups find rows still indexed with the old key
    // and rows written with the new one; imports wait for the end.
    let rotating = Partition::open(&mut conn, &new_master, code("082040")).unwrap();
    let newcomer = demo_resident(code("082040"), RESIDENTS_PER_MUNICIPALITY + 7);
    rotating
        .run(&mut conn, |s, c| {
            assert!(
                res::find_by_addressee(s, c, &before[0].addressee_number)?.is_some(),
                "found under the old index key"
            );
            res::register(
                s,
                c,
                &demo_resident(code("082040"), RESIDENTS_PER_MUNICIPALITY + 8),
            )
        })
        .unwrap();
    let (first, cells) =
        vrs::flows::keys::reseal_pass(&mut conn, &new_master, code("082040")).unwrap();
    assert_eq!(first, RESIDENTS_PER_MUNICIPALITY);
    assert!(cells >= 2, "a history entry and a dose event: {cells}");
    // ...and writes with the old keys after the first pass went by.
    stale
        .run(&mut conn, |s, c| res::register(s, c, &newcomer))
        .unwrap();
    let (second, _) =
        vrs::flows::keys::reseal_pass(&mut conn, &new_master, code("082040")).unwrap();
    assert_eq!(
        second, 1,
        "the second pass seals what the late writer wrote"
    );
    vrs::flows::keys::finish_rotation(&mut conn, code("082040"), v).unwrap();
    // Running the whole rotation again starts version 3 and finds all of
    // version 2 to seal again, with no pause.
    let again = vrs::flows::keys::rotate_tenant(
        &mut conn,
        &new_master,
        code("082040"),
        std::time::Duration::ZERO,
    )
    .unwrap();
    assert_eq!(again.version, 3);
    assert_eq!(again.residents, RESIDENTS_PER_MUNICIPALITY + 2);
    let versions: Vec<i32> =
        vrs::db::models::tenants::TenantKeyRow::for_municipality(&mut conn, "082040")
            .unwrap()
            .iter()
            .map(|k| k.version)
            .collect();
    assert_eq!(versions, vec![3]);
    for row in rows_of(&mut conn, &new_master, "082040") {
        assert_eq!(
            vrs::crypto::Sealer::version_of(&row.name_kanji_sealed),
            Some(3)
        );
    }
    let p = Partition::open(&mut conn, &new_master, code("082040")).unwrap();
    let found = p
        .run(&mut conn, |s, c| {
            res::find_by_my_number(
                s,
                c,
                newcomer.my_number.as_ref().unwrap(),
                MyNumberPurpose::TransferInquiry,
            )
        })
        .unwrap()
        .expect("the late writer's resident is found by the new index");
    assert_eq!(found.name_kana.as_str(), newcomer.name_kana.as_str());
    let p = Partition::open(&mut conn, &new_master, code("082040")).unwrap();
    for person in &before {
        let found = p
            .run(&mut conn, |s, c| {
                res::find_by_my_number(
                    s,
                    c,
                    person.my_number.as_ref().unwrap(),
                    MyNumberPurpose::TransferInquiry,
                )
            })
            .unwrap()
            .expect("found after rotation");
        assert_eq!(found.name_kana.as_str(), person.name_kana.as_str());
        assert_eq!(found.birth_date, person.birth_date);
    }
    let (history, events) = p
        .run(&mut conn, |s, c| {
            Ok::<_, vrs::flows::doses::DoseError>((
                res::history(s, c, &someone)?,
                vrs::flows::doses::events_of_resident(s, c, &someone)?,
            ))
        })
        .unwrap();
    assert_eq!(history[0].detail.reason.as_deref(), Some("死亡届の受理"));
    assert_eq!(events[0].reason.as_deref(), Some("誤スキャン"));
    // The other municipalities were only re-wrapped, and still open.
    let chiyoda = Partition::open(&mut conn, &new_master, code("131016")).unwrap();
    assert_eq!(
        chiyoda.run(&mut conn, res::count).unwrap(),
        RESIDENTS_PER_MUNICIPALITY as i64
    );
}

#[tokio::test]
async fn erasing_a_municipality_destroys_its_keys_and_rows_only() {
    let app = spawn_app().await;
    app.seed_demo();
    app.login_as_plain("012025-staff").await;
    let mut conn = app.conn();
    let before = tenant_row_counts(&mut conn, "012025");
    for table in ["residents", "tickets", "doses"] {
        assert!(before.iter().any(|(t, n)| *t == table && *n > 0), "{table}");
    }
    // As `vrs municipality erase` does: as the tables' owner, the server's
    // role may not remove provision records.
    let deleted =
        vrs::flows::municipalities::erase(&mut app.db.owner_conn(), code("012025")).unwrap();
    assert_eq!(deleted as i64, before.iter().map(|(_, n)| n).sum::<i64>());
    assert!(before.contains(&("residents", RESIDENTS_PER_MUNICIPALITY as i64)));
    assert!(
        tenant_row_counts(&mut conn, "012025")
            .iter()
            .all(|(_, n)| *n == 0),
        "rows left after erasing"
    );
    // Its accounts are ended and their sessions gone.
    assert_eq!(app.get("/dashboard").await.headers()["location"], "/login");
    assert_eq!(
        TestApp::handle(&app)
            .post_login("012025-admin", vrs::demo::DEMO_PASSWORD)
            .await
            .status(),
        401
    );
    assert_eq!(
        TestApp::handle(&app)
            .post_login("082040-admin", vrs::demo::DEMO_PASSWORD)
            .await
            .status(),
        303
    );
    assert!(
        vrs::db::models::tenants::TenantKeyRow::for_municipality(&mut conn, "012025")
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        Partition::open(&mut conn, app.master(), code("012025")),
        Err(vrs::tenancy::TenancyError::Erased(_))
    ));
    let koga = Partition::open(&mut conn, app.master(), code("082040")).unwrap();
    assert_eq!(
        koga.run(&mut conn, res::count).unwrap(),
        RESIDENTS_PER_MUNICIPALITY as i64
    );
    // Enabling again starts an empty partition with a new key version.
    vrs::flows::municipalities::enable(&mut conn, app.master(), code("012025")).unwrap();
    let again = Partition::open(&mut conn, app.master(), code("012025")).unwrap();
    assert_eq!(again.run(&mut conn, res::count).unwrap(), 0);
}

#[tokio::test]
async fn re_registering_updates_instead_of_duplicating() {
    let app = spawn_app().await;
    app.seed_demo();
    app.seed_demo();
    let mut conn = app.conn();
    let p = Partition::open(&mut conn, app.master(), code("131016")).unwrap();
    assert_eq!(
        p.run(&mut conn, res::count).unwrap(),
        RESIDENTS_PER_MUNICIPALITY as i64
    );
    // A second person with someone else's individual number is refused.
    let mut clash = demo_resident(code("131016"), 1);
    clash.addressee_number = vrs::domain::AddresseeNumber::parse("X999").unwrap();
    clash.my_number = demo_resident(code("131016"), 2).my_number;
    let err = p
        .run(&mut conn, |s, c| res::register(s, c, &clash))
        .unwrap_err();
    assert!(matches!(err, res::ResidentError::DuplicateMyNumber));
}

/// Rows of one municipality in every tenant table.
fn tenant_row_counts(conn: &mut DbConn, muni: &str) -> Vec<(&'static str, i64)> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    conn.transaction(|c| {
        vrs::db::set_transaction_municipality(c, muni).unwrap();
        let mut out = Vec::new();
        for table in vrs::db::schema::TENANT_TABLES {
            let q = format!("SELECT COUNT(*) AS n FROM {table} WHERE municipality_code = '{muni}'");
            let n: N = diesel::sql_query(q).get_result(c)?;
            out.push((*table, n.n));
        }
        Ok::<_, diesel::result::Error>(out)
    })
    .unwrap()
}
