// SPDX-License-Identifier: GPL-2.0

//! A luod client that stands for a VM: it keeps "guest memory", a memfd
//! filled with a pattern, and a counter page it bumps every second. It
//! subscribes to luod, preserves both in the session of START_PRESERVATION,
//! and after the kexec claims them, checks every byte and that the counter
//! carried on, finishes the session and, with `--subscribe`, goes on for the
//! next update. Its lines start with "GUEST <id>:" or "FAIL".
//!
//!   luo-guest start ID MIB [--no-reconnect]
//!   luo-guest claim ID MIB GENERATION [--subscribe]

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

use liveupdate::Session;
use luo_proto::{call, Conn, Reply, Request, SOCKET_PATH};

const RAM_TOKEN: u64 = 1;
const COUNTER_TOKEN: u64 = 2;
const MAGIC: u64 = 0x4c55_4f47_5545_5354; // "LUOGUEST"
/// The counter page: magic, generation, counter, then the counter at each
/// generation's preservation.
const OFF_MAGIC: u64 = 0;
const OFF_GEN: u64 = 8;
const OFF_COUNTER: u64 = 16;
const OFF_CHECKPOINTS: u64 = 24;
const MAX_GEN: u64 = 16;

fn fail(msg: impl std::fmt::Display) -> ! {
    println!("FAIL: {msg}");
    std::process::exit(1);
}

fn ctx<T>(r: io::Result<T>, what: &str) -> T {
    r.unwrap_or_else(|e| fail(format_args!("{what}: {e}")))
}

