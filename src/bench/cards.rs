//! `vrs bench cards`: issuing a SMART Health Card as the issuance flow does
//! it — FHIR bundle, minified JSON, raw DEFLATE, ES256 signature, the one
//! numeric-mode QR code — on one core and on every core, beside the bare
//! ES256 signature of a message of the same size (the step no issuer can
//! skip) measured in the same run.

use super::cores;
use crate::demo::demo_resident;
use crate::domain::MunicipalityCode;
use crate::flows::certificates::cvx_of;
use crate::shc::{self, Immunization, Patient, Signer};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use std::fmt::Write;
use std::hint::black_box;
use std::time::Instant;

/// A made-up person with `doses` doses, as the demo residents are.
fn person(i: usize, doses: usize) -> (Patient, Vec<Immunization>) {
    let code = MunicipalityCode::parse("131016").expect("valid");
    let r = demo_resident(code, i);
    let name = r.name_kanji.as_str().replace('\u{3000}', " ");
    let mut parts = name.split_whitespace();
    let patient = Patient {
        family: parts.next().unwrap_or_default().to_string(),
        given: parts.map(str::to_string).collect(),
        birth_date: r.birth_date.date(),
    };
    const PRODUCTS: [&str; 5] = [
        "PFZ_ORIG_12P",
        "PFZ_ORIG_12P",
        "MOD_ORIG",
        "PFZ_BIV_BA45_12P",
        "DS_XBB",
    ];
    let start = chrono::NaiveDate::from_ymd_opt(2021, 5, 10).unwrap_or_default();
    let doses = (0..doses)
        .map(|n| Immunization {
            cvx: cvx_of(PRODUCTS[n % PRODUCTS.len()]),
            date: start + chrono::Duration::days((n * 150 + i % 30) as i64),
            lot: Some(format!("FA{:04}", (i * 7 + n) % 10_000)),
            performer: format!("{}集団接種会場", ["中央", "北", "南"][i % 3]),
        })
        .collect();
    (patient, doses)
}

/// One card, start to finish; returns the JWS length (kept alive so the
/// work is not optimised away).
fn issue_one(signer: &Signer, p: &Patient, d: &[Immunization], i: usize) -> usize {
    let payload = shc::payload(
        "https://vrs.example.lg.jp",
        1_700_000_000 + i as i64,
        shc::bundle(p, d),
        "AAECAwQFBgc",
    );
    let jws = signer.sign(&payload);
    let code = shc::qr(&jws).expect("a card of a few doses fits one QR code");
    black_box(code.size());
    jws.len()
}

pub fn run(n: usize, doses: usize) -> String {
    let machine = super::Machine::now();
    let n = n.max(200);
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let signer = Signer::new(key.clone(), "bench-kid".into());
    let people: Vec<_> = (0..256).map(|i| person(i, doses)).collect();

    // The first card is checked end to end, so the figure is of real cards.
    let (p, d) = &people[0];
    let jws = signer.sign(&shc::payload(
        "https://vrs.example.lg.jp",
        1,
        shc::bundle(p, d),
        "AAECAwQFBgc",
    ));
    let parsed = shc::parse(&jws).expect("the card parses");
    let contents = shc::contents(&parsed.payload).expect("the card reads back");
    assert_eq!(contents.doses.len(), doses);
    let version = shc::qr(&jws).map(|c| c.version().value()).unwrap_or(0);
    let message = vec![b'x'; jws.len()];

    let warm = n / 10;
    for i in 0..warm {
        let (p, d) = &people[i % people.len()];
        black_box(issue_one(&signer, p, d, i));
    }

    // Baseline: the bare ES256 signature of a message as long as a card.
    let start = Instant::now();
    for _ in 0..n {
        let s: Signature = key.sign(black_box(&message));
        black_box(s);
    }
    let sign_rate = n as f64 / start.elapsed().as_secs_f64();

    // One core.
    let start = Instant::now();
    let mut bytes = 0;
    for i in 0..n {
        let (p, d) = &people[i % people.len()];
        bytes += issue_one(&signer, p, d, i);
    }
    let one_core = n as f64 / start.elapsed().as_secs_f64();
    black_box(bytes);

    // Where one core's time goes: each step alone, over the same cards.
    let m = (n / 4).max(100);
    let step = |f: &dyn Fn(usize)| {
        let start = Instant::now();
        for i in 0..m {
            f(i);
        }
        start.elapsed().as_secs_f64() * 1e6 / m as f64
    };
    let payloads: Vec<_> = (0..m)
        .map(|i| {
            let (p, d) = &people[i % people.len()];
            shc::payload(
                "https://vrs.example.lg.jp",
                i as i64,
                shc::bundle(p, d),
                "AAECAwQFBgc",
            )
        })
        .collect();
    let cards: Vec<String> = payloads.iter().map(|p| signer.sign(p)).collect();
    let us_bundle = step(&|i| {
        let (p, d) = &people[i % people.len()];
        black_box(
            serde_json::to_vec(&shc::bundle(p, d))
                .map(|v| v.len())
                .unwrap_or(0),
        );
    });
    let us_sign = step(&|i| {
        black_box(signer.sign(&payloads[i]).len());
    });
    let us_qr = step(&|i| {
        black_box(shc::qr(&cards[i]).map(|c| c.size()).unwrap_or(0));
    });

    // Every core, each thread with its own share.
    let threads = cores().max(1);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (signer, people) = (&signer, &people);
            s.spawn(move || {
                for i in (t..n).step_by(threads) {
                    let (p, d) = &people[i % people.len()];
                    black_box(issue_one(signer, p, d, i));
                }
            });
        }
    });
    let all_cores = n as f64 / start.elapsed().as_secs_f64();

    let mut out = String::new();
    let _ = writeln!(
        out,
        "bench cards: {n} SMART Health Cards of {doses} doses each (JWS {} characters, QR version {version})",
        jws.len()
    );
    let _ = writeln!(out, "  {}", machine.line());
    let _ = writeln!(
        out,
        "  ES256 signature alone, one core (baseline): {sign_rate:.0}/s"
    );
    let _ = writeln!(
        out,
        "  card issued (bundle, DEFLATE, ES256, QR), one core: {one_core:.0}/s  ({:.2}x the bare signature's rate; target >= 500/s per core -> {})",
        one_core / sign_rate,
        if one_core >= 500.0 { "met" } else { "not met" }
    );
    let _ = writeln!(
        out,
        "  one card's steps: bundle and JSON {us_bundle:.0} us, DEFLATE and ES256 {us_sign:.0} us, QR code {us_qr:.0} us"
    );
    let _ = writeln!(
        out,
        "  card issued, {threads} threads: {all_cores:.0}/s ({:.0}/s per core)",
        all_cores / threads as f64
    );
    out
}
