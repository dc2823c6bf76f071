// Table definitions shared by both backends; the two migration sets in
// migrations/sqlite and migrations/postgres must produce exactly these.

diesel::table! {
    tenants (municipality_code) {
        municipality_code -> Text,
        status -> Text,
        active_key_version -> Integer,
        enabled_at -> Timestamp,
        erased_at -> Nullable<Timestamp>,
        require_totp -> Bool,
        certificate_channels -> Text,
        working_from -> Integer,
        working_until -> Integer,
        volume_threshold -> Integer,
        review_every_days -> Integer,
        access_record_names -> Bool,
        password_max_days -> Integer,
        password_reuse_count -> Integer,
        retention_years -> Integer,
        require_enrolled_devices -> Bool,
        export_approval -> Bool,
    }
}

diesel::table! {
    tenant_keys (municipality_code, version) {
        municipality_code -> Text,
        version -> Integer,
        wrapped_data_key -> Binary,
        wrapped_index_key -> Binary,
        master_key_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    residents (municipality_code, id) {
        municipality_code -> Text,
        id -> Text,
        addressee_index -> Binary,
        my_number_index -> Nullable<Binary>,
        addressee_number_sealed -> Binary,
        my_number_sealed -> Nullable<Binary>,
        name_kanji_sealed -> Binary,
        name_kana_sealed -> Binary,
        birth_date_sealed -> Binary,
        sex_sealed -> Binary,
        address_sealed -> Nullable<Binary>,
        moved_out_on -> Nullable<Date>,
        deceased_on -> Nullable<Date>,
        address_protected -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        content_mac -> Nullable<Binary>,
        birth_bucket -> Nullable<Binary>,
        staged_seq -> Nullable<BigInt>,
        protected_from -> Nullable<Date>,
        protected_until -> Nullable<Date>,
        protection_review -> Nullable<Date>,
        erased_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    tickets (municipality_code, ticket_number) {
        municipality_code -> Text,
        ticket_number -> Text,
        resident_id -> Text,
        kind -> Integer,
        dose_number -> Integer,
        status -> Text,
        issued_at -> Timestamp,
        issued_by -> Text,
        invalidated_at -> Nullable<Timestamp>,
        invalidated_reason -> Nullable<Text>,
        staged_seq -> Nullable<BigInt>,
        retired_seq -> Nullable<BigInt>,
    }
}

diesel::table! {
    resident_events (municipality_code, id) {
        municipality_code -> Text,
        id -> Text,
        resident_id -> Text,
        at -> Timestamp,
        kind -> Text,
        account_id -> Nullable<Text>,
        detail_sealed -> Nullable<Binary>,
        staged_seq -> Nullable<BigInt>,
    }
}

diesel::table! {
    doses (municipality_code, id) {
        municipality_code -> Text,
        id -> Text,
        resident_id -> Text,
        dose_number -> Integer,
        administered_on -> Date,
        recorded_at -> Timestamp,
        ticket_number -> Nullable<Text>,
        site_municipality_code -> Nullable<Text>,
        site_name -> Nullable<Text>,
        product_code -> Text,
        lot_number -> Nullable<Text>,
        origin -> Text,
        origin_municipality_code -> Nullable<Text>,
        recorded_by -> Nullable<Text>,
        status -> Text,
        site_id -> Nullable<Text>,
        idempotency_key -> Nullable<Text>,
        quality_flags -> Nullable<Text>,
        supersedes -> Nullable<Text>,
        age_band -> Nullable<Integer>,
        sex -> Nullable<Text>,
    }
}

diesel::table! {
    dose_events (municipality_code, id) {
        municipality_code -> Text,
        id -> Text,
        dose_id -> Text,
        resident_id -> Text,
        at -> Timestamp,
        kind -> Text,
        account_id -> Nullable<Text>,
        detail -> Nullable<Text>,
        reason_sealed -> Nullable<Binary>,
    }
}

diesel::table! {
    import_jobs (municipality_code, id) {
        municipality_code -> Text,
        id -> Text,
        kind -> Text,
        status -> Text,
        account_id -> Text,
        login_id -> Text,
        client_addr -> Text,
        file_name -> Text,
        file_sha256 -> Text,
        file_bytes -> BigInt,
        encoding -> Text,
        bytes_done -> BigInt,
        lines_seen -> BigInt,
        inserted -> BigInt,
        updated -> BigInt,
        unchanged -> BigInt,
        tickets_issued -> BigInt,
        error_count -> BigInt,
        errors -> Nullable<Text>,
        message -> Nullable<Text>,
        created_at -> Timestamp,
        started_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        seq -> Nullable<BigInt>,
    }
}

diesel::table! {
    issuer_keys (kid) {
        kid -> Text,
        status -> Text,
        public_jwk -> Text,
        wrapped_private_key -> Binary,
        master_key_id -> Text,
        crl_version -> Integer,
        created_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    accounts (id) {
        id -> Text,
        login_id -> Text,
        role -> Text,
        municipality_code -> Nullable<Text>,
        prefecture_code -> Nullable<Text>,
        display_name -> Text,
        permissions -> Text,
        password_hash -> Text,
        must_change_password -> Bool,
        expires_on -> Nullable<Date>,
        disabled_at -> Nullable<Timestamp>,
        device_name -> Nullable<Text>,
        responsible_person -> Nullable<Text>,
        failed_logins -> Integer,
        locked_until -> Nullable<Timestamp>,
        last_login_at -> Nullable<Timestamp>,
        last_login_addr -> Nullable<Text>,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
        totp_secret_wrapped -> Nullable<Binary>,
        totp_last_step -> Nullable<BigInt>,
        site_id -> Nullable<Text>,
        password_changed_at -> Nullable<Timestamp>,
        device_key_hash -> Nullable<Text>,
        device_enrolled_at -> Nullable<Timestamp>,
        enrol_code_hash -> Nullable<Text>,
        enrol_code_expires -> Nullable<Timestamp>,
        shared_review_on -> Nullable<Date>,
    }
}

diesel::table! {
    password_history (account_id, at) {
        account_id -> Text,
        at -> Timestamp,
        password_hash -> Text,
    }
}

diesel::table! {
    sites (id) {
        id -> Text,
        municipality_code -> Text,
        name -> Text,
        kind -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        closed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    vaccine_products (product_code) {
        product_code -> Text,
        manufacturer_ja -> Text,
        manufacturer_en -> Text,
        product_ja -> Text,
        product_en -> Text,
        vaccine_type -> Text,
        target -> Text,
        age_group -> Text,
        cvx -> Nullable<Text>,
        primary_doses -> Integer,
        dose2_min_days -> Nullable<Integer>,
        dose3_min_days -> Nullable<Integer>,
        booster_min_months -> Integer,
        in_use -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    vaccine_lots (product_code, lot_number) {
        product_code -> Text,
        lot_number -> Text,
        expires_on -> Nullable<Date>,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    sessions (token_hash) {
        token_hash -> Text,
        account_id -> Text,
        csrf_token -> Text,
        client_addr -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        previous_login_at -> Nullable<Timestamp>,
        previous_login_addr -> Nullable<Text>,
    }
}

diesel::table! {
    login_throttle (throttle_key) {
        throttle_key -> Text,
        failures -> Integer,
        window_start -> Timestamp,
        locked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_pending (chain, id) {
        chain -> Text,
        id -> Text,
        at -> Timestamp,
        account_id -> Nullable<Text>,
        login_id -> Nullable<Text>,
        client_addr -> Nullable<Text>,
        action -> Text,
        target -> Nullable<Text>,
        outcome -> Text,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    audit_log (chain, seq) {
        chain -> Text,
        seq -> BigInt,
        at -> Timestamp,
        account_id -> Nullable<Text>,
        login_id -> Nullable<Text>,
        client_addr -> Nullable<Text>,
        action -> Text,
        target -> Nullable<Text>,
        outcome -> Text,
        detail -> Nullable<Text>,
        prev_mac -> Text,
        mac -> Text,
    }
}

diesel::table! {
    platform_secrets (name) {
        name -> Text,
        wrapped_value -> Binary,
        master_key_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    lgwan_networks (municipality_code, cidr) {
        municipality_code -> Text,
        cidr -> Text,
        label -> Text,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    provision_records (municipality_code, id) {
        municipality_code -> Text,
        id -> Text,
        inquiry_id -> Text,
        side -> Text,
        requested_at -> Timestamp,
        answered_at -> Nullable<Timestamp>,
        requester_code -> Text,
        requester_account_id -> Nullable<Text>,
        requester_login_id -> Nullable<Text>,
        requester_addr -> Nullable<Text>,
        provider_code -> Text,
        resident_id -> Nullable<Text>,
        channel -> Text,
        procedure_code -> Text,
        purpose -> Text,
        items -> Text,
        dose_count -> Integer,
        outcome -> Text,
        refusal -> Nullable<Text>,
        consent_form -> Bool,
        id_document -> Nullable<Text>,
        id_checked_by -> Nullable<Text>,
        job_id -> Nullable<Text>,
        line_no -> Nullable<BigInt>,
    }
}

diesel::table! {
    notices (municipality_code, id) {
        municipality_code -> Text,
        id -> Text,
        at -> Timestamp,
        kind -> Text,
        subject -> Text,
        detail -> Nullable<Text>,
        closed_at -> Nullable<Timestamp>,
        closed_by -> Nullable<Text>,
    }
}

diesel::table! {
    held_inquiries (municipality_code, id) {
        municipality_code -> Text,
        id -> Text,
        inquiry_id -> Text,
        direction -> Text,
        other_code -> Text,
        resident_id -> Text,
        channel -> Text,
        purpose -> Text,
        requested_at -> Timestamp,
        requested_by -> Nullable<Text>,
        requester_login -> Nullable<Text>,
        request_sealed -> Nullable<Binary>,
        status -> Text,
        decided_by -> Nullable<Text>,
        decided_login -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    export_requests (municipality_code, id) {
        municipality_code -> Text,
        id -> Text,
        kind -> Text,
        subject -> Nullable<Text>,
        requested_by -> Text,
        requester_login -> Text,
        requested_at -> Timestamp,
        status -> Text,
        decided_by -> Nullable<Text>,
        decided_login -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    dose_batch_lines (municipality_code, job_id, line) {
        municipality_code -> Text,
        job_id -> Text,
        line -> BigInt,
        ticket_number -> Text,
        administered_on -> Date,
        outcome -> Text,
        dose_id -> Nullable<Text>,
        dose_number -> Nullable<Integer>,
        rules -> Nullable<Text>,
        refusal -> Nullable<Text>,
    }
}

diesel::table! {
    notice_items (municipality_code, job_id, n) {
        municipality_code -> Text,
        job_id -> Text,
        n -> BigInt,
        resident_id -> Text,
        ticket_number -> Text,
        dose_number -> Integer,
        due_from -> Date,
        overdue -> Bool,
    }
}

diesel::table! {
    reconcile_items (municipality_code, job_id, n) {
        municipality_code -> Text,
        job_id -> Text,
        n -> BigInt,
        kind -> Text,
        line -> Nullable<BigInt>,
        resident_id -> Nullable<Text>,
        addressee_sealed -> Nullable<Binary>,
        settled_at -> Nullable<Timestamp>,
        settled_by -> Nullable<Text>,
        settled_as -> Nullable<Text>,
    }
}

diesel::table! {
    log_reviews (municipality_code, id) {
        municipality_code -> Text,
        id -> Text,
        kind -> Text,
        period_from -> Date,
        period_until -> Date,
        reviewed_by -> Text,
        reviewer_login -> Text,
        at -> Timestamp,
        note -> Text,
    }
}

diesel::table! {
    certificates (municipality_code, id) {
        municipality_code -> Text,
        id -> Text,
        resident_id -> Text,
        kind -> Text,
        channel -> Text,
        issued_at -> Timestamp,
        issued_on -> Date,
        issued_by -> Text,
        kid -> Text,
        rid -> Text,
        dose_ids -> Text,
        card_sealed -> Binary,
        passport_sealed -> Nullable<Binary>,
        id_document -> Nullable<Text>,
        id_checked_by -> Nullable<Text>,
        status -> Text,
        revoked_at -> Nullable<Timestamp>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    card_revocations (kid, rid) {
        kid -> Text,
        rid -> Text,
        revoked_at -> Timestamp,
    }
}

diesel::table! {
    channel_clients (id) {
        id -> Text,
        name -> Text,
        kind -> Text,
        networks -> Text,
        secret_hash -> Binary,
        created_at -> Timestamp,
        created_by -> Text,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    stat_daily (prefecture_code, administered_on, dose_number) {
        prefecture_code -> Text,
        administered_on -> Date,
        dose_number -> Integer,
        n -> BigInt,
        shard -> SmallInt,
    }
}

diesel::table! {
    stat_monthly (prefecture_code, month, dose_number, product_code) {
        prefecture_code -> Text,
        month -> Text,
        dose_number -> Integer,
        product_code -> Text,
        n -> BigInt,
        shard -> SmallInt,
    }
}

diesel::table! {
    stat_demographic (prefecture_code, month, age_band, sex) {
        prefecture_code -> Text,
        month -> Text,
        age_band -> Integer,
        sex -> Text,
        n -> BigInt,
        shard -> SmallInt,
    }
}

diesel::table! {
    stat_municipal (municipality_code, month, dose_number) {
        municipality_code -> Text,
        month -> Text,
        dose_number -> Integer,
        n -> BigInt,
        shard -> SmallInt,
    }
}

diesel::table! {
    resident_counts (municipality_code, staged_seq) {
        municipality_code -> Text,
        staged_seq -> BigInt,
        n -> BigInt,
    }
}

diesel::table! {
    counts_owed (since) {
        since -> Timestamp,
    }
}

diesel::table! {
    queue_days (municipality_code, day, flags) {
        municipality_code -> Text,
        day -> Date,
        flags -> Text,
        shard -> SmallInt,
        n -> BigInt,
    }
}

diesel::table! {
    dose_progress (municipality_code, month, dose_number) {
        municipality_code -> Text,
        month -> Text,
        dose_number -> Integer,
        n -> BigInt,
        shard -> SmallInt,
    }
}

diesel::table! {
    stat_open (prefecture_code, administered_on, dose_number, age_group, sex) {
        prefecture_code -> Text,
        administered_on -> Date,
        dose_number -> Integer,
        age_group -> Text,
        sex -> Text,
        n -> BigInt,
        shard -> SmallInt,
    }
}

diesel::table! {
    job_leases (job_id) {
        job_id -> Text,
        municipality_code -> Text,
        runner -> Text,
        heartbeat_at -> Timestamp,
    }
}

diesel::table! {
    resident_next (municipality_code, resident_id) {
        municipality_code -> Text,
        resident_id -> Text,
        seq -> BigInt,
        reindexed -> Bool,
        addressee_index -> Nullable<Binary>,
        my_number_index -> Nullable<Binary>,
        addressee_number_sealed -> Binary,
        my_number_sealed -> Nullable<Binary>,
        name_kanji_sealed -> Binary,
        name_kana_sealed -> Binary,
        birth_date_sealed -> Binary,
        sex_sealed -> Binary,
        address_sealed -> Nullable<Binary>,
        content_mac -> Nullable<Binary>,
        birth_bucket -> Nullable<Binary>,
        updated_at -> Timestamp,
        flags_set -> Bool,
        moved_out_on -> Nullable<Date>,
        deceased_on -> Nullable<Date>,
        count_delta -> Integer,
    }
}

diesel::joinable!(tenant_keys -> tenants (municipality_code));
diesel::joinable!(sessions -> accounts (account_id));
diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    job_leases,
    resident_next,
    tenant_keys,
    residents,
    tickets,
    resident_events,
    doses,
    import_jobs,
    issuer_keys,
    accounts,
    sessions,
    login_throttle,
    audit_log,
    platform_secrets,
    lgwan_networks,
    sites,
    vaccine_products,
    vaccine_lots,
    dose_events,
    audit_pending,
    provision_records,
    notices,
    log_reviews,
    held_inquiries,
    password_history,
    export_requests,
    reconcile_items,
    dose_batch_lines,
    notice_items,
    certificates,
    card_revocations,
    channel_clients,
    stat_daily,
    stat_monthly,
    stat_demographic,
    stat_municipal,
    stat_open,
    resident_counts,
    dose_progress,
    queue_days,
    counts_owed
);

/// Every table the migrations create, in dependency order (parents first).
pub const ALL_TABLES: &[&str] = &[
    "tenants",
    "tenant_keys",
    "residents",
    "tickets",
    "resident_events",
    "doses",
    "import_jobs",
    "issuer_keys",
    "accounts",
    "sessions",
    "login_throttle",
    "audit_log",
    "platform_secrets",
    "lgwan_networks",
    "sites",
    "vaccine_products",
    "vaccine_lots",
    "dose_events",
    "audit_pending",
    "provision_records",
    "notices",
    "log_reviews",
    "held_inquiries",
    "password_history",
    "export_requests",
    "certificates",
    "card_revocations",
    "channel_clients",
    "stat_daily",
    "stat_monthly",
    "stat_demographic",
    "stat_municipal",
    "stat_open",
    "job_leases",
    "resident_next",
    "resident_counts",
    "dose_progress",
    "queue_days",
    "counts_owed",
    "reconcile_items",
    "dose_batch_lines",
    "notice_items",
];

/// Tables holding one municipality's personal data: keyed by
/// `municipality_code`, row-level-secured on PostgreSQL, emptied when a
/// municipality is erased. Children before parents.
pub const TENANT_TABLES: &[&str] = &[
    "notice_items",
    "dose_batch_lines",
    "reconcile_items",
    "held_inquiries",
    "certificates",
    "notices",
    "provision_records",
    "dose_events",
    "import_jobs",
    "doses",
    "resident_events",
    "resident_next",
    "tickets",
    "residents",
];
