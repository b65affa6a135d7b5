//! Simulated inference: a fixed matrix product repeated until the calling thread has used a
//! given amount of CPU time.
//!
//! The work is real computation, so the process's CPU usage is proportional to the requests it
//! serves, which is what a CPU-based HorizontalPodAutoscaler measures. The stopping rule reads
//! the thread's own CPU clock, so contention from other processes (or a cgroup CPU limit)
//! stretches the wall time of a request but not its CPU cost.

use std::hint::black_box;
use std::time::Duration;

/// Side of the square matrices multiplied per unit of work: 32×32 f64 is ~33k multiply-adds,
/// some tens of microseconds, small enough to stop close to the target.
const MATRIX_SIDE: usize = 32;

/// How often (in CPU time) the burner reads the thread clock; bounds the overshoot per request.
const CHECK_INTERVAL: Duration = Duration::from_micros(250);

/// How much CPU the start-up calibration spends measuring the cost of one unit.
const CALIBRATION_BUDGET: Duration = Duration::from_millis(30);

/// CPU time consumed so far by the calling thread.
pub fn thread_cpu_time() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time consumed so far by the whole process (all threads).
pub fn process_cpu_time() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the CPU-time clocks exist on every Linux
    // kernel this runs on, and on failure `ts` stays zero, which only makes a burn stop early.
    unsafe { libc::clock_gettime(id, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One unit of simulated inference: c = a × b on fixed inputs.
fn matrix_product_unit(a: &[f64], b: &[f64], c: &mut [f64]) {
    let n = MATRIX_SIDE;
    for i in 0..n {
        for j in 0..n {
            let mut acc = 0.0;
            for k in 0..n {
                acc += a[i * n + k] * b[k * n + j];
            }
            c[i * n + j] = acc;
        }
    }
}

/// Burns CPU in calibrated chunks of matrix products.
#[derive(Debug, Clone)]
pub struct Burner {
    /// Matrix products per CPU millisecond, measured at start.
    units_per_ms: f64,
    /// Matrix products between two reads of the thread clock.
    units_per_check: u64,
}

impl Burner {
    /// Measures how many matrix products this machine does per millisecond of CPU.
    pub fn calibrate() -> Self {
        let (a, b, mut c) = inputs();
        let start = thread_cpu_time();
        let mut units = 0u64;
        while thread_cpu_time() - start < CALIBRATION_BUDGET {
            for _ in 0..8 {
                matrix_product_unit(black_box(&a), black_box(&b), &mut c);
                black_box(&c);
            }
            units += 8;
        }
        let spent_ms = (thread_cpu_time() - start).as_secs_f64() * 1e3;
        let units_per_ms = units as f64 / spent_ms.max(f64::EPSILON);
        let units_per_check =
            ((units_per_ms * CHECK_INTERVAL.as_secs_f64() * 1e3).round() as u64).max(1);
        Self {
            units_per_ms,
            units_per_check,
        }
    }

    /// Matrix products per CPU millisecond measured by [`Burner::calibrate`].
    pub fn units_per_ms(&self) -> f64 {
        self.units_per_ms
    }

    /// Runs matrix products on the calling thread until it has used `cost` of CPU time.
    /// Returns the number of matrix products done.
    pub fn burn(&self, cost: Duration) -> u64 {
        if cost.is_zero() {
            return 0;
        }
        let (a, b, mut c) = inputs();
        let target = thread_cpu_time() + cost;
        let mut units = 0;
        loop {
            for _ in 0..self.units_per_check {
                matrix_product_unit(black_box(&a), black_box(&b), &mut c);
                black_box(&c);
            }
            units += self.units_per_check;
            if thread_cpu_time() >= target {
                return units;
            }
        }
    }
}

fn inputs() -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let n = MATRIX_SIDE * MATRIX_SIDE;
    let a = (0..n).map(|i| (i % 7) as f64 * 0.5).collect();
    let b = (0..n).map(|i| (i % 5) as f64 * 0.25).collect();
    (a, b, vec![0.0; n])
}

/// Allocates `mib` MiB and writes every page so the memory is resident, not just reserved.
pub fn touch_ballast(mib: u64) -> Vec<u8> {
    const PAGE: usize = 4096;
    let len = (mib as usize) * 1024 * 1024;
    // Zeroed pages from the allocator are not resident until written: the loop writes them.
    let mut ballast = vec![0u8; len];
    for offset in (0..len).step_by(PAGE) {
        ballast[offset] = 1;
    }
    black_box(&ballast);
    ballast
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burn_uses_the_requested_thread_cpu_time() {
        let burner = Burner::calibrate();
        assert!(burner.units_per_ms() > 0.0);
        let before = thread_cpu_time();
        let units = burner.burn(Duration::from_millis(10));
        let used = thread_cpu_time() - before;
        assert!(units > 0);
        assert!(used >= Duration::from_millis(10), "used {used:?}");
        assert!(used < Duration::from_millis(13), "used {used:?}");
    }

    #[test]
    fn zero_cost_does_no_work() {
        assert_eq!(Burner::calibrate().burn(Duration::ZERO), 0);
    }

    #[test]
    fn ballast_has_the_requested_size() {
        assert_eq!(touch_ballast(3).len(), 3 * 1024 * 1024);
    }
}
