//! Euro amounts as typed by Italian offices, parsed to integer cents.
//!
//! Accepted: `1234567.89`, `1234567,89`, `1.234.567,89`, `1,234,567.89`,
//! `1234567`. A lone separator followed by exactly three digits (`1.234`) is
//! ambiguous and refused rather than guessed.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid amount {input:?} for {field}: {why}; expected e.g. 1234567.89 or 1.234.567,89")]
pub struct AmountError {
    pub field: &'static str,
    pub input: String,
    pub why: &'static str,
}

/// Parses an amount in euro into cents. `field` names the field in errors.
pub fn parse_eur_cents(field: &'static str, input: &str) -> Result<i64, AmountError> {
    let err = |why| AmountError {
        field,
        input: input.to_owned(),
        why,
    };
    let s = input.trim().trim_start_matches('€').trim();
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b',')
    {
        return Err(err("only digits, '.' and ',' are allowed"));
    }
    let (int_part, frac_part) = split_decimal(s).ok_or_else(|| err("ambiguous separators"))?;
    if frac_part.len() > 2 {
        return Err(err("more than two decimal digits"));
    }
    let digits: String = int_part.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return Err(err("no digits before the decimal separator"));
    }
    let euros: i64 = digits.parse().map_err(|_| err("too large"))?;
    let cents: i64 = format!("{frac_part:0<2}")
        .parse()
        .map_err(|_| err("bad decimals"))?;
    let total = euros
        .checked_mul(100)
        .and_then(|e| e.checked_add(cents))
        .ok_or_else(|| err("too large"))?;
    Ok(if negative { -total } else { total })
}

/// Splits into integer part (may contain grouping separators) and decimals.
fn split_decimal(s: &str) -> Option<(&str, &str)> {
    let dots = s.matches('.').count();
    let commas = s.matches(',').count();
    let decimal = match (dots, commas) {
        (0, 0) => return Some((s, "")),
        // Both kinds: the last one is the decimal separator, used once.
        (_, _) if dots > 0 && commas > 0 => {
            let last = s.rfind(['.', ','])?;
            let sep = s.as_bytes()[last] as char;
            if s.matches(sep).count() > 1 {
                return None;
            }
            last
        }
        // Several of one kind: grouping only, no decimals.
        (d, c) if d > 1 || c > 1 => return grouped(s).then_some((s, "")),
        // One separator: decimal unless it is followed by exactly three digits.
        _ => {
            let at = s.find(['.', ','])?;
            if s.len() - at - 1 == 3 {
                return None;
            }
            at
        }
    };
    let (int_part, frac) = (&s[..decimal], &s[decimal + 1..]);
    grouped(int_part).then_some((int_part, frac))
}

/// Whether grouping separators (if any) split the digits in threes.
fn grouped(s: &str) -> bool {
    let groups: Vec<&str> = s.split(['.', ',']).collect();
    groups.len() == 1
        || (!groups[0].is_empty()
            && groups[0].len() <= 3
            && groups[1..].iter().all(|g| g.len() == 3))
}

/// Formats cents as Italian euros: `1.234.567,89`.
pub fn format_eur(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let euros = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in euros.chars().enumerate() {
        if i > 0 && (euros.len() - i).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(ch);
    }
    format!("{sign}{grouped},{:02}", abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_both_notations() {
        for (input, cents) in [
            ("1234567.89", 123456789),
            ("1.234.567,89", 123456789),
            ("1,234,567.89", 123456789),
            ("1234567,8", 123456780),
            ("1234567", 123456700),
            ("1.234.567", 123456700),
            ("€ 12,50", 1250),
            ("0.5", 50),
            ("-3,00", -300),
        ] {
            assert_eq!(parse_eur_cents("cost", input), Ok(cents), "{input}");
        }
    }

    #[test]
    fn refuses_ambiguous_or_malformed_amounts_naming_the_field() {
        for input in [
            "1.234",
            "12,345",
            "1.2.3,4,5",
            "1,23,456",
            "12.345,678",
            "abc",
            "",
            "1e5",
            ",5",
        ] {
            let err = parse_eur_cents("cost-eur", input).unwrap_err();
            assert!(err.to_string().contains("cost-eur"), "{input}: {err}");
        }
    }

    #[test]
    fn formats_in_italian() {
        assert_eq!(format_eur(123456789), "1.234.567,89");
        assert_eq!(format_eur(5), "0,05");
        assert_eq!(format_eur(-100000), "-1.000,00");
    }
}
