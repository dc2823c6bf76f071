CREATE OR REPLACE FUNCTION doses_count_insert() RETURNS trigger
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

CREATE OR REPLACE FUNCTION doses_count_update() RETURNS trigger
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

CREATE OR REPLACE FUNCTION doses_count_delete() RETURNS trigger
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

CREATE OR REPLACE FUNCTION doses_progress_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dose_progress (municipality_code, month, dose_number, n)
        SELECT r.municipality_code, to_char(r.administered_on, 'YYYY-MM'), r.dose_number, count(*)
        FROM new_rows r WHERE r.status = 'valid'
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (municipality_code, month, dose_number) DO UPDATE SET n = dose_progress.n + excluded.n;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION doses_progress_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dose_progress (municipality_code, month, dose_number, n)
        SELECT municipality_code, month, dose_number, sum(n) FROM (
            SELECT r.municipality_code, to_char(r.administered_on, 'YYYY-MM'), r.dose_number, -1
            FROM old_rows r WHERE r.status = 'valid'
            UNION ALL
            SELECT r.municipality_code, to_char(r.administered_on, 'YYYY-MM'), r.dose_number, 1
            FROM new_rows r WHERE r.status = 'valid'
        ) c (municipality_code, month, dose_number, n)
        GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3
        ON CONFLICT (municipality_code, month, dose_number) DO UPDATE SET n = dose_progress.n + excluded.n;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION doses_progress_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dose_progress (municipality_code, month, dose_number, n)
        SELECT r.municipality_code, to_char(r.administered_on, 'YYYY-MM'), r.dose_number, -count(*)
        FROM old_rows r WHERE r.status = 'valid'
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (municipality_code, month, dose_number) DO UPDATE SET n = dose_progress.n + excluded.n;
    RETURN NULL;
END
$$;

CREATE TEMPORARY TABLE merged AS SELECT prefecture_code, administered_on, dose_number, sum(n) AS n FROM stat_daily GROUP BY prefecture_code, administered_on, dose_number;
DELETE FROM stat_daily;
ALTER TABLE stat_daily DROP CONSTRAINT stat_daily_pkey;
ALTER TABLE stat_daily DROP COLUMN shard;
INSERT INTO stat_daily (prefecture_code, administered_on, dose_number, n) SELECT prefecture_code, administered_on, dose_number, n FROM merged;
ALTER TABLE stat_daily ADD PRIMARY KEY (prefecture_code, administered_on, dose_number);
DROP TABLE merged;

CREATE TEMPORARY TABLE merged AS SELECT prefecture_code, month, dose_number, product_code, sum(n) AS n FROM stat_monthly GROUP BY prefecture_code, month, dose_number, product_code;
DELETE FROM stat_monthly;
ALTER TABLE stat_monthly DROP CONSTRAINT stat_monthly_pkey;
ALTER TABLE stat_monthly DROP COLUMN shard;
INSERT INTO stat_monthly (prefecture_code, month, dose_number, product_code, n) SELECT prefecture_code, month, dose_number, product_code, n FROM merged;
ALTER TABLE stat_monthly ADD PRIMARY KEY (prefecture_code, month, dose_number, product_code);
DROP TABLE merged;

CREATE TEMPORARY TABLE merged AS SELECT prefecture_code, month, age_band, sex, sum(n) AS n FROM stat_demographic GROUP BY prefecture_code, month, age_band, sex;
DELETE FROM stat_demographic;
ALTER TABLE stat_demographic DROP CONSTRAINT stat_demographic_pkey;
ALTER TABLE stat_demographic DROP COLUMN shard;
INSERT INTO stat_demographic (prefecture_code, month, age_band, sex, n) SELECT prefecture_code, month, age_band, sex, n FROM merged;
ALTER TABLE stat_demographic ADD PRIMARY KEY (prefecture_code, month, age_band, sex);
DROP TABLE merged;

CREATE TEMPORARY TABLE merged AS SELECT municipality_code, month, dose_number, sum(n) AS n FROM stat_municipal GROUP BY municipality_code, month, dose_number;
DELETE FROM stat_municipal;
ALTER TABLE stat_municipal DROP CONSTRAINT stat_municipal_pkey;
ALTER TABLE stat_municipal DROP COLUMN shard;
INSERT INTO stat_municipal (municipality_code, month, dose_number, n) SELECT municipality_code, month, dose_number, n FROM merged;
ALTER TABLE stat_municipal ADD PRIMARY KEY (municipality_code, month, dose_number);
DROP TABLE merged;

CREATE TEMPORARY TABLE merged AS SELECT prefecture_code, administered_on, dose_number, age_group, sex, sum(n) AS n FROM stat_open GROUP BY prefecture_code, administered_on, dose_number, age_group, sex;
DELETE FROM stat_open;
ALTER TABLE stat_open DROP CONSTRAINT stat_open_pkey;
ALTER TABLE stat_open DROP COLUMN shard;
INSERT INTO stat_open (prefecture_code, administered_on, dose_number, age_group, sex, n) SELECT prefecture_code, administered_on, dose_number, age_group, sex, n FROM merged;
ALTER TABLE stat_open ADD PRIMARY KEY (prefecture_code, administered_on, dose_number, age_group, sex);
DROP TABLE merged;

CREATE TEMPORARY TABLE merged AS SELECT municipality_code, month, dose_number, sum(n) AS n FROM dose_progress GROUP BY municipality_code, month, dose_number;
DELETE FROM dose_progress;
ALTER TABLE dose_progress DROP CONSTRAINT dose_progress_pkey;
ALTER TABLE dose_progress DROP COLUMN shard;
INSERT INTO dose_progress (municipality_code, month, dose_number, n) SELECT municipality_code, month, dose_number, n FROM merged;
ALTER TABLE dose_progress ADD PRIMARY KEY (municipality_code, month, dose_number);
DROP TABLE merged;

DROP FUNCTION vrs_count_shard();
