-- Statistics (flow 7) without decrypting anything: running counts of the
-- doses that count — valid, and given here (a copy transferred from the
-- municipality a person moved from is counted there) — kept by triggers
-- on doses, in the same transaction as every insert, correction,
-- deletion and confirmation, so they cannot drift from the records. Each
-- table is small enough for a dashboard to read whole; none holds anything
-- about one person: the cells are counts of doses.

-- Doses per prefecture, day and dose number: the time series.
CREATE TABLE stat_daily (
    prefecture_code TEXT NOT NULL,
    administered_on DATE NOT NULL,
    dose_number INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (prefecture_code, administered_on, dose_number)
);

-- Doses per prefecture, month, dose number and product.
CREATE TABLE stat_monthly (
    prefecture_code TEXT NOT NULL,
    month TEXT NOT NULL,
    dose_number INTEGER NOT NULL,
    product_code TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (prefecture_code, month, dose_number, product_code)
);

-- Doses per prefecture, month, five-year age band (at vaccination; -1
-- unknown) and sex code.
CREATE TABLE stat_demographic (
    prefecture_code TEXT NOT NULL,
    month TEXT NOT NULL,
    age_band INTEGER NOT NULL,
    sex TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (prefecture_code, month, age_band, sex)
);

-- Doses per municipality, month and dose number: a prefecture's areas.
CREATE TABLE stat_municipal (
    municipality_code TEXT NOT NULL,
    month TEXT NOT NULL,
    dose_number INTEGER NOT NULL,
    n INTEGER NOT NULL,
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
    n INTEGER NOT NULL,
    PRIMARY KEY (prefecture_code, administered_on, dose_number, age_group, sex)
);

-- The nation's time series reads the days in order, all prefectures at once.
CREATE INDEX stat_daily_by_day ON stat_daily (administered_on, dose_number, n);

