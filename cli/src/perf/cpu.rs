//! CPU time of this process (all threads, user + system) read from `/proc/self/stat`,
//! without libc: the clock tick comes from the auxiliary vector (`AT_CLKTCK`).

/// User + system CPU seconds used by this process so far; `None` off Linux.
pub fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_ascii_whitespace();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks_per_sec())
}

/// `AT_CLKTCK` from `/proc/self/auxv` (pairs of native-endian words); 100 if unreadable.
fn clock_ticks_per_sec() -> f64 {
    const AT_CLKTCK: u64 = 17;
    const WORD: usize = std::mem::size_of::<usize>();
    let Ok(auxv) = std::fs::read("/proc/self/auxv") else {
        return 100.0;
    };
    let word = |b: &[u8]| -> u64 {
        let mut a = [0u8; 8];
        a[..WORD].copy_from_slice(b);
        if cfg!(target_endian = "big") && WORD == 4 {
            a.copy_within(0..4, 4);
            a[..4].fill(0);
        }
        if cfg!(target_endian = "big") {
            u64::from_be_bytes(a)
        } else {
            u64::from_le_bytes(a)
        }
    };
    for pair in auxv.chunks_exact(2 * WORD) {
        if word(&pair[..WORD]) == AT_CLKTCK {
            let v = word(&pair[WORD..]);
            return if v > 0 { v as f64 } else { 100.0 };
        }
    }
    100.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_cpu_time() {
        let t0 = super::process_cpu_secs().expect("linux /proc");
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let t1 = super::process_cpu_secs().unwrap();
        assert!(t1 >= t0);
        assert!(super::clock_ticks_per_sec() >= 1.0);
    }
}
