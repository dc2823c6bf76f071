//! QR codes as the product prints them (tickets, certificates, the second
//! factor's set-up): encoded by `qrcodegen`, with the data mask chosen by
//! the penalty rules of ISO/IEC 18004 §7.8.3, and drawn as inline SVG.
//!
//! The mask choice is scored here, by hand, on rows and columns held as
//! bit sets: the library's own choice costs about 1.7 ms for a certificate's
//! version-18 code, most of a card's issuing time, and the same rules
//! scored this way cost a few microseconds a mask.

use qrcodegen::{Mask, QrCode, QrCodeEcc, QrSegment, Version};
use std::fmt::Write;

pub use qrcodegen::{QrCodeEcc as Ecc, QrSegment as Segment};

/// Width of the light border around a code, in modules (ISO minimum).
const QUIET: i32 = 4;

/// Encodes segments in the smallest version up to `max_version`, with the
/// mask of least penalty. `None` when they do not fit.
pub fn encode(segs: &[QrSegment], ecl: QrCodeEcc, max_version: u8) -> Option<QrCode> {
    let max = Version::new(max_version.clamp(1, 40));
    let mut best: Option<(u32, QrCode)> = None;
    for m in 0..8 {
        let code = QrCode::encode_segments_advanced(
            segs,
            ecl,
            Version::MIN,
            max,
            Some(Mask::new(m)),
            false,
        )
        .ok()?;
        let score = penalty(&code);
        if best.as_ref().is_none_or(|(s, _)| score < *s) {
            best = Some((score, code));
        }
    }
    best.map(|(_, c)| c)
}

/// A text in the fewest bits (numeric, alphanumeric or byte mode).
pub fn encode_text(text: &str, ecl: QrCodeEcc) -> Option<QrCode> {
    encode(&QrSegment::make_segments(text), ecl, 40)
}

/// The ISO/IEC 18004 penalty of a finished code: runs of five or more
/// modules of one colour (N1 = 3, +1 per extra module), 2×2 blocks of one
/// colour (N2 = 3), finder-like 1:1:3:1:1 patterns with four light modules
/// on one side (N3 = 40), and the dark share's distance from half (N4 = 10
/// per 5 %).
pub fn penalty(code: &QrCode) -> u32 {
    let n = code.size();
    let (rows, cols) = bit_lines(code);
    let width_mask: u128 = if n >= 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    };
    let mut score = 0;
    for lines in [&rows, &cols] {
        for &line in lines.iter() {
            score += runs_penalty(line, n);
            score += finder_like(line, n) * 40;
        }
    }
    for pair in rows.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let same_vertically = !(a ^ b);
        let same_horizontally = !(a ^ (a >> 1));
        let blocks = same_vertically & (same_vertically >> 1) & same_horizontally;
        score += (blocks & (width_mask >> 1)).count_ones() * 3;
    }
    let dark: u32 = rows.iter().map(|r| r.count_ones()).sum();
    let total = (n * n) as u32;
    // k: how many 5 % steps the dark share lies from 50 %, rounded down.
    let k = (dark * 20)
        .abs_diff(total * 10)
        .div_ceil(total)
        .saturating_sub(1);
    score + k * 10
}

/// Rows and columns as bit sets (bit j = module j is dark).
fn bit_lines(code: &QrCode) -> (Vec<u128>, Vec<u128>) {
    let n = code.size();
    let mut rows = vec![0u128; n as usize];
    let mut cols = vec![0u128; n as usize];
    for y in 0..n {
        for x in 0..n {
            if code.get_module(x, y) {
                rows[y as usize] |= 1 << x;
                cols[x as usize] |= 1 << y;
            }
        }
    }
    (rows, cols)
}