/// The pattern's word at index `i` for guest `id` (a splitmix64 step).
fn word(seed: u64, i: u64) -> u64 {
    let mut z = seed.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn seed_of(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

const CHUNK: usize = 1 << 20;

fn fill(ram: &File, seed: u64, bytes: u64) {
    let mut buf = vec![0u8; CHUNK];
    let mut off = 0;
    while off < bytes {
        for (j, w) in buf.chunks_exact_mut(8).enumerate() {
            w.copy_from_slice(&word(seed, off / 8 + j as u64).to_le_bytes());
        }
        ctx(ram.write_all_at(&buf, off), "write guest memory");
        off += CHUNK as u64;
    }
}

/// Every byte of the memory against the pattern; the first bad offset.
fn verify(ram: &File, seed: u64, bytes: u64) -> Option<u64> {
    let size = ctx(ram.metadata(), "fstat").len();
    if size != bytes {
        fail(format_args!("guest memory is {size} bytes, not {bytes}"));
    }
    let mut buf = vec![0u8; CHUNK];
    let mut off = 0;
    while off < bytes {
        ctx(ram.read_exact_at(&mut buf, off), "read guest memory");
        for (j, w) in buf.chunks_exact(8).enumerate() {
            if u64::from_le_bytes(w.try_into().expect("8 bytes")) != word(seed, off / 8 + j as u64)
            {
                return Some(off + 8 * j as u64);
            }
        }
        off += CHUNK as u64;
    }
    None
}

fn get(page: &File, off: u64) -> u64 {
    let mut b = [0u8; 8];
    ctx(page.read_exact_at(&mut b, off), "read counter page");
    u64::from_le_bytes(b)
}

fn set(page: &File, off: u64, v: u64) {
    ctx(
        page.write_all_at(&v.to_le_bytes(), off),
        "write counter page",
    );
}

struct Guest {
    id: String,
    ram: File,
    page: Arc<File>,
}

impl Guest {
    fn bump_every_second(&self) {
        let page = self.page.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            let c = get(&page, OFF_COUNTER);
            set(&page, OFF_COUNTER, c + 1);
        });
    }

    /// Waits until the counter moved past `from` (it runs).
    fn wait_bump(&self, from: u64) -> u64 {
        for _ in 0..100 {
            let c = get(&self.page, OFF_COUNTER);
            if c > from {
                return c;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        fail("the counter did not move in 10 s")
    }

    /// Subscribes, serves START_PRESERVATION, and after a luod restart
    /// subscribes again with the session it holds (unless `reconnect` is
    /// false). Never returns.
    fn serve(&self, reconnect: bool) -> ! {
        let mut held: Option<Session> = None;
        let mut attempts = 0;
        loop {
            let mut conn = connect();
            let req = Request::Subscribe {
                id: self.id.clone(),
                held: held.is_some(),
            };
            // A luod that is going away may still accept, then reset the
            // connection: try again, for 30 s at most.
            let answer = match conn.send(&req, held.as_ref().map(|s| s.as_fd())) {
                Ok(()) => conn.recv::<Reply, _>(Reply::carries_fd),
                Err(e) => Err(luo_proto::RecvError::Io(e)),
            };
            match answer {
                Ok((Reply::Ok, _)) => attempts = 0,
                Ok((r, _)) => fail(format_args!("SUBSCRIBE: {r:?}")),
                Err(e) if attempts < 300 => {
                    attempts += 1;
                    if attempts == 1 {
                        println!("GUEST {}: SUBSCRIBE: {e}; trying again", self.id);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                Err(e) => fail(format_args!("SUBSCRIBE: {e}")),
            }
            println!(
                "GUEST {}: subscribed{}, counter {}",
                self.id,
                if held.is_some() {
                    " with its session"
                } else {
                    ""
                },
                get(&self.page, OFF_COUNTER)
            );
            loop {
                match conn.recv::<Reply, _>(Reply::carries_fd) {
                    Ok((Reply::StartPreservation { session, .. }, Some(fd))) => {
                        let s = self.preserve(fd, &session);
                        let r = luo_proto::call(
                            &mut conn,
                            &Request::Ready {
                                id: self.id.clone(),
                            },
                        );
                        match r {
                            Ok((Reply::Ok, _)) => println!("GUEST {}: ready", self.id),
                            other => fail(format_args!("READY: {other:?}")),
                        }
                        held = Some(s);
                    }
                    Ok((r, _)) => println!("GUEST {}: unexpected {r:?}", self.id),
                    Err(e) => {
                        println!("GUEST {}: luod connection lost: {e}", self.id);
                        break;
                    }
                }
            }
            if !reconnect {
                println!("GUEST {}: holding its session without luod", self.id);
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
        }
    }

    fn preserve(&self, fd: OwnedFd, name: &str) -> Session {
        let session = ctx(Session::from_fd(fd), "the session fd");
        let got = ctx(session.name(), "GET_NAME");
        if got.as_str() != name {
            fail(format_args!(
                "START_PRESERVATION names {name} but the session is {got}"
            ));
        }
        ctx(
            session.preserve(self.ram.as_fd(), RAM_TOKEN),
            "PRESERVE_FD guest memory",
        );
        ctx(
            session.preserve(self.page.as_fd(), COUNTER_TOKEN),
            "PRESERVE_FD counter",
        );
        let generation = get(&self.page, OFF_GEN);
        let c = get(&self.page, OFF_COUNTER);
        set(&self.page, OFF_CHECKPOINTS + 8 * generation, c);
        println!(
            "GUEST {}: preserved in {name}: generation {generation}, counter {c}",
            self.id
        );
        session
    }
}

fn connect() -> Conn {
    for _ in 0..300 {
        if let Ok(c) = Conn::connect(SOCKET_PATH) {
            return c;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    fail("luod did not answer in 30 s")
}

fn memfd(name: &str, bytes: u64) -> File {
    let fd = ctx(
        rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC).map_err(io::Error::from),
        "memfd_create",
    );
    let f = File::from(fd);
    ctx(f.set_len(bytes), "ftruncate");
    f
}

fn usage() -> ! {
    fail("usage: luo-guest start ID MIB [--no-reconnect] | claim ID MIB GENERATION [--subscribe]")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        usage();
    }
    let (mode, id) = (args[1].as_str(), args[2].clone());
    let bytes = args[3].parse::<u64>().unwrap_or_else(|_| usage()) << 20;
    let seed = seed_of(&id);
    match mode {
        "start" => {
            let ram = memfd("guest-ram", bytes);
            fill(&ram, seed, bytes);
            let page = memfd("guest-counter", 4096);
            set(&page, OFF_MAGIC, MAGIC);
            set(&page, OFF_GEN, 1);
            let g = Guest {
                id,
                ram,
                page: Arc::new(page),
            };
            g.bump_every_second();
            g.wait_bump(0);
            g.serve(!args.iter().any(|a| a == "--no-reconnect"));
        }
        "claim" => {
            let generation: u64 = args
                .get(4)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| usage());
            if !(2..MAX_GEN).contains(&generation) {
                usage();
            }
            let mut conn = connect();
            let (reply, fd) = ctx(
                call(
                    &mut conn,
                    &Request::Claim {
                        id: id.clone(),
                        uid: None,
                    },
                ),
                "CLAIM",
            );
            let (Reply::Session { session: name, .. }, Some(fd)) = (reply.clone(), fd) else {
                fail(format_args!("CLAIM: {reply:?}"));
            };
            let session = ctx(Session::from_fd(fd), "the session fd");
            let got = ctx(session.name(), "GET_NAME");
            if got.as_str() != name {
                fail(format_args!("CLAIM names {name} but the session is {got}"));
            }
            let ram = File::from(ctx(session.retrieve(RAM_TOKEN), "RETRIEVE_FD guest memory"));
            let page = File::from(ctx(session.retrieve(COUNTER_TOKEN), "RETRIEVE_FD counter"));
            ctx(session.finish(), "FINISH");
            drop(session);
            if get(&page, OFF_MAGIC) != MAGIC {
                fail("the counter page lost its magic");
            }
            let prev = get(&page, OFF_GEN);
            if prev + 1 != generation {
                fail(format_args!(
                    "generation {prev} came, {} expected",
                    generation - 1
                ));
            }
            // The counter at each earlier preservation, strictly growing.
            let mut last = 0;
            for g in 1..generation {
                let cp = get(&page, OFF_CHECKPOINTS + 8 * g);
                if cp <= last {
                    fail(format_args!(
                        "checkpoint of generation {g} is {cp}, not above {last}"
                    ));
                }
                last = cp;
            }
            let counter = get(&page, OFF_COUNTER);
            if counter < last {
                fail(format_args!("the counter went back: {counter} < {last}"));
            }
            if let Some(off) = verify(&ram, seed, bytes) {
                fail(format_args!("guest memory differs at byte {off}"));
            }
            println!(
                "GUEST {id}: claimed {name}: {} MiB intact, generation {prev}, counter {counter} (preserved at {last})",
                bytes >> 20
            );
            set(&page, OFF_GEN, generation);
            let g = Guest {
                id,
                ram,
                page: Arc::new(page),
            };
            g.bump_every_second();
            let now = g.wait_bump(counter);
            println!("GUEST {}: counter carried on: {now}", g.id);
            if args.iter().any(|a| a == "--subscribe") {
                g.serve(true);
            }
        }
        _ => usage(),
    }
}
