//! Durations as an operator writes them (`24h`, `1h30m`, `30d`) and as
//! fedpki prints them: one rule for the command line and the roster.

/// Seconds as the largest whole unit: `30d`, `24h`, `90m`, `45s`.
pub(crate) fn format_duration(secs: u64) -> String {
    match secs {
        s if s > 0 && s % 86400 == 0 => format!("{}d", s / 86400),
        s if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Parse `24h`, `90m`, `1h30m`, `300s`, `2d`, or plain seconds.
pub(crate) fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a duration; use e.g. 24h, 90m, 1h30m, 300s");
    let s = s.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return if secs == 0 { Err(bad()) } else { Ok(secs) };
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().map_err(|_| bad())?;
        number.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(bad()),
        };
        total = total
            .checked_add(n.checked_mul(unit).ok_or_else(bad)?)
            .ok_or_else(bad)?;
    }
    if !number.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Ok(86400));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("300"), Ok(300));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert_eq!(format_duration(172_800), "2d");
        for bad in ["", "h", "5x", "10h5", "0s", "0"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
