use super::*;

#[test]
fn cpu_times_are_read_after_the_command_name_whatever_it_holds() {
    // A command name with a space and a parenthesis; utime 250 and stime 40 ticks.
    let stat = "4242 (a) b) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 40 0 0 20 0 3 0 100 0 0";
    assert_eq!(cpu_of_stat(stat), Some((2.5, 0.4)));
    assert_eq!(cpu_of_stat("4242 (truncated) S 1"), None);
}

#[test]
fn this_process_cpu_time_grows_with_work() {
    let pid = std::process::id();
    let before = process_cpu(pid).expect("/proc/self/stat");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut spin: u64 = 0;
    let after = loop {
        for _ in 0..1_000_000 {
            spin = std::hint::black_box(spin.wrapping_add(1));
        }
        let now = process_cpu(pid).expect("/proc/self/stat");
        if now.0 + now.1 > before.0 + before.1 {
            break now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "10 s of spinning never showed as CPU time: {before:?} → {now:?}"
        );
    };
    assert!(CpuPerCall::between(before, after, 10).total_us() > 0.0);
}
