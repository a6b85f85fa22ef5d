//! A simulated UDP network and clock that the real QUIC stack (quinn, through
//! `accordo_net::Io`) runs on, for the deterministic simulation.
//!
//! * **Clock.** [`SimRuntime`] gives quinn tokio's clock. The simulation runs
//!   on a current-thread runtime with time paused, so time only moves when
//!   every task waits, straight to the next timer: a minute of idle timeouts
//!   and backoff takes no real time, and no real time leaks into the run.
//! * **Network.** [`SimNet`] delivers every datagram after a latency drawn
//!   from a seeded generator (so packets reorder), drops a drawn share of
//!   them (loss), and drops everything to or from a host that is cut off
//!   (partition). A crashed process's socket is [`SimNet::kill`]ed: it
//!   neither sends nor receives again, as after `kill -9`, so the peer sees
//!   silence rather than a polite close.
//!
//! With a single thread, a paused clock, seeded QUIC randomness and store
//! work done inline (`accordo_store::offload`), the order of events is a
//! function of the seed; [`SimNet::trace`] digests it so a test can check
//! that a seed replays identically.

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncTimer, AsyncUdpSocket, Runtime, UdpPoller};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// SplitMix64: small, and the same sequence on every machine.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> SimRng {
        SimRng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
    /// True with probability `per_mille`/1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        out
    }
}

/// Counters of what the network did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NetStats {
    pub sent: u64,
    pub delivered: u64,
    /// Dropped by the loss draw.
    pub lost: u64,
    /// Dropped because a host was cut off or its socket was dead.
    pub cut: u64,
    pub bytes: u64,
}

struct InFlight {
    due: Instant,
    /// Send order: ties on `due` deliver in send order.
    order: u64,
    from: SocketAddr,
    to: SocketAddr,
    data: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.order) == (other.due, other.order)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.due, other.order).cmp(&(self.due, self.order))
    }
}

#[derive(Default)]
struct Inbox {
    /// Which socket owns the address now; an older one is dead.
    generation: u64,
    queue: VecDeque<(SocketAddr, Vec<u8>)>,
    waker: Option<Waker>,
}

struct State {
    rng: SimRng,
    loss_per_mille: u64,
    latency: (Duration, Duration),
    cut: BTreeSet<IpAddr>,
    sockets: BTreeMap<SocketAddr, Inbox>,
    in_flight: BinaryHeap<InFlight>,
    next_order: u64,
    next_generation: u64,
    stats: NetStats,
    /// FNV-1a over every send and delivery decision, in order.
    trace: u64,
    /// Every decision in words, when `ACCORDO_SIM_EVENTS` names a file prefix.
    events: Option<Vec<String>>,
}

impl State {
    fn mix(&mut self, values: &[u64]) {
        for v in values {
            for b in v.to_le_bytes() {
                self.trace ^= u64::from(b);
                self.trace = self.trace.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }

    fn alive(&self, addr: &SocketAddr, generation: u64) -> bool {
        self.sockets
            .get(addr)
            .is_some_and(|inbox| inbox.generation == generation)
    }

    fn reachable(&self, from: &SocketAddr, to: &SocketAddr) -> bool {
        !self.cut.contains(&from.ip()) && !self.cut.contains(&to.ip())
    }
}

/// The simulated network. Clone the `Arc` into every socket.
pub struct SimNet {
    state: Mutex<State>,
    /// Wakes the delivery task when a datagram is queued.
    queued: Notify,
    origin: tokio::time::Instant,
}

impl fmt::Debug for SimNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SimNet")
    }
}

fn ip_bits(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => u64::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6) as u64,
    }
}

fn addr_bits(a: &SocketAddr) -> u64 {
    (ip_bits(a.ip()) << 16) | u64::from(a.port())
}

