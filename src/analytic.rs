//! Exact (closed-form or exactly solvable) queueing results used to validate
//! the discrete-event simulator.
//!
//! Every model here is a continuous-time Markov chain whose stationary
//! distribution can be written down or computed by a birth-death recursion,
//! so the simulator must reproduce these numbers within its confidence
//! intervals when it is configured to match the model's assumptions.
//!
//! Conventions used throughout:
//!
//! * times are in seconds and rates are per second;
//! * `lambda` (λ) is the Poisson arrival rate, `mu` (μ) the exponential
//!   service rate of one server, `c` the number of servers and `a = λ/μ` the
//!   offered load in Erlangs;
//! * "wait" is the time spent queueing before service starts and "response"
//!   is wait plus service.
//!
//! Birth-death chains with many states (M/M/c/K, Erlang A, the closed finite
//! source model) are solved in log space, so populations or capacities in the
//! tens of thousands neither overflow nor underflow.
//!
//! Stability: models that can be unstable (M/M/1, M/M/c, Erlang A without
//! abandonment, M/M/c+D with infinite patience) never return NaN for an
//! unstable configuration. Instead the waiting probability is 1 and mean
//! times and quantiles are `f64::INFINITY`, which is the limit of the stable
//! formulas as the load approaches capacity. Parameters that are meaningless
//! (negative or non-finite rates, zero servers, probabilities outside
//! `[0, 1]`) are rejected with a documented panic.

/// Erlang B blocking probability of an M/M/c/c loss system offered `a`
/// Erlangs.
///
/// Uses the numerically stable recursion `B(0) = 1`,
/// `B(k) = a·B(k−1) / (k + a·B(k−1))`, which neither overflows nor loses
/// precision for large `c`.
///
/// # Panics
///
/// If `a` is negative or not finite.
pub fn erlang_b(c: u32, a: f64) -> f64 {
    assert!(
        a.is_finite() && a >= 0.0,
        "offered load must be finite and non-negative, got {a}"
    );
    let mut b = 1.0;
    for k in 1..=c {
        let ab = a * b;
        b = ab / (f64::from(k) + ab);
    }
    b
}

/// M/M/1: Poisson arrivals, one exponential server, FIFO, infinite queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mm1 {
    /// Arrival rate λ.
    pub lambda: f64,
    /// Service rate μ.
    pub mu: f64,
}

impl Mm1 {
    /// True when λ < μ.
    pub fn is_stable(&self) -> bool {
        check_rates(self.lambda, self.mu);
        self.lambda < self.mu
    }

    /// Server utilisation ρ = λ/μ (may exceed 1 for an unstable queue).
    pub fn utilization(&self) -> f64 {
        check_rates(self.lambda, self.mu);
        self.lambda / self.mu
    }

    /// Mean response time 1/(μ−λ); infinite when unstable.
    pub fn mean_response(&self) -> f64 {
        if !self.is_stable() {
            return f64::INFINITY;
        }
        1.0 / (self.mu - self.lambda)
    }

    /// The `p`-quantile of the response time, which is exponential with rate
    /// μ−λ: `−ln(1−p)/(μ−λ)`. Infinite when unstable or when `p = 1`.
    ///
    /// # Panics
    ///
    /// If `p` is not in `[0, 1]`.
    pub fn response_quantile(&self, p: f64) -> f64 {
        check_probability(p);
        if !self.is_stable() {
            return f64::INFINITY;
        }
        -(-p).ln_1p() / (self.mu - self.lambda)
    }
}

/// M/M/c: Poisson arrivals, `c` identical exponential servers, FIFO,
/// infinite queue (the Erlang C model).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mmc {
    /// Arrival rate λ.
    pub lambda: f64,
    /// Service rate μ of one server.
    pub mu: f64,
    /// Number of servers.
    pub c: u32,
}

impl Mmc {
    /// True when λ < cμ.
    pub fn is_stable(&self) -> bool {
        check_rates(self.lambda, self.mu);
        check_servers(self.c);
        self.lambda < f64::from(self.c) * self.mu
    }

    /// Per-server utilisation ρ = λ/(cμ) (may exceed 1 for an unstable queue).
    pub fn utilization(&self) -> f64 {
        check_rates(self.lambda, self.mu);
        check_servers(self.c);
        self.lambda / (f64::from(self.c) * self.mu)
    }

    /// Rate θ = cμ − λ of the exponential tail of the waiting time.
    fn theta(&self) -> f64 {
        f64::from(self.c) * self.mu - self.lambda
    }

    /// Erlang C: probability that an arrival has to wait,
    /// `C = c·B / (c − a·(1−B))` with `B = erlang_b(c, a)`. 1 when unstable.
    pub fn p_wait(&self) -> f64 {
        if !self.is_stable() {
            return 1.0;
        }
        let a = self.lambda / self.mu;
        let c = f64::from(self.c);
        let b = erlang_b(self.c, a);
        (c * b / (c - a * (1.0 - b))).clamp(0.0, 1.0)
    }

    /// Mean waiting time over all arrivals, `C/θ` with θ = cμ − λ; infinite
    /// when unstable.
    pub fn mean_wait(&self) -> f64 {
        if !self.is_stable() {
            return f64::INFINITY;
        }
        self.p_wait() / self.theta()
    }

    /// The `p`-quantile of the waiting time over all arrivals. The waiting
    /// time has an atom `1−C` at zero and `P(W > t) = C·e^(−θt)`, so the
    /// quantile is 0 when `C ≤ 1−p` and `ln(C/(1−p))/θ` otherwise. Infinite
    /// when unstable or when `p = 1` (and `C > 0`).
    ///
    /// # Panics
    ///
    /// If `p` is not in `[0, 1]`.
    pub fn wait_quantile(&self, p: f64) -> f64 {
        check_probability(p);
        if !self.is_stable() {
            return f64::INFINITY;
        }
        let cw = self.p_wait();
        let tail = 1.0 - p;
        if cw <= tail {
            return 0.0;
        }
        (cw / tail).ln() / self.theta()
    }

