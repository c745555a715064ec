//! A paired benchmark harness for a noisy, shared machine: the candidates of a
//! group run in interleaved rounds (A B C, B C A, ...), and each comparison is
//! the median over rounds of the per-round ratio, so drift and neighbours' load
//! hit both sides of a ratio alike.
//!
//! Knobs: `BENCH_ROUNDS` (default 15) and `BENCH_SAMPLE_MS` (default 5); any
//! argument not starting with `--` keeps only the groups whose name contains it.

#![allow(dead_code)] // each bench uses a different part of it

use std::hint::black_box;
use std::time::{Duration, Instant};

/// One contestant: a closure doing the whole workload once and returning a checksum.
pub struct Case<'a> {
    pub name: &'static str,
    pub run: Box<dyn FnMut() -> u64 + 'a>,
}

impl<'a> Case<'a> {
    pub fn new(name: &'static str, run: impl FnMut() -> u64 + 'a) -> Self {
        Case {
            name,
            run: Box::new(run),
        }
    }
}

/// The median of one case, and its paired ratios to the reference cases.
pub struct Outcome {
    pub name: &'static str,
    /// Median seconds for one run of the workload.
    pub secs: f64,
    /// Median over rounds of `reference time / this time` (above 1 = faster), per reference.
    pub ratios: Vec<f64>,
}

pub struct Harness {
    rounds: usize,
    sample: Duration,
    filters: Vec<String>,
}

impl Harness {
    pub fn from_env() -> Self {
        let num = |key: &str, default: u64| {
            std::env::var(key)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Harness {
            rounds: num("BENCH_ROUNDS", 15).max(1) as usize,
            sample: Duration::from_millis(num("BENCH_SAMPLE_MS", 5)),
            filters: std::env::args()
                .skip(1)
                .filter(|a| !a.starts_with("--"))
                .collect(),
        }
    }

    pub fn wants(&self, group: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| group.contains(f.as_str()))
    }

    /// Runs the cases in interleaved rounds; `refs` name the cases every ratio is taken against.
    pub fn run(&self, cases: &mut [Case<'_>], refs: &[&str]) -> Vec<Outcome> {
        // Warm up, check all agree on nothing in particular, and size a sample.
        let iters: Vec<u32> = cases
            .iter_mut()
            .map(|c| {
                black_box((c.run)());
                let start = Instant::now();
                black_box((c.run)());
                let once = start.elapsed().max(Duration::from_nanos(100));
                (self.sample.as_secs_f64() / once.as_secs_f64())
                    .ceil()
                    .max(1.0) as u32
            })
            .collect();
        let n = cases.len();
        let mut times = vec![Vec::with_capacity(self.rounds); n];
        for round in 0..self.rounds {
            for k in 0..n {
                let i = (round + k) % n;
                let case = &mut cases[i];
                let start = Instant::now();
                for _ in 0..iters[i] {
                    black_box((case.run)());
                }
                times[i].push(start.elapsed().as_secs_f64() / f64::from(iters[i]));
            }
        }
        let ref_index: Vec<usize> = refs
            .iter()
            .map(|r| {
                cases
                    .iter()
                    .position(|c| c.name == *r)
                    .expect("a reference names a case")
            })
            .collect();
        (0..n)
            .map(|i| Outcome {
                name: cases[i].name,
                secs: median(times[i].clone()),
                ratios: ref_index
                    .iter()
                    .map(|&r| {
                        median(
                            (0..self.rounds)
                                .map(|k| times[r][k] / times[i][k])
                                .collect(),
                        )
                    })
                    .collect(),
            })
            .collect()
    }
}

pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let m = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[m]
    } else {
        (xs[m - 1] + xs[m]) / 2.0
    }
}
