-- Statistics (flow 7) without decrypting anything: running counts of the
-- doses that count — valid, and given here (a copy transferred from the
-- municipality a person moved from is counted there) — kept by triggers
-- on doses (one aggregated statement per table and statement), in the same transaction as every insert, correction,
-- deletion and confirmation, so they cannot drift from the records. Each
-- table is small enough for a dashboard to read whole; none holds anything
-- about one person: the cells are counts of doses.

-- Doses per prefecture, day and dose number: the time series.
CREATE TABLE stat_daily (
    prefecture_code TEXT NOT NULL,
    administered_on DATE NOT NULL,
    dose_number INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (prefecture_code, administered_on, dose_number)
);

-- Doses per prefecture, month, dose number and product.
CREATE TABLE stat_monthly (
    prefecture_code TEXT NOT NULL,
    month TEXT NOT NULL,
    dose_number INTEGER NOT NULL,
    product_code TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (prefecture_code, month, dose_number, product_code)
);

-- Doses per prefecture, month, five-year age band (at vaccination; -1
-- unknown) and sex code.
CREATE TABLE stat_demographic (
    prefecture_code TEXT NOT NULL,
    month TEXT NOT NULL,
    age_band INTEGER NOT NULL,
    sex TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (prefecture_code, month, age_band, sex)
);

-- Doses per municipality, month and dose number: a prefecture's areas.
CREATE TABLE stat_municipal (
    municipality_code TEXT NOT NULL,
    month TEXT NOT NULL,
    dose_number INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (municipality_code, month, dose_number)
);

-- Doses per prefecture, day, dose number, age group (-64, 65-) and sex:
-- the open data's grain, as the national system published it.
CREATE TABLE stat_open (
    prefecture_code TEXT NOT NULL,
    administered_on DATE NOT NULL,
    dose_number INTEGER NOT NULL,
    age_group TEXT NOT NULL,
    sex TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (prefecture_code, administered_on, dose_number, age_group, sex)
);

-- The nation's time series reads the days in order, all prefectures at once.
CREATE INDEX stat_daily_by_day ON stat_daily (administered_on, dose_number, n);

CREATE FUNCTION doses_count_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stat_daily (prefecture_code, administered_on, dose_number, n)
        SELECT prefecture_code, administered_on, dose_number, sum(n) FROM (SELECT substr(r.municipality_code, 1, 2), r.administered_on, r.dose_number, 1 AS n FROM new_rows r WHERE r.status = 'valid' AND r.origin <> 'transferred') c (prefecture_code, administered_on, dose_number, n)
        GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3
        ON CONFLICT (prefecture_code, administered_on, dose_number) DO UPDATE SET n = stat_daily.n + excluded.n;
    INSERT INTO stat_monthly (prefecture_code, month, dose_number, product_code, n)
        SELECT prefecture_code, month, dose_number, product_code, sum(n) FROM (SELECT substr(r.municipality_code, 1, 2), to_char(r.administered_on, 'YYYY-MM'), r.dose_number, r.product_code, 1 AS n FROM new_rows r WHERE r.status = 'valid' AND r.origin <> 'transferred') c (prefecture_code, month, dose_number, product_code, n)
        GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4
        ON CONFLICT (prefecture_code, month, dose_number, product_code) DO UPDATE SET n = stat_monthly.n + excluded.n;
    INSERT INTO stat_demographic (prefecture_code, month, age_band, sex, n)
        SELECT prefecture_code, month, age_band, sex, sum(n) FROM (SELECT substr(r.municipality_code, 1, 2), to_char(r.administered_on, 'YYYY-MM'), coalesce(r.age_band, -1), coalesce(r.sex, '9'), 1 AS n FROM new_rows r WHERE r.status = 'valid' AND r.origin <> 'transferred') c (prefecture_code, month, age_band, sex, n)
        GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4
        ON CONFLICT (prefecture_code, month, age_band, sex) DO UPDATE SET n = stat_demographic.n + excluded.n;
    INSERT INTO stat_municipal (municipality_code, month, dose_number, n)
        SELECT municipality_code, month, dose_number, sum(n) FROM (SELECT r.municipality_code, to_char(r.administered_on, 'YYYY-MM'), r.dose_number, 1 AS n FROM new_rows r WHERE r.status = 'valid' AND r.origin <> 'transferred') c (municipality_code, month, dose_number, n)
        GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3
        ON CONFLICT (municipality_code, month, dose_number) DO UPDATE SET n = stat_municipal.n + excluded.n;
    INSERT INTO stat_open (prefecture_code, administered_on, dose_number, age_group, sex, n)
        SELECT prefecture_code, administered_on, dose_number, age_group, sex, sum(n) FROM (SELECT substr(r.municipality_code, 1, 2), r.administered_on, r.dose_number, CASE WHEN r.age_band IS NULL THEN 'unknown' WHEN r.age_band >= 65 THEN '65-' ELSE '-64' END, coalesce(r.sex, '9'), 1 AS n FROM new_rows r WHERE r.status = 'valid' AND r.origin <> 'transferred') c (prefecture_code, administered_on, dose_number, age_group, sex, n)
        GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (prefecture_code, administered_on, dose_number, age_group, sex) DO UPDATE SET n = stat_open.n + excluded.n;
    RETURN NULL;