    /// Mean response time `mean_wait + 1/μ`; infinite when unstable.
    pub fn mean_response(&self) -> f64 {
        self.mean_wait() + 1.0 / self.mu
    }

    /// `P(R > t)` for the response time R = W + S (FIFO).
    ///
    /// The textbook form is `(1−C)e^(−μt) + C(μe^(−θt) − θe^(−μt))/(μ−θ)`,
    /// which cancels catastrophically as θ → μ. It is evaluated here in the
    /// equivalent form `e^(−μt) + C·μt·e^(−min(θ,μ)t)·φ(|μ−θ|t)` with
    /// `φ(x) = (1−e^(−x))/x`, `φ(0) = 1`, which is exact at θ = μ (giving
    /// `(1 + Cμt)e^(−μt)`) and never overflows. 1 when unstable.
    pub fn response_survival(&self, t: f64) -> f64 {
        if !self.is_stable() {
            return 1.0;
        }
        if t <= 0.0 {
            return 1.0;
        }
        let cw = self.p_wait();
        let mu = self.mu;
        let theta = self.theta();
        let slow = theta.min(mu);
        let gap = (mu - theta).abs();
        let s = (-mu * t).exp() + cw * mu * t * (-slow * t).exp() * phi(gap * t);
        s.clamp(0.0, 1.0)
    }

    /// The `p`-quantile of the response time, found by bisection on
    /// [`Mmc::response_survival`] to full double precision. 0 for `p = 0`;
    /// infinite when unstable or when `p = 1`.
    ///
    /// # Panics
    ///
    /// If `p` is not in `[0, 1]`.
    pub fn response_quantile(&self, p: f64) -> f64 {
        check_probability(p);
        if !self.is_stable() || p == 1.0 {
            return f64::INFINITY;
        }
        if p == 0.0 {
            return 0.0;
        }
        let target = 1.0 - p;
        bisect_decreasing(|t| self.response_survival(t), target, 1.0 / self.mu)
    }
}

/// M/M/c/K: `c` exponential servers and room for at most `K` customers in the
/// system (in service plus waiting); arrivals that find `K` present are
/// blocked and lost.
///
/// Solved as a birth-death chain with birth rate λ for `n < K` and death rate
/// `min(n, c)·μ`, in log space, so `K` in the tens of thousands is fine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MmcK {
    /// Arrival rate λ.
    pub lambda: f64,
    /// Service rate μ of one server.
    pub mu: f64,
    /// Number of servers.
    pub c: u32,
    /// System capacity K (servers plus waiting room). `K < c` behaves as a
    /// loss system with only `K` usable servers.
    pub k: u32,
}

impl MmcK {
    /// Stationary distribution `p_0 ..= p_K`.
    fn distribution(&self) -> Vec<f64> {
        check_rates(self.lambda, self.mu);
        check_servers(self.c);
        let c = self.c as usize;
        let ln_lambda = self.lambda.ln();
        let ln_mu = self.mu.ln();
        birth_death(self.k as usize, |n| {
            ln_lambda - (ln_mu + (n.min(c) as f64).ln())
        })
    }

    /// Blocking probability `p_K` (by PASTA, the fraction of arrivals lost).
    pub fn blocking(&self) -> f64 {
        *self
            .distribution()
            .last()
            .expect("distribution has K+1 states")
    }

    /// Admitted throughput λ(1 − p_K).
    pub fn throughput(&self) -> f64 {
        self.lambda * (1.0 - self.blocking())
    }

    /// Mean number in the system, `L = Σ n·p_n`.
    pub fn mean_in_system(&self) -> f64 {
        self.distribution()
            .iter()
            .enumerate()
            .map(|(n, p)| n as f64 * p)
            .sum()
    }

    /// Mean response time of admitted customers, `L / throughput` (Little).
    /// 0 when nothing is admitted (λ = 0 or K = 0).
    pub fn mean_response_admitted(&self) -> f64 {
        let dist = self.distribution();
        let blocking = *dist.last().expect("distribution has K+1 states");
        let throughput = self.lambda * (1.0 - blocking);
        if throughput <= 0.0 {
            return 0.0;
        }
        let l: f64 = dist.iter().enumerate().map(|(n, p)| n as f64 * p).sum();
        l / throughput
    }
}

/// Erlang A (M/M/c+M): `c` exponential servers, infinite queue, and every
/// waiting customer abandons after an exponential patience with mean 1/γ
/// (patience does not apply once service has started).
///
/// Solved as a birth-death chain with birth rate λ and death rate
/// `min(n, c)·μ + max(n − c, 0)·γ`, truncated once the remaining tail mass
/// (bounded geometrically) is below 1e-16 of the accumulated mass. At most
/// [`ErlangA::MAX_STATES`] states are used; that limit is only reached for
/// patience so long and overload so heavy that the model is degenerate.
///
/// With γ = 0 the model is M/M/c and its results (including the instability
/// convention for λ ≥ cμ) are returned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErlangA {
    /// Arrival rate λ.
    pub lambda: f64,
    /// Service rate μ of one server.
    pub mu: f64,
    /// Number of servers.
    pub c: u32,
    /// Abandonment rate γ of a waiting customer (1 / mean patience).
    pub gamma: f64,
}

/// Stationary summaries of an Erlang A chain.
#[derive(Debug, Clone, Copy)]
struct ErlangASolution {
    /// P(N ≥ c).
    p_wait: f64,
    /// Mean queue length E[(N − c)⁺].
    mean_queue: f64,
}

impl ErlangA {
    /// Upper bound on the number of chain states evaluated.
    pub const MAX_STATES: usize = 50_000_000;

    fn as_mmc(&self) -> Mmc {
        Mmc {
            lambda: self.lambda,
            mu: self.mu,
            c: self.c,
        }
    }