CREATE TRIGGER doses_count_insert AFTER INSERT ON doses BEGIN
    INSERT INTO stat_daily (prefecture_code, administered_on, dose_number, n)
        SELECT substr(NEW.municipality_code, 1, 2), NEW.administered_on, NEW.dose_number, 1 WHERE NEW.status = 'valid' AND NEW.origin <> 'transferred'
        ON CONFLICT (prefecture_code, administered_on, dose_number) DO UPDATE SET n = n + excluded.n;
    INSERT INTO stat_monthly (prefecture_code, month, dose_number, product_code, n)
        SELECT substr(NEW.municipality_code, 1, 2), substr(NEW.administered_on, 1, 7), NEW.dose_number, NEW.product_code, 1 WHERE NEW.status = 'valid' AND NEW.origin <> 'transferred'
        ON CONFLICT (prefecture_code, month, dose_number, product_code) DO UPDATE SET n = n + excluded.n;
    INSERT INTO stat_demographic (prefecture_code, month, age_band, sex, n)
        SELECT substr(NEW.municipality_code, 1, 2), substr(NEW.administered_on, 1, 7), coalesce(NEW.age_band, -1), coalesce(NEW.sex, '9'), 1 WHERE NEW.status = 'valid' AND NEW.origin <> 'transferred'
        ON CONFLICT (prefecture_code, month, age_band, sex) DO UPDATE SET n = n + excluded.n;
    INSERT INTO stat_municipal (municipality_code, month, dose_number, n)
        SELECT NEW.municipality_code, substr(NEW.administered_on, 1, 7), NEW.dose_number, 1 WHERE NEW.status = 'valid' AND NEW.origin <> 'transferred'
        ON CONFLICT (municipality_code, month, dose_number) DO UPDATE SET n = n + excluded.n;
    INSERT INTO stat_open (prefecture_code, administered_on, dose_number, age_group, sex, n)
        SELECT substr(NEW.municipality_code, 1, 2), NEW.administered_on, NEW.dose_number, CASE WHEN NEW.age_band IS NULL THEN 'unknown' WHEN NEW.age_band >= 65 THEN '65-' ELSE '-64' END, coalesce(NEW.sex, '9'), 1 WHERE NEW.status = 'valid' AND NEW.origin <> 'transferred'
        ON CONFLICT (prefecture_code, administered_on, dose_number, age_group, sex) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER doses_count_update AFTER UPDATE ON doses BEGIN
    INSERT INTO stat_daily (prefecture_code, administered_on, dose_number, n)
        SELECT substr(OLD.municipality_code, 1, 2), OLD.administered_on, OLD.dose_number, -1 WHERE OLD.status = 'valid' AND OLD.origin <> 'transferred'
        ON CONFLICT (prefecture_code, administered_on, dose_number) DO UPDATE SET n = n + excluded.n;
    INSERT INTO stat_monthly (prefecture_code, month, dose_number, product_code, n)
        SELECT substr(OLD.municipality_code, 1, 2), substr(OLD.administered_on, 1, 7), OLD.dose_number, OLD.product_code, -1 WHERE OLD.status = 'valid' AND OLD.origin <> 'transferred'
        ON CONFLICT (prefecture_code, month, dose_number, product_code) DO UPDATE SET n = n + excluded.n;
    INSERT INTO stat_demographic (prefecture_code, month, age_band, sex, n)
        SELECT substr(OLD.municipality_code, 1, 2), substr(OLD.administered_on, 1, 7), coalesce(OLD.age_band, -1), coalesce(OLD.sex, '9'), -1 WHERE OLD.status = 'valid' AND OLD.origin <> 'transferred'
        ON CONFLICT (prefecture_code, month, age_band, sex) DO UPDATE SET n = n + excluded.n;
    INSERT INTO stat_municipal (municipality_code, month, dose_number, n)
        SELECT OLD.municipality_code, substr(OLD.administered_on, 1, 7), OLD.dose_number, -1 WHERE OLD.status = 'valid' AND OLD.origin <> 'transferred'
        ON CONFLICT (municipality_code, month, dose_number) DO UPDATE SET n = n + excluded.n;
    INSERT INTO stat_open (prefecture_code, administered_on, dose_number, age_group, sex, n)
        SELECT substr(OLD.municipality_code, 1, 2), OLD.administered_on, OLD.dose_number, CASE WHEN OLD.age_band IS NULL THEN 'unknown' WHEN OLD.age_band >= 65 THEN '65-' ELSE '-64' END, coalesce(OLD.sex, '9'), -1 WHERE OLD.status = 'valid' AND OLD.origin <> 'transferred'
        ON CONFLICT (prefecture_code, administered_on, dose_number, age_group, sex) DO UPDATE SET n = n + excluded.n;
    INSERT INTO stat_daily (prefecture_code, administered_on, dose_number, n)
        SELECT substr(NEW.municipality_code, 1, 2), NEW.administered_on, NEW.dose_number, 1 WHERE NEW.status = 'valid' AND NEW.origin <> 'transferred'
        ON CONFLICT (prefecture_code, administered_on, dose_number) DO UPDATE SET n = n + excluded.n;
    INSERT INTO stat_monthly (prefecture_code, month, dose_number, product_code, n)
        SELECT substr(NEW.municipality_code, 1, 2), substr(NEW.administered_on, 1, 7), NEW.dose_number, NEW.product_code, 1 WHERE NEW.status = 'valid' AND NEW.origin <> 'transferred'
        ON CONFLICT (prefecture_code, month, dose_number, product_code) DO UPDATE SET n = n + excluded.n;
    INSERT INTO stat_demographic (prefecture_code, month, age_band, sex, n)
        SELECT substr(NEW.municipality_code, 1, 2), substr(NEW.administered_on, 1, 7), coalesce(NEW.age_band, -1), coalesce(NEW.sex, '9'), 1 WHERE NEW.status = 'valid' AND NEW.origin <> 'transferred'
        ON CONFLICT (prefecture_code, month, age_band, sex) DO UPDATE SET n = n + excluded.n;
    INSERT INTO stat_municipal (municipality_code, month, dose_number, n)
        SELECT NEW.municipality_code, substr(NEW.administered_on, 1, 7), NEW.dose_number, 1 WHERE NEW.status = 'valid' AND NEW.origin <> 'transferred'
        ON CONFLICT (municipality_code, month, dose_number) DO UPDATE SET n = n + excluded.n;
    INSERT INTO stat_open (prefecture_code, administered_on, dose_number, age_group, sex, n)
        SELECT substr(NEW.municipality_code, 1, 2), NEW.administered_on, NEW.dose_number, CASE WHEN NEW.age_band IS NULL THEN 'unknown' WHEN NEW.age_band >= 65 THEN '65-' ELSE '-64' END, coalesce(NEW.sex, '9'), 1 WHERE NEW.status = 'valid' AND NEW.origin <> 'transferred'
        ON CONFLICT (prefecture_code, administered_on, dose_number, age_group, sex) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER doses_count_delete AFTER DELETE ON doses BEGIN
    INSERT INTO stat_daily (prefecture_code, administered_on, dose_number, n)
        SELECT substr(OLD.municipality_code, 1, 2), OLD.administered_on, OLD.dose_number, -1 WHERE OLD.status = 'valid' AND OLD.origin <> 'transferred'
        ON CONFLICT (prefecture_code, administered_on, dose_number) DO UPDATE SET n = n + excluded.n;
    INSERT INTO stat_monthly (prefecture_code, month, dose_number, product_code, n)
        SELECT substr(OLD.municipality_code, 1, 2), substr(OLD.administered_on, 1, 7), OLD.dose_number, OLD.product_code, -1 WHERE OLD.status = 'valid' AND OLD.origin <> 'transferred'
        ON CONFLICT (prefecture_code, month, dose_number, product_code) DO UPDATE SET n = n + excluded.n;
    INSERT INTO stat_demographic (prefecture_code, month, age_band, sex, n)
        SELECT substr(OLD.municipality_code, 1, 2), substr(OLD.administered_on, 1, 7), coalesce(OLD.age_band, -1), coalesce(OLD.sex, '9'), -1 WHERE OLD.status = 'valid' AND OLD.origin <> 'transferred'
        ON CONFLICT (prefecture_code, month, age_band, sex) DO UPDATE SET n = n + excluded.n;
    INSERT INTO stat_municipal (municipality_code, month, dose_number, n)
        SELECT OLD.municipality_code, substr(OLD.administered_on, 1, 7), OLD.dose_number, -1 WHERE OLD.status = 'valid' AND OLD.origin <> 'transferred'
        ON CONFLICT (municipality_code, month, dose_number) DO UPDATE SET n = n + excluded.n;
    INSERT INTO stat_open (prefecture_code, administered_on, dose_number, age_group, sex, n)
        SELECT substr(OLD.municipality_code, 1, 2), OLD.administered_on, OLD.dose_number, CASE WHEN OLD.age_band IS NULL THEN 'unknown' WHEN OLD.age_band >= 65 THEN '65-' ELSE '-64' END, coalesce(OLD.sex, '9'), -1 WHERE OLD.status = 'valid' AND OLD.origin <> 'transferred'
        ON CONFLICT (prefecture_code, administered_on, dose_number, age_group, sex) DO UPDATE SET n = n + excluded.n;