impl SimNet {
    /// A network whose every random decision comes from `seed`. Call from
    /// inside the runtime; spawn [`SimNet::run`] to deliver datagrams.
    pub fn new(seed: u64) -> Arc<SimNet> {
        Arc::new(SimNet {
            state: Mutex::new(State {
                rng: SimRng::new(seed ^ 0x0005_eed0_f4e7),
                loss_per_mille: 0,
                latency: (Duration::from_millis(1), Duration::from_millis(20)),
                cut: BTreeSet::new(),
                sockets: BTreeMap::new(),
                in_flight: BinaryHeap::new(),
                next_order: 0,
                next_generation: 0,
                stats: NetStats::default(),
                trace: 0xcbf2_9ce4_8422_2325,
                events: std::env::var_os("ACCORDO_SIM_EVENTS").map(|_| Vec::new()),
            }),
            queued: Notify::new(),
            origin: tokio::time::Instant::now(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Invariant: no code panics while holding the lock.
        self.state.lock().expect("simnet mutex poisoned")
    }

    /// Milliseconds of simulated time since the network was made.
    fn elapsed_ms(&self) -> u64 {
        self.now().1.as_millis() as u64
    }

    /// The simulated clock, and how far it is past the network's start.
    fn now(&self) -> (Instant, Duration) {
        let now = tokio::time::Instant::now();
        (now.into_std(), now - self.origin)
    }

    pub fn set_loss(&self, per_mille: u64) {
        self.state().loss_per_mille = per_mille.min(1000);
    }

    pub fn set_latency(&self, min: Duration, max: Duration) {
        self.state().latency = (min, max.max(min));
    }

    /// Cuts `ip` off: everything to or from it is dropped until [`SimNet::heal`].
    pub fn cut(&self, ip: IpAddr) {
        self.state().cut.insert(ip);
    }

    pub fn heal(&self, ip: IpAddr) {
        self.state().cut.remove(&ip);
    }

    pub fn heal_all(&self) {
        self.state().cut.clear();
    }

    pub fn stats(&self) -> NetStats {
        self.state().stats
    }

    /// A digest of every decision so far (sends, drops, deliveries, times).
    pub fn trace(&self) -> u64 {
        self.state().trace
    }

    /// The decisions in words (empty unless `ACCORDO_SIM_EVENTS` is set).
    pub fn events(&self) -> Vec<String> {
        self.state().events.clone().unwrap_or_default()
    }

    /// Mixes an application event into the trace.
    pub fn record(&self, values: &[u64]) {
        let now = self.elapsed_ms();
        let mut st = self.state();
        if let Some(ev) = &mut st.events {
            ev.push(format!("{now} app {values:?}"));
        }
        st.mix(&[now]);
        st.mix(values);
    }

    /// Binds `addr`, replacing (killing) any socket that held it.
    pub fn bind(self: &Arc<Self>, addr: SocketAddr) -> Arc<SimSocket> {
        let mut st = self.state();
        st.next_generation += 1;
        let generation = st.next_generation;
        st.sockets.insert(
            addr,
            Inbox {
                generation,
                ..Inbox::default()
            },
        );
        Arc::new(SimSocket {
            net: Arc::clone(self),
            addr,
            generation,
        })
    }

    /// Kills whatever socket holds `addr`: like `kill -9`, it sends nothing
    /// more (no close frames) and what was queued for it is gone.
    pub fn kill(&self, addr: SocketAddr) {
        if let Some(inbox) = self.state().sockets.remove(&addr) {
            if let Some(w) = inbox.waker {
                w.wake();
            }
        }
    }

    /// Kills every socket of a host (a crashed machine).
    pub fn kill_ip(&self, ip: IpAddr) {
        let mut st = self.state();
        let dead: Vec<SocketAddr> = st
            .sockets
            .keys()
            .filter(|a| a.ip() == ip)
            .copied()
            .collect();
        let wakers: Vec<Waker> = dead
            .iter()
            .filter_map(|a| st.sockets.remove(a).and_then(|inbox| inbox.waker))
            .collect();
        drop(st);
        wakers.into_iter().for_each(Waker::wake);
    }

    fn send(&self, from: SocketAddr, generation: u64, to: SocketAddr, data: &[u8]) {
        let (now, since) = self.now();
        let elapsed = since.as_millis() as u64;
        let mut st = self.state();
        st.stats.sent += 1;
        st.stats.bytes += data.len() as u64;
        // Draw in a fixed order whatever happens, so one decision does not
        // shift the stream of the next ones.
        let loss = st.loss_per_mille;
        let lost = st.rng.chance(loss);
        let (min, max) = st.latency;
        let spread = (max - min).as_micros() as u64;
        let delay = min + Duration::from_micros(st.rng.below(spread + 1));
        st.mix(&[elapsed, addr_bits(&from), addr_bits(&to), data.len() as u64]);
        let us = since.as_micros();
        if let Some(ev) = &mut st.events {
            ev.push(format!(
                "{us} send {from} -> {to} {} lost={lost}",
                data.len()
            ));
        }
        if !st.alive(&from, generation) || !st.reachable(&from, &to) {
            st.stats.cut += 1;
            st.mix(&[1]);
            return;
        }
        if lost {
            st.stats.lost += 1;
            st.mix(&[2]);
            return;
        }
        st.mix(&[3, delay.as_micros() as u64]);
        let order = st.next_order;
        st.next_order += 1;
        st.in_flight.push(InFlight {
            due: now + delay,
            order,
            from,
            to,
            data: data.to_vec(),
        });
        drop(st);
        self.queued.notify_one();
    }

    /// Delivers due datagrams; returns when the next one is due, if any.
    fn deliver_due(&self) -> Option<Instant> {
        let (now, since) = self.now();
        let elapsed = since.as_millis() as u64;
        let mut st = self.state();
        loop {
            match st.in_flight.peek() {
                Some(p) if p.due <= now => {}
                Some(p) => return Some(p.due),
                None => return None,
            }
            // Invariant: peeked just above.
            let p = st.in_flight.pop().expect("peeked datagram");
            st.mix(&[elapsed, p.order]);
            // A cut made while the datagram was in flight drops it too.
            if !st.reachable(&p.from, &p.to) {
                st.stats.cut += 1;
                continue;
            }
            let Some(inbox) = st.sockets.get_mut(&p.to) else {
                st.stats.cut += 1;
                continue;
            };
            inbox.queue.push_back((p.from, p.data));
            let waker = inbox.waker.take();
            st.stats.delivered += 1;
            drop(st);
            if let Some(w) = waker {
                w.wake();
            }
            st = self.state();
        }
    }

    /// The delivery task: runs until the runtime ends.
    pub async fn run(self: Arc<Self>) {
        loop {
            match self.deliver_due() {
                Some(due) => {
                    tokio::select! {
                        biased;
                        () = tokio::time::sleep_until(tokio::time::Instant::from_std(due)) => {}
                        () = self.queued.notified() => {}
                    }
                }
                None => self.queued.notified().await,
            }
        }
    }

    /// An `Io` for an endpoint on `addr`, with QUIC randomness from `seed`.
    pub fn io(self: &Arc<Self>, addr: SocketAddr, seed: u64) -> accordo_net::Io {
        let mut endpoint = quinn::EndpointConfig::default();
        endpoint.rng_seed(Some(SimRng::new(seed).bytes::<32>()));
        accordo_net::Io {
            socket: self.bind(addr),
            runtime: Arc::new(SimRuntime),
            endpoint,
        }
    }
}

/// One bound address of the simulated network.
pub struct SimSocket {
    net: Arc<SimNet>,
    addr: SocketAddr,
    generation: u64,
}

impl fmt::Debug for SimSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SimSocket({})", self.addr)
    }
}

#[derive(Debug)]
struct AlwaysWritable;

impl UdpPoller for AlwaysWritable {
    fn poll_writable(self: Pin<&mut Self>, _cx: &mut Context) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncUdpSocket for SimSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(AlwaysWritable)
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        match transmit.segment_size {
            // One datagram per segment (we advertise no GSO, but stay correct).
            Some(size) if size > 0 => {
                for segment in transmit.contents.chunks(size) {
                    self.net
                        .send(self.addr, self.generation, transmit.destination, segment);
                }
            }
            _ => self.net.send(
                self.addr,
                self.generation,
                transmit.destination,
                transmit.contents,
            ),
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut st = self.net.state();
        let Some(inbox) = st.sockets.get_mut(&self.addr) else {
            // Dead: nothing will ever arrive. The endpoint is being dropped.
            return Poll::Pending;
        };
        if inbox.generation != self.generation {
            return Poll::Pending;
        }
        let mut n = 0;
        while n < bufs.len().min(meta.len()) {
            let Some((from, data)) = inbox.queue.pop_front() else {
                break;
            };
            let len = data.len().min(bufs[n].len());
            bufs[n][..len].copy_from_slice(&data[..len]);
            meta[n] = RecvMeta {
                addr: from,
                len,
                stride: len,
                ecn: None,
                dst_ip: Some(self.addr.ip()),
            };
            n += 1;
        }
        if n == 0 {
            inbox.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(Ok(n))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }

    fn may_fragment(&self) -> bool {
        false
    }
}

/// quinn's runtime on tokio's (paused) clock.
#[derive(Debug)]
pub struct SimRuntime;

impl Runtime for SimRuntime {
    fn new_timer(&self, i: Instant) -> Pin<Box<dyn AsyncTimer>> {
        // quinn's own timer impl for tokio's `Sleep`, on the paused clock.
        Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(i)))
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        tokio::spawn(future);
    }

    fn wrap_udp_socket(&self, _: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Err(io::Error::other(
            "the simulated runtime has no real sockets; bind on the SimNet",
        ))
    }

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}
