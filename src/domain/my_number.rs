use super::{FieldError, Reason, parse_digits};
use zeroize::Zeroize;

/// 個人番号. Deliberately has no `Display` and a redacting `Debug`: the only
/// way to get the digits out is `expose_digits`, whose callers are the sealing
/// and blind-index code.
#[derive(Clone, PartialEq, Eq)]
pub struct MyNumber([u8; 12]);

impl MyNumber {
    pub const FIELD: &'static str = "個人番号";

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let d = parse_digits::<12>(Self::FIELD, input)?;
        if check_digit(&d[..11]) != d[11] {
            return Err(FieldError {
                field: Self::FIELD,
                reason: Reason::CheckDigit,
            });
        }
        Ok(MyNumber(d))
    }

    /// The 12 ASCII digits, for sealing and indexing only.
    pub fn expose_digits(&self) -> [u8; 12] {
        let mut out = [0u8; 12];
        for (o, d) in out.iter_mut().zip(self.0) {
            *o = b'0' + d;
        }
        out
    }

    /// Builds a valid number from 11 leading digits (demo data and tests).
    pub fn from_body(body: u64) -> Self {
        let mut d = [0u8; 12];
        let mut n = body % 100_000_000_000;
        for i in (0..11).rev() {
            d[i] = (n % 10) as u8;
            n /= 10;
        }
        d[11] = check_digit(&d[..11]);
        MyNumber(d)
    }
}

impl Drop for MyNumber {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for MyNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MyNumber(************)")
    }
}

/// Masks every run of 12 or more digits (ASCII or full-width), so text that
/// may carry something shaped like an individual number — a request path in
/// a log line, a return link — never shows it.
pub fn mask_number_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= 12 {
            out.push_str("[masked]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in s.chars() {
        if c.is_ascii_digit() || ('０'..='９').contains(&c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// The check digit of PRODUCT.md: P_n is the n-th digit from the right of the
/// 11-digit body, Q_n = n+1 for n <= 6 and n-5 above.
fn check_digit(body: &[u8]) -> u8 {
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &p)| {
            let n = i as u32 + 1;
            let q = if n <= 6 { n + 1 } else { n - 5 };
            p as u32 * q
        })
        .sum();
    let r = sum % 11;
    if r <= 1 { 0 } else { (11 - r) as u8 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_example() {
        assert!(MyNumber::parse("123456789018").is_ok());
    }

    #[test]
    fn rejects_a_wrong_check_digit() {
        let e = MyNumber::parse("123456789017").unwrap_err();
        assert_eq!(e.reason, Reason::CheckDigit);
        assert_eq!(e.field, "個人番号");
    }

    #[test]
    fn every_single_digit_change_is_caught() {
        let good = b"123456789018";
        for pos in 0..12 {
            for d in b'0'..=b'9' {
                if good[pos] == d {
                    continue;
                }
                let mut s = *good;
                s[pos] = d;
                let s = std::str::from_utf8(&s).unwrap();
                assert!(MyNumber::parse(s).is_err(), "{pos} {d}");
            }
        }
    }

    #[test]
    fn from_body_builds_valid_numbers() {
        for body in [0u64, 1, 12345678901, 99999999999, 4242] {
            let n = MyNumber::from_body(body);
            let s = String::from_utf8(n.expose_digits().to_vec()).unwrap();
            assert_eq!(MyNumber::parse(&s).unwrap(), n);
        }
    }

    #[test]
    fn long_digit_runs_are_masked() {
        assert_eq!(mask_number_like("/r/123456789018/x"), "/r/[masked]/x");
        assert_eq!(mask_number_like("/t/0822040123"), "/t/0822040123");
        assert_eq!(mask_number_like("１２３４５６７８９０１８"), "[masked]");
    }

    #[test]
    fn debug_never_shows_digits() {
        let n = MyNumber::parse("123456789018").unwrap();
        assert!(!format!("{n:?}").contains("1234"));
    }
}
