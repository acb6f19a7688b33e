//! CPU time and resident memory of this process, read from `/proc/self` without libc:
//! the clock tick and the page size come from the auxiliary vector (`/proc/self/auxv`).

/// `AT_PAGESZ`: the page size in bytes.
const AT_PAGESZ: u64 = 6;
/// `AT_CLKTCK`: the frequency of `times()`, the unit of `/proc/self/stat`'s CPU times.
const AT_CLKTCK: u64 = 17;

/// User + system CPU seconds used by this process so far; `None` off Linux.
pub fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_ascii_whitespace();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks_per_sec = auxv(AT_CLKTCK).filter(|&t| t > 0).unwrap_or(100);
    Some((utime + stime) as f64 / ticks_per_sec as f64)
}

/// Resident set size of this process in bytes; `None` off Linux.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let page_size = auxv(AT_PAGESZ).filter(|&p| p > 0)?;
    resident_pages(&statm)?.checked_mul(page_size)
}

/// Field 2 of `/proc/self/statm` (size resident shared text lib data dt, in pages).
fn resident_pages(statm: &str) -> Option<u64> {
    statm.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// The value of `key` in this process's auxiliary vector.
fn auxv(key: u64) -> Option<u64> {
    auxv_lookup(&std::fs::read("/proc/self/auxv").ok()?, key)
}

/// The value of `key` in an auxiliary vector: (key, value) pairs of native-endian words.
fn auxv_lookup(auxv: &[u8], key: u64) -> Option<u64> {
    const WORD: usize = std::mem::size_of::<usize>();
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
    auxv.chunks_exact(2 * WORD)
        .find(|pair| word(&pair[..WORD]) == key)
        .map(|pair| word(&pair[WORD..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_time() {
        let t0 = cpu_secs().expect("linux /proc");
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let t1 = cpu_secs().unwrap();
        assert!(t1 > t0, "{t0} s then {t1} s of CPU after a busy loop");
        assert!(auxv(AT_CLKTCK).expect("AT_CLKTCK in /proc/self/auxv") >= 1);
    }

    #[test]
    fn parses_statm() {
        assert_eq!(resident_pages("5436 1234 987 180 0 512 0\n"), Some(1234));
        assert_eq!(resident_pages("5436"), None);
        assert_eq!(resident_pages("5436 x 987"), None);
        assert_eq!(resident_pages(""), None);
    }

    /// An auxiliary vector of native-endian words, as the kernel writes it.
    fn auxv_bytes(pairs: &[(usize, usize)]) -> Vec<u8> {
        pairs
            .iter()
            .flat_map(|&(k, v)| [k.to_ne_bytes(), v.to_ne_bytes()])
            .flatten()
            .collect()
    }

    #[test]
    fn looks_up_auxv_entries() {
        let v = auxv_bytes(&[(33, 0x7ffd_0000), (6, 16384), (17, 250), (0, 0)]);
        assert_eq!(auxv_lookup(&v, AT_PAGESZ), Some(16384));
        assert_eq!(auxv_lookup(&v, AT_CLKTCK), Some(250));
        assert_eq!(auxv_lookup(&v, 99), None);
        // A truncated last pair is not read.
        let cut = &v[..v.len() - 1];
        assert_eq!(auxv_lookup(cut, 0), None);
        assert_eq!(auxv_lookup(&[], AT_PAGESZ), None);
    }

    #[test]
    fn reads_resident_memory() {
        let page = auxv(AT_PAGESZ).expect("AT_PAGESZ in /proc/self/auxv");
        assert!(page.is_power_of_two() && page >= 4096, "page size {page}");
        let before = resident_bytes().expect("linux /proc");
        assert_eq!(before % page, 0);
        // Touch 64 MiB: the resident set must grow by most of it.
        let touched = vec![1u8; 64 << 20];
        std::hint::black_box(&touched);
        let after = resident_bytes().unwrap();
        assert!(
            after >= before + (48 << 20),
            "{before} B resident, then {after} B after touching 64 MiB"
        );
    }
}