END
$$;

CREATE FUNCTION doses_count_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stat_daily (prefecture_code, administered_on, dose_number, n)
        SELECT prefecture_code, administered_on, dose_number, sum(n) FROM (SELECT substr(r.municipality_code, 1, 2), r.administered_on, r.dose_number, -1 AS n FROM old_rows r WHERE r.status = 'valid' AND r.origin <> 'transferred' UNION ALL SELECT substr(r.municipality_code, 1, 2), r.administered_on, r.dose_number, 1 AS n FROM new_rows r WHERE r.status = 'valid' AND r.origin <> 'transferred') c (prefecture_code, administered_on, dose_number, n)
        GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3
        ON CONFLICT (prefecture_code, administered_on, dose_number) DO UPDATE SET n = stat_daily.n + excluded.n;
    INSERT INTO stat_monthly (prefecture_code, month, dose_number, product_code, n)
        SELECT prefecture_code, month, dose_number, product_code, sum(n) FROM (SELECT substr(r.municipality_code, 1, 2), to_char(r.administered_on, 'YYYY-MM'), r.dose_number, r.product_code, -1 AS n FROM old_rows r WHERE r.status = 'valid' AND r.origin <> 'transferred' UNION ALL SELECT substr(r.municipality_code, 1, 2), to_char(r.administered_on, 'YYYY-MM'), r.dose_number, r.product_code, 1 AS n FROM new_rows r WHERE r.status = 'valid' AND r.origin <> 'transferred') c (prefecture_code, month, dose_number, product_code, n)
        GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4
        ON CONFLICT (prefecture_code, month, dose_number, product_code) DO UPDATE SET n = stat_monthly.n + excluded.n;
    INSERT INTO stat_demographic (prefecture_code, month, age_band, sex, n)
        SELECT prefecture_code, month, age_band, sex, sum(n) FROM (SELECT substr(r.municipality_code, 1, 2), to_char(r.administered_on, 'YYYY-MM'), coalesce(r.age_band, -1), coalesce(r.sex, '9'), -1 AS n FROM old_rows r WHERE r.status = 'valid' AND r.origin <> 'transferred' UNION ALL SELECT substr(r.municipality_code, 1, 2), to_char(r.administered_on, 'YYYY-MM'), coalesce(r.age_band, -1), coalesce(r.sex, '9'), 1 AS n FROM new_rows r WHERE r.status = 'valid' AND r.origin <> 'transferred') c (prefecture_code, month, age_band, sex, n)
        GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4
        ON CONFLICT (prefecture_code, month, age_band, sex) DO UPDATE SET n = stat_demographic.n + excluded.n;
    INSERT INTO stat_municipal (municipality_code, month, dose_number, n)
        SELECT municipality_code, month, dose_number, sum(n) FROM (SELECT r.municipality_code, to_char(r.administered_on, 'YYYY-MM'), r.dose_number, -1 AS n FROM old_rows r WHERE r.status = 'valid' AND r.origin <> 'transferred' UNION ALL SELECT r.municipality_code, to_char(r.administered_on, 'YYYY-MM'), r.dose_number, 1 AS n FROM new_rows r WHERE r.status = 'valid' AND r.origin <> 'transferred') c (municipality_code, month, dose_number, n)
        GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3
        ON CONFLICT (municipality_code, month, dose_number) DO UPDATE SET n = stat_municipal.n + excluded.n;
    INSERT INTO stat_open (prefecture_code, administered_on, dose_number, age_group, sex, n)
        SELECT prefecture_code, administered_on, dose_number, age_group, sex, sum(n) FROM (SELECT substr(r.municipality_code, 1, 2), r.administered_on, r.dose_number, CASE WHEN r.age_band IS NULL THEN 'unknown' WHEN r.age_band >= 65 THEN '65-' ELSE '-64' END, coalesce(r.sex, '9'), -1 AS n FROM old_rows r WHERE r.status = 'valid' AND r.origin <> 'transferred' UNION ALL SELECT substr(r.municipality_code, 1, 2), r.administered_on, r.dose_number, CASE WHEN r.age_band IS NULL THEN 'unknown' WHEN r.age_band >= 65 THEN '65-' ELSE '-64' END, coalesce(r.sex, '9'), 1 AS n FROM new_rows r WHERE r.status = 'valid' AND r.origin <> 'transferred') c (prefecture_code, administered_on, dose_number, age_group, sex, n)
        GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (prefecture_code, administered_on, dose_number, age_group, sex) DO UPDATE SET n = stat_open.n + excluded.n;
    RETURN NULL;