    fn solve(&self) -> ErlangASolution {
        check_rates(self.lambda, self.mu);
        check_servers(self.c);
        assert!(
            self.gamma.is_finite() && self.gamma >= 0.0,
            "abandonment rate must be finite and non-negative, got {}",
            self.gamma
        );
        if self.gamma == 0.0 {
            let mmc = self.as_mmc();
            return ErlangASolution {
                p_wait: mmc.p_wait(),
                mean_queue: self.lambda * mmc.mean_wait(),
            };
        }
        if self.lambda == 0.0 {
            return ErlangASolution {
                p_wait: 0.0,
                mean_queue: 0.0,
            };
        }
        let c = self.c as usize;
        let ln_lambda = self.lambda.ln();
        let death = |n: usize| -> f64 {
            let busy = n.min(c) as f64 * self.mu;
            let queued = n.saturating_sub(c) as f64 * self.gamma;
            busy + queued
        };

        // Running sums scaled by exp(-scale), where scale is the largest log
        // weight seen so far.
        let mut scale = 0.0_f64;
        let mut ln_w = 0.0_f64;
        let mut below_c = 1.0_f64; // Σ_{n<c} w_n
        let mut at_or_above_c = 0.0_f64; // Σ_{n≥c} w_n
        let mut queue = 0.0_f64; // Σ (n−c)⁺ w_n
        let mut n = 0usize;
        loop {
            n += 1;
            if n >= Self::MAX_STATES {
                break;
            }
            let d = death(n);
            ln_w += ln_lambda - d.ln();
            if ln_w > scale {
                let shrink = (scale - ln_w).exp();
                below_c *= shrink;
                at_or_above_c *= shrink;
                queue *= shrink;
                scale = ln_w;
            }
            let w = (ln_w - scale).exp();
            if n < c {
                below_c += w;
                continue;
            }
            let m = (n - c) as f64;
            at_or_above_c += w;
            queue += m * w;
            // Once the next birth/death ratio r is below 1 it keeps falling,
            // so the tail is bounded by a geometric series with ratio r.
            let r = self.lambda / death(n + 1);
            if n > c && r < 1.0 {
                let q = r / (1.0 - r);
                let tail_mass = w * q;
                let tail_queue = w * (m * q + q / (1.0 - r));
                let total = below_c + at_or_above_c;
                if tail_mass <= 1e-16 * total && tail_queue <= 1e-16 * queue {
                    break;
                }
            }
        }
        let total = below_c + at_or_above_c;
        ErlangASolution {
            p_wait: (at_or_above_c / total).clamp(0.0, 1.0),
            mean_queue: queue / total,
        }
    }

    /// Probability that an arrival abandons, `γ·E[(N−c)⁺] / λ`. 0 when
    /// λ = 0 or γ = 0.
    pub fn p_abandon(&self) -> f64 {
        let sol = self.solve();
        if self.lambda == 0.0 || self.gamma == 0.0 {
            return 0.0;
        }
        (self.gamma * sol.mean_queue / self.lambda).clamp(0.0, 1.0)
    }

    /// Probability that an arrival has to wait, `P(N ≥ c)` (PASTA).
    pub fn p_wait(&self) -> f64 {
        self.solve().p_wait
    }

    /// Mean time spent waiting, averaged over all arrivals (including those
    /// that do not wait and those that abandon): `E[(N−c)⁺] / λ` by Little's
    /// law. 0 when λ = 0.
    pub fn mean_wait(&self) -> f64 {
        let sol = self.solve();
        if self.lambda == 0.0 {
            return 0.0;
        }
        sol.mean_queue / self.lambda
    }

    /// Rate of customers that complete service, `λ(1 − P(abandon))`. For
    /// γ = 0 and λ ≥ cμ this is the capacity cμ.
    pub fn throughput(&self) -> f64 {
        if self.gamma == 0.0 && !self.as_mmc().is_stable() {
            return f64::from(self.c) * self.mu;
        }
        self.lambda * (1.0 - self.p_abandon())
    }
}

/// M/M/c+D: `c` exponential servers, FIFO, infinite queue, and every waiting
/// customer abandons after waiting exactly `τ` (a deterministic timeout, such
/// as a pool's acquire timeout).
///
/// With `p_k ∝ a^k/k!` for `k < c` and `g = cμ − λ`, the virtual waiting time
/// `V` (the wait an arrival would experience if infinitely patient) has an
/// atom `Σ_{k<c} p_k` at zero, density `λ·p_(c−1)·e^(−gx)` on `(0, τ]` and
/// density `λ·p_(c−1)·e^(−gτ)·e^(−cμ(x−τ))` beyond `τ`, normalised so the
/// total mass is 1. An arrival abandons exactly when `V > τ`.
///
/// The formulas hold for any `g` (including `g ≤ 0`: abandonment keeps the
/// queue stable under overload) and are evaluated in log space with
/// cancellation-free forms, so `g = 0` and large `|g|·τ` are exact. With
/// `τ = ∞` the model is M/M/c; it is then unstable for λ ≥ cμ and the
/// module's instability convention applies (`P(wait) = 1`, infinite mean
/// wait, `P(abandon) = 0`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MmcD {
    /// Arrival rate λ.
    pub lambda: f64,
    /// Service rate μ of one server.
    pub mu: f64,
    /// Number of servers.
    pub c: u32,
    /// Deterministic patience τ (may be `f64::INFINITY`).
    pub tau: f64,
}

/// Log-space components of the M/M/c+D virtual waiting time distribution,
/// each relative to the same (unnormalised) reference.
#[derive(Debug, Clone, Copy)]
struct MmcDParts {
    /// ln of the atom at zero, Σ_{k<c} p_k.
    ln_idle: f64,
    /// ln of P(0 < V ≤ τ).
    ln_served_wait: f64,
    /// ln of P(V > τ).
    ln_abandon: f64,
    /// ln of E[V; 0 < V ≤ τ].
    ln_wait_integral: f64,
    /// ln of the normalising constant.
    ln_total: f64,
}

impl MmcD {
    fn unstable(&self) -> bool {
        self.tau == f64::INFINITY && self.lambda >= f64::from(self.c) * self.mu
    }

