use super::{FieldError, Reason, parse_digits};

/// 地方公共団体コード (JIS X 0402): five digits and a check digit. Parsing checks
/// only the format; whether the code is in use is the `Registry`'s answer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MunicipalityCode([u8; 6]);

impl MunicipalityCode {
    pub const FIELD: &'static str = "地方公共団体コード";

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        Self::parse_field(Self::FIELD, input)
    }

    /// Same rules under another field name (e.g. 転出元市区町村コード).
    pub fn parse_field(field: &'static str, input: &str) -> Result<Self, FieldError> {
        let d = parse_digits::<6>(field, input)?;
        if check_digit(&d[..5]) != d[5] {
            return Err(FieldError {
                field,
                reason: Reason::CheckDigit,
            });
        }
        let mut ascii = [0u8; 6];
        for (a, x) in ascii.iter_mut().zip(d) {
            *a = b'0' + x;
        }
        Ok(MunicipalityCode(ascii))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("000000")
    }

    /// The first two digits: the prefecture.
    pub fn prefecture_code(&self) -> &str {
        &self.as_str()[..2]
    }
}

/// Weights 6,5,4,3,2 over the first five digits; check = (11 - r) mod 10.
fn check_digit(body: &[u8]) -> u8 {
    let sum: u32 = body
        .iter()
        .zip([6u32, 5, 4, 3, 2])
        .map(|(&d, w)| d as u32 * w)
        .sum();
    ((11 - sum % 11) % 10) as u8
}

impl std::fmt::Display for MunicipalityCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for MunicipalityCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MunicipalityCode({})", self.as_str())
    }
}

impl std::str::FromStr for MunicipalityCode {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_examples() {
        assert_eq!(
            MunicipalityCode::parse("131016").unwrap().as_str(),
            "131016"
        );
        assert_eq!(
            MunicipalityCode::parse("131017").unwrap_err().reason,
            Reason::CheckDigit
        );
        assert_eq!(
            MunicipalityCode::parse("082040").unwrap().prefecture_code(),
            "08"
        );
    }

    #[test]
    fn remainder_zero_and_one_follow_the_mod_10_rule() {
        // 01100: 0*6+1*5+1*4+0+0 = 9 -> r=9 -> check 2
        assert!(MunicipalityCode::parse("011002").is_ok());
        // Search bodies whose weighted sum is 0 and 1 mod 11.
        let mut seen = [false; 2];
        for body in 0..100_000u32 {
            let s = format!("{body:05}");
            let d: Vec<u8> = s.bytes().map(|b| b - b'0').collect();
            let sum: u32 = d
                .iter()
                .zip([6u32, 5, 4, 3, 2])
                .map(|(&x, w)| x as u32 * w)
                .sum();
            let r = (sum % 11) as usize;
            if r <= 1 && !seen[r] {
                seen[r] = true;
                let expected = if r == 0 { 1 } else { 0 };
                assert!(MunicipalityCode::parse(&format!("{s}{expected}")).is_ok());
            }
        }
        assert_eq!(seen, [true, true]);
    }
}
