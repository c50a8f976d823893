//! Human output: aligned tables, key/value blocks and sizes in MB and GB.

/// Prints rows under a header, each column as wide as its widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}

/// `key: value` lines with the keys aligned.
pub fn block(pairs: &[(&str, String)]) -> String {
    let w = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    pairs
        .iter()
        .map(|(k, v)| format!("{:<w$} {v}\n", format!("{k}:")))
        .collect()
}

/// Bytes as GB, MB or KB, whichever keeps a digit before the point.
pub fn size(bytes: u64) -> String {
    const KB: f64 = 1024.0;
    const MB: f64 = KB * 1024.0;
    const GB: f64 = MB * 1024.0;
    let b = bytes as f64;
    match b {
        b if b >= GB => format!("{:.1} GB", b / GB),
        b if b >= MB => format!("{:.1} MB", b / MB),
        b if b >= KB => format!("{:.1} KB", b / KB),
        _ => format!("{bytes} B"),
    }
}

pub fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), T::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let t = table(
            &["ID", "LIMIT"],
            &[
                vec!["acme".into(), "3".into()],
                vec!["b".into(), "10".into()],
            ],
        );
        assert_eq!(t, "ID    LIMIT\nacme  3\nb     10\n");
        assert_eq!(
            block(&[("a", "1".into()), ("long", "2".into())]),
            "a:    1\nlong: 2\n"
        );
        assert_eq!(size(3 * 1024 * 1024), "3.0 MB");
        assert_eq!(size(5 * 1024 * 1024 * 1024), "5.0 GB");
        assert_eq!(size(4096), "4.0 KB");
        assert_eq!(size(12), "12 B");
        assert_eq!(opt::<u32>(&None), "-");
    }
}
