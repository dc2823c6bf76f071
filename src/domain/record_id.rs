//! The ids the system gives its records (jobs, doses, inquiries, log
//! lines…). They appear in log targets, URLs and result files, where every
//! run of 12 or more digits is masked as a possible individual number
//! (`mask_number_like`): an id whose random tail happened to be 12 digits
//! would be masked and lose the line it names. So an id never holds such
//! a run.

/// A new UUIDv7 (time-ordered, so indexes stay compact) with no run of 12
/// digits. Its last group is the only one long enough, and it is random:
/// about one id in 280 is drawn again.
pub fn new_record_id() -> String {
    loop {
        let id = uuid::Uuid::now_v7().to_string();
        if !has_number_like_run(&id) {
            return id;
        }
    }
}

fn has_number_like_run(s: &str) -> bool {
    let mut run = 0;
    for c in s.chars() {
        run = if c.is_ascii_digit() { run + 1 } else { 0 };
        if run >= 12 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_masked_as_individual_numbers() {
        // A plain UUID's last group is all digits once in ~280 draws: this
        // many would catch it many times over.
        for _ in 0..20_000 {
            let id = new_record_id();
            assert_eq!(super::super::mask_number_like(&id), id);
        }
    }

    #[test]
    fn a_run_of_twelve_digits_is_seen() {
        assert!(has_number_like_run("0193a5b2-0000-7000-8000-123456789012"));
        assert!(!has_number_like_run("0193a5b2-0000-7000-8000-12345678901a"));
    }
}