END
$$;

CREATE FUNCTION doses_count_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stat_daily (prefecture_code, administered_on, dose_number, n)
        SELECT prefecture_code, administered_on, dose_number, sum(n) FROM (SELECT substr(r.municipality_code, 1, 2), r.administered_on, r.dose_number, -1 AS n FROM old_rows r WHERE r.status = 'valid' AND r.origin <> 'transferred') c (prefecture_code, administered_on, dose_number, n)
        GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3
        ON CONFLICT (prefecture_code, administered_on, dose_number) DO UPDATE SET n = stat_daily.n + excluded.n;
    INSERT INTO stat_monthly (prefecture_code, month, dose_number, product_code, n)
        SELECT prefecture_code, month, dose_number, product_code, sum(n) FROM (SELECT substr(r.municipality_code, 1, 2), to_char(r.administered_on, 'YYYY-MM'), r.dose_number, r.product_code, -1 AS n FROM old_rows r WHERE r.status = 'valid' AND r.origin <> 'transferred') c (prefecture_code, month, dose_number, product_code, n)
        GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4
        ON CONFLICT (prefecture_code, month, dose_number, product_code) DO UPDATE SET n = stat_monthly.n + excluded.n;
    INSERT INTO stat_demographic (prefecture_code, month, age_band, sex, n)
        SELECT prefecture_code, month, age_band, sex, sum(n) FROM (SELECT substr(r.municipality_code, 1, 2), to_char(r.administered_on, 'YYYY-MM'), coalesce(r.age_band, -1), coalesce(r.sex, '9'), -1 AS n FROM old_rows r WHERE r.status = 'valid' AND r.origin <> 'transferred') c (prefecture_code, month, age_band, sex, n)
        GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4
        ON CONFLICT (prefecture_code, month, age_band, sex) DO UPDATE SET n = stat_demographic.n + excluded.n;
    INSERT INTO stat_municipal (municipality_code, month, dose_number, n)
        SELECT municipality_code, month, dose_number, sum(n) FROM (SELECT r.municipality_code, to_char(r.administered_on, 'YYYY-MM'), r.dose_number, -1 AS n FROM old_rows r WHERE r.status = 'valid' AND r.origin <> 'transferred') c (municipality_code, month, dose_number, n)
        GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3
        ON CONFLICT (municipality_code, month, dose_number) DO UPDATE SET n = stat_municipal.n + excluded.n;
    INSERT INTO stat_open (prefecture_code, administered_on, dose_number, age_group, sex, n)
        SELECT prefecture_code, administered_on, dose_number, age_group, sex, sum(n) FROM (SELECT substr(r.municipality_code, 1, 2), r.administered_on, r.dose_number, CASE WHEN r.age_band IS NULL THEN 'unknown' WHEN r.age_band >= 65 THEN '65-' ELSE '-64' END, coalesce(r.sex, '9'), -1 AS n FROM old_rows r WHERE r.status = 'valid' AND r.origin <> 'transferred') c (prefecture_code, administered_on, dose_number, age_group, sex, n)
        GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (prefecture_code, administered_on, dose_number, age_group, sex) DO UPDATE SET n = stat_open.n + excluded.n;
    RETURN NULL;