    fn parts(&self) -> Option<MmcDParts> {
        check_rates(self.lambda, self.mu);
        check_servers(self.c);
        assert!(
            self.tau >= 0.0,
            "patience must be non-negative, got {}",
            self.tau
        );
        if self.unstable() {
            return None;
        }
        let c = f64::from(self.c);
        let a = self.lambda / self.mu;
        let ln_a = a.ln();
        // ln(a^k/k!) for k = 0..c-1, via log-sum-exp.
        let mut ln_terms = Vec::with_capacity(self.c as usize);
        let mut ln_term = 0.0_f64;
        for k in 0..self.c {
            if k > 0 {
                ln_term += ln_a - f64::from(k).ln();
            }
            ln_terms.push(ln_term);
        }
        let ln_idle = log_sum_exp(&ln_terms);
        let ln_last = ln_term; // ln p_(c-1) (unnormalised)
        let ln_rate = self.lambda.ln() + ln_last;
        let g = c * self.mu - self.lambda;
        let tau = self.tau;

        let (ln_served_wait, ln_abandon, ln_wait_integral) = if tau == f64::INFINITY {
            // Only reached when g > 0 (checked above).
            (ln_rate - g.ln(), f64::NEG_INFINITY, ln_rate - 2.0 * g.ln())
        } else {
            let x = g * tau;
            (
                ln_rate + tau.ln() + ln_phi(x),
                ln_rate - x - (c * self.mu).ln(),
                ln_rate + 2.0 * tau.ln() + ln_psi(x),
            )
        };
        let ln_total = log_sum_exp(&[ln_idle, ln_served_wait, ln_abandon]);
        Some(MmcDParts {
            ln_idle,
            ln_served_wait,
            ln_abandon,
            ln_wait_integral,
            ln_total,
        })
    }

    /// Probability that an arrival abandons, `P(V > τ) = λ·p_(c−1)·e^(−gτ)/(cμ)`.
    /// With `τ = 0` this is Erlang B. 0 when `τ = ∞`.
    pub fn p_abandon(&self) -> f64 {
        match self.parts() {
            None => 0.0,
            Some(p) => (p.ln_abandon - p.ln_total).exp().clamp(0.0, 1.0),
        }
    }

    /// Probability that an arrival has to wait at all (whether it is
    /// eventually served or abandons), `P(V > 0)`. 1 when unstable.
    pub fn p_wait(&self) -> f64 {
        match self.parts() {
            None => 1.0,
            Some(p) => {
                let served_wait = (p.ln_served_wait - p.ln_total).exp();
                let abandon = (p.ln_abandon - p.ln_total).exp();
                (served_wait + abandon).clamp(0.0, 1.0)
            }
        }
    }

    /// Mean wait of customers that are served (including those served
    /// without waiting), `E[V; V ≤ τ] / P(V ≤ τ)`, where
    /// `E[V; 0 < V ≤ τ] = λ·p_(c−1)·(1 − e^(−gτ)(1+gτ))/g²`. Infinite when
    /// unstable.
    pub fn mean_wait_served(&self) -> f64 {
        match self.parts() {
            None => f64::INFINITY,
            Some(p) => {
                let ln_served = log_sum_exp(&[p.ln_idle, p.ln_served_wait]);
                (p.ln_wait_integral - ln_served).exp()
            }
        }
    }

    /// Mean time spent waiting over all arrivals, `E[min(V, τ)]`: served
    /// customers contribute their wait and abandoning ones exactly `τ`.
    /// Infinite when unstable.
    pub fn mean_wait(&self) -> f64 {
        match self.parts() {
            None => f64::INFINITY,
            Some(p) => {
                let served = (p.ln_wait_integral - p.ln_total).exp();
                let abandon = (p.ln_abandon - p.ln_total).exp();
                if abandon > 0.0 {
                    served + self.tau * abandon
                } else {
                    served
                }
            }
        }
    }

    /// Rate of customers that are served, `λ(1 − P(abandon))`. cμ when
    /// unstable.
    pub fn throughput(&self) -> f64 {
        match self.parts() {
            None => f64::from(self.c) * self.mu,
            Some(p) => {
                let ln_served = log_sum_exp(&[p.ln_idle, p.ln_served_wait]);
                self.lambda * (ln_served - p.ln_total).exp().clamp(0.0, 1.0)
            }
        }
    }
}

/// Closed finite-source model (machine repairman / interactive system):
/// `n_users` users alternate between thinking for an exponential time with
/// mean `think` (Z) and submitting a request to `c` exponential servers with
/// mean service time `service` (S), queueing FIFO when all servers are busy.
///
/// Solved as a birth-death chain on the number `n` of requests at the
/// servers with birth rate `(N − n)/Z` and death rate `min(n, c)/S`, in log
/// space, so `N = 10_000` and beyond is stable. `think = 0` is allowed (all
/// users are always at the servers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClosedFinite {
    /// Number of users N.
    pub n_users: u32,
    /// Mean think time Z between a response and the next request.
    pub think: f64,
    /// Mean service time S at one server.
    pub service: f64,
    /// Number of servers.
    pub c: u32,
}

impl ClosedFinite {
    /// Stationary distribution of the number at the servers, `p_0 ..= p_N`.
    fn distribution(&self) -> Vec<f64> {
        assert!(
            self.think.is_finite() && self.think >= 0.0,
            "think time must be finite and non-negative, got {}",
            self.think
        );
        assert!(
            self.service.is_finite() && self.service > 0.0,
            "service time must be finite and positive, got {}",
            self.service
        );
        check_servers(self.c);
        let n_users = self.n_users as usize;
        if self.think == 0.0 {
            let mut dist = vec![0.0; n_users + 1];
            dist[n_users] = 1.0;
            return dist;
        }
        let c = self.c as usize;
        let ln_ratio = (self.service / self.think).ln();
        birth_death(n_users, |n| {
            // birth (N − n + 1)/Z from state n − 1, death min(n, c)/S at n
            ((n_users - n + 1) as f64).ln() - (n.min(c) as f64).ln() + ln_ratio
        })
    }

