//! Shannon entropy: how random bytes look. Compressed or encrypted data is close to 8 bits per
//! byte; machine code about 5 to 6.5; text about 4 to 5.

/// Entropy of `data` in bits per byte, from 0.0 (one repeated byte, or empty) to 8.0.
pub fn shannon(data: &[u8]) -> f64 {
    let mut counts = [0u64; 256];
    for &byte in data {
        counts[byte as usize] += 1;
    }
    from_counts(&counts, data.len())
}

/// Entropy of `blocks` blocks of `block` bytes spread evenly over `data` (all of `data` when it
/// is not longer than that): an estimate that costs the same for a 100 MiB section as for a
/// small one. Packed or encrypted code is random all through, so its blocks are too.
pub fn shannon_sampled(data: &[u8], blocks: usize, block: usize) -> f64 {
    let sampled = blocks.saturating_mul(block);
    if data.len() <= sampled || blocks < 2 {
        return shannon(data);
    }
    let step = (data.len() - block) / (blocks - 1);
    let mut counts = [0u64; 256];
    for start in (0..blocks).map(|n| n * step) {
        for &byte in &data[start..start + block] {
            counts[byte as usize] += 1;
        }
    }
    from_counts(&counts, sampled)
}

/// Entropy from byte counts over `total` bytes.
fn from_counts(counts: &[u64; 256], total: usize) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let total = total as f64;
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
    use super::{shannon, shannon_sampled};

    #[test]
    fn extremes_and_a_known_value() {
        assert_eq!(shannon(b""), 0.0);
        assert_eq!(shannon(&[7; 1000]), 0.0);
        let all: Vec<u8> = (0..=255).collect();
        assert!((shannon(&all) - 8.0).abs() < 1e-9);
        assert!((shannon(b"abab") - 1.0).abs() < 1e-9);
    }

    #[test]
    fn sampling_estimates_uniform_data_and_reads_short_data_whole() {
        let random: Vec<u8> = (0..1_000_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert!((shannon_sampled(&random, 16, 4096) - shannon(&random)).abs() < 0.05);
        let text = b"plain text repeats itself ".repeat(10_000);
        assert!((shannon_sampled(&text, 16, 4096) - shannon(&text)).abs() < 0.05);
        assert_eq!(shannon_sampled(b"abab", 16, 4096), shannon(b"abab"));
    }
}