END
$$;

-- Rows are applied in key order, so two transactions meet on the counts
-- in the same order and do not deadlock.
CREATE TRIGGER doses_count_insert AFTER INSERT ON doses
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION doses_count_insert();
CREATE TRIGGER doses_count_update AFTER UPDATE ON doses
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION doses_count_update();
CREATE TRIGGER doses_count_delete AFTER DELETE ON doses
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION doses_count_delete();

-- Counts of the doses already recorded: only what this role may see (under
-- row-level security, nothing); `vrs statistics recount` counts every
-- municipality's, one partition at a time.
INSERT INTO stat_daily (prefecture_code, administered_on, dose_number, n)
    SELECT substr(d.municipality_code, 1, 2), d.administered_on, d.dose_number, count(*) FROM doses d
    WHERE d.status = 'valid' AND d.origin <> 'transferred'
    GROUP BY 1, 2, 3;
INSERT INTO stat_monthly (prefecture_code, month, dose_number, product_code, n)
    SELECT substr(d.municipality_code, 1, 2), to_char(d.administered_on, 'YYYY-MM'), d.dose_number, d.product_code, count(*) FROM doses d
    WHERE d.status = 'valid' AND d.origin <> 'transferred'
    GROUP BY 1, 2, 3, 4;
INSERT INTO stat_demographic (prefecture_code, month, age_band, sex, n)
    SELECT substr(d.municipality_code, 1, 2), to_char(d.administered_on, 'YYYY-MM'), coalesce(d.age_band, -1), coalesce(d.sex, '9'), count(*) FROM doses d
    WHERE d.status = 'valid' AND d.origin <> 'transferred'
    GROUP BY 1, 2, 3, 4;
INSERT INTO stat_municipal (municipality_code, month, dose_number, n)
    SELECT d.municipality_code, to_char(d.administered_on, 'YYYY-MM'), d.dose_number, count(*) FROM doses d
    WHERE d.status = 'valid' AND d.origin <> 'transferred'
    GROUP BY 1, 2, 3;
INSERT INTO stat_open (prefecture_code, administered_on, dose_number, age_group, sex, n)
    SELECT substr(d.municipality_code, 1, 2), d.administered_on, d.dose_number, CASE WHEN d.age_band IS NULL THEN 'unknown' WHEN d.age_band >= 65 THEN '65-' ELSE '-64' END, coalesce(d.sex, '9'), count(*) FROM doses d
    WHERE d.status = 'valid' AND d.origin <> 'transferred'
    GROUP BY 1, 2, 3, 4, 5;