    /// Request throughput `X = Σ min(n, c)/S · p_n`.
    pub fn throughput(&self) -> f64 {
        let c = self.c as usize;
        self.distribution()
            .iter()
            .enumerate()
            .map(|(n, p)| n.min(c) as f64 * p)
            .sum::<f64>()
            / self.service
    }

    /// Mean response time at the servers (queueing plus service), equal to
    /// `N/X − Z` by the response time law. It is evaluated as `L/X` (Little's
    /// law at the servers, `L` = [`ClosedFinite::mean_at_servers`]), which is
    /// the same quantity without the cancellation `N/X − Z` suffers when the
    /// think time dominates. 0 when there are no users.
    pub fn mean_response(&self) -> f64 {
        if self.n_users == 0 {
            return 0.0;
        }
        let c = self.c as usize;
        let dist = self.distribution();
        let busy: f64 = dist
            .iter()
            .enumerate()
            .map(|(n, p)| n.min(c) as f64 * p)
            .sum();
        let at_servers: f64 = dist.iter().enumerate().map(|(n, p)| n as f64 * p).sum();
        at_servers * self.service / busy
    }

    /// Mean number of requests at the servers (in service or queued),
    /// `Σ n·p_n`.
    pub fn mean_at_servers(&self) -> f64 {
        self.distribution()
            .iter()
            .enumerate()
            .map(|(n, p)| n as f64 * p)
            .sum()
    }

    /// Per-server utilisation `X·S/c`, in `[0, 1]`.
    pub fn utilization(&self) -> f64 {
        (self.throughput() * self.service / f64::from(self.c)).clamp(0.0, 1.0)
    }
}

/// Mean response time of an M/G/1 processor-sharing queue,
/// `S/(1−ρ)` with `ρ = λ·S`, which is insensitive to the service time
/// distribution beyond its mean. Infinite when ρ ≥ 1.
///
/// # Panics
///
/// If `lambda` is negative or not finite, or `mean_service` is not finite and
/// positive.
pub fn mg1_ps_mean_response(lambda: f64, mean_service: f64) -> f64 {
    assert!(
        lambda.is_finite() && lambda >= 0.0,
        "arrival rate must be finite and non-negative, got {lambda}"
    );
    assert!(
        mean_service.is_finite() && mean_service > 0.0,
        "mean service time must be finite and positive, got {mean_service}"
    );
    let rho = lambda * mean_service;
    if rho >= 1.0 {
        return f64::INFINITY;
    }
    mean_service / (1.0 - rho)
}

/// Relative residual of Little's law, `|L − X·W| / max(L, tiny)` where
/// `tiny` is the smallest positive normal `f64`. A measured (L, X, W) triple
/// from a simulation run should give a residual near zero; 0 when all three
/// are zero.
pub fn little_residual(mean_in_system: f64, throughput: f64, mean_time: f64) -> f64 {
    let diff = (mean_in_system - throughput * mean_time).abs();
    if diff == 0.0 {
        return 0.0;
    }
    diff / mean_in_system.abs().max(f64::MIN_POSITIVE)
}

// ---------------------------------------------------------------------------
// Numerical helpers
// ---------------------------------------------------------------------------

fn check_rates(lambda: f64, mu: f64) {
    assert!(
        lambda.is_finite() && lambda >= 0.0,
        "arrival rate must be finite and non-negative, got {lambda}"
    );
    assert!(
        mu.is_finite() && mu > 0.0,
        "service rate must be finite and positive, got {mu}"
    );
}

fn check_servers(c: u32) {
    assert!(c >= 1, "at least one server is required");
}

fn check_probability(p: f64) {
    assert!(
        (0.0..=1.0).contains(&p),
        "probability must be in [0, 1], got {p}"
    );
}

/// `φ(x) = (1 − e^(−x))/x` for `x ≥ 0`, with `φ(0) = 1`; in `(0, 1]`.
fn phi(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else if x == f64::INFINITY {
        0.0
    } else {
        -(-x).exp_m1() / x
    }
}

/// `ln φ(x)` for any real `x`, where `φ(x) = (1 − e^(−x))/x` and `φ(0) = 1`,
/// without overflow for large negative `x`.
fn ln_phi(x: f64) -> f64 {
    if x == 0.0 {
        0.0
    } else if x > 0.0 {
        (-(-x).exp_m1()).ln() - x.ln()
    } else {
        // φ(x) = (e^|x| − 1)/|x| = e^|x|·(1 − e^(−|x|))/|x|
        let y = -x;
        y + (-(-y).exp_m1()).ln() - y.ln()
    }
}

/// `ln ψ(x)` for any real `x`, where `ψ(x) = (1 − e^(−x)(1+x))/x²` and
/// `ψ(0) = 1/2`, so that `∫_0^τ s·e^(−gs) ds = τ²·ψ(gτ)`.
fn ln_psi(x: f64) -> f64 {
    if x.abs() < 1.0 {
        // ψ(x) = Σ_{m≥0} (−1)^m (m+1)/(m+2)! x^m; converges fast for |x| < 1.
        let mut sum = 0.0;
        let mut fact = 2.0; // (m+2)!
        let mut pow = 1.0; // (−x)^m
        for m in 0..40u32 {
            let term = f64::from(m + 1) / fact * pow;
            sum += term;
            if term.abs() < 1e-18 * sum.abs() {
                break;
            }
            pow *= -x;
            fact *= f64::from(m + 3);
        }
        sum.ln()
    } else if x > 0.0 {
        (1.0 - (-x).exp() * (1.0 + x)).ln() - 2.0 * x.ln()
    } else {
        // ψ(x) = (1 + e^|x|(|x| − 1))/x² = e^|x|(|x| − 1 + e^(−|x|))/x²
        let y = -x;
        y + (y - 1.0 + (-y).exp()).ln() - 2.0 * y.ln()
    }
}

