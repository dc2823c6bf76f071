//! `vrs bench seal`: sealing and blind-indexing residents against raw AES-GCM.

use super::*;

/// Seals and blind-indexes `n` residents exactly as registration does (seven
/// sealed fields, two indexes) on one thread, and compares with raw
/// AES-256-GCM over the same field sizes with a fixed nonce (no AAD, no RNG).
pub fn seal(n: usize) -> String {
    let machine = Machine::now();
    let n = n.max(1000);
    let code = MunicipalityCode::parse("082040").expect("valid");
    let people: Vec<_> = (0..1000).map(|i| demo_resident(code, i)).collect();
    let sealer = Sealer::new(code, &[(1, &[7u8; 32])], 1);
    let indexer = BlindIndexer::new(&[9u8; 32]);
    let fields = |p: &crate::flows::residents::NewResident| -> [Vec<u8>; 7] {
        [
            p.addressee_number.as_str().as_bytes().to_vec(),
            p.my_number
                .as_ref()
                .map(|m| m.expose_digits().to_vec())
                .unwrap_or_default(),
            p.name_kanji.as_str().as_bytes().to_vec(),
            p.name_kana.as_str().as_bytes().to_vec(),
            p.birth_date.date().to_string().into_bytes(),
            p.sex.code().as_bytes().to_vec(),
            p.address.clone().unwrap_or_default().into_bytes(),
        ]
    };
    let prepared: Vec<[Vec<u8>; 7]> = people.iter().map(fields).collect();
    let columns = [
        "addressee_number",
        "my_number",
        "name_kanji",
        "name_kana",
        "birth_date",
        "sex",
        "address",
    ];

    // Warm up, then measure the product path.
    let run_product = |count: usize| {
        let start = Instant::now();
        for i in 0..count {
            let f = &prepared[i % prepared.len()];
            let id = "0b1f6c2e-8a57-4c55-9d0e-3f2a1b6c7d8e";
            for (col, v) in columns.iter().zip(f.iter()) {
                black_box(sealer.seal(
                    AadContext {
                        table: "residents",
                        column: col,
                        row_id: id,
                    },
                    v,
                ));
            }
            black_box(indexer.index("my_number", &f[1]));
            black_box(indexer.index("addressee_number", &f[0]));
        }
        start.elapsed()
    };
    run_product(n / 10);
    let product = run_product(n);

    let cipher = Aes256Gcm::new_from_slice(&[7u8; 32]).expect("key");
    let run_raw = |count: usize| {
        let nonce = &Nonce::from([0u8; 12]);
        let mut buf = Vec::with_capacity(256);
        let start = Instant::now();
        for i in 0..count {
            for v in prepared[i % prepared.len()].iter() {
                buf.clear();
                buf.extend_from_slice(v);
                black_box(cipher.encrypt_in_place_detached(nonce, b"", &mut buf).ok());
            }
        }
        start.elapsed()
    };
    run_raw(n / 10);
    let raw = run_raw(n);

    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / n as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "bench seal: {n} residents, 7 sealed fields + 2 blind indexes each, one thread"
    );
    let _ = writeln!(out, "  {}", machine.line());
    let _ = writeln!(
        out,
        "  raw AES-256-GCM, same 7 fields:   {:.3} µs/resident",
        per(raw)
    );
    let _ = writeln!(
        out,
        "  seal + blind index (product):     {:.3} µs/resident",
        per(product)
    );
    let _ = writeln!(
        out,
        "  ratio product/raw:                {:.2}x",
        per(product) / per(raw)
    );
    let _ = writeln!(
        out,
        "  target: under 5 µs/resident -> {}",
        if per(product) < 5.0 { "met" } else { "NOT met" }
    );
    out
}
