//! RSS of the client processes, sampled on a thread of its own, and the slope over the last
//! half of the run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One sample: seconds since the start, and each process's RSS in KiB (0: unreadable).
pub(crate) type Sample = (f64, Vec<u64>);

/// RSS of process `pid` in KiB (`/proc/<pid>/statm`, resident pages of 4 KiB), 0 if unreadable.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4)
}

/// Samples every `every` until stopped.
pub(crate) struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    pub(crate) fn start(pids: Vec<u32>, every: Duration, t0: Instant) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (s, out) = (stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            let mut next = Instant::now();
            while !s.load(Ordering::Acquire) {
                if Instant::now() >= next {
                    let row = pids.iter().map(|&p| rss_kib(p)).collect();
                    out.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((t0.elapsed().as_secs_f64(), row));
                    next += every;
                }
                // Polls the stop flag between samples.
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self { stop, samples, thread: Some(thread) }
    }

    /// Stops and returns the samples.
    pub(crate) fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.samples.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Process `p`'s RSS over the last half of the run: the least-squares slope (KiB per minute),
/// its mean (KiB) and how many samples (those that read 0, an exited process, left out).
pub(crate) fn last_half_slope(samples: &[Sample], p: usize, run_secs: f64) -> (f64, f64, usize) {
    let pts: Vec<(f64, f64)> = samples
        .iter()
        .filter(|(t, _)| *t >= run_secs / 2.0 && *t <= run_secs)
        .filter_map(|(t, row)| row.get(p).filter(|&&k| k > 0).map(|&k| (*t / 60.0, k as f64)))
        .collect();
    let n = pts.len() as f64;
    if pts.len() < 2 {
        return (0.0, pts.first().map_or(0.0, |p| p.1), pts.len());
    }
    let (mx, my) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    (if sxx > 0.0 { sxy / sxx } else { 0.0 }, my, pts.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line_over_the_last_half() {
        let s: Vec<Sample> =
            (0..=12).map(|i| (f64::from(i) * 10.0, vec![1000 + 5 * u64::from(i as u32)])).collect();
        let (slope, _, n) = last_half_slope(&s, 0, 120.0);
        assert_eq!(n, 7);
        assert!((slope - 30.0).abs() < 1e-6, "{slope}");
    }
}