/// `ln Σ e^(v_i)`, tolerating `−∞` entries; `−∞` for an empty or all-`−∞`
/// slice.
fn log_sum_exp(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    let sum: f64 = values.iter().map(|v| (v - max).exp()).sum();
    max + sum.ln()
}

/// Normalised stationary distribution of a birth-death chain on
/// `0..=n_max`, given `ln_ratio(n) = ln(birth(n−1)/death(n))` for
/// `n = 1..=n_max`. Computed in log space, so it neither overflows nor
/// underflows for long chains.
fn birth_death(n_max: usize, ln_ratio: impl Fn(usize) -> f64) -> Vec<f64> {
    let mut ln_w = Vec::with_capacity(n_max + 1);
    let mut acc = 0.0_f64;
    ln_w.push(acc);
    for n in 1..=n_max {
        acc += ln_ratio(n);
        ln_w.push(acc);
    }
    let max = ln_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut dist: Vec<f64> = ln_w.iter().map(|v| (v - max).exp()).collect();
    let total: f64 = dist.iter().sum();
    for p in &mut dist {
        *p /= total;
    }
    dist
}

/// Smallest `t ≥ 0` (to full double precision) with `survival(t) ≤ target`,
/// for a non-increasing `survival` with `survival(0) > target > 0` that tends
/// to 0. `scale` is a starting guess for the magnitude of the answer.
fn bisect_decreasing(survival: impl Fn(f64) -> f64, target: f64, scale: f64) -> f64 {
    let mut lo = 0.0_f64;
    let mut hi = scale.max(f64::MIN_POSITIVE);
    while survival(hi) > target {
        lo = hi;
        hi *= 2.0;
        if !hi.is_finite() {
            return f64::INFINITY;
        }
    }
    // At most ~1100 halvings separate any two finite doubles.
    for _ in 0..2200 {
        let mid = lo + 0.5 * (hi - lo);
        if mid <= lo || mid >= hi {
            break;
        }
        if survival(mid) > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn assert_rel(actual: f64, expected: f64, tol: f64) {
        let rel = ((actual - expected) / expected).abs();
        assert!(
            rel < tol,
            "expected {expected}, got {actual} (relative error {rel:e})"
        );
    }

    const TOL: f64 = 1e-4;

    #[test]
    fn erlang_b_small_cases() {
        // B(1, a) = a/(1+a); B(2, a) = a²/2 / (1 + a + a²/2).
        assert_rel(erlang_b(1, 3.0), 0.75, 1e-15);
        assert_rel(erlang_b(2, 2.0), 2.0 / 5.0, 1e-15);
        assert_eq!(erlang_b(0, 5.0), 1.0);
        assert_eq!(erlang_b(4, 0.0), 0.0);
        // Large c does not overflow.
        let b = erlang_b(10_000, 9_500.0);
        assert!(b.is_finite() && (0.0..1.0).contains(&b));
    }

    #[test]
    fn mmc_worked_example() {
        let q = Mmc {
            lambda: 3000.0,
            mu: 100.0,
            c: 35,
        };
        assert_rel(q.p_wait(), 0.284582, TOL);
        assert_rel(q.mean_wait(), 0.000569165, TOL);
        assert_rel(q.wait_quantile(0.95), 0.003478, TOL);
        assert_rel(q.response_quantile(0.95), 0.0306446, TOL);
        assert_rel(q.mean_response(), 0.000569165 + 0.01, TOL);
    }

    #[test]
    fn mm1_worked_example() {
        let q = Mm1 {
            lambda: 80.0,
            mu: 100.0,
        };
        assert_rel(q.response_quantile(0.95), 0.149787, TOL);
        assert_rel(q.mean_response(), 0.05, 1e-12);
    }

    #[test]
    fn closed_finite_worked_example() {
        let m = ClosedFinite {
            n_users: 1000,
            think: 0.25,
            service: 0.01,
            c: 35,
        };
        assert_rel(m.throughput(), 3499.737, TOL);
        assert_rel(m.mean_response(), 0.0357357, TOL);
        assert!(m.utilization() <= 1.0 && m.utilization() > 0.99);
    }

    #[test]
    fn mmck_worked_example() {
        let m = MmcK {
            lambda: 1200.0,
            mu: 100.0,
            c: 10,
            k: 20,
        };
        assert_rel(m.blocking(), 0.179666, TOL);
        assert_rel(m.mean_response_admitted(), 0.0163597, TOL);
        assert_rel(m.throughput(), 1200.0 * (1.0 - 0.179666), TOL);
    }

    #[test]
    fn erlang_a_worked_example() {
        let m = ErlangA {
            lambda: 2500.0,
            mu: 100.0,
            c: 20,
            gamma: 1.0 / 0.05,
        };
        assert_rel(m.p_abandon(), 0.200778, TOL);
        assert_rel(m.throughput(), 2500.0 * (1.0 - 0.200778), TOL);
        let p_wait = m.p_wait();
        assert!(p_wait > m.p_abandon() && p_wait <= 1.0);
        // Little on the queue: abandonment rate γ·Lq = λ·P(abandon).
        assert_rel(m.mean_wait() * m.gamma, m.p_abandon(), 1e-12);
    }

    #[test]
    fn mmcd_worked_example() {
        let m = MmcD {
            lambda: 950.0,
            mu: 100.0,
            c: 10,
            tau: 0.02,
        };
        assert_rel(m.p_abandon(), 0.0213443, TOL);
        assert_rel(m.mean_wait_served(), 0.00626623, TOL);
        assert!(m.p_wait() > m.p_abandon() && m.p_wait() < 1.0);
        let served = 1.0 - m.p_abandon();
        assert_rel(
            m.mean_wait(),
            m.mean_wait_served() * served + m.tau * m.p_abandon(),
            1e-12,
        );
    }

    #[test]
    fn mmck_with_k_equal_c_is_erlang_b() {
        for (c, a) in [(1u32, 0.5), (10, 8.0), (35, 30.0), (200, 250.0)] {
            let m = MmcK {
                lambda: a * 100.0,
                mu: 100.0,
                c,
                k: c,
            };
            assert_rel(m.blocking(), erlang_b(c, a), 1e-12);
        }
    }

    #[test]
    fn mmck_large_capacity_approaches_mmc() {
        let m = MmcK {
            lambda: 3000.0,
            mu: 100.0,
            c: 35,
            k: 10_000,
        };
        let mmc = Mmc {
            lambda: 3000.0,
            mu: 100.0,
            c: 35,
        };
        assert!(m.blocking() < 1e-300);
        assert_rel(m.mean_response_admitted(), mmc.mean_response(), 1e-9);
        // Overloaded with a huge buffer: finite, NaN-free, blocking ≈ 1 − cμ/λ.
        let over = MmcK {
            lambda: 5000.0,
            mu: 100.0,
            c: 35,
            k: 10_000,
        };
        assert_rel(over.blocking(), 1.0 - 3500.0 / 5000.0, 1e-9);
        assert!(over.mean_response_admitted().is_finite());
    }

    #[test]
    fn erlang_a_with_huge_patience_is_erlang_c() {
        let mmc = Mmc {
            lambda: 3000.0,
            mu: 100.0,
            c: 35,
        };
        let m = ErlangA {
            lambda: 3000.0,
            mu: 100.0,
            c: 35,
            gamma: 1e-9,
        };
        assert_rel(m.p_wait(), mmc.p_wait(), 1e-6);
        assert_rel(m.mean_wait(), mmc.mean_wait(), 1e-6);
        assert!(m.p_abandon() < 1e-9);
        let zero = ErlangA { gamma: 0.0, ..m };
        assert_eq!(zero.p_wait(), mmc.p_wait());
        assert_eq!(zero.p_abandon(), 0.0);
    }

    #[test]
    fn mmcd_with_huge_patience_is_erlang_c() {
        let mmc = Mmc {
            lambda: 3000.0,
            mu: 100.0,
            c: 35,
        };
        for tau in [1e3, 1e6, f64::INFINITY] {
            let m = MmcD {
                lambda: 3000.0,
                mu: 100.0,
                c: 35,
                tau,
            };
            assert_rel(m.p_wait(), mmc.p_wait(), 1e-9);
            assert_rel(m.mean_wait_served(), mmc.mean_wait(), 1e-9);
            assert_rel(m.mean_wait(), mmc.mean_wait(), 1e-9);
            assert!(m.p_abandon() < 1e-100);
        }
    }

    #[test]
    fn mmcd_with_zero_patience_is_erlang_b() {
        let m = MmcD {
            lambda: 950.0,
            mu: 100.0,
            c: 10,
            tau: 0.0,
        };
        assert_rel(m.p_abandon(), erlang_b(10, 9.5), 1e-12);
        assert_eq!(m.mean_wait_served(), 0.0);
    }

    #[test]
    fn mmcd_is_continuous_through_critical_load() {
        // g = cμ − λ crosses zero at λ = 1000; the g = 0 limit must agree
        // with its neighbours.
        let at = |lambda: f64| MmcD {
            lambda,
            mu: 100.0,
            c: 10,
            tau: 0.05,
        };
        let mid = at(1000.0);
        for eps in [1e-6, 1e-9] {
            let lo = at(1000.0 - eps);
            let hi = at(1000.0 + eps);
            for f in [MmcD::p_abandon, MmcD::p_wait, MmcD::mean_wait_served] {
                assert_rel(f(&lo), f(&mid), 1e-6);
                assert_rel(f(&hi), f(&mid), 1e-6);
            }
        }
        // Heavy overload stays finite and sensible.
        let heavy = MmcD {
            lambda: 1e6,
            mu: 100.0,
            c: 10,
            tau: 10.0,
        };
        assert_rel(heavy.p_abandon(), 1.0 - 1000.0 / 1e6, 1e-6);
        assert!(heavy.mean_wait_served().is_finite());
        assert_rel(heavy.throughput(), 1000.0, 1e-6);
    }

    #[test]
    fn closed_finite_with_ample_servers_is_delay_only() {
        for (n, z, s) in [(10u32, 1.0, 0.1), (1000, 0.25, 0.01), (10_000, 0.5, 0.02)] {
            let m = ClosedFinite {
                n_users: n,
                think: z,
                service: s,
                c: n,
            };
            assert_rel(m.throughput(), f64::from(n) / (z + s), 1e-9);
            assert_rel(m.mean_response(), s, 1e-9);
        }
    }

    #[test]
    fn closed_finite_is_stable_for_ten_thousand_users() {
        let m = ClosedFinite {
            n_users: 10_000,
            think: 0.25,
            service: 0.01,
            c: 35,
        };
        let x = m.throughput();
        // Saturated: X → c/S and R → N·S/c − Z.
        assert_rel(x, 3500.0, 1e-9);
        assert_rel(m.mean_response(), 10_000.0 / 3500.0 - 0.25, 1e-6);
        assert!(little_residual(m.mean_at_servers(), x, m.mean_response()) < 1e-9);
        let light = ClosedFinite {
            n_users: 10_000,
            think: 100.0,
            service: 0.01,
            c: 35,
        };
        assert!(light.throughput().is_finite());
        assert!(light.mean_response() >= 0.01 && light.mean_response() < 0.0101);
        assert_rel(
            light.mean_response(),
            f64::from(light.n_users) / light.throughput() - light.think,
            1e-9,
        );
        let no_think = ClosedFinite { think: 0.0, ..m };
        assert_rel(no_think.throughput(), 3500.0, 1e-12);
    }

    #[test]
    fn mmc_with_one_server_is_mm1() {
        for (lambda, mu) in [(80.0, 100.0), (1.0, 3.0), (99.9, 100.0)] {
            let mm1 = Mm1 { lambda, mu };
            let mmc = Mmc { lambda, mu, c: 1 };
            assert_rel(mmc.p_wait(), lambda / mu, 1e-12);
            assert_rel(mmc.mean_response(), mm1.mean_response(), 1e-12);
            for p in [0.5, 0.9, 0.95, 0.999] {
                assert_rel(mmc.response_quantile(p), mm1.response_quantile(p), 1e-12);
            }
        }
    }

    #[test]
    fn mmc_response_survival_is_continuous_at_theta_equal_mu() {
        // c = 2, μ = 1, λ = 1 gives θ = cμ − λ = μ.
        let at = |lambda: f64| Mmc {
            lambda,
            mu: 1.0,
            c: 2,
        };
        let exact = at(1.0);
        let c = exact.p_wait();
        for t in [0.1, 1.0, 5.0] {
            let limit = (1.0 + c * t) * (-t).exp();
            assert_rel(exact.response_survival(t), limit, 1e-14);
            assert_rel(at(1.0 + 1e-9).response_survival(t), limit, 1e-7);
            assert_rel(at(1.0 - 1e-9).response_survival(t), limit, 1e-7);
        }
    }

    #[test]
    fn unstable_inputs_give_infinities_not_nan() {
        let mmc = Mmc {
            lambda: 4000.0,
            mu: 100.0,
            c: 35,
        };
        assert_eq!(mmc.p_wait(), 1.0);
        assert_eq!(mmc.mean_wait(), f64::INFINITY);
        assert_eq!(mmc.wait_quantile(0.5), f64::INFINITY);
        assert_eq!(mmc.response_quantile(0.5), f64::INFINITY);
        let mm1 = Mm1 {
            lambda: 100.0,
            mu: 100.0,
        };
        assert_eq!(mm1.mean_response(), f64::INFINITY);
        assert_eq!(mg1_ps_mean_response(10.0, 0.1), f64::INFINITY);
        let mmcd = MmcD {
            lambda: 4000.0,
            mu: 100.0,
            c: 35,
            tau: f64::INFINITY,
        };
        assert_eq!(mmcd.p_wait(), 1.0);
        assert_eq!(mmcd.mean_wait_served(), f64::INFINITY);
        let ea = ErlangA {
            lambda: 4000.0,
            mu: 100.0,
            c: 35,
            gamma: 0.0,
        };
        assert_eq!(ea.mean_wait(), f64::INFINITY);
        assert_eq!(ea.throughput(), 3500.0);
    }

    #[test]
    fn mg1_ps_and_little() {
        assert_rel(mg1_ps_mean_response(80.0, 0.01), 0.05, 1e-12);
        assert_eq!(little_residual(0.0, 0.0, 1.0), 0.0);
        assert_rel(little_residual(10.0, 100.0, 0.11), 0.1, 1e-12);
        let m = MmcK {
            lambda: 1200.0,
            mu: 100.0,
            c: 10,
            k: 20,
        };
        let r = little_residual(
            m.mean_in_system(),
            m.throughput(),
            m.mean_response_admitted(),
        );
        assert!(r < 1e-12);
    }

    #[test]
    fn wait_quantile_is_zero_below_the_atom() {
        let q = Mmc {
            lambda: 3000.0,
            mu: 100.0,
            c: 35,
        };
        // C ≈ 0.2846, so the median wait is zero.
        assert_eq!(q.wait_quantile(0.5), 0.0);
        assert_eq!(q.wait_quantile(0.0), 0.0);
        assert_eq!(q.wait_quantile(1.0), f64::INFINITY);
    }

    fn unit(x: f64) -> bool {
        (0.0..=1.0).contains(&x)
    }

    proptest! {
        #[test]
        fn probabilities_in_unit_interval_and_quantiles_monotone(
            c in 1u32..60,
            mu in 0.5f64..1000.0,
            rho in 0.01f64..0.995,
            p1 in 0.0f64..0.999,
            dp in 1e-9f64..0.5,
            tau in 0.0f64..2.0,
            gamma in 0.01f64..100.0,
            extra in 0u32..100,
        ) {
            let lambda = rho * f64::from(c) * mu;
            let p2 = (p1 + dp).min(0.9999);
            let mmc = Mmc { lambda, mu, c };
            prop_assert!(unit(mmc.p_wait()));
            prop_assert!(mmc.wait_quantile(p1) <= mmc.wait_quantile(p2));
            let r1 = mmc.response_quantile(p1);
            let r2 = mmc.response_quantile(p2);
            prop_assert!(r1.is_finite() && r2.is_finite());
            prop_assert!(r1 <= r2, "{} > {}", r1, r2);
            let s = mmc.response_survival(r2);
            prop_assert!(unit(s));

            let mm1 = Mm1 { lambda: rho * mu, mu };
            prop_assert!(mm1.response_quantile(p1) <= mm1.response_quantile(p2));

            // Overload is allowed for the models with loss or abandonment.
            let over = lambda * 2.0;
            let mmck = MmcK { lambda: over, mu, c, k: c + extra };
            prop_assert!(unit(mmck.blocking()));
            prop_assert!(mmck.mean_response_admitted().is_finite());

            let ea = ErlangA { lambda: over, mu, c, gamma };
            prop_assert!(unit(ea.p_abandon()));
            prop_assert!(unit(ea.p_wait()));
            prop_assert!(ea.p_abandon() <= ea.p_wait() + 1e-12);

            let mmcd = MmcD { lambda: over, mu, c, tau };
            prop_assert!(unit(mmcd.p_abandon()));
            prop_assert!(unit(mmcd.p_wait()));
            prop_assert!(mmcd.p_abandon() <= mmcd.p_wait());
            let w = mmcd.mean_wait_served();
            prop_assert!(w.is_finite() && w >= 0.0 && w <= tau);

            let closed = ClosedFinite { n_users: c * 3 + extra, think: 1.0 / mu, service: 1.0 / mu, c };
            prop_assert!(unit(closed.utilization()));
            prop_assert!(closed.mean_response() >= closed.service * (1.0 - 1e-12));
        }
    }
}