END;

-- Counts of the doses already recorded.
INSERT INTO stat_daily (prefecture_code, administered_on, dose_number, n)
    SELECT substr(d.municipality_code, 1, 2), d.administered_on, d.dose_number, count(*) FROM doses d
    WHERE d.status = 'valid' AND d.origin <> 'transferred'
    GROUP BY 1, 2, 3;
INSERT INTO stat_monthly (prefecture_code, month, dose_number, product_code, n)
    SELECT substr(d.municipality_code, 1, 2), substr(d.administered_on, 1, 7), d.dose_number, d.product_code, count(*) FROM doses d
    WHERE d.status = 'valid' AND d.origin <> 'transferred'
    GROUP BY 1, 2, 3, 4;
INSERT INTO stat_demographic (prefecture_code, month, age_band, sex, n)
    SELECT substr(d.municipality_code, 1, 2), substr(d.administered_on, 1, 7), coalesce(d.age_band, -1), coalesce(d.sex, '9'), count(*) FROM doses d
    WHERE d.status = 'valid' AND d.origin <> 'transferred'
    GROUP BY 1, 2, 3, 4;
INSERT INTO stat_municipal (municipality_code, month, dose_number, n)
    SELECT d.municipality_code, substr(d.administered_on, 1, 7), d.dose_number, count(*) FROM doses d
    WHERE d.status = 'valid' AND d.origin <> 'transferred'
    GROUP BY 1, 2, 3;
INSERT INTO stat_open (prefecture_code, administered_on, dose_number, age_group, sex, n)
    SELECT substr(d.municipality_code, 1, 2), d.administered_on, d.dose_number, CASE WHEN d.age_band IS NULL THEN 'unknown' WHEN d.age_band >= 65 THEN '65-' ELSE '-64' END, coalesce(d.sex, '9'), count(*) FROM doses d
    WHERE d.status = 'valid' AND d.origin <> 'transferred'
    GROUP BY 1, 2, 3, 4, 5;
