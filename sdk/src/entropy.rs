//! Shannon entropy: how random bytes look. Compressed or encrypted data is close to 8 bits per
//! byte; machine code about 5 to 6.5; text about 4 to 5.

/// Entropy of `data` in bits per byte, from 0.0 (one repeated byte, or empty) to 8.0.
pub fn shannon(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0u64; 256];
    for &byte in data {
        counts[byte as usize] += 1;
    }
    let total = data.len() as f64;
    counts
        .iter()
        .filter(|&&count| count > 0)
        .map(|&count| {
            let p = count as f64 / total;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::shannon;

    #[test]
    fn extremes_and_a_known_value() {
        assert_eq!(shannon(b""), 0.0);
        assert_eq!(shannon(&[7; 1000]), 0.0);
        let all: Vec<u8> = (0..=255).collect();
        assert!((shannon(&all) - 8.0).abs() < 1e-9);
        assert!((shannon(b"abab") - 1.0).abs() < 1e-9);
    }
}