fn runs_penalty(line: u128, n: i32) -> u32 {
    // Bit j of `changes` is set where module j+1 differs from module j; the
    // runs are the gaps between them (a bit at n-1 closes the last run).
    let inside = (1u128 << (n - 1)) - 1;
    let mut changes = ((line ^ (line >> 1)) & inside) | (1u128 << (n - 1));
    let mut score = 0;
    let mut start = 0;
    while changes != 0 {
        let end = changes.trailing_zeros() as i32;
        let run = end - start + 1;
        if run >= 5 {
            score += 3 + (run - 5) as u32;
        }
        start = end + 1;
        changes &= changes - 1;
    }
    score
}

/// Finder-like patterns in one line, the area outside the code counting as
/// light: dark-light-dark×3-light-dark with four light modules before or
/// after it (each occurrence counted once). Every window position is tested
/// at once: bit s of `hits` says the 11 modules from s match.
fn finder_like(line: u128, n: i32) -> u32 {
    // Bit 0 is the first module; the line is padded with four light
    // modules before (shifted up by 4) and after (high bits are zero).
    let padded = line << 4;
    let span = n + 8;
    // Patterns read from low bit to high: the 7-module core is 1011101;
    // BEFORE has four light modules, then the core; AFTER the core, then
    // four light modules.
    const BEFORE: u16 = 0b101_1101_0000;
    const AFTER: u16 = 0b101_1101;
    let matches = |pattern: u16| {
        (0..11).fold(u128::MAX, |acc, k| {
            let shifted = padded >> k;
            acc & if (pattern >> k) & 1 == 1 {
                shifted
            } else {
                !shifted
            }
        })
    };
    let positions = (1u128 << (span - 10)) - 1;
    ((matches(BEFORE) | matches(AFTER)) & positions).count_ones()
}

/// The code as an inline SVG (no XML declaration), `px` wide, with its
/// quiet zone, one path of unit squares.
pub fn svg(code: &QrCode, px: u32) -> String {
    let n = code.size();
    let side = n + 2 * QUIET;
    let mut d = String::with_capacity((n * n * 6) as usize);
    for y in 0..n {
        for x in 0..n {
            if code.get_module(x, y) {
                let _ = write!(d, "M{},{}h1v1h-1z", x + QUIET, y + QUIET);
            }
        }
    }
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{px}" height="{px}" viewBox="0 0 {side} {side}" shape-rendering="crispEdges" role="img"><rect width="{side}" height="{side}" fill="#fff"/><path d="{d}" fill="#000"/></svg>"##
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_penalty_follows_each_rule() {
        // A run of 7 dark modules: 3 + 2.
        assert_eq!(runs_penalty(0b111_1111, 7), 5);
        assert_eq!(runs_penalty(0b1010, 4), 0);
        // The 1:1:3:1:1 core alone in a line: four light modules on both
        // sides (the border counts as light), so it counts twice.
        assert_eq!(finder_like(0b1011101, 11), 2);
        // A dark module two before the core: light after it only.
        assert_eq!(finder_like(1 | (0b1011101 << 2), 13), 1);
        assert_eq!(finder_like(0b1011001, 11), 0);
    }

    #[test]
    fn the_chosen_mask_scores_no_worse_than_any_other() {
        let segs = QrSegment::make_segments("shc:/5676295953");
        let best = encode(&segs, QrCodeEcc::Low, 22).unwrap();
        for m in 0..8 {
            let other = QrCode::encode_segments_advanced(
                &segs,
                QrCodeEcc::Low,
                Version::MIN,
                Version::new(22),
                Some(Mask::new(m)),
                false,
            )
            .unwrap();
            assert!(penalty(&best) <= penalty(&other));
        }
    }

    #[test]
    fn the_svg_draws_every_dark_module_once() {
        let code = encode_text("123456789012345678", QrCodeEcc::Medium).unwrap();
        let svg = svg(&code, 96);
        let dark = (0..code.size())
            .flat_map(|y| (0..code.size()).map(move |x| (x, y)))
            .filter(|&(x, y)| code.get_module(x, y))
            .count();
        assert_eq!(svg.matches("h1v1h-1z").count(), dark);
        assert!(svg.starts_with("<svg"));
    }
}
